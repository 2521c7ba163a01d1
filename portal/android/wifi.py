"""Wi-Fi settings checked the way Android's provisioning checks them (android-qr.md §4)."""

import re
import unicodedata

from portal.vocabulary import SecurityType

SECURITY_TYPES = tuple(SecurityType)
MAX_SSID_BYTES = 32

_HEX = re.compile(r"[0-9A-Fa-f]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_WEP_ASCII_LENGTHS = (5, 13)
_WEP_HEX_LENGTHS = (10, 26)


def validate_wifi(ssid: str, security_type: str, password: str | None) -> dict[str, str]:
    """Return {field: message} for every problem; {} when Android would accept the network.

    Fields are "ssid", "security_type" and "password".
    """
    errors = {}
    ssid_error = _ssid_error(ssid or "")
    if ssid_error:
        errors["ssid"] = ssid_error
    security_error = _security_type_error(security_type or "")
    if security_error:
        errors["security_type"] = security_error
    else:
        password_error = _password_error(security_type, password or "")
        if password_error:
            errors["password"] = password_error
    return errors


def ssid_warnings(ssid: str | None) -> list[str]:
    """Return advice about an SSID Android accepts but which is probably a typing mistake."""
    ssid = ssid or ""
    warnings = []
    if len(ssid) >= 2 and ssid.startswith('"') and ssid.endswith('"'):
        # The setup wizard adds the quotes itself, so typed ones become part of the name.
        warnings.append(
            "SSID is wrapped in double quotes; enter the network name without quotes "
            "unless the quotes are really part of it."
        )
    if ssid.strip() and ssid != ssid.strip():
        warnings.append(
            "SSID starts or ends with a space; check that the network name really has it."
        )
    return warnings


def _ssid_error(ssid: str) -> str | None:
    if not ssid:
        return "SSID is required."
    if any(unicodedata.category(char) == "Cc" for char in ssid):
        return "SSID must not contain control characters such as tabs or line breaks."
    size = len(ssid.encode("utf-8"))
    if size > MAX_SSID_BYTES:
        return (
            f"SSID is {size} bytes long in UTF-8, but Android allows at most "
            f"{MAX_SSID_BYTES} bytes (accented letters count as 2 bytes or more)."
        )
    return None


def _security_type_error(security_type: str) -> str | None:
    if not security_type:
        return "Security Type is required; choose WPA, WEP or NONE."
    if security_type not in SECURITY_TYPES:
        # Android treats any other value as an open network, silently.
        return (
            f'Security Type "{security_type}" is not understood by Android; choose WPA for '
            "WPA/WPA2 networks, WEP, or NONE for an open network."
        )
    return None


def _password_error(security_type: str, password: str) -> str | None:
    if security_type == SecurityType.NONE:
        if password:
            return (
                "Password must be empty for an open network; remove it, or choose WPA or "
                "WEP as the Security Type."
            )
        return None
    if not password:
        return f"Password is required for a {security_type} network."
    if security_type == SecurityType.WPA:
        return _wpa_error(password)
    return _wep_error(password)


def _wpa_error(password: str) -> str | None:
    if len(password) == 64 and _HEX.fullmatch(password):
        # The setup wizard quotes every WPA key, so a raw PSK becomes a too-long passphrase.
        return (
            "Password looks like a 64-digit hexadecimal raw key, which Android cannot use "
            "from a QR code; enter the 8–63 character passphrase instead."
        )
    if not _PRINTABLE_ASCII.fullmatch(password):
        return (
            "Password for WPA must use only printable ASCII characters (letters, digits, "
            "spaces and common symbols, no accents or control characters)."
        )
    if not 8 <= len(password) <= 63:
        return f"Password for WPA must be 8–63 characters long, not {len(password)}."
    return None


def _wep_error(password: str) -> str | None:
    if len(password) in _WEP_HEX_LENGTHS and _HEX.fullmatch(password):
        return None
    if len(password) in _WEP_ASCII_LENGTHS and _PRINTABLE_ASCII.fullmatch(password):
        return None
    return (
        "Password for WEP must be 5 or 13 printable ASCII characters, or 10 or 26 "
        "hexadecimal digits."
    )
