"""Password hashing with Argon2id; verification in constant time."""
from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app, has_app_context

_HASHERS = {
    "default": PasswordHasher(),  # RFC 9106 low-memory profile: ~0.1 s per hash here
    # Only for the test suite (TestConfig), where thousands of hashes would cost minutes.
    "cheapest": PasswordHasher.from_parameters(profiles.CHEAPEST),
}
# Verified against when the account does not exist, so that an unknown user name costs as much
# time as a wrong password and cannot be told apart by timing.
_DUMMY_HASHES = {name: hasher.hash("not-a-real-password") for name, hasher in _HASHERS.items()}


def _profile() -> str:
    if has_app_context():
        return current_app.config.get("PASSWORD_HASH_PROFILE", "default")
    return "default"


def hash_password(password: str) -> str:
    return _HASHERS[_profile()].hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when the password matches; always spends one Argon2 verification."""
    profile = _profile()
    try:
        ok = _HASHERS[profile].verify(password_hash or _DUMMY_HASHES[profile], password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return ok and password_hash is not None
