"""Secrets at rest: encryption for values we must show again, keyed hashes for look-ups."""
import base64
import functools
import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def _derive(purpose: str) -> bytes:
    return _derived_key(current_app.config["SECRET_KEY"], purpose)


@functools.lru_cache(maxsize=32)
def _derived_key(secret: str, purpose: str) -> bytes:
    # Separate keys per purpose, so a leaked lookup key reveals nothing about the ciphertexts.
    # Cached per process (keyed by the secret too, so a changed SECRET_KEY is never missed):
    # every OTP check needs one.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=f"portal:{purpose}:v1".encode()).derive(secret.encode())


def _fernet() -> Fernet:
    return Fernet(base64.urlsafe_b64encode(_derive("encrypt")))


def encrypt(plaintext: str) -> str:
    """Encrypt and authenticate a secret (Fernet: AES-128-CBC + HMAC-SHA256)."""
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    """Decrypt a value from encrypt(); raises ValueError if it was tampered with."""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with this SECRET_KEY") from exc


def lookup_hash(value: str, purpose: str = "lookup") -> str:
    """A keyed hash (HMAC-SHA256) to find or compare a secret without storing it."""
    return hmac.new(_derive(purpose), value.encode(), hashlib.sha256).hexdigest()


def matches(value: str, expected_hash: str, purpose: str = "lookup") -> bool:
    """Compare a secret with its stored keyed hash in constant time."""
    return hmac.compare_digest(lookup_hash(value, purpose), expected_hash)


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
