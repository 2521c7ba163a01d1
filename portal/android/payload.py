"""The Android provisioning JSON a QR code carries (companion-api.md §1, android-qr.md)."""

import base64
import binascii
import json
import re
import unicodedata
from dataclasses import dataclass

from portal.android.options import proxy_errors, time_zone_error, url_problem
from portal.android.wifi import EapSettings, validate_wifi
from portal.errors import DomainError
from portal.vocabulary import EnrollmentOption, NetworkType, SecurityType

PREFIX = "android.app.extra."
MAX_PAYLOAD_BYTES = 2331  # byte capacity of QR version 40 at error correction M
WARN_VERSION = 25
OPTIONS = tuple(EnrollmentOption)
NETWORKS = tuple(NetworkType)

_SEGMENT = r"[A-Za-z][A-Za-z0-9_]*"
_PACKAGE = re.compile(rf"{_SEGMENT}(?:\.{_SEGMENT})+")
_CLASS = re.compile(r"\.?[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_QR_ID = re.compile(r"[A-Za-z0-9_-]{8,}")
_OTP = re.compile(r"[\x21-\x7e]{4,64}")
_LANGUAGE_TAG = re.compile(
    r"(?P<language>[A-Za-z]{2,3}|[A-Za-z]{5,8})"
    r"(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?"
)
# The settings field behind each payload key, for "which field makes it dense".
_FIELD_OF_KEY = {
    "DEVICE_ADMIN_COMPONENT_NAME": "component_name",
    "DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": "download_url",
    "DEVICE_ADMIN_SIGNATURE_CHECKSUM": "signature_checksum",
    "WIFI_SSID": "ssid", "WIFI_PASSWORD": "password", "WIFI_IDENTITY": "identity",
    "WIFI_ANONYMOUS_IDENTITY": "anonymous_identity", "WIFI_DOMAIN": "domain",
    "WIFI_CA_CERTIFICATE": "ca_certificate", "WIFI_USER_CERTIFICATE": "user_certificate",
    "WIFI_PROXY_HOST": "proxy_host", "WIFI_PROXY_BYPASS": "proxy_bypass",
    "WIFI_PAC_URL": "pac_url", "TIME_ZONE": "time_zone", "LOCALE": "lang",
    "ADMIN_EXTRAS_BUNDLE.server_url": "server_url", "ADMIN_EXTRAS_BUNDLE.user": "user",
    "ADMIN_EXTRAS_BUNDLE.otp": "otp", "ADMIN_EXTRAS_BUNDLE.qr_id": "qr_id",
}
# Android Device Policy's admin extra that carries Google's enrollment token.
ENROLLMENT_TOKEN_EXTRA = "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"
# The admin extras that are credentials: masked on pages, redacted in exports.
SECRET_EXTRAS = frozenset({"otp", ENROLLMENT_TOKEN_EXTRA})
SHA256_BYTES = 32
SHA1_BYTES = 20


class PayloadError(DomainError):
    """The settings cannot make a payload Android accepts; .errors maps field to message."""


@dataclass(frozen=True)
class CompanionConfig:
    component_name: str
    download_url: str
    signature_checksum: str
    leave_system_apps_enabled: bool = True


@dataclass(frozen=True)
class PayloadSettings:
    companion: CompanionConfig
    server_url: str
    option: str
    qr_id: str
    lang: str
    network: str
    wifi_ssid: str | None = None
    wifi_security_type: str | None = None
    wifi_password: str | None = None
    wifi_hidden: bool = False
    user: str | None = None
    otp: str | None = None
    time_zone: str | None = None          # IANA name; None: the device keeps its own
    wifi_eap: EapSettings | None = None   # only with wifi_security_type EAP
    proxy_host: str | None = None         # a static proxy (host, port, bypass list) ...
    proxy_port: int | None = None
    proxy_bypass: str | None = None
    pac_url: str | None = None            # ... or a proxy auto-configuration URL
    # Android Device Policy (issue 17): Google's admin extras bundle (the enrollment token) in
    # place of the Companion's, and any other keys of Google's qrCode, kept as Google gave them.
    admin_extras: dict | None = None
    google_keys: dict | None = None


def android_locale(tag: str) -> str:
    """Turn a BCP-47 tag such as "de-CH" into Android's "de_CH".

    Raises PayloadError({"lang": ...}) if the tag is not well formed.
    """
    match = _LANGUAGE_TAG.fullmatch(tag or "")
    if not match:
        raise PayloadError({"lang": _language_message(tag or "")})
    parts = [match["language"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "_".join(parts)


def validate_companion(config: CompanionConfig) -> dict[str, str]:
    """Return {field: message} for the Companion's component name, download URL and checksum."""
    checks = {
        "component_name": _component_name_error(config.component_name or ""),
        "download_url": _download_url_error(config.download_url or ""),
        "signature_checksum": _checksum_error(config.signature_checksum or ""),
    }
    return {field: message for field, message in checks.items() if message}


def validate_settings(s: PayloadSettings) -> dict[str, str]:
    """Return {field: message} for every problem; {} when build_payload will succeed."""
    errors = {}
    checks = {
        "component_name": _component_name_error(s.companion.component_name or ""),
        "download_url": _download_url_error(s.companion.download_url or ""),
        "signature_checksum": _checksum_error(s.companion.signature_checksum or ""),
        "server_url": _server_url_error(s.server_url or ""),
        "option": _choice_error("Option", s.option, OPTIONS),
        "qr_id": _qr_id_error(s.qr_id or ""),
        "lang": _lang_error(s.lang),
        "network": _choice_error("Network", s.network, NETWORKS),
    }
    errors.update({field: message for field, message in checks.items() if message})
    if message := time_zone_error(s.time_zone):
        errors["time_zone"] = message
    if s.network == NetworkType.WIFI:
        eap = s.wifi_eap if s.wifi_security_type == SecurityType.EAP else None
        errors.update(validate_wifi(s.wifi_ssid, s.wifi_security_type, s.wifi_password, eap))
        errors.update(proxy_errors(s.proxy_host, s.proxy_port, s.proxy_bypass, s.pac_url))
    if s.admin_extras is not None:
        errors.update(_google_extras_errors(s.admin_extras))
    elif s.option in OPTIONS:
        errors.update(_credential_errors(s))
    size = payload_bytes(encode_payload(_assemble(s)))
    if size > MAX_PAYLOAD_BYTES:
        errors["payload"] = (
            f"The QR payload is {size} bytes, but a QR code at error correction M holds at "
            f"most {MAX_PAYLOAD_BYTES} bytes; shorten the longest settings."
        )
        if (field := densest_field(s)) != "payload" and field not in errors:
            errors[field] = _too_large_message(field, size)
    return errors


def build_payload(s: PayloadSettings) -> dict:
    """Return the provisioning JSON object for these settings.

    Raises PayloadError carrying every problem at once.
    """
    errors = validate_settings(s)
    if errors:
        raise PayloadError(errors)
    return _assemble(s)


def draft_payload(s: PayloadSettings) -> dict:
    """The payload these settings make, unchecked: only to size it while the admin types."""
    return _assemble(s)


def densest_key(payload: dict) -> str:
    """The key (without android.app.extra.PROVISIONING_, "ADMIN_EXTRAS_BUNDLE.name" for an
    admin extra) whose value takes the most bytes: what to shorten when the code is dense."""
    sizes = {}
    for key, value in payload.items():
        name = key.removeprefix(PREFIX + "PROVISIONING_")
        if isinstance(value, dict):
            sizes.update({f"{name}.{extra}": payload_bytes(str(item))
                          for extra, item in value.items()})
        elif isinstance(value, str):
            sizes[name] = payload_bytes(value)
    return max(sizes, key=sizes.get)


def densest_field(s: PayloadSettings) -> str:
    """The settings field that makes these settings' payload dense (a validate_settings
    field name, such as "user_certificate" or "download_url")."""
    return _FIELD_OF_KEY.get(densest_key(_assemble(s)), "payload")


def encode_payload(payload: dict) -> str:
    """Return the compact JSON text of a payload, keys in the order they were built."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)


def payload_bytes(text: str) -> int:
    """Return the size of the encoded payload in UTF-8 bytes, as the QR code stores it."""
    return len(text.encode("utf-8"))


def _assemble(s: PayloadSettings) -> dict:
    companion = s.companion
    payload = {
        PREFIX + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": companion.component_name,
        PREFIX + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": companion.download_url,
        PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": (
            (companion.signature_checksum or "").rstrip("=")
        ),
    }
    payload.update(_network_extras(s))
    payload[PREFIX + "PROVISIONING_LOCALE"] = _best_effort_locale(s.lang)
    if s.time_zone:
        payload[PREFIX + "PROVISIONING_TIME_ZONE"] = s.time_zone
    if companion.leave_system_apps_enabled:
        payload[PREFIX + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED"] = True
    for key, value in (s.google_keys or {}).items():
        payload.setdefault(key, value)
    payload[PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"] = (
        dict(s.admin_extras) if s.admin_extras is not None else _admin_extras(s))
    return payload


_GOOGLE_COMPANION_KEYS = ("PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME",
                          "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION",
                          "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM")


def google_parts(qr_code: str) -> tuple[CompanionConfig, dict, dict]:
    """Google's enrollment-token qrCode (a JSON string) as payload settings: Android Device
    Policy as the "companion" (component, download location, checksum), the admin extras
    bundle that carries the token, and Google's other keys (kept as given; ours win where both
    name a key, such as the network and the locale).

    Raises PayloadError({"management": ...}) when Google's answer is not such a JSON object."""
    try:
        google = json.loads(qr_code)
    except (ValueError, TypeError):
        google = None
    names = [PREFIX + key for key in _GOOGLE_COMPANION_KEYS]
    bundle = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
    if not isinstance(google, dict) or not all(isinstance(google.get(name), str)
                                               for name in names) \
            or not isinstance(google.get(bundle), dict):
        raise PayloadError({"management": "Google's enrollment token holds no provisioning "
                                          "data the portal can put in a QR code."})
    companion = CompanionConfig(*(google[name] for name in names),
                                leave_system_apps_enabled=False)
    others = {key: value for key, value in google.items() if key not in names + [bundle]}
    return companion, dict(google[bundle]), others


def _network_extras(s: PayloadSettings) -> dict:
    if s.network != NetworkType.WIFI:
        return {PREFIX + "PROVISIONING_USE_MOBILE_DATA": True}
    extras = {
        PREFIX + "PROVISIONING_WIFI_SSID": s.wifi_ssid,
        PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE": s.wifi_security_type,
    }
    if s.wifi_security_type != SecurityType.NONE and s.wifi_password:
        extras[PREFIX + "PROVISIONING_WIFI_PASSWORD"] = s.wifi_password
    if s.wifi_hidden:
        extras[PREFIX + "PROVISIONING_WIFI_HIDDEN"] = True
    if s.wifi_security_type == SecurityType.EAP and s.wifi_eap is not None:
        extras.update(_eap_extras(s.wifi_eap))
    if s.proxy_host:
        extras[PREFIX + "PROVISIONING_WIFI_PROXY_HOST"] = s.proxy_host
        extras[PREFIX + "PROVISIONING_WIFI_PROXY_PORT"] = s.proxy_port  # an integer (getIntExtra)
        if s.proxy_bypass:
            extras[PREFIX + "PROVISIONING_WIFI_PROXY_BYPASS"] = s.proxy_bypass
    elif s.pac_url:
        extras[PREFIX + "PROVISIONING_WIFI_PAC_URL"] = s.pac_url
    return extras


def _eap_extras(eap: EapSettings) -> dict:
    values = (("EAP_METHOD", eap.method), ("PHASE2_AUTH", eap.phase2),
              ("IDENTITY", eap.identity), ("ANONYMOUS_IDENTITY", eap.anonymous_identity),
              ("DOMAIN", eap.domain), ("CA_CERTIFICATE", eap.ca_certificate),
              ("USER_CERTIFICATE", eap.user_certificate))
    # Empty values are left out: each key costs QR space, and Android reads a missing one as "".
    return {PREFIX + "PROVISIONING_WIFI_" + name: value for name, value in values
            if value and not (name == "PHASE2_AUTH" and value == "NONE")}


def _admin_extras(s: PayloadSettings) -> dict[str, str]:
    extras = {
        "server_url": (s.server_url or "").rstrip("/"),
        "option": s.option,
        "qr_id": s.qr_id,
        "lang": s.lang,
    }
    if s.option == EnrollmentOption.AUTO:
        extras["user"] = s.user
        extras["otp"] = s.otp
    # A PersistableBundle from a QR keeps JSON types; the Companion reads strings only.
    return {key: "" if value is None else str(value) for key, value in extras.items()}


def _best_effort_locale(tag: str) -> str:
    # Only used for sizing invalid settings; build_payload never emits an unchecked locale.
    try:
        return android_locale(tag)
    except PayloadError:
        return (tag or "").replace("-", "_")


def _too_large_message(field: str, size: int) -> str:
    if field == "user_certificate":
        return (f"The QR code would hold {size} bytes, over the {MAX_PAYLOAD_BYTES} a QR code "
                "holds, and this client certificate is its largest part: use a certificate "
                "with an EC (P-256) key and short names; a 2048-bit RSA one does not fit.")
    return (f"The QR code would hold {size} bytes, over the {MAX_PAYLOAD_BYTES} a QR code "
            "holds, and this field is its largest part: shorten it.")


def _language_message(tag: str) -> str:
    if "_" in tag and _LANGUAGE_TAG.fullmatch(tag.replace("_", "-")):
        suggestion = tag.replace("_", "-")
        return f'Language must be written with hyphens, e.g. "{suggestion}" instead of "{tag}".'
    return (
        f'Language "{tag}" is not a valid language tag; use one such as "de-CH", "it" or "en-US".'
    )


def _lang_error(tag: str) -> str | None:
    try:
        android_locale(tag)
    except PayloadError as error:
        return error.errors["lang"]
    return None


def _component_name_error(name: str) -> str | None:
    package, slash, class_name = name.partition("/")
    if not slash or not class_name:
        return (
            "Component name must be written as package/.Receiver or package/full.class.Name, "
            "e.g. com.example.companion/.AdminReceiver."
        )
    if not _PACKAGE.fullmatch(package):
        return (
            f'Component name starts with "{package}", which is not an Android package name '
            "(two or more dot-separated parts, each starting with a letter)."
        )
    if not _CLASS.fullmatch(class_name) or ("." not in class_name):
        return (
            f'Component name ends with "{class_name}", which is not a receiver class; write '
            ".Receiver or a fully qualified class name."
        )
    return None


def _download_url_error(url: str) -> str | None:
    problem = url_problem(url, schemes=("https",))
    if problem:
        return (
            "Download URL must be an https:// address of the Companion APK with a host "
            f"name{problem}."
        )
    return None


def _server_url_error(url: str) -> str | None:
    problem = url_problem(url, schemes=("https", "http"))
    if not problem and ("?" in url or "#" in url):
        problem = " (remove the ?query or #fragment)"
    if problem:
        return f"Server URL must be the portal's http:// or https:// base address{problem}."
    return None


def _checksum_error(checksum: str) -> str | None:
    if not checksum:
        return "Signature checksum is required."
    if any(char.isspace() for char in checksum):
        return "Signature checksum must not contain spaces or line breaks; remove them."
    if "+" in checksum or "/" in checksum:
        return (
            "Signature checksum looks like standard base64, but Android needs URL-safe base64: "
            "replace + with - and / with _."
        )
    if not _BASE64URL.fullmatch(checksum):
        return "Signature checksum must be URL-safe base64 (letters, digits, - and _)."
    digest = _decode_base64url(checksum)
    if digest is None:
        return "Signature checksum is not valid base64: its length or its = padding is wrong."
    return _digest_length_error(len(digest))


def _decode_base64url(text: str) -> bytes | None:
    body = text.rstrip("=")
    padding = len(text) - len(body)
    # Padding is optional, but if present it must be exactly what base64 requires.
    if len(body) % 4 == 1 or (padding and padding != -len(body) % 4):
        return None
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except binascii.Error:
        return None


def _digest_length_error(size: int) -> str | None:
    if size == SHA256_BYTES:
        return None
    if size == SHA1_BYTES:
        return (
            "Signature checksum is a 20-byte SHA-1 digest, which is not accepted; use the "
            "SHA-256 digest of the signing certificate (43 characters)."
        )
    return (
        f"Signature checksum decodes to {size} bytes, but a SHA-256 digest of the signing "
        f"certificate is {SHA256_BYTES} bytes (43 characters)."
    )


def _choice_error(label: str, value: str, choices: tuple[str, ...]) -> str | None:
    if value in choices:
        return None
    return f"{label} must be one of {', '.join(choices)}."


def _qr_id_error(qr_id: str) -> str | None:
    if _QR_ID.fullmatch(qr_id):
        return None
    return "QR ID must be at least 8 characters of letters, digits, - and _."


def _google_extras_errors(extras: dict) -> dict[str, str]:
    # The bundle Google made: strings only (a PersistableBundle from a QR keeps JSON types).
    if extras and all(isinstance(key, str) and isinstance(value, str)
                      for key, value in extras.items()):
        return {}
    return {"management": "Google's admin extras must be text values; create the QR code again."}


def _credential_errors(s: PayloadSettings) -> dict[str, str]:
    if s.option == EnrollmentOption.SSP:
        # A self-service QR is shared by many people, so it must carry no personal secret.
        present = (("user", "User", s.user), ("otp", "One-time password", s.otp))
        return {
            field: f"{label} must be empty for a Self Service Portal QR code."
            for field, label, value in present
            if value
        }
    errors = {}
    if not s.user or len(s.user) > 256 or _has_control(s.user):
        errors["user"] = (
            "User is required for Automatic Provisioning and must be 1–256 characters "
            "without control characters."
        )
    if not s.otp or not _OTP.fullmatch(s.otp):
        errors["otp"] = (
            "One-time password is required for Automatic Provisioning and must be 4–64 "
            "printable ASCII characters without spaces."
        )
    return errors


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) == "Cc" for char in text)
