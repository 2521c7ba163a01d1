"""Checking a QR payload the way Android's setup wizard reads it (android-qr.md)."""
import json
import re

from portal.android.certificates import ca_certificate_problem, user_certificate_problem
from portal.android.options import proxy_errors, time_zone_error
from portal.android.payload import (MAX_PAYLOAD_BYTES, PREFIX, _checksum_error,
                                    _component_name_error, _download_url_error)
from portal.android.wifi import validate_wifi

BOOLEAN_KEYS = ("WIFI_HIDDEN", "USE_MOBILE_DATA", "LEAVE_ALL_SYSTEM_APPS_ENABLED",
                "SKIP_ENCRYPTION")
STRING_KEYS = ("TIME_ZONE", "WIFI_PROXY_HOST", "WIFI_PROXY_BYPASS", "WIFI_PAC_URL",
               "WIFI_EAP_METHOD", "WIFI_PHASE2_AUTH", "WIFI_IDENTITY", "WIFI_ANONYMOUS_IDENTITY",
               "WIFI_DOMAIN", "WIFI_CA_CERTIFICATE", "WIFI_USER_CERTIFICATE")
EAP_KEYS = ("WIFI_EAP_METHOD", "WIFI_PHASE2_AUTH", "WIFI_IDENTITY", "WIFI_ANONYMOUS_IDENTITY",
            "WIFI_DOMAIN", "WIFI_CA_CERTIFICATE", "WIFI_USER_CERTIFICATE")
# ManagedProvisioning's WifiConfigurationProvider: the values it maps; any other one makes it
# log "Unknown EAP method" and join no network.
ANDROID_EAP_METHODS = ("PEAP", "TLS", "TTLS", "PWD", "SIM", "AKA", "AKA_PRIME")
ANDROID_PHASE2 = ("", "NONE", "PAP", "MSCHAP", "MSCHAPV2", "GTC", "SIM", "AKA", "AKA_PRIME")
EAP_SINCE_API = 29
LOCALE = re.compile(r"[a-z]{2,3}(_[A-Z][a-z]{3})?(_([A-Z]{2}|[0-9]{3}))?")


def check_payload(text: str, api_level: int | None = None) -> tuple[dict, list[str]]:
    """(payload, problems): every way the payload breaks what Android or the contract needs
    (on a device of this API level, when given: enterprise Wi-Fi needs Android 10, API 29)."""
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
    for name in STRING_KEYS:
        if get(name) is not None and not isinstance(get(name), str):
            problems.append(f"{name} must be a JSON string.")
    if get("WIFI_SSID") is not None:
        problems += _wifi_problems(get)
    if isinstance(get("TIME_ZONE"), str) and (message := time_zone_error(get("TIME_ZONE"))):
        problems.append(f"TIME_ZONE: {message}")
    if api_level is not None and api_level < EAP_SINCE_API and \
            get("WIFI_SECURITY_TYPE") == "EAP":
        problems.append(f"WIFI_SECURITY_TYPE EAP needs Android 10 (API {EAP_SINCE_API}); "
                        f"this device runs API {api_level} and would join no network.")
    if not isinstance(get("LOCALE"), str) or not LOCALE.fullmatch(get("LOCALE")):
        problems.append(f"LOCALE {get('LOCALE')!r} is not Android's ll_CC form.")
    problems += _extras_problems(get("ADMIN_EXTRAS_BUNDLE"))
    return payload, problems


def _wifi_problems(get) -> list[str]:
    """The Wi-Fi keys as ManagedProvisioning reads them (WifiConfigurationProvider)."""
    security = get("WIFI_SECURITY_TYPE") or ""
    if security == "EAP":
        return _eap_problems(get)
    problems = [f"Wi-Fi {field}: {message}" for field, message in validate_wifi(
        get("WIFI_SSID"), security, get("WIFI_PASSWORD")).items()]
    problems += [f"{name} is ignored: the security type is not EAP." for name in EAP_KEYS
                 if get(name) is not None]
    return problems + _proxy_problems(get)


def _eap_problems(get) -> list[str]:
    problems = [f"Wi-Fi {field}: {message}" for field, message in validate_wifi(
        get("WIFI_SSID"), "NONE", None).items()]
    if get("WIFI_EAP_METHOD") not in ANDROID_EAP_METHODS:
        problems.append(f"WIFI_EAP_METHOD {get('WIFI_EAP_METHOD')!r}: Android knows no such "
                        "method and joins no network.")
    if (get("WIFI_PHASE2_AUTH") or "") not in ANDROID_PHASE2:
        problems.append(f"WIFI_PHASE2_AUTH {get('WIFI_PHASE2_AUTH')!r} is unknown to Android.")
    if not get("WIFI_IDENTITY"):
        problems.append("WIFI_IDENTITY is missing: the network cannot tell who signs in.")
    if get("WIFI_EAP_METHOD") == "TLS" and not get("WIFI_USER_CERTIFICATE"):
        problems.append("WIFI_USER_CERTIFICATE is missing: EAP-TLS signs in with it.")
    for name, check in (("WIFI_CA_CERTIFICATE", ca_certificate_problem),
                        ("WIFI_USER_CERTIFICATE", user_certificate_problem)):
        if isinstance(get(name), str) and (problem := check(get(name))):
            problems.append(f"{name}: {problem}.")
    return problems + _proxy_problems(get)


def _proxy_problems(get) -> list[str]:
    port = get("WIFI_PROXY_PORT")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        return ["WIFI_PROXY_PORT must be a JSON integer; Android reads anything else as 0."]
    if not get("WIFI_PROXY_HOST") and not get("WIFI_PAC_URL"):
        return []
    errors = proxy_errors(get("WIFI_PROXY_HOST"), port, get("WIFI_PROXY_BYPASS"),
                          None if get("WIFI_PROXY_HOST") else get("WIFI_PAC_URL"))
    return [f"Proxy {field}: {message}" for field, message in errors.items()]


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
        security = get("WIFI_SECURITY_TYPE")
        if security == "EAP":
            phase2 = f"/{get('WIFI_PHASE2_AUTH')}" if get("WIFI_PHASE2_AUTH") else ""
            security = f"EAP {get('WIFI_EAP_METHOD')}{phase2} as {get('WIFI_IDENTITY')!r}"
        steps.append(f"Connect to Wi-Fi {get('WIFI_SSID')!r} ({security}{hidden})")
        if get("WIFI_PROXY_HOST"):
            steps.append(f"Use the proxy {get('WIFI_PROXY_HOST')}:{get('WIFI_PROXY_PORT')}")
        elif get("WIFI_PAC_URL"):
            steps.append(f"Use the proxy script {get('WIFI_PAC_URL')}")
    elif get("USE_MOBILE_DATA"):
        steps.append("Use mobile data (needs a SIM or eSIM; Android 13 or newer)")
    else:
        steps.append("Ask the user for a network")
    steps.append(f"Set the locale to {get('LOCALE')}")
    if get("TIME_ZONE"):
        steps.append(f"Set the time zone to {get('TIME_ZONE')}")
    steps.append(f"Download the Companion from {get('DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION')} "
                 f"and check its signature {get('DEVICE_ADMIN_SIGNATURE_CHECKSUM')}")
    steps.append(f"Make {get('DEVICE_ADMIN_COMPONENT_NAME')} the device owner"
                 + ("; leave system apps enabled" if get("LEAVE_ALL_SYSTEM_APPS_ENABLED") else ""))
    extras = get("ADMIN_EXTRAS_BUNDLE") or {}
    steps.append(f"Start the Companion for {extras.get('option')} enrollment at "
                 f"{extras.get('server_url')}")
    return steps
