"""One-time passwords: drawn from the OTP policy, stored encrypted and as a keyed hash."""
import secrets
from datetime import datetime, timedelta

from portal import vault
from portal.settings.models import OTP_ALPHABETS

PURPOSE = "otp"


def generate(length: int, alphabet: str) -> str:
    """A random OTP of `length` characters from the named alphabet (secrets, not random)."""
    characters = OTP_ALPHABETS[alphabet]
    return "".join(secrets.choice(characters) for _ in range(length))


def expires_at(validity_hours: int | None, now: datetime) -> datetime | None:
    """None means unlimited."""
    return None if validity_hours is None else now + timedelta(hours=validity_hours)


def keyed_hash(otp: str) -> str:
    return vault.lookup_hash(otp, PURPOSE)


def matches(otp: str, stored_hash: str | None) -> bool:
    """Constant-time comparison of a presented OTP with the stored keyed hash."""
    return stored_hash is not None and vault.matches(otp, stored_hash, PURPOSE)
