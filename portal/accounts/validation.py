"""Rules for user names, email addresses and passwords, shared by the CLI and the console."""
import re

from email_validator import EmailNotValidError, validate_email

from portal.accounts.errors import AccountError

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
MIN_PASSWORD_LENGTH = 8


def check_username(username: str | None) -> str:
    username = (username or "").strip()
    if not username:
        raise AccountError({"username": "A user name is required."})
    if not USERNAME_RE.match(username):
        raise AccountError({"username": "The user name must be 1 to 64 characters: letters, "
                                        "digits and . _ @ + - (starting with a letter or "
                                        "digit)."})
    return username


def check_email(email: str | None) -> str:
    email = (email or "").strip()
    if not email:
        raise AccountError({"email": "An email address is required."})
    try:
        return validate_email(email, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise AccountError({"email": f"'{email}' is not a valid email address: {exc}"}) from None


def check_password(password: str | None) -> str:
    if not password:
        raise AccountError({"password": "A password is required."})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError({"password": f"The password must have at least "
                                        f"{MIN_PASSWORD_LENGTH} characters."})
    if len(password) > 1024:
        raise AccountError({"password": "The password must have at most 1024 characters."})
    return password
