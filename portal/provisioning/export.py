"""Export on the review page: the QR code's payload as a JSON file (for Zero-Touch or Knox
configurations and NFC tools), its secrets replaced unless the admin confirmed and was
recorded, as for View OTP."""
import json

from portal.accounts.models import AdminUser
from portal.android.payload import ENROLLMENT_TOKEN_EXTRA, PREFIX, SECRET_EXTRAS
from portal.audit.log import record
from portal.database import db
from portal.enrollment.models import QrCode

EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
REDACTED = "REDACTED: export with secrets to include it"
# Payload keys whose values are secrets (the Wi-Fi or EAP password, an EAP client
# certificate with its private key); the admin extras' secrets are payload.SECRET_EXTRAS (the
# OTP, Google's enrollment token).
SECRET_KEYS = frozenset(PREFIX + name for name in (
    "PROVISIONING_WIFI_PASSWORD", "PROVISIONING_WIFI_USER_CERTIFICATE"))
SECRET_NAMES = {PREFIX + "PROVISIONING_WIFI_PASSWORD": "the Wi-Fi password",
                PREFIX + "PROVISIONING_WIFI_USER_CERTIFICATE":
                    "the Wi-Fi client certificate with its private key",
                f"{EXTRAS}.otp": "the OTP",
                f"{EXTRAS}.{ENROLLMENT_TOKEN_EXTRA}": "Google's enrollment token"}


def redacted_payload(qr_code: QrCode) -> tuple[str, list[str]]:
    """The payload as pretty JSON with every secret value replaced by REDACTED, and the names
    of the keys replaced. A pure read: nothing is recorded."""
    payload = json.loads(qr_code.payload_text())
    replaced = [key for key in payload if key in SECRET_KEYS]
    replaced += [f"{EXTRAS}.{key}" for key in payload.get(EXTRAS, {}) if key in SECRET_EXTRAS]
    for key in payload:
        if key in SECRET_KEYS:
            payload[key] = REDACTED
    for key in payload.get(EXTRAS, {}):
        if key in SECRET_EXTRAS:
            payload[EXTRAS][key] = REDACTED
    return _pretty(payload), replaced


def secret_names(qr_code: QrCode) -> list[str]:
    """What the export with secrets adds, in words ("the Wi-Fi password", "the OTP")."""
    return [SECRET_NAMES.get(key, key) for key in redacted_payload(qr_code)[1]]


def full_payload(qr_code: QrCode, *, exported_by: AdminUser) -> str:
    """The payload with its secrets, as pretty JSON, and record who took it (committed)."""
    text = qr_code.payload_text()
    record("qr_code.export_payload", actor_type="admin", actor=exported_by.username,
           target=qr_code.public_id, secrets=True)
    db.session.commit()
    return _pretty(json.loads(text))


def _pretty(payload: dict) -> str:
    # The same keys and values as the QR code, indented for people and tools that read files.
    return json.dumps(payload, indent=2, ensure_ascii=False) + "\n"
