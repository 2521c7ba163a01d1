"""GET /api/v1/openapi.json: an OpenAPI 3.1 document of the Companion API."""
from flask import current_app, jsonify

from portal.api import bp
from portal.api.schemas import PRINTABLE_PATTERN
from portal.vocabulary import DeviceState


def _error(description: str, codes: list[str]) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}, "example": {"error": {
            "code": codes[0], "message": "A plain sentence."}}}}}


# No NUL in any string the server stores (PostgreSQL's text cannot hold one).
_NO_NUL = "^[^\x00]*$"
_STRING_64 = {"type": "string", "minLength": 1, "maxLength": 64, "pattern": _NO_NUL}
_PRINTABLE_64 = {**_STRING_64, "pattern": PRINTABLE_PATTERN}
_SECRET = {"type": ["string", "null"], "minLength": 1, "maxLength": 256, "pattern": _NO_NUL}
_STATES = {"enum": [state.value for state in DeviceState]}
_USER = {"type": "object", "required": ["username", "display_name", "email"],
         "properties": {"username": {"type": "string"}, "display_name": {"type": "string"},
                        "email": {"type": ["string", "null"]}}}

SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}},
    "Device": {"type": "object", "required": ["serial_number", "manufacturer", "model",
                                              "android_api_level"],
               "properties": {
                   "serial_number": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                   # "imei": a format of our own, since no pattern can say Luhn.
                   "imei": {"type": ["string", "null"], "pattern": "^[0-9]{15}$",
                            "format": "imei",
                            "description": "15 digits with a valid Luhn check digit"},
                   "manufacturer": _PRINTABLE_64, "model": _PRINTABLE_64,
                   "android_api_level": {"type": "integer", "minimum": 1, "maximum": 1000}}},
    "EnrollmentRequest": {
        "type": "object", "required": ["qr_id", "device"],
        "description": "Exactly one of otp (automatic QR) and ticket (Self Service Portal); "
                       "null counts as absent.",
        "oneOf": [{"required": ["otp"], "properties": {"otp": {"type": "string"}}},
                  {"required": ["ticket"], "properties": {"ticket": {"type": "string"}}}],
        "properties": {"qr_id": _STRING_64, "otp": _SECRET, "ticket": _SECRET,
                       "device": {"$ref": "#/components/schemas/Device"}}},
    "Enrollment": {"type": "object",
                   "required": ["device_id", "device_token", "state", "user", "lang"],
                   "properties": {"device_id": {"type": "string"},
                                  "device_token": {"type": "string"},
                                  "state": {"const": DeviceState.PROVISIONING.value}, "user": _USER,
                                  "lang": {"type": "string"}}},
    # A retry answers with the device's state as it is: enrolled once it reported success,
    # and a used ticket's device in whatever state it reached.
    "EnrollmentRetry": {"type": "object",
                        "required": ["device_id", "device_token", "state", "user", "lang"],
                        "properties": {"device_id": {"type": "string"},
                                       "device_token": {"type": "string"},
                                       "state": _STATES,
                                       "user": _USER, "lang": {"type": "string"}}},
    "CompletionRequest": {"type": "object", "required": ["result"], "properties": {
        "result": {"enum": ["success", "failure"]},
        "reason": {"type": "string", "maxLength": 500, "pattern": _NO_NUL}}},
    "DeviceState": {"type": "object", "required": ["device_id", "state"], "properties": {
        "device_id": {"type": "string"},
        "state": _STATES}},
    "DeviceStatus": {"type": "object", "required": ["device_id", "state", "user", "enrolled_at"],
                     "properties": {"device_id": {"type": "string"},
                                    "state": _STATES,
                                    "user": _USER,
                                    "enrolled_at": {"type": ["string", "null"],
                                                    "format": "date-time"}}},
}

_DEVICE_ID = {"name": "device_id", "in": "path", "required": True,
              "schema": {"type": "string", "minLength": 1, "maxLength": 64,
                         "pattern": "^[A-Za-z0-9_-]+$"}}
# A device_id that is no single path segment (it holds "/" or is empty) matches no route.
_NOT_FOUND = ("No such route: the device_id is not one path segment", ["not_found"])


def document(server_url: str) -> dict:
    json_body = lambda ref: {"required": True, "content": {"application/json": {  # noqa: E731
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    ok = lambda ref, text: {"description": text, "content": {"application/json": {  # noqa: E731
        "schema": {"$ref": f"#/components/schemas/{ref}"}}}}
    bearer = [{"deviceToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Companion enrollment API", "version": "1.0.0",
                 "description": "The contract between the portal and the Companion app."},
        "servers": [{"url": f"{server_url}/api/v1"}],
        "paths": {
            "/enrollments": {"post": {
                "operationId": "redeemQrCode", "summary": "Redeem a QR code",
                "requestBody": json_body("EnrollmentRequest"),
                "responses": {
                    "201": ok("Enrollment", "A new device"),
                    "200": ok("EnrollmentRetry", "The same device asking again"),
                    "400": _error("Invalid request", ["invalid_request"]),
                    "401": _error("Invalid credentials", ["invalid_credentials"]),
                    "403": _error("QR code revoked", ["qr_revoked"]),
                    "409": _error("Usage exhausted or no license",
                                  ["usage_exhausted", "no_license"]),
                    "410": _error("OTP or ticket expired", ["expired"]),
                    "413": _error("Body over 16 KiB", ["payload_too_large"]),
                    "415": _error("Not application/json", ["unsupported_media_type"]),
                    "422": _error("Android too old or Zero-Touch device",
                                  ["unsupported_android_version", "zero_touch_conflict"]),
                    "429": {**_error("Too many failed attempts", ["rate_limited"]),
                            "headers": {"Retry-After": {
                                "description": "Seconds to wait before trying again",
                                "required": True,
                                "schema": {"type": "integer", "minimum": 0}}}}}}},
            "/devices/{device_id}/provisioning-complete": {"post": {
                "operationId": "completeProvisioning", "security": bearer,
                "parameters": [_DEVICE_ID], "requestBody": json_body("CompletionRequest"),
                "responses": {
                    "200": ok("DeviceState", "The device's new state"),
                    "400": _error("Invalid request", ["invalid_request"]),
                    "401": _error("Invalid token", ["invalid_token"]),
                    "404": _error(*_NOT_FOUND),
                    "409": _error("Invalid state: the device already reported the other "
                                  "result, or an admin retired it", ["invalid_state"]),
                    "413": _error("Body over 16 KiB", ["payload_too_large"]),
                    "415": _error("Not application/json", ["unsupported_media_type"])}}},
            "/devices/{device_id}": {"get": {
                "operationId": "getDevice", "security": bearer, "parameters": [_DEVICE_ID],
                "responses": {"200": ok("DeviceStatus", "The device; \"retired\" once an admin "
                                        "retired it (the Companion then removes itself)"),
                              "401": _error("Invalid token", ["invalid_token"]),
                              "404": _error(*_NOT_FOUND)}}},
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "deviceToken": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi():
    return jsonify(document(current_app.config["PORTAL_PUBLIC_URL"]))
