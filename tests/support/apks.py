"""Real, signed test APKs, built at test time (nothing binary is committed).

The manifest is written in Android's binary XML by pyaxml (Debian's aapt cannot link without
the platform's android.jar); the zip is signed by Debian's apksigner; keys and certificates
come from `cryptography`. Built once per test session (per xdist worker) into a temp folder:

    kit = standard_apks()          # or the session fixture `apks` (import it into the module)
    kit.v1, kit.v2v3, kit.rotated, kit.no_admin, kit.other_key, kit.not_apk   # Paths
    kit.key_a.checksum             # the checksum of key A's certificate, computed here
    apksigner_checksums(path)      # what `apksigner verify --print-certs` prints, as checksums
    lineage_checksums(path)        # `apksigner lineage --print-certs`, oldest first

Build more with build_apk(directory, name, key=..., ...). A local https server for fetches:

    with https_server(kit.directory) as server:     # a test CA's certificate for 127.0.0.1
        server.url("v2v3.apk"), server.ca_file      # also /missing.apk (404), /to-http (302)
"""
import base64
import contextlib
import datetime
import functools
import hashlib
import http.server
import os
import re
import ssl
import subprocess
import tempfile
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pyaxml
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from lxml import etree

from tests.support.certs import make_certs

PACKAGE = "com.example.companion"
RECEIVER = ".AdminReceiver"
COMPONENT = PACKAGE + "/" + RECEIVER
VERSION_CODE = 42
VERSION_NAME = "4.2.0"

_MANIFEST = """<manifest xmlns:android="http://schemas.android.com/apk/res/android"
    package="{package}" android:versionCode="{version_code}" android:versionName="{version_name}">
  <uses-sdk android:minSdkVersion="24" android:targetSdkVersion="{target_sdk}"/>
  <application android:label="Companion">
    <receiver android:name="{package}.BootReceiver" android:exported="false"/>
    {admin_receiver}
  </application>
</manifest>"""
_ADMIN_RECEIVER = """<receiver android:name="{receiver}" android:exported="true"
        android:permission="android.permission.BIND_DEVICE_ADMIN">
      <meta-data android:name="android.app.device_admin" android:resource="@xml/device_admin"/>
      <intent-filter><action android:name="android.app.action.DEVICE_ADMIN_ENABLED"/></intent-filter>
    </receiver>"""


@dataclass(frozen=True)
class SigningKey:
    key: Path           # PKCS#8 DER, as apksigner --key takes it
    cert: Path          # X.509 DER
    der: bytes

    @property
    def checksum(self) -> str:
        return sha256_checksum(self.der)


def sha256_checksum(data: bytes) -> str:
    """URL-safe base64 of SHA-256 without padding, computed independently of portal.android.apk."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode().rstrip("=")


def make_key(directory: Path, name: str) -> SigningKey:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Test signer {name}")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    key_path, cert_path = directory / f"{name}.pk8", directory / f"{name}.der"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.DER,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    der = cert.public_bytes(serialization.Encoding.DER)
    cert_path.write_bytes(der)
    return SigningKey(key_path, cert_path, der)


def manifest(package=PACKAGE, receiver: str | None = RECEIVER, version_code=VERSION_CODE,
             version_name=VERSION_NAME, target_sdk=34) -> bytes:
    """AndroidManifest.xml in Android's binary XML."""
    admin = _ADMIN_RECEIVER.format(receiver=receiver) if receiver else ""
    text = _MANIFEST.format(package=package, version_code=version_code,
                            version_name=version_name, target_sdk=target_sdk,
                            admin_receiver=admin)
    axml = pyaxml.AXML()
    axml.from_xml(etree.fromstring(text.encode()))
    axml.compute()
    return axml.pack()


def _signer_args(key: SigningKey) -> list[str]:
    return ["--key", str(key.key), "--cert", str(key.cert)]


