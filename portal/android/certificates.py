"""Enterprise Wi-Fi certificates in the form a QR payload carries them (android-qr.md §2).

WIFI_CA_CERTIFICATE is one line of standard base64 of an X.509 certificate in DER; the
Wi-Fi step decodes it with java.util.Base64.getDecoder(), which refuses line breaks.
WIFI_USER_CERTIFICATE is one line of base64 of a PKCS#12 keystore that ManagedProvisioning
opens with an empty password and that must hold exactly one entry: a private key with its
certificate chain. The admin uploads either a PKCS#12 (.p12/.pfx, with its password if it has
one) or a PEM file with the certificate and the private key; both become that keystore here.
"""
import base64
import binascii
import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, ed448, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

MAX_UPLOAD_BYTES = 64 * 1024  # a certificate file is a few kilobytes; anything larger is not one
_BASIC_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, dsa.DSAPrivateKey,
              ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)


class CertificateError(ValueError):
    """An upload or payload value that is not the certificate Android expects (str: why)."""


def ca_certificate_value(data: bytes) -> str:
    """The WIFI_CA_CERTIFICATE value of an uploaded CA certificate (PEM or DER).

    Raises CertificateError with a message for the admin.
    """
    _check_size(data)
    certificates = _certificates(data)
    if len(certificates) != 1:
        raise CertificateError(
            f"The CA certificate file holds {len(certificates)} certificates; Android takes "
            "exactly one: upload the certificate of the CA that signed the RADIUS server's.")
    return _one_line(certificates[0].public_bytes(serialization.Encoding.DER))


def user_certificate_value(data: bytes, password: str | None = None) -> str:
    """The WIFI_USER_CERTIFICATE value (PKCS#12, empty password) of an uploaded client
    certificate: a PKCS#12 file (its password, if any, is used once and not kept) or PEM with
    the certificate and its private key. Raises CertificateError."""
    _check_size(data)
    secret = password.encode() if password else None
    if _PEM_CERTIFICATE in data:
        key, chain = _from_pem(data, secret)
    else:
        key, chain = _from_pkcs12(data, secret)
    if not isinstance(key, _KEY_TYPES):
        raise CertificateError("The client certificate's private key is of a kind Android "
                               "cannot use.")
    if chain[0].public_key().public_bytes(*_SPKI) != key.public_key().public_bytes(*_SPKI):
        raise CertificateError("The private key does not belong to the client certificate.")
    keystore = pkcs12.serialize_key_and_certificates(
        None, key, chain[0], chain[1:] or None, serialization.NoEncryption())
    return _one_line(keystore)


def ca_certificate_problem(value: str) -> str | None:
    """Why Android cannot read this WIFI_CA_CERTIFICATE value, or None."""
    der = _basic_decode(value)
    if der is None:
        return "it is not one line of standard base64"
    try:
        x509.load_der_x509_certificate(der)
    except ValueError:
        return "it is not an X.509 certificate in DER"
    return None


def user_certificate_problem(value: str) -> str | None:
    """Why ManagedProvisioning cannot open this WIFI_USER_CERTIFICATE value, or None."""
    raw = _basic_decode(value)
    if raw is None:
        return "it is not one line of standard base64"
    try:
        keystore = pkcs12.load_pkcs12(raw, None)
    except ValueError:
        return "it is not a PKCS#12 keystore that opens with an empty password"
    if keystore.key is None or keystore.cert is None:
        return "the PKCS#12 keystore holds no private key with its certificate"
    return None


def describe(value: str | None) -> str | None:
    """One line about a stored certificate value for the review page (subject, expiry)."""
    raw = _basic_decode(value or "")
    if not raw:
        return None
    try:
        certificate = x509.load_der_x509_certificate(raw)
    except ValueError:
        try:
            certificate = pkcs12.load_pkcs12(raw, None).cert.certificate
        except (ValueError, AttributeError):
            return None
    return (f"{certificate.subject.rfc4514_string()}, valid until "
            f"{certificate.not_valid_after_utc:%Y-%m-%d}")


_SPKI = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _check_size(data: bytes) -> None:
    if not data:
        raise CertificateError("The file is empty.")
    if len(data) > MAX_UPLOAD_BYTES:
        raise CertificateError(f"The file is {len(data):,} bytes; a certificate file is at "
                               f"most {MAX_UPLOAD_BYTES:,} bytes.")


def _certificates(data: bytes) -> list[x509.Certificate]:
    try:
        if _PEM_CERTIFICATE in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise CertificateError("The file is not an X.509 certificate (PEM or DER).") from None


def _from_pem(data: bytes, password: bytes | None):
    chain = _certificates(data)
    if b"PRIVATE KEY-----" not in data:
        raise CertificateError("The PEM file holds no private key: put the certificate and its "
                               "private key in one file, or upload a PKCS#12 (.p12) file.")
    try:
        key = serialization.load_pem_private_key(data, password)
    except TypeError:
        raise CertificateError("The private key is encrypted: enter its password.") from None
    except ValueError:
        raise CertificateError("The private key cannot be read; check its password.") from None
    return key, chain


def _from_pkcs12(data: bytes, password: bytes | None):
    try:
        keystore = pkcs12.load_pkcs12(data, password)
    except ValueError:
        raise CertificateError(
            "The file is neither a PKCS#12 (.p12/.pfx) that opens with this password nor a "
            "PEM file with a certificate and its private key.") from None
    if keystore.key is None or keystore.cert is None:
        raise CertificateError("The PKCS#12 file holds no private key with its certificate.")
    chain = [keystore.cert.certificate]
    chain += [extra.certificate for extra in keystore.additional_certs]
    return keystore.key, chain


def _one_line(der: bytes) -> str:
    return base64.b64encode(der).decode("ascii")


def _basic_decode(value: str) -> bytes | None:
    """java.util.Base64.getDecoder(): the standard alphabet, no line breaks or spaces."""
    if not value or not _BASIC_BASE64.fullmatch(value) or len(value.rstrip("=")) % 4 == 1:
        return None
    try:
        return base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
