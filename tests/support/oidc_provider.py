"""The Entra-ID-shaped OpenID provider of tests/oidc (node + npm oidc-provider) on loopback.

Plain functions so any test folder can use it: start_provider/stop_provider (or running_provider),
provider_fixture() to declare a pytest fixture, and browser_login() as the user's browser.
The provider serves https with a test CA made at start, on a free port; its signing key is made
here too, so tests can sign tokens with the provider's own key (OidcProvider.sign).
"""
import base64
import datetime
import fcntl
import ipaddress
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import jwt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
USERS_FILE = OIDC_DIR / "users.json"
USERS = json.loads(USERS_FILE.read_text("utf-8"))  # login -> {"password": ..., claims}
TENANT = "11111111-2222-3333-4444-555555555555"
CLIENT_ID = "enrollment-portal"
CLIENT_SECRET = "test-secret"
# The portal's callback as Flask's test client and a live server see it. The provider ignores
# the port of loopback redirect URIs (as Entra does), so these also cover http://127.0.0.1:<any>/...
REDIRECT_URIS = ("http://localhost/ssp/azure/callback", "http://127.0.0.1/ssp/azure/callback")
START_TIMEOUT = 60.0  # a hang guard (an exit is seen at once): a loaded machine starts node slowly


class ProviderError(RuntimeError):
    """The test provider could not be installed or started."""


@dataclass(frozen=True)
class OidcProvider:
    origin: str                 # https://localhost:<port>
    port: int
    tenant: str
    client_id: str
    client_secret: str
    ca_file: str                # the test CA that signed the provider's TLS certificate
    redirect_uris: tuple[str, ...]
    signing_key: rsa.RSAPrivateKey = field(repr=False)
    signing_kid: str
    log_file: str
    process: subprocess.Popen = field(repr=False, compare=False)

    @property
    def authority(self) -> str:
        """What msal calls the authority: Entra's https://login.microsoftonline.com/<tenant>."""
        return f"{self.origin}/{self.tenant}"

    @property
    def issuer(self) -> str:
        return f"{self.origin}/{self.tenant}/v2.0"

    def stats(self) -> dict:
        """How often discovery, jwks, token and authorize were requested since start."""
        return requests_session(self.ca_file).get(f"{self.origin}/_stats", timeout=5).json()

    def sign(self, claims: dict, *, key=None, kid: str | None = None, algorithm: str = "RS256",
             headers: dict | None = None) -> str:
        """A JWT over `claims`, signed with the provider's key unless `key` is given."""
        head = {"kid": self.signing_kid if kid is None else kid, **(headers or {})}
        return jwt.encode(claims, self.signing_key if key is None else key,
                          algorithm=algorithm, headers=head)


