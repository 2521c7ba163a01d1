"""Rules for user names, email addresses and passwords, shared by the CLI and the console."""
import re
import unicodedata
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

from portal.accounts.errors import AccountError

USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
MAX_EMAIL_LENGTH = 254  # RFC 5321's limit for an address in the envelope


def one_line_error(text: str | None, *, max_length: int, empty: str | None = None) -> str | None:
    """The one rule for a name an admin gives a thing (a QR code, a network profile, an API
    token): one line of at most max_length characters, with no control character anywhere.
    empty: the message when a name is required and none is given (None: it is optional)."""
    text = text or ""
    if not text.strip():
        return empty
    if len(text) > max_length:
        return f"The name can be at most {max_length} characters."
    if any(unicodedata.category(char).startswith("C") for char in text):
        return "The name must be one line of text, without line breaks or control characters."
    return None


def address_error(text: str | None, *, named: bool = False) -> str | None:
    """The one rule for every mail address the portal is given (console, wizard, Mail
    settings, operator commands): exactly one address, on one line, as email_validator reads
    it (a dot in the domain, no reserved names). A line break would start a header of its
    own and a list would mail people nobody chose. named: a name in front is allowed
    ("Portal <portal@example.com>"), for the sender only. None when the text is such an
    address; empty text is the caller's to refuse or allow."""
    text = (text or "").strip()
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        return "Enter the address on one line (no line breaks or control characters)."
    if len(text) > MAX_EMAIL_LENGTH:
        return f"The email address must have at most {MAX_EMAIL_LENGTH} characters."
    if len(getaddresses([text])) > 1:
        return "Enter one address only, not a list (use a mailing list's address for several)."
    if not named and ("<" in text or ">" in text):
        return "Enter the address alone, such as it@example.com, without a name or <>."
    try:
        validate_email(text, check_deliverability=False, allow_display_name=named)
    except EmailNotValidError as exc:
        return f"'{text}' is not a valid email address: {exc}"
    return None


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
    """One bare address (address_error), normalized (the domain in lower case)."""
    email = (email or "").strip()
    if not email:
        raise AccountError({"email": "An email address is required."})
    if message := address_error(email):
        raise AccountError({"email": message})
    return validate_email(email, check_deliverability=False).normalized


def check_password(password: str | None) -> str:
    if not password:
        raise AccountError({"password": "A password is required."})
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError({"password": f"The password must have at least "
                                        f"{MIN_PASSWORD_LENGTH} characters."})
    if len(password) > 1024:
        raise AccountError({"password": "The password must have at most 1024 characters."})
    return password
