"""A real webhook receiver on loopback: HTTPS with a test CA's certificate, verifying every
request with the `standardwebhooks` library (never the portal's code), and processing each
webhook-id once however often it arrives (at-least-once delivery, exactly-once processing).

    receiver = Receiver(ca_files).start()       # https://127.0.0.1:<port>/hook
    Receiver(None, host="127.0.0.2", port=p)    # plain http, another loopback address
    receiver.secret = "whsec_…"                 # the endpoint's secret, shown once
    receiver.fail_next = 2                      # answer 500 to the next two requests
    receiver.stop(); receiver.start()           # down (connection refused), then back
    receiver.requests                           # every request: (webhook-id, verified, status)
    receiver.processed                          # webhook-id → event, each processed once
    receiver.server_names                       # the name each TLS client sent (SNI)
"""
import http.server
import json
import ssl
import threading
from dataclasses import dataclass, field

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass
class Seen:
    webhook_id: str | None
    headers: dict
    body: bytes
    verified: bool
    status: int


@dataclass
class Receiver:
    tls: tuple | None  # (ca, crt, key) from tests.support.certs.make_certs; None: plain http
    host: str = "127.0.0.1"
    secret: str | None = None
    fail_next: int = 0
    fail_status: int = 500
    answer: bytes = b'{"ok": true}'
    redirect_to: str | None = None
    hold_until_peers: int = 0   # each request waits (up to 2 s) until this many are in flight
    requests: list = field(default_factory=list)
    server_names: list = field(default_factory=list)
    processed: dict = field(default_factory=dict)
    port: int = 0
    _server: http.server.ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _peers: threading.Condition = field(default_factory=threading.Condition)
    in_flight: int = 0
    most_in_flight: int = 0

    @property
    def url(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{self.host}:{self.port}/hook"

    @property
    def ca_file(self) -> str:
        return self.tls[0]

    def start(self) -> "Receiver":
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, payload = receiver.handle(dict(self.headers.items()), body)
                self.send_response(status)
                if status in (301, 302, 307, 308):
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        if self.tls:
            _ca, crt, key = self.tls
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(crt, key)
            context.sni_callback = lambda _sock, name, _context: self.server_names.append(name)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_port
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, headers: dict, body: bytes) -> tuple[int, bytes]:
        with self._peers:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            self._peers.notify_all()
            if self.hold_until_peers:
                self._peers.wait_for(lambda: self.in_flight >= self.hold_until_peers, 2.0)
        try:
            return self._handle(headers, body)
        finally:
            with self._peers:
                self.in_flight -= 1

    def _handle(self, headers: dict, body: bytes) -> tuple[int, bytes]:
        headers = {name.lower(): value for name, value in headers.items()}
        verified, event = True, None
        try:
            event = Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            verified = False
        with self._lock:
            if not verified:
                status = 401
            elif self.redirect_to:
                status = 302
            elif self.fail_next > 0:
                self.fail_next -= 1
                status = self.fail_status
            else:
                status = 200
                # Exactly-once processing: a webhook-id seen before is acknowledged, not redone.
                self.processed.setdefault(headers["webhook-id"], event)
            self.requests.append(Seen(headers.get("webhook-id"), headers, body, verified,
                                      status))
        answer = self.answer if status == 200 else json.dumps(
            {"error": f"status {status}"}).encode()
        return status, answer

    def ids(self) -> list[str]:
        return [seen.webhook_id for seen in self.requests]
