"""Real certificates for enterprise Wi-Fi (EAP) tests: a small CA and a client certificate with
its key, as the files an admin uploads (PEM, DER, PKCS#12), made with `cryptography`.

P-256 keys and short names keep them small enough for a QR code; rsa=True makes the 2048-bit
RSA client certificate most PKIs issue, which is too large for one."""
import datetime
from functools import lru_cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

_START = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
_END = _START + datetime.timedelta(days=3650)
PEM, DER = serialization.Encoding.PEM, serialization.Encoding.DER


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@lru_cache(maxsize=None)
def _ca():
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("Corp CA")).issuer_name(_name("Corp CA"))
            .public_key(key.public_key()).serial_number(1).not_valid_before(_START)
            .not_valid_after(_END)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


@lru_cache(maxsize=None)
def _client(rsa_key: bool = False):
    ca_key, ca = _ca()
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(
        ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("dev1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(2).not_valid_before(_START)
            .not_valid_after(_END).sign(ca_key, hashes.SHA256()))
    return key, cert


def ca_pem() -> bytes:
    return _ca()[1].public_bytes(PEM)


def ca_der() -> bytes:
    return _ca()[1].public_bytes(DER)


def client_pem(password: bytes | None = None, *, rsa_key: bool = False) -> bytes:
    """The client certificate and its private key in one PEM file (key encrypted if password)."""
    key, cert = _client(rsa_key)
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return cert.public_bytes(PEM) + key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                                      encryption)


def client_p12(password: bytes | None = b"p12-password", *, rsa_key: bool = False) -> bytes:
    key, cert = _client(rsa_key)
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return pkcs12.serialize_key_and_certificates(b"dev1", key, cert, None, encryption)


def other_key_pem() -> bytes:
    """The client certificate with somebody else's key."""
    cert = _client()[1]
    key = ec.generate_private_key(ec.SECP256R1())
    return cert.public_bytes(PEM) + key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption())