def build_apk(directory: Path, name: str, *, key: SigningKey, schemes=("v2", "v3"),
              rotate_to: SigningKey | None = None, padding: int = 0, **manifest_args) -> Path:
    """A signed APK: `apksigner sign --min-sdk-version 24` with exactly these schemes; with
    rotate_to, a v3 lineage from key to rotate_to (`apksigner rotate`, then sign --lineage)."""
    unsigned, signed = directory / f"{name}-unsigned.apk", directory / f"{name}.apk"
    with zipfile.ZipFile(unsigned, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("AndroidManifest.xml", manifest(**manifest_args))
        archive.writestr("classes.dex", b"dex\n035\0" + bytes(104))
        if padding:  # random bytes do not compress: the APK is at least this large
            archive.writestr("assets/padding.bin", os.urandom(padding), zipfile.ZIP_STORED)
    command = ["apksigner", "sign", "--min-sdk-version", "24", *_signer_args(key)]
    if rotate_to is not None:
        lineage = directory / f"{name}.lineage"
        _run(["apksigner", "rotate", "--out", str(lineage), "--old-signer", *_signer_args(key),
              "--new-signer", *_signer_args(rotate_to)])
        command += ["--next-signer", *_signer_args(rotate_to), "--lineage", str(lineage)]
    for scheme in ("v1", "v2", "v3"):
        command += [f"--{scheme}-signing-enabled", "true" if scheme in schemes else "false"]
    _run(command + ["--out", str(signed), str(unsigned)])
    unsigned.unlink()
    return signed


def _run(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:2]} failed: {done.stdout}{done.stderr}")
    return done.stdout


def _digests(output: str) -> list[str]:
    found = re.findall(r"certificate SHA-256 digest: ([0-9a-f]{64})", output)
    return [base64.urlsafe_b64encode(bytes.fromhex(h)).decode().rstrip("=") for h in found]


def apksigner_checksums(path: Path) -> list[str]:
    """The signers' certificate SHA-256 digests `apksigner verify --print-certs` prints,
    re-encoded as URL-safe base64 (android-qr.md §5 [D9]); also proves the APK verifies."""
    return _digests(_run(["apksigner", "verify", "--print-certs", str(path)]))


def lineage_checksums(path: Path) -> list[str]:
    """The certificates of the APK's v3 signing-certificate lineage, oldest first."""
    return _digests(_run(["apksigner", "lineage", "--in", str(path), "--print-certs"]))


@dataclass(frozen=True)
class ApkKit:
    directory: Path
    key_a: SigningKey
    key_b: SigningKey
    v1: Path            # v1 (JAR) signing only, key A (targetSdk 29: 30+ needs v2)
    v2v3: Path          # v2 + v3, key A
    rotated: Path       # v1 + v2 by key A, v3 by key B with a lineage A -> B
    no_admin: Path      # v2 + v3, key A, no receiver guarded by BIND_DEVICE_ADMIN
    other_key: Path     # like v2v3, signed by key B (a "wrong APK" for the settings)
    not_apk: Path       # a text file


@functools.cache
def standard_apks() -> ApkKit:
    directory = Path(tempfile.mkdtemp(prefix="test-apks-"))
    key_a, key_b = make_key(directory, "a"), make_key(directory, "b")
    not_apk = directory / "notes.apk"
    not_apk.write_text("This is a text file, not an APK.\n")
    return ApkKit(
        directory=directory, key_a=key_a, key_b=key_b,
        v1=build_apk(directory, "v1", key=key_a, schemes=("v1",), target_sdk=29),
        v2v3=build_apk(directory, "v2v3", key=key_a),
        rotated=build_apk(directory, "rotated", key=key_a, rotate_to=key_b,
                          schemes=("v1", "v2", "v3"), version_code=43, version_name="4.3.0"),
        no_admin=build_apk(directory, "no-admin", key=key_a, receiver=None),
        other_key=build_apk(directory, "other-key", key=key_b),
        not_apk=not_apk)


@pytest.fixture(scope="session")
def apks() -> ApkKit:
    return standard_apks()


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/to-http":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/v2v3.apk")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args):
        pass


@dataclass
class HttpsServer:
    base: str
    ca_file: str

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"


@contextlib.contextmanager
def https_server(directory: Path):
    """Serve directory over https on 127.0.0.1 (a test CA signs the certificate)."""
    ca_file, cert, key = make_certs(str(directory / "tls"))
    handler = functools.partial(_Handler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield HttpsServer(f"https://127.0.0.1:{server.server_port}", ca_file)
    finally:
        server.shutdown()
        server.server_close()
