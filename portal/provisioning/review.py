"""What the review page shows about a QR code: its contents (secrets masked) and density."""
import json
from dataclasses import dataclass

from portal.android.payload import (PREFIX, SECRET_EXTRAS, WARN_VERSION, densest_key,
                                    payload_bytes)
from portal.enrollment.models import QrCode
from portal.settings import localizations

MASK = "••••••••"
SECRET_KEYS = ("WIFI_PASSWORD", "WIFI_USER_CERTIFICATE")
# The wizard's name for what each payload key holds, to say which one makes a code dense.
KEY_LABELS = {
    "DEVICE_ADMIN_COMPONENT_NAME": "the Companion's component name",
    "DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "the Companion download URL",
    "DEVICE_ADMIN_SIGNATURE_CHECKSUM": "the Companion's signature checksum",
    "WIFI_SSID": "the SSID", "WIFI_PASSWORD": "the Wi-Fi password",
    "WIFI_IDENTITY": "the EAP identity", "WIFI_ANONYMOUS_IDENTITY": "the anonymous identity",
    "WIFI_DOMAIN": "the EAP domain", "WIFI_CA_CERTIFICATE": "the CA certificate",
    "WIFI_USER_CERTIFICATE": "the client certificate", "WIFI_PROXY_HOST": "the proxy host",
    "WIFI_PROXY_BYPASS": "the proxy bypass list", "WIFI_PAC_URL": "the PAC URL",
    "TIME_ZONE": "the time zone", "ADMIN_EXTRAS_BUNDLE.server_url": "the portal's public URL",
    "ADMIN_EXTRAS_BUNDLE.user": "the user name", "ADMIN_EXTRAS_BUNDLE.otp": "the OTP",
}


@dataclass(frozen=True)
class Summary:
    contents: list[tuple[str, str]]   # (key without the android.app.extra. prefix, value)
    extras: list[tuple[str, str]]
    version: int
    size: int
    too_dense: bool
    densest: str = ""  # what makes the code dense, in the wizard's words


def summary(qr_code: QrCode) -> Summary:
    """The payload as the admin may see it: Wi-Fi password and OTP (or Google's enrollment
    token) masked."""
    text = qr_code.payload_text()
    payload = json.loads(text)
    densest = KEY_LABELS.get(densest_key(payload), "the QR code's own values")
    extras = payload.pop(PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE", {})
    contents = []
    for key, value in payload.items():
        shown = MASK if key.endswith(SECRET_KEYS) else json.dumps(value) \
            if isinstance(value, (bool, int)) else _short(key, str(value))
        contents.append((key.removeprefix(PREFIX), shown))
    extras_shown = [(key, MASK if key in SECRET_EXTRAS else value) for key, value in extras.items()]
    return Summary(contents, extras_shown, qr_code.qr_version, payload_bytes(text),
                   qr_code.qr_version > WARN_VERSION, densest)


def _short(key: str, value: str) -> str:
    # A certificate is hundreds of characters of base64: its length says enough here.
    if key.endswith("CA_CERTIFICATE") and len(value) > 40:
        return f"{value[:24]}… ({len(value):,} characters of base64)"
    return value


STATUS_WORDS = {"queued": "queued, not sent yet", "sending": "being sent", "sent": "sent",
                "failed": "failed"}


def mail_lines(qr_code: QrCode, messages) -> list[str]:
    """What is true about the QR's mail, one line per recipient kind, from the outbox (the
    newest message to each address counts: Mail again queues new ones)."""
    latest = {}
    for message in messages:  # oldest first
        latest[(message.kind, message.recipient.lower())] = message
    lines = []
    for (kind, _), message in latest.items():
        status = STATUS_WORDS.get(message.status, message.status)
        if kind == "qr_to_user":
            lines.append(f"QR code to the user ({message.recipient}): {status}")
        elif kind == "notification":
            lines.append(f"Notification to {message.recipient}: {status}")
        elif kind == "qr_to_admin":
            lines.append(f"QR code to Mail recipient {message.recipient}: {status}")
    if not lines:
        lines.append("No mail: no Mail recipient, user address or alternative address was set"
                     if qr_code.option == "auto" else "None")
    return lines


def language_name(tag: str) -> str:
    """A localization's name ("Italian") rather than its tag, when the portal knows it."""
    found = localizations.find(tag)
    return f"{found.name} ({found.tag})" if found else tag
