"""The Companion settings: the database row wins once saved, the environment seeds it."""
import re

from flask import current_app

from portal.android.payload import CompanionConfig, validate_companion
from portal.audit.log import record
from portal.database import db, save_singleton
from portal.settings.errors import SettingsError
from portal.settings.models import CompanionSettings

# Clearly fake values for the quick start; the checksum is the SHA-256 of the text
# "example companion signing certificate", not of any real certificate.
EXAMPLE_COMPONENT = "com.example.companion/.AdminReceiver"
EXAMPLE_DOWNLOAD_URL = "https://downloads.example.com/companion/companion-example.apk"
EXAMPLE_CHECKSUM = "RtsMBFN2G-wzu3HHwYZaQPzFoDuIpVtHkuEHDhnix34"

DEFAULT_SCHEME = "companion"
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{1,31}")
# Schemes a browser or Android opens itself (or that run code, or reach another app) would
# never reach the Companion; only the Companion's own custom scheme may carry the ticket.
RESERVED_SCHEMES = frozenset({
    "http", "https", "javascript", "data", "vbscript", "file", "intent", "about", "blob",
    "filesystem", "view-source", "ftp", "ws", "wss", "mailto", "tel", "sms", "smsto", "mms",
    "geo", "market", "content", "android-app", "chrome", "chrome-extension", "jar", "urn"})
_MAX_LENGTHS = {"component_name": 255, "download_url": 2048}


class CompanionError(SettingsError):
    """The Companion settings cannot be saved."""


def current() -> CompanionConfig | None:
    """The configured Companion, or None when nothing (database or environment) sets it."""
    row = db.session.get(CompanionSettings, 1)
    if row is not None:
        return CompanionConfig(row.component_name, row.download_url, row.signature_checksum,
                               row.leave_system_apps_enabled)
    cfg = current_app.config
    values = (cfg.get("COMPANION_COMPONENT_NAME"), cfg.get("COMPANION_DOWNLOAD_URL"),
              cfg.get("COMPANION_SIGNATURE_CHECKSUM"))
    return CompanionConfig(*values) if all(values) else None


def source() -> str | None:
    """Where current() comes from: "saved" (this console), "environment" or None."""
    if db.session.get(CompanionSettings, 1) is not None:
        return "saved"
    return "environment" if current() is not None else None


def enrollment_link_scheme() -> str:
    row = db.session.get(CompanionSettings, 1)
    return row.enrollment_link_scheme if row is not None else DEFAULT_SCHEME


def is_example(config: CompanionConfig | None) -> bool:
    """True when any of the Companion's values is the quick start's example."""
    return config is not None and (
        config.component_name == EXAMPLE_COMPONENT
        or config.download_url == EXAMPLE_DOWNLOAD_URL
        or config.signature_checksum == EXAMPLE_CHECKSUM)


def scheme_error(scheme: str) -> str | None:
    if not _SCHEME.fullmatch(scheme or ""):
        return ("Enrollment link scheme must be 2–32 characters: a lower-case letter, then "
                "lower-case letters, digits, +, . or -, e.g. companion.")
    if scheme in RESERVED_SCHEMES:
        return (f'Enrollment link scheme "{scheme}" would be opened by the browser or by another '
                "app, not by the Companion; use the Companion's own custom scheme, e.g. "
                "companion.")
    return None


def validate_companion_settings(config: CompanionConfig, scheme: str) -> dict[str, str]:
    """Return {field: message} for every problem; {} when save_companion will accept them."""
    errors = validate_companion(config)
    for field, limit in _MAX_LENGTHS.items():
        if field not in errors and len(getattr(config, field) or "") > limit:
            errors[field] = f"This value must be at most {limit} characters."
    if message := scheme_error(scheme):
        errors["enrollment_link_scheme"] = message
    return errors


def save_companion(component_name: str, download_url: str, signature_checksum: str,
                   leave_system_apps_enabled: bool, enrollment_link_scheme: str, *,
                   actor: str) -> CompanionSettings:
    """Save the Companion settings (they then win over COMPANION_*) and commit.

    Raises CompanionError, with nothing written, when Android would refuse a value.
    QR codes created earlier keep the payload they were created with.
    """
    config = CompanionConfig(component_name, download_url, signature_checksum,
                             bool(leave_system_apps_enabled))
    errors = validate_companion_settings(config, enrollment_link_scheme)
    if errors:
        raise CompanionError(errors)
    values = {"component_name": component_name, "download_url": download_url,
              "signature_checksum": signature_checksum,
              "leave_system_apps_enabled": bool(leave_system_apps_enabled),
              "enrollment_link_scheme": enrollment_link_scheme}
    def fill(row):
        for name, value in values.items():
            setattr(row, name, value)
        record("settings.companion", actor_type="admin", actor=actor, **values)
    return save_singleton(CompanionSettings, fill)


def seed_example_companion() -> bool:
    """Fill in the example Companion when none is configured; True when it did."""
    if current() is not None:
        return False
    db.session.add(CompanionSettings(id=1, component_name=EXAMPLE_COMPONENT,
                                     download_url=EXAMPLE_DOWNLOAD_URL,
                                     signature_checksum=EXAMPLE_CHECKSUM))
    record("settings.companion.example", actor_type="operator", actor="quick start")
    db.session.commit()
    return True

