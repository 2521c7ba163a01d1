"""Validation of the Companion's JSON bodies; each problem names its field."""
import re

from portal.enrollment.errors import InvalidRequest
from portal.enrollment.redeem import DeviceInfo
from portal.enrollment.zero_touch import luhn_valid

SERIAL = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Printable (companion-api.md §2: manufacturer and model) is no character of Unicode's
# categories Cc (controls, C0 and C1), Cf (invisible format and bidi controls), Zl and Zp
# (line and paragraph separators), as of Unicode 14 (tests/api/test_openapi_fuzz.py checks
# the list). One rule for the server and the OpenAPI document's pattern, so that what one
# accepts the other does.
_NOT_PRINTABLE = (
    (0x0, 0x1F), (0x7F, 0x9F), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C), (0x6DD, 0x6DD),
    (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x180E, 0x180E), (0x200B, 0x200F),
    (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F))
# The characters themselves, not escapes: Python, ECMA-262 and Rust regexes read them alike.
PRINTABLE_PATTERN = "^[^" + "".join(chr(low) if low == high else f"{chr(low)}-{chr(high)}"
                                    for low, high in _NOT_PRINTABLE) + "]+$"
PRINTABLE = re.compile(PRINTABLE_PATTERN)
MAX_API_LEVEL = 1000
MAX_SECRET = 256
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _storable(value: str) -> bool:
    # JSON can carry "\u0000" and lone surrogates; PostgreSQL text and UTF-8 cannot.
    return "\x00" not in value and not _SURROGATE.search(value)


def _string(body: dict, name: str, *, label: str | None = None, required: bool = True,
            max_length: int = MAX_SECRET) -> str | None:
    label = label or name
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"The field '{label}' is required.")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"The field '{label}' must be a string.")
    if not _storable(value):
        raise InvalidRequest(f"The field '{label}' must not contain NUL or unpaired surrogate "
                             "characters.")
    if not 1 <= len(value) <= max_length:
        raise InvalidRequest(f"The field '{label}' must be 1 to {max_length} characters.")
    return value


def enrollment_request(body) -> tuple[str, str | None, str | None, DeviceInfo]:
    """(qr_id, otp, ticket, device) from POST /enrollments; raises InvalidRequest."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    qr_id = _string(body, "qr_id", max_length=64)
    otp = _string(body, "otp", required=False)
    ticket = _string(body, "ticket", required=False)
    if (otp is None) == (ticket is None):
        raise InvalidRequest("Exactly one of the fields 'otp' and 'ticket' is required.")
    return qr_id, otp, ticket, device_info(body.get("device"))


def device_info(device) -> DeviceInfo:
    if device is None:
        raise InvalidRequest("The field 'device' is required.")
    if not isinstance(device, dict):
        raise InvalidRequest("The field 'device' must be an object.")
    serial = _string(device, "serial_number", label="device.serial_number", max_length=64)
    if not SERIAL.fullmatch(serial):
        raise InvalidRequest("The field 'device.serial_number' must be 1 to 64 of "
                             "A-Z a-z 0-9 - _ .")
    imei = _string(device, "imei", label="device.imei", required=False, max_length=15)
    if imei is not None and not (len(imei) == 15 and imei.isdigit() and imei.isascii()
                                 and luhn_valid(imei)):
        raise InvalidRequest("The field 'device.imei' must be 15 digits with a valid Luhn "
                             "check digit.")
    names = {}
    for name in ("manufacturer", "model"):
        value = _string(device, name, label=f"device.{name}", max_length=64)
        if not PRINTABLE.fullmatch(value):
            raise InvalidRequest(f"The field 'device.{name}' must be 1 to 64 printable "
                                 "characters.")
        names[name] = value
    level = device.get("android_api_level")
    if level is None:
        raise InvalidRequest("The field 'device.android_api_level' is required.")
    # JSON Schema's (and the OpenAPI document's) integer is any number with no fraction: 30.0.
    if isinstance(level, float) and level.is_integer():
        level = int(level)
    if not isinstance(level, int) or isinstance(level, bool):
        raise InvalidRequest("The field 'device.android_api_level' must be an integer.")
    if not 1 <= level <= MAX_API_LEVEL:
        raise InvalidRequest(f"The field 'device.android_api_level' must be 1 to "
                             f"{MAX_API_LEVEL}.")
    return DeviceInfo(serial_number=serial, imei=imei, android_api_level=level, **names)


def completion_request(body) -> tuple[str, str | None]:
    """(result, reason) from POST /devices/{id}/provisioning-complete."""
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    result = body.get("result")
    if result not in ("success", "failure"):
        raise InvalidRequest("The field 'result' must be \"success\" or \"failure\".")
    reason = body.get("reason")
    if reason is not None:
        if not isinstance(reason, str):
            raise InvalidRequest("The field 'reason' must be a string.")
        if len(reason) > 500:
            raise InvalidRequest("The field 'reason' must be at most 500 characters.")
        if not _storable(reason):
            raise InvalidRequest("The field 'reason' must not contain NUL or unpaired "
                                 "surrogate characters.")
    return result, reason
