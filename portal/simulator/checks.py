"""Checking a QR payload the way Android's setup wizard reads it (android-qr.md)."""
import json
import re

from portal.android.payload import (MAX_PAYLOAD_BYTES, PREFIX, _checksum_error,
                                    _component_name_error, _download_url_error)
from portal.android.wifi import validate_wifi

BOOLEAN_KEYS = ("WIFI_HIDDEN", "USE_MOBILE_DATA", "LEAVE_ALL_SYSTEM_APPS_ENABLED",
                "SKIP_ENCRYPTION")
LOCALE = re.compile(r"[a-z]{2,3}(_[A-Z][a-z]{3})?(_([A-Z]{2}|[0-9]{3}))?")


def check_payload(text: str) -> tuple[dict, list[str]]:
    """(payload, problems): every way the payload breaks what Android or the contract needs."""
    problems = []
    if len(text.encode()) > MAX_PAYLOAD_BYTES:
        problems.append(f"The payload is {len(text.encode())} bytes, over {MAX_PAYLOAD_BYTES}.")
    try:
        payload = json.loads(text)
    except ValueError:
        return {}, ["The QR code does not hold JSON."]
    if not isinstance(payload, dict):
        return {}, ["The QR code's JSON is not an object."]
    get = lambda name: payload.get(PREFIX + "PROVISIONING_" + name)  # noqa: E731
    for name, check in (("DEVICE_ADMIN_COMPONENT_NAME", _component_name_error),
                        ("DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION", _download_url_error),
                        ("DEVICE_ADMIN_SIGNATURE_CHECKSUM", _checksum_error)):
        value = get(name)
        message = "it is missing" if not isinstance(value, str) else check(value)
        if message:
            problems.append(f"{name}: {message}")
    for name in BOOLEAN_KEYS:
        if get(name) is not None and not isinstance(get(name), bool):
            problems.append(f"{name} must be a JSON boolean; Android reads a string as false.")
    if get("WIFI_SSID") is not None:
        wifi = validate_wifi(get("WIFI_SSID"), get("WIFI_SECURITY_TYPE") or "",
                             get("WIFI_PASSWORD"))
        problems += [f"Wi-Fi {field}: {message}" for field, message in wifi.items()]
    if not isinstance(get("LOCALE"), str) or not LOCALE.fullmatch(get("LOCALE")):
        problems.append(f"LOCALE {get('LOCALE')!r} is not Android's ll_CC form.")
    problems += _extras_problems(get("ADMIN_EXTRAS_BUNDLE"))
    return payload, problems


def _extras_problems(extras) -> list[str]:
    if not isinstance(extras, dict):
        return ["ADMIN_EXTRAS_BUNDLE must be a JSON object."]
    problems = [f"Admin extra {key!r} must be a string." for key, value in extras.items()
                if not isinstance(value, str)]
    needed = ["server_url", "option", "qr_id", "lang"]
    if extras.get("option") == "auto":
        needed += ["user", "otp"]
    elif extras.get("option") != "ssp":
        problems.append("Admin extra 'option' must be 'ssp' or 'auto'.")
    problems += [f"Admin extra {key!r} is missing." for key in needed if not extras.get(key)]
    return problems


def describe(payload: dict) -> list[str]:
    """What a device does with this payload, step by step."""
    get = lambda name: payload.get(PREFIX + "PROVISIONING_" + name)  # noqa: E731
    steps = []
    if get("WIFI_SSID") is not None:
        hidden = ", hidden" if get("WIFI_HIDDEN") else ""
        steps.append(f"Connect to Wi-Fi {get('WIFI_SSID')!r} ({get('WIFI_SECURITY_TYPE')}{hidden})")
    elif get("USE_MOBILE_DATA"):
        steps.append("Use mobile data (needs a SIM or eSIM; Android 13 or newer)")
    else:
        steps.append("Ask the user for a network")
    steps.append(f"Set the locale to {get('LOCALE')}")
    steps.append(f"Download the Companion from {get('DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION')} "
                 f"and check its signature {get('DEVICE_ADMIN_SIGNATURE_CHECKSUM')}")
    steps.append(f"Make {get('DEVICE_ADMIN_COMPONENT_NAME')} the device owner"
                 + ("; leave system apps enabled" if get("LEAVE_ALL_SYSTEM_APPS_ENABLED") else ""))
    extras = get("ADMIN_EXTRAS_BUNDLE") or {}
    steps.append(f"Start the Companion for {extras.get('option')} enrollment at "
                 f"{extras.get('server_url')}")
    return steps
