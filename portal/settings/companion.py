"""The Companion settings: the database row wins once saved, the environment seeds it."""
from flask import current_app

from portal.audit.log import record
from portal.database import db
from portal.provisioning.payload import CompanionConfig
from portal.settings.models import CompanionSettings

# Clearly fake values for the quick start; the checksum is the SHA-256 of the text
# "example companion signing certificate", not of any real certificate.
EXAMPLE_COMPONENT = "com.example.companion/.AdminReceiver"
EXAMPLE_DOWNLOAD_URL = "https://downloads.example.com/companion/companion-example.apk"
EXAMPLE_CHECKSUM = "RtsMBFN2G-wzu3HHwYZaQPzFoDuIpVtHkuEHDhnix34"


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


def enrollment_link_scheme() -> str:
    row = db.session.get(CompanionSettings, 1)
    return row.enrollment_link_scheme if row is not None else "companion"


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