def requests_session(ca_file: str) -> requests.Session:
    """A session that trusts exactly ca_file (REQUESTS_CA_BUNDLE would override verify=)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = ca_file
    return session


def start_provider(workdir: Path, redirect_uris=(), *, tenant: str = TENANT,
                   client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET,
                   users_file: Path = USERS_FILE) -> OidcProvider:
    """Start the provider on a free loopback port; REDIRECT_URIS are always registered."""
    ensure_node_modules()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = write_tls_files(workdir)
    signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = secrets.token_hex(8)
    jwks_file = workdir / "jwks.json"
    jwks_file.write_text(json.dumps({"keys": [private_jwk(signing_key, kid)]}))
    jwks_file.chmod(0o600)
    uris = tuple(dict.fromkeys((*REDIRECT_URIS, *redirect_uris)))
    env = {**os.environ, "OIDC_TLS_CERT": str(cert_file), "OIDC_TLS_KEY": str(key_file),
           "OIDC_JWKS": str(jwks_file), "OIDC_USERS": str(users_file), "OIDC_TENANT": tenant,
           "OIDC_CLIENT_ID": client_id, "OIDC_CLIENT_SECRET": client_secret,
           "OIDC_REDIRECT_URIS": " ".join(uris), "OIDC_PORT": "0"}
    log_file = workdir / "server.log"
    with open(log_file, "wb") as log:
        process = subprocess.Popen(["node", "server.mjs"], cwd=OIDC_DIR, env=env,
                                   stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    ready = _ready_line(process, log_file)
    return OidcProvider(origin=f"https://localhost:{ready['port']}", port=ready["port"],
                        tenant=tenant, client_id=client_id, client_secret=client_secret,
                        ca_file=str(ca_file), redirect_uris=uris, signing_key=signing_key,
                        signing_kid=kid, log_file=str(log_file), process=process)


def _ready_line(process: subprocess.Popen, log_file: Path) -> dict:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        readable, _, _ = select.select([process.stdout], [], [], 0.1)
        if readable:
            line = process.stdout.readline()
            if line:
                return json.loads(line)
        if process.poll() is not None:
            break
    process.kill()
    process.wait()
    raise ProviderError("The test OpenID provider did not start:\n"
                        + log_file.read_text("utf-8", "replace")[-3000:])


def stop_provider(provider: OidcProvider) -> None:
    process = provider.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.stdout.close()


@contextmanager
def running_provider(workdir: Path, redirect_uris=(), **kwargs):
    provider = start_provider(workdir, redirect_uris, **kwargs)
    try:
        yield provider
    finally:
        stop_provider(provider)


def provider_fixture(*redirect_uris: str, scope: str = "session", **kwargs):
    """Declare a pytest fixture running the provider for `scope`:
    `oidc_provider = provider_fixture("http://portal.test/ssp/azure/callback")` in a conftest."""

    @pytest.fixture(scope=scope)
    def oidc_provider(tmp_path_factory):
        with running_provider(tmp_path_factory.mktemp("oidc"), redirect_uris, **kwargs) as provider:
            yield provider

    return oidc_provider


def ensure_node_modules() -> None:
    """`npm ci` in tests/oidc once, when node_modules is missing (./dev test does it too)."""
    if shutil.which("node") is None:
        raise ProviderError("The Azure AD tests need Node.js for their OpenID provider: "
                            "apt-get install nodejs npm (./dev test installs it).")
    if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
        return
    if shutil.which("npm") is None:
        raise ProviderError("npm is missing: apt-get install npm (./dev test installs it).")
    lock_path = Path(tempfile.gettempdir()) / "portal-test-oidc-npm.lock"
    with open(lock_path, "w") as lock:  # xdist workers: one npm ci at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").is_file():
            return
        result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=OIDC_DIR,
                                capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-3000:]
            raise ProviderError(f"npm ci in {OIDC_DIR} failed:\n{output}")
        shutil.copyfile(OIDC_DIR / "package-lock.json",
                        OIDC_DIR / "node_modules" / ".package-lock.json.installed")


def write_tls_files(directory: Path, name: str = "Test OIDC CA"):
    """A fresh CA and a server certificate for localhost and 127.0.0.1: (ca, cert, key) paths."""
    ca_key, ca_cert = make_ca(name)
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = _certificate(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]), key.public_key(),
        ca_cert.subject, ca_key, ca=False,
        extensions=[x509.SubjectAlternativeName(names),
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])],
        issuer_key_id=ca_cert)
    ca_file, cert_file, key_file = (directory / "ca.crt", directory / "server.crt",
                                    directory / "server.key")
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, cert_file, key_file


def write_ca_file(path: Path, name: str = "Unrelated Test CA") -> Path:
    """A CA certificate that signed nothing the provider uses: for "untrusted CA" tests."""
    _, ca_cert = make_ca(name)
    path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    return path


def make_ca(name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return key, _certificate(subject, key.public_key(), subject, key, ca=True)


def _certificate(subject, public_key, issuer, issuer_key, *, ca, extensions=(),
                 issuer_key_id=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    usage = x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca,
                          content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=False, encipher_only=False,
                          decipher_only=False)
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
               .public_key(public_key).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(hours=1))
               .not_valid_after(now + datetime.timedelta(days=7))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
               .add_extension(usage, critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key),
                              critical=False))
    if issuer_key_id is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key_id.public_key()),
            critical=False)
    for extension in extensions:
        builder = builder.add_extension(extension, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def private_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict:
    """The RSA private key as a JWK (for the provider's `jwks` configuration)."""
    numbers = key.private_numbers()
    values = {"n": numbers.public_numbers.n, "e": numbers.public_numbers.e, "d": numbers.d,
              "p": numbers.p, "q": numbers.q, "dp": numbers.dmp1, "dq": numbers.dmq1,
              "qi": numbers.iqmp}
    return {"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            **{name: _b64uint(value) for name, value in values.items()}}


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def browser_login(auth_uri: str, login: str, password: str | None = None, *, ca_file: str,
                  action: str = "login") -> dict:
    """The user's browser: follow the provider's redirects, submit its login form (or press
    Cancel with action="cancel"), and return the query of the redirect back to the app.
    The password defaults to the user's from users.json."""
    if password is None:
        password = USERS[login]["password"]
    session = requests_session(ca_file)
    provider_origin = _origin(auth_uri)
    url, method, data = auth_uri, "GET", None
    for _ in range(15):
        response = session.request(method, url, data=data, allow_redirects=False, timeout=10)
        if response.is_redirect:
            url, method, data = urljoin(url, response.headers["Location"]), "GET", None
            if _origin(url) != provider_origin:
                return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}
            continue
        if response.status_code != 200:
            raise AssertionError(f"{response.status_code} from {url}: {response.text[:500]}")
        if data is not None and 'id="error"' in response.text:
            raise AssertionError(f"the provider refused the login of {login!r}")
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>', response.text)
        if form is None:
            raise AssertionError(f"no login form at {url}: {response.text[:500]}")
        url, method = urljoin(url, unescape(form.group(1))), "POST"
        data = {"login": login, "password": password, "action": action}
    raise AssertionError("the provider never redirected back to the app")


def _origin(url: str) -> str:
    parsed = urlparse(url)
    return f"{parsed.scheme}://{parsed.netloc}"
