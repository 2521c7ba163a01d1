"""One-time passwords: drawn from the OTP policy, stored encrypted and as a keyed hash."""
import secrets
from datetime import datetime, timedelta

from portal import vault
PURPOSE = "otp"
OTP_ALPHABETS = {
    "digits": "0123456789",
    # Letters and digits without the look-alikes 0/O, 1/l/I, so OTPs can be read aloud or typed.
    "alnum": "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz",
    "upper": "23456789ABCDEFGHJKLMNPQRSTUVWXYZ",
}


# The OTP inside an Automatic Provisioning QR code is read by the device, never typed: 96 random
# bits, as 16 URL-safe base64 characters (the densest alphabet a QR payload carries as is), so
# guessing is hopeless whatever the throttle lets through (at a million guesses a second from
# every address together, one in 2**96 / 10**6 / 3.15e7 = 2.5e15 years).
QR_OTP_BYTES = 12
QR_OTP_LENGTH = 16


def for_qr_code() -> str:
    """The OTP an automatic QR code carries: 96 random bits, 16 URL-safe characters."""
    return secrets.token_urlsafe(QR_OTP_BYTES)


def generate(length: int, alphabet: str) -> str:
    """A random OTP for a person to type: `length` characters of the named alphabet (the OTP
    policy's; secrets, not random)."""
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
