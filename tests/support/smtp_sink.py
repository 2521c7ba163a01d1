"""A real SMTP server on loopback (aiosmtpd), adapted from the shared recipe: STARTTLS or
implicit TLS with the test CA, AUTH, recipients it refuses, and a hold that keeps every
message waiting until several clients are connected (to make two workers overlap)."""
import asyncio
import email
import email.policy
import socket
import ssl
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Handler:
    def __init__(self, sink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.sink.refuse:
            return self.sink.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.sink.cond:
            self.sink.peers.add(session.peer)
        deadline = time.monotonic() + self.sink.hold_timeout
        while len(self.sink.peers) < self.sink.hold_until_peers and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        with self.sink.cond:
            self.sink.envelopes.append(envelope)
            self.sink.messages.append(msg)
            self.sink.cond.notify_all()
        return "250 2.0.0 Message accepted for delivery"


class SmtpSink:
    def __init__(self, host="127.0.0.1", port=None, *, starttls_cert=None,
                 require_starttls=False, tls_cert=None, auth=None):
        """starttls_cert=(crt, key): STARTTLS; tls_cert=(crt, key): implicit TLS;
        auth={'user': 'pw'}: AUTH PLAIN/LOGIN (offered before TLS too, as in the recipe)."""
        self.host, self.port = host, port or free_port()
        self.messages, self.envelopes, self.peers = [], [], set()
        self.refuse: dict[str, str] = {}
        self.hold_until_peers, self.hold_timeout = 0, 5.0
        self.cond = threading.Condition()
        self.kwargs = {}
        if starttls_cert:
            self.kwargs.update(tls_context=self._context(starttls_cert),
                               require_starttls=require_starttls)
        if tls_cert:
            self.kwargs.update(ssl_context=self._context(tls_cert))
        if auth:
            def authenticator(server, session, envelope, mechanism, auth_data):
                ok = auth.get(auth_data.login.decode()) == auth_data.password.decode()
                # handled=False: aiosmtpd answers 535 itself (with its default True: silence).
                return AuthResult(success=ok, handled=False)
            self.kwargs.update(authenticator=authenticator, auth_require_tls=False)
        self.controller = None

    @staticmethod
    def _context(cert):
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*cert)
        return context

    def start(self):
        self.controller = Controller(_Handler(self), hostname=self.host, port=self.port,
                                     **self.kwargs)
        self.controller.start()
        return self

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def wait_for(self, n=1, timeout=5.0):
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.messages) >= n, timeout):
                raise TimeoutError(f"expected {n} message(s), got {len(self.messages)}")
        return self.messages[:n]

    def to(self, address):
        """The messages delivered to one address."""
        return [m for m, e in zip(self.messages, self.envelopes) if address in e.rcpt_tos]


class SilentServer:
    """Accepts connections and never says a word: the client's timeout must end it."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]

    def close(self):
        self.socket.close()
