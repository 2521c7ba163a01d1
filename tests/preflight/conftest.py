"""Preflight tests talk to real servers on this machine: the portal itself over https with a
test CA (werkzeug), a file server for the Companion's APK (https or plain http), an SMTP server
and slapd. TRUSTED_CA_FILE makes the test CA trusted; leaving it out is a phone that does
not know the CA."""
import http.server
import socket
import ssl
import threading
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server

from tests.support.certs import make_certs


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory):
    """(ca, crt, key) of a test CA and a certificate for localhost and 127.0.0.1."""
    return make_certs(tmp_path_factory.mktemp("preflight-tls"))


def routable_address() -> str | None:
    """This machine's address on its default route (not loopback), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: UDP only picks the route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


class FileServer:
    """Serves `routes` ({path: (status, body)}) over https (tls=(crt, key)) or plain http; a 3xx
    body is the Location it redirects to."""

    def __init__(self, host: str = "127.0.0.1", tls=None):
        self.routes: dict[str, tuple[int, bytes]] = {}
        routes = self.routes

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = routes.get(self.path, (404, b"not found"))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", body.decode())
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Content-Type", "application/octet-stream")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        if tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://{host}:{self.httpd.server_port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def https_files(test_ca):
    ca, crt, key = test_ca
    with FileServer(tls=(crt, key)) as server:
        yield server


@pytest.fixture
def http_files():
    with FileServer() as server:
        yield server


@contextmanager
def portal_over_https(app, tls, host: str = "127.0.0.1"):
    """The app itself on a free port of `host`, over https; yields its base URL."""
    server = make_server(host, 0, app, threaded=True, ssl_context=tls)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{host}:{server.server_port}"
    finally:
        server.shutdown()


@pytest.fixture
def silent_server():
    """A port that accepts connections and never answers; yields its https URL."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    yield f"https://127.0.0.1:{listener.getsockname()[1]}"
    listener.close()
