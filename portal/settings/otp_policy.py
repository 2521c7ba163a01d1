"""The OTP defaults under Admin → Self Service Portal: length, characters and validity."""
import sqlalchemy as sa

from portal import otp
from portal.audit.log import record
from portal.database import db, read_once, save_singleton
from portal.otp import OTP_ALPHABETS
from portal.settings.errors import SettingsError
from portal.settings.models import OtpPolicy

DEFAULT_LENGTH = 12
DEFAULT_ALPHABET = "alnum"
DEFAULT_VALIDITY_HOURS = 72
MIN_LENGTH, MAX_LENGTH = 6, 64
MAX_VALIDITY_HOURS = 87600  # ten years


class OtpPolicyError(SettingsError):
    """Values the OTP policy cannot take; .errors maps each field to its message."""


@read_once
def current() -> OtpPolicy:
    """The saved policy, or an unsaved one holding the defaults (12, letters and digits, 72 h)."""
    return db.session.get(OtpPolicy, 1) or OtpPolicy(
        id=1, length=DEFAULT_LENGTH, alphabet=DEFAULT_ALPHABET,
        validity_hours=DEFAULT_VALIDITY_HOURS)


def save_otp_policy(length: int, alphabet: str, validity_hours: int | None, *,
                    actor: str) -> OtpPolicy:
    """Save the OTP defaults (validity None = unlimited) and commit.

    Raises OtpPolicyError, with nothing written, naming every value out of range.
    """
    _check(length, alphabet, validity_hours)
    def fill(policy):
        policy.length, policy.alphabet = length, alphabet
        # A plain None would let the column default (72) fill in a new row.
        policy.validity_hours = sa.null() if validity_hours is None else validity_hours
        record("settings.otp_policy", actor_type="admin", actor=actor, length=length,
               alphabet=alphabet, validity_hours=validity_hours)
    return save_singleton(OtpPolicy, fill)


def example_otp(policy: OtpPolicy) -> str:
    """A random OTP as the policy would make one, to show on the settings page."""
    return otp.generate(policy.length, policy.alphabet)


def _check(length, alphabet, validity_hours) -> None:
    errors = {}
    if not _whole(length) or not MIN_LENGTH <= length <= MAX_LENGTH:
        errors["length"] = f"OTP length must be a whole number from {MIN_LENGTH} to {MAX_LENGTH}."
    if alphabet not in OTP_ALPHABETS:
        errors["alphabet"] = "Choose one of the offered character sets."
    if validity_hours is not None and (
            not _whole(validity_hours) or not 1 <= validity_hours <= MAX_VALIDITY_HOURS):
        errors["validity_hours"] = (f"Validity must be a whole number of hours from 1 to "
                                    f"{MAX_VALIDITY_HOURS}, or Unlimited.")
    if errors:
        raise OtpPolicyError(errors)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
