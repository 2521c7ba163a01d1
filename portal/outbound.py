"""The portal's one way of fetching an https:// address of someone else's (the Companion APK
for Admin → Companion and Preflight, the portal's own public URL): the system's CAs plus
TRUSTED_CA_FILE, redirects followed only to https://, a size limit and a deadline, and every
failure told as a plain sentence with what to fix — never an exception's repr. For a
receiver whose address was checked first (webhooks), pinned_session() connects to exactly that
address."""
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.exceptions

TIMEOUT = 5.0        # seconds for the connection and for each read
MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    reason: str
    final_url: str
    body: bytes


class FetchError(Exception):
    """No answer to read: .message says what happened (lower case, to follow "the URL: "),
    .fix what to do about it."""

    def __init__(self, message: str, fix: str):
        super().__init__(message)
        self.message, self.fix = message, fix


class TooLarge(FetchError):
    """The answer is longer than the limit (declared or read)."""


def fetch(url: str, ca_file: str | None, *, limit: int, seconds: float,
          headers: dict | None = None, timeout: float = TIMEOUT) -> Answer:
    """GET url, following redirects (never from https:// to anything else), and read at most `limit` bytes within
    `seconds`. Any HTTP status is an Answer; raises FetchError when there is none to read."""
    verify = ca_file or True
    started = time.monotonic()
    headers = {"User-Agent": "qr-provisioning-portal", **(headers or {})}
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = requests.get(url, stream=True, timeout=timeout, verify=verify,
                                    allow_redirects=False, headers=headers)
        except requests.exceptions.RequestException as error:
            raise describe(error, url, timeout=timeout) from None
        with response:
            if not response.is_redirect:
                body = _bounded(response, limit, started + seconds, seconds, url, timeout)
                return Answer(response.status_code, response.reason or "", url, body)
            target = urljoin(url, response.headers.get("Location", ""))
        if urlsplit(url).scheme == "https" and urlsplit(target).scheme != "https":
            raise FetchError(f"redirected to {target[:200]}, which is not https",
                             "Make the server redirect to https only.")
        url = target
    raise FetchError(f"redirected more than {MAX_REDIRECTS} times",
                     "Point the address at the file itself.")


def _bounded(response, limit: int, deadline: float, seconds: float, url: str,
             timeout: float) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"more than {limit:,} bytes", "Check that the address serves the file.")
    data = bytearray()
    try:
        for chunk in response.iter_content(_CHUNK):
            data += chunk
            if len(data) > limit:
                raise TooLarge(f"more than {limit:,} bytes",
                               "Check that the address serves the file.")
            if time.monotonic() > deadline:
                raise FetchError(f"the download took longer than {seconds:g} s",
                                 "Serve the file from a faster server.")
    except requests.exceptions.RequestException as error:
        raise describe(error, url, timeout=timeout) from None
    return bytes(data)


class PinnedAddress(requests.adapters.HTTPAdapter):
    """Connects to one IP address that was checked before, whatever the URL's host name
    resolves to by now (DNS rebinding). TLS still sends the name (SNI) and verifies the
    certificate for it, and the Host header names it: only the TCP connection is pinned."""

    def __init__(self, address: str):
        self.address = address
        super().__init__()

    def build_connection_pool_key_attributes(self, request, verify, cert=None):
        # requests' documented hook for changing the pool key: the pool is the address's,
        # and urllib3's server_hostname is both the SNI and the name OpenSSL checks.
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert)
        if host_params["scheme"] == "https":
            pool_kwargs["server_hostname"] = host_params["host"]
        host_params["host"] = self.address
        return host_params, pool_kwargs

    def add_headers(self, request, **kwargs):
        # Otherwise http.client would write the pool's host, the IP address.
        request.headers["Host"] = urlsplit(request.url).netloc.rpartition("@")[2]


def pinned_session(address: str) -> requests.Session:
    """A session whose http:// and https:// requests all go to `address` (see PinnedAddress)."""
    session = requests.Session()
    adapter = PinnedAddress(address)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def not_connected(error: requests.exceptions.RequestException) -> bool:
    """The connection failed at once (refused, unreachable): nothing was sent, and no
    timeout was spent — another address of the same name may be tried."""
    return (isinstance(error, requests.exceptions.ConnectionError)
            and not isinstance(error, requests.exceptions.ConnectTimeout)
            and any(isinstance(cause, urllib3.exceptions.NewConnectionError)
                    for cause in _causes(error)))


def describe(error: BaseException, url: str, *, timeout: float = TIMEOUT) -> FetchError:
    """A requests failure as a plain sentence (what happened) and a fix."""
    host = urlsplit(url).netloc
    causes = list(_causes(error))
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return FetchError(f"its certificate is not trusted ({cause.verify_message}); a "
                              "phone refuses it too", "Use a certificate from a public CA and "
                              "serve the whole chain (leaf and intermediates).")
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            return FetchError(f"the TLS handshake failed ({cause.reason or cause})",
                              "Check the server's https configuration.")
        if isinstance(cause, socket.gaierror):
            return FetchError(f"the host name {urlsplit(url).hostname} cannot be resolved "
                              "here", "Check the host name and its DNS record.")
        if isinstance(cause, ConnectionRefusedError):
            return FetchError(f"connection refused by {host}: nothing listens there",
                              "Start the server, or correct the host and port.")
    if isinstance(error, requests.exceptions.Timeout) or any(
            isinstance(cause, (TimeoutError, socket.timeout)) for cause in causes):
        return FetchError(f"no answer from {host} within {timeout:g} s",
                          "Check the server and any firewall between it and the internet.")
    if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
                          requests.exceptions.InvalidSchema)):
        return FetchError("is not a valid https:// address", "Correct the address.")
    return FetchError(f"cannot be fetched ({type(error).__name__})",
                      "Check the address and the server.")


def _causes(error: BaseException):
    """The error, what it wraps (requests → urllib3 → ssl/socket), and their causes."""
    seen, todo = set(), [error]
    while todo:
        current = todo.pop(0)
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([current.__cause__, current.__context__,
                     getattr(current, "reason", None)])
        todo.extend(arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException))
