"""The OTP defaults under Admin → Self Service Portal: length, characters and validity."""
import sqlalchemy as sa

from portal import otp
from portal.audit.log import record
from portal.database import db, save_singleton
from portal.otp import OTP_ALPHABETS
from portal.settings.models import OtpPolicy

DEFAULT_LENGTH = 12
DEFAULT_ALPHABET = "alnum"
DEFAULT_VALIDITY_HOURS = 72
MIN_LENGTH, MAX_LENGTH = 6, 64
MAX_VALIDITY_HOURS = 87600  # ten years


class OtpPolicyError(ValueError):
    """A value the OTP policy cannot take; .field names the form field it is about."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


def current() -> OtpPolicy:
    """The saved policy, or an unsaved one holding the defaults (12, letters and digits, 72 h)."""
    return db.session.get(OtpPolicy, 1) or OtpPolicy(
        id=1, length=DEFAULT_LENGTH, alphabet=DEFAULT_ALPHABET,
        validity_hours=DEFAULT_VALIDITY_HOURS)


def save_otp_policy(length: int, alphabet: str, validity_hours: int | None, *,
                    actor: str) -> OtpPolicy:
    """Save the OTP defaults (validity None = unlimited) and commit.

    Raises OtpPolicyError, with nothing written, when a value is out of range.
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
    if isinstance(length, bool) or not isinstance(length, int) \
            or not MIN_LENGTH <= length <= MAX_LENGTH:
        raise OtpPolicyError("length", f"OTP length must be a whole number from {MIN_LENGTH} "
                                       f"to {MAX_LENGTH}.")
    if alphabet not in OTP_ALPHABETS:
        raise OtpPolicyError("alphabet", "Choose one of the offered character sets.")
    if validity_hours is not None and (
            isinstance(validity_hours, bool) or not isinstance(validity_hours, int)
            or not 1 <= validity_hours <= MAX_VALIDITY_HOURS):
        raise OtpPolicyError("validity_hours", f"Validity must be a whole number of hours from 1 "
                                               f"to {MAX_VALIDITY_HOURS}, or Unlimited.")
