"""Wi-Fi settings checked the way Android's provisioning checks them (android-qr.md §4)."""

import re
import unicodedata
from dataclasses import dataclass

from portal.android.certificates import ca_certificate_problem, user_certificate_problem
from portal.vocabulary import EapMethod, Phase2, SecurityType

SECURITY_TYPES = tuple(SecurityType)
EAP_METHODS = tuple(EapMethod)
# What each EAP method takes as its inner (phase 2) authentication; "" and NONE mean none.
PHASE2_FOR = {
    EapMethod.PEAP: (Phase2.NONE, Phase2.MSCHAPV2, Phase2.GTC),
    EapMethod.TTLS: (Phase2.PAP, Phase2.MSCHAP, Phase2.MSCHAPV2, Phase2.GTC),
    EapMethod.TLS: (Phase2.NONE,),
    EapMethod.PWD: (Phase2.NONE,),
}
MAX_EAP_TEXT = 256
MAX_EAP_PASSWORD = 256
MAX_SSID_BYTES = 32

_HEX = re.compile(r"[0-9A-Fa-f]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
_WEP_ASCII_LENGTHS = (5, 13)
_WEP_HEX_LENGTHS = (10, 26)


@dataclass(frozen=True)
class EapSettings:
    """Enterprise Wi-Fi (security type EAP, Android 10+), as the payload carries it: the
    certificates are already the single-line base64 values of portal.android.certificates."""
    method: str | None = None
    phase2: str | None = None
    identity: str | None = None
    anonymous_identity: str | None = None
    domain: str | None = None
    ca_certificate: str | None = None
    user_certificate: str | None = None


def validate_wifi(ssid: str, security_type: str, password: str | None,
                  eap: EapSettings | None = None) -> dict[str, str]:
    """Return {field: message} for every problem; {} when Android would accept the network.

    Fields are "ssid", "security_type" and "password", and for EAP "eap_method", "phase2",
    "identity", "anonymous_identity", "domain", "ca_certificate" and "user_certificate".
    """
    errors = {}
    ssid_error = _ssid_error(ssid or "")
    if ssid_error:
        errors["ssid"] = ssid_error
    security_error = _security_type_error(security_type or "")
    if security_error:
        errors["security_type"] = security_error
    elif security_type == SecurityType.EAP:
        errors.update(eap_errors(eap or EapSettings(), password))
    else:
        password_error = _password_error(security_type, password or "")
        if password_error:
            errors["password"] = password_error
    return errors


def eap_errors(eap: EapSettings, password: str | None) -> dict[str, str]:
    """{field: message} for an enterprise network: what ManagedProvisioning needs to build a
    WifiEnterpriseConfig that can sign in (an unknown method or phase 2 makes it give up)."""
    if eap.method not in EAP_METHODS:
        return {"eap_method": "Choose the EAP method: PEAP, TTLS, TLS or PWD."}
    errors = {}
    phase2 = eap.phase2 or Phase2.NONE
    if phase2 not in PHASE2_FOR[eap.method]:
        allowed = ", ".join(PHASE2_FOR[eap.method])
        errors["phase2"] = f"Phase 2 for {eap.method} must be {allowed}, not {phase2}."
    if not eap.identity:
        errors["identity"] = "Identity is required for EAP: the user name the network knows."
    for field, label, value in (("identity", "Identity", eap.identity),
                                ("anonymous_identity", "Anonymous identity",
                                 eap.anonymous_identity),
                                ("domain", "Domain", eap.domain)):
        if value and (len(value) > MAX_EAP_TEXT or _has_control(value)):
            errors[field] = (f"{label} must be one line of at most {MAX_EAP_TEXT} characters.")
    if eap.domain and " " in eap.domain:
        errors["domain"] = ("Domain is the RADIUS server's domain name (such as "
                            "radius.example.com), without spaces.")
    errors.update(_eap_secret_errors(eap, password))
    return errors


def _eap_secret_errors(eap: EapSettings, password: str | None) -> dict[str, str]:
    errors = {}
    if eap.method == EapMethod.TLS:
        if password:
            errors["password"] = "TLS signs in with the client certificate: leave the password empty."
        if not eap.user_certificate:
            errors["user_certificate"] = ("TLS needs a client certificate with its private key "
                                          "(PKCS#12, or PEM certificate and key).")
    else:
        if not password:
            errors["password"] = f"Password is required for {eap.method}."
        elif len(password) > MAX_EAP_PASSWORD or _has_control(password):
            errors["password"] = (f"Password for {eap.method} must be at most "
                                  f"{MAX_EAP_PASSWORD} characters without control characters.")
        if eap.user_certificate:
            errors["user_certificate"] = (f"{eap.method} uses no client certificate; only TLS "
                                          "does.")
    if eap.ca_certificate and (problem := ca_certificate_problem(eap.ca_certificate)):
        errors["ca_certificate"] = f"The CA certificate cannot be used: {problem}."
    if eap.user_certificate and "user_certificate" not in errors and (
            problem := user_certificate_problem(eap.user_certificate)):
        errors["user_certificate"] = f"The client certificate cannot be used: {problem}."
    return errors


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)


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
        return "Security Type is required; choose WPA, WEP, EAP or NONE."
    if security_type not in SECURITY_TYPES:
        # Android treats any other value as an open network, silently.
        return (
            f'Security Type "{security_type}" is not understood by Android; choose WPA for '
            "WPA/WPA2 networks, EAP for WPA/WPA2-Enterprise, WEP, or NONE for an open network."
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
