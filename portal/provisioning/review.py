"""What the review page shows about a QR code: its contents (secrets masked) and density."""
import json
from dataclasses import dataclass

from portal.android.payload import PREFIX, WARN_VERSION, payload_bytes
from portal.enrollment.models import QrCode

MASK = "••••••••"


@dataclass(frozen=True)
class Summary:
    contents: list[tuple[str, str]]   # (key without the android.app.extra. prefix, value)
    extras: list[tuple[str, str]]
    version: int
    size: int
    too_dense: bool


def summary(qr_code: QrCode) -> Summary:
    """The payload as the admin may see it: Wi-Fi password and OTP masked."""
    text = qr_code.payload_text()
    payload = json.loads(text)
    extras = payload.pop(PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE", {})
    contents = []
    for key, value in payload.items():
        shown = MASK if key.endswith("WIFI_PASSWORD") else json.dumps(value) \
            if isinstance(value, bool) else str(value)
        contents.append((key.removeprefix(PREFIX), shown))
    extras_shown = [(key, MASK if key == "otp" else value) for key, value in extras.items()]
    return Summary(contents, extras_shown, qr_code.qr_version, payload_bytes(text),
                   qr_code.qr_version > WARN_VERSION)
