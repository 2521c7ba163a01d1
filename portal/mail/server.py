"""The mail server settings: the database row wins once saved, the SMTP_* environment seeds it.
The password is stored encrypted and never shown again."""
import re
from dataclasses import dataclass, field
from email.utils import parseaddr

from flask import current_app

from portal import vault
from portal.accounts.validation import address_error
from portal.audit.log import record
from portal.database import db, save_singleton
from portal.mail.models import SECURITY, SmtpSettings
from portal.mail.smtp import SmtpConfig
from portal.settings.errors import SettingsError

_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
UNREADABLE_PASSWORD = ("The stored SMTP password cannot be decrypted with this SECRET_KEY: "
                       "enter it again under Admin → Mail.")


class MailSettingsError(SettingsError):
    """The mail settings cannot be saved."""


@dataclass
class MailValues:
    """What the Mail page submits. A password of None keeps the stored one, "" removes it."""

    host: str = ""
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str | None = field(default=None, repr=False)
    sender: str = ""
    timeout: float = 10


@dataclass
class MailServer:
    config: SmtpConfig | None          # None: mail is off or cannot be used (see problem)
    source: str | None                 # "saved", "environment" or None
    values: MailValues
    has_password: bool = False
    problem: str | None = None


def envelope_address(sender: str) -> str:
    """The bare address of a From value such as "Portal <portal@example.com>"."""
    return parseaddr(sender)[1]


def _environment() -> tuple[MailValues, str | None]:
    cfg = current_app.config
    security = "tls" if cfg.get("SMTP_TLS") else "starttls" if cfg.get("SMTP_STARTTLS") \
        else "none"
    values = MailValues(host=cfg.get("SMTP_HOST") or "", port=int(cfg.get("SMTP_PORT") or 25),
                        security=security, username=cfg.get("SMTP_USERNAME") or "",
                        sender=cfg.get("MAIL_FROM") or "portal@localhost",
                        timeout=float(cfg.get("SMTP_TIMEOUT") or 10))
    return values, cfg.get("SMTP_PASSWORD") or None


def _saved_values(row: SmtpSettings) -> MailValues:
    return MailValues(host=row.host or "", port=row.port, security=row.security,
                      username=row.username or "", sender=row.sender, timeout=row.timeout)


def _saved(row: SmtpSettings) -> tuple[MailValues, str | None]:
    """The row's values and password; raises ValueError when the password cannot be read."""
    return _saved_values(row), vault.decrypt(row.password_enc) if row.password_enc else None


def config_for(values: MailValues, password: str | None) -> SmtpConfig | None:
    """The server these values describe, or None when no host is set (mail is off)."""
    if not values.host:
        return None
    return SmtpConfig(host=values.host, port=values.port, security=values.security,
                      sender=values.sender, username=values.username or None,
                      password=password if values.username else None,
                      timeout=float(values.timeout),
                      ca_file=current_app.config.get("SMTP_CA_FILE") or None)


def current() -> MailServer:
    row = db.session.get(SmtpSettings, 1)
    try:
        values, password = _saved(row) if row else _environment()
    except ValueError:  # SECRET_KEY changed since the password was saved
        return MailServer(None, "saved", _saved_values(row), True, UNREADABLE_PASSWORD)
    source = "saved" if row else ("environment" if values.host else None)
    config = config_for(values, password)
    problem = None if config else "No mail server is set: enter it under Admin → Mail or set " \
                                  "SMTP_HOST."
    return MailServer(config, source, values, bool(password), problem)


def effective_password(values: MailValues) -> str | None:
    """The password the submitted values mean: typed, else the stored (or environment) one."""
    if values.password is not None:
        return values.password or None
    row = db.session.get(SmtpSettings, 1)
    try:
        return (_saved(row) if row else _environment())[1]
    except ValueError:
        return None


def validate(values: MailValues) -> dict[str, str]:
    errors = {}
    if values.host and not _HOST.fullmatch(values.host):
        errors["host"] = "Enter a host name or address only, such as smtp.example.com " \
                         "(no smtp:// and no port)."
    if not 1 <= (values.port or 0) <= 65535:
        errors["port"] = "The port must be from 1 to 65535 (587 for STARTTLS, 465 for TLS)."
    if values.security not in SECURITY:
        errors["security"] = "Choose STARTTLS, TLS or None."
    if not values.sender:
        errors["sender"] = "Enter the sender, such as Portal <portal@example.com>."
    elif message := address_error(values.sender, named=True):
        errors["sender"] = message
    if not 1 <= (values.timeout or 0) <= 120:
        errors["timeout"] = "The timeout must be from 1 to 120 seconds."
    if len(values.username) > 255:
        errors["username"] = "The user name must be at most 255 characters."
    return errors


def mail_test_errors(values: MailValues, to: str) -> dict[str, str]:
    """Every reason a test mail with these values to `to` cannot be tried; {} when it can."""
    errors = validate(values)
    if not values.host:
        errors["host"] = "Enter the SMTP server to test."
    message = address_error(to) if to else "An email address is required."
    if message:
        errors["test_recipient"] = "Enter the address to send the test mail to. " + message
    return errors


def save_mail_settings(values: MailValues, *, actor: str) -> SmtpSettings:
    """Save the mail server (it then wins over SMTP_*) and commit; an empty host turns mail
    off. Raises MailSettingsError, with nothing written, on a bad value."""
    errors = validate(values)
    if errors:
        raise MailSettingsError(errors)
    def fill(row):
        row.host, row.port, row.security = values.host or None, values.port, values.security
        row.username, row.sender = values.username or None, values.sender
        row.timeout = values.timeout
        if values.password is not None:
            row.password_enc = vault.encrypt(values.password) if values.password else None
        record("settings.mail", actor_type="admin", actor=actor, host=row.host, port=row.port,
               security=row.security, username=row.username, sender=row.sender,
               timeout=row.timeout, password_changed=values.password is not None)
    return save_singleton(SmtpSettings, fill, password_enc=_initial_password_enc())


def _initial_password_enc() -> str | None:
    # The first save keeps the environment's password unless the admin types another one.
    password = current_app.config.get("SMTP_PASSWORD")
    return vault.encrypt(password) if password else None
