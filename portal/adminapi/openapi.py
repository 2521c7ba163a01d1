"""GET /api/admin/v1/openapi.json: an OpenAPI 3.1 document of the Admin API (public: it holds
no secret, and a client reads it before it has a token)."""
from flask import current_app, jsonify

from portal.adminapi import bp
from portal.adminapi.auth import public
from portal.adminapi.errors import CODES
from portal.adminapi.schemas import (BATCH_FIELDS, MANAGEMENTS, MAX_LIMIT, MAX_QUERY, MAX_TEXT,
                                     NETWORK_FIELDS, QR_FIELDS, ROW_FIELDS, SECURITIES)
from portal.enrollment import devices as fleet
from portal.provisioning import bulk, listing
from portal.vocabulary import DeviceState, EnrollmentOption, NetworkType, PendingState

# No NUL and no control character in what the server stores or searches.
_NO_NUL = "^[^\x00]*$"
_TEXT = {"type": ["string", "null"], "maxLength": MAX_TEXT, "pattern": _NO_NUL}
_TIME = {"type": ["string", "null"], "format": "date-time"}
_STRING = {"type": "string"}
_NULLABLE_STRING = {"type": ["string", "null"]}
_MANAGEMENT = {"enum": [*(m.value for m in MANAGEMENTS), None],
               "description": "what manages the devices: companion (the portal's Companion) "
                              "or adp (Google's Android Device Policy, through the Android "
                              "Management API: the portal asks Google for the enrollment "
                              "token first; 502 google_failed when Google fails, nothing "
                              "saved). Left out: the network profile's, else companion"}
_COUNTS = {"type": "object", "required": [state.value for state in PendingState],
           "properties": {state.value: {"type": "integer", "minimum": 0}
                          for state in PendingState}}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


SCHEMAS = {
    "Error": {"type": "object", "required": ["error"], "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": _STRING, "message": _STRING,
                       "fields": {"type": "object", "additionalProperties": _STRING,
                                  "description": "422: a message per refused field "
                                                 "(network.ssid, user, …); 502: the field "
                                                 "Google's failure is about (management, "
                                                 "rows[2].management)"}}}}},
    "Network": {
        "type": "object", "additionalProperties": False, "required": ["type"],
        "properties": {
            "type": {"enum": [kind.value for kind in NetworkType]},
            "ssid": _TEXT, "security": {"enum": [*(s.value for s in SECURITIES), None],
                                        "description": "WPA when left out"},
            "password": _TEXT, "hidden": {"type": ["boolean", "null"]}}},
    "QrCodeRequest": {
        "type": "object", "additionalProperties": False, "required": ["option"],
        "description": "The wizard's fields; give either network_profile (a saved "
                       "profile's name) or network. user and usage_count are for auto.",
        "oneOf": [{"required": ["network_profile"], "properties": {
                      "network_profile": _STRING, "network": {"type": "null"}}},
                  {"required": ["network"], "properties": {
                      "network": {"type": "object"}, "network_profile": {"type": "null"}}}],
        "properties": {
            "option": {"enum": [option.value for option in EnrollmentOption]},
            "user": {**_TEXT, "description": "a local user's name (auto)"},
            "usage_count": {"type": ["integer", "null"], "minimum": -2**31,
                            "maximum": 2**31},
            "localization": {**_TEXT, "description": "a language tag of Admin → "
                                                     "Localizations; en when left out"},
            "send_to_user": {"type": ["boolean", "null"]},
            "alternative_address": _TEXT,
            "otp_validity": {"oneOf": [{"type": "integer", "minimum": -2**31,
                                        "maximum": 2**31},
                                       {"const": "unlimited"}, {"type": "null"}],
                             "description": "hours; the OTP settings' default when left out"},
            "name": _TEXT, "network_profile": _TEXT,
            "network": {"oneOf": [_ref("Network"), {"type": "null"}]},
            "management": _MANAGEMENT}},
    "QrCode": {
        "type": "object",
        "required": ["id", "option", "name", "state", "user", "usage_count", "localization",
                     "send_to_user", "alternative_address", "network", "network_profile",
                     "management", "enrollment_token", "pending", "qr_version", "created_at",
                     "otp_expires_at", "revoked_at", "links"],
        "properties": {
            "id": _STRING, "option": {"enum": [option.value for option in EnrollmentOption]},
            "name": _NULLABLE_STRING,
            "state": {"enum": list(listing.STATES)}, "user": _NULLABLE_STRING,
            "usage_count": {"type": ["integer", "null"]}, "localization": _STRING,
            "send_to_user": {"type": "boolean"}, "alternative_address": _NULLABLE_STRING,
            "network": {"type": "object", "required": ["type"], "properties": {
                "type": {"enum": [kind.value for kind in NetworkType]},
                "ssid": _NULLABLE_STRING, "security": _NULLABLE_STRING,
                "hidden": {"type": "boolean"}}},
            "network_profile": _NULLABLE_STRING,
            "management": {"enum": [m.value for m in MANAGEMENTS]},
            "enrollment_token": {
                "type": ["object", "null"], "required": ["name", "expires_at"],
                "description": "adp with auto: Google's enrollment token (its value is the "
                               "OTP: GET …/pending with a provision token); else null",
                "properties": {"name": {**_STRING, "description": "enterprises/…/"
                                                                "enrollmentTokens/…"},
                               "expires_at": {**_TIME, "description": "null: Unlimited"}}},
            "pending": _COUNTS,
            "qr_version": {"type": "integer"}, "created_at": {**_TIME, "type": "string"},
            "otp_expires_at": _TIME, "revoked_at": _TIME,
            "links": {"type": "object", "additionalProperties": _STRING}}},
    "QrCodeList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": _ref("QrCode")},
        "next_cursor": _NULLABLE_STRING}},
    "Revoked": {"type": "object", "required": ["qr_code", "licenses_released"], "properties": {
        "qr_code": _ref("QrCode"), "licenses_released": {"type": "integer", "minimum": 0}}},
    "Payload": {"type": "object", "description": "The QR code's payload as Android reads it "
                                                 "(android-qr.md): with the Wi-Fi password "
                                                 "and the OTP"},
    "PendingList": {
        "type": "object", "required": ["qr_id", "counts", "items", "next_cursor", "otp"],
        "properties": {
            "qr_id": _STRING, "counts": _COUNTS, "next_cursor": _NULLABLE_STRING,
            "otp": {**_NULLABLE_STRING, "description": "the QR code's OTP: only for a "
                                                       "provision token, else null"},
            "items": {"type": "array", "items": {
                "type": "object",
                "required": ["id", "state", "expires_at", "used_at", "ended_at", "device_id"],
                "properties": {"id": {"type": "integer"},
                               "state": {"enum": [state.value for state in PendingState]},
                               "expires_at": _TIME, "used_at": _TIME, "ended_at": _TIME,
                               "device_id": _NULLABLE_STRING}}}}},
    "Device": {
        "type": "object",
        "required": ["id", "serial_number", "imei", "manufacturer", "model",
                     "android_api_level", "android_version", "state", "user", "qr_id",
                     "created_at", "enrolled_at", "last_contact_at", "retired_at",
                     "management"],
        "properties": {
            "id": _STRING, "serial_number": _STRING, "imei": _NULLABLE_STRING,
            "manufacturer": _NULLABLE_STRING, "model": _NULLABLE_STRING,
            "android_api_level": {"type": ["integer", "null"]},
            "android_version": _NULLABLE_STRING,
            "state": {"enum": [state.value for state in DeviceState]}, "user": _STRING,
            "qr_id": _STRING, "created_at": {**_TIME, "type": "string"},
            "enrolled_at": _TIME, "last_contact_at": _TIME, "retired_at": _TIME,
            "management": {"enum": [m.value for m in MANAGEMENTS],
                           "description": "what manages the device (its QR code's): companion "
                                          "(the portal's Companion) or adp (Google's Android "
                                          "Device Policy)"}}},
    "DeviceList": {"type": "object", "required": ["items", "next_cursor"], "properties": {
        "items": {"type": "array", "items": _ref("Device")},
        "next_cursor": _NULLABLE_STRING}},
    "Retired": {"type": "object", "required": ["device", "license_released"], "properties": {
        "device": _ref("Device"), "license_released": {"type": "boolean"}}},
    "BatchRequest": {
        "type": "object", "additionalProperties": False,
        "required": ["network_profile", "rows"],
        "description": "A bulk batch: Automatic Provisioning QR codes, one per row, with the "
                       "CSV's columns (user for username); checked as Devices → Pending → "
                       "Bulk provisioning checks a CSV",
        "properties": {
            "network_profile": {**_TEXT, "type": "string",
                                "description": "a saved network profile's name"},
            "otp_validity": {"oneOf": [{"type": "integer", "minimum": -2**31,
                                        "maximum": 2**31},
                                       {"const": "unlimited"}, {"type": "null"}],
                             "description": "hours; the OTP settings' default when left out"},
            "name": _TEXT,
            "management": {**_MANAGEMENT, "description": "for rows without their own: "
                                                         "companion or adp; left out: the "
                                                         "network profile's"},
            "rows": {"type": "array", "minItems": 1, "maxItems": bulk.MAX_ROWS, "items": {
                "type": "object", "additionalProperties": False, "properties": {
                    "user": {**_TEXT, "description": "a local user's name"},
                    "usage_count": {"type": ["integer", "null"], "minimum": -2**31,
                                    "maximum": 2**31, "description": "1 when left out"},
                    "localization": _TEXT, "send_to_user": {"type": ["boolean", "null"]},
                    "alternative_address": _TEXT,
                    "management": {**_MANAGEMENT, "description": "companion or adp; left "
                                                                 "out: the batch's"}}}}}},
    "Batch": {
        "type": "object",
        "required": ["id", "name", "state", "rows", "done", "error", "network_profile",
                     "created_by", "created_at", "links"],
        "properties": {
            "id": _STRING, "name": _NULLABLE_STRING,
            "state": {"enum": ["preparing", "created", "failed", "interrupted"]},
            "rows": {"type": "integer"}, "done": {"type": "integer"},
            "error": _NULLABLE_STRING, "network_profile": _NULLABLE_STRING,
            "created_by": _NULLABLE_STRING, "created_at": {**_TIME, "type": "string"},
            "links": {"type": "object", "additionalProperties": _STRING}}},
    "Licenses": {"type": "object", "required": ["total", "used", "reserved", "remaining"],
                 "properties": {name: {"type": "integer"}
                                for name in ("total", "used", "reserved", "remaining")}},
}
assert set(SCHEMAS["QrCodeRequest"]["properties"]) == set(QR_FIELDS)
assert set(SCHEMAS["Network"]["properties"]) == set(NETWORK_FIELDS)
assert set(SCHEMAS["BatchRequest"]["properties"]) == set(BATCH_FIELDS)
assert set(SCHEMAS["BatchRequest"]["properties"]["rows"]["items"]["properties"]) == \
    set(ROW_FIELDS)

_ID = {"type": "string", "minLength": 1, "maxLength": 32, "pattern": "^[A-Za-z0-9_-]+$"}
_QR_ID = {"name": "public_id", "in": "path", "required": True, "schema": _ID}
_DEVICE_ID = {"name": "device_id", "in": "path", "required": True, "schema": _ID}
_BATCH_ID = {"name": "batch_id", "in": "path", "required": True, "schema": _ID}
_BATCH = {"name": "batch", "in": "query", "required": False,
          "description": "only the QR codes of this bulk batch (its id)",
          "schema": {"type": "string", "maxLength": MAX_QUERY, "pattern": "^[^\x00-\x1f]*$"}}
_LIMIT = {"name": "limit", "in": "query", "required": False,
          "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 25}}
_AFTER = {"name": "after", "in": "query", "required": False,
          "description": "next_cursor of the page before", "schema": {"type": "string"}}
_Q = {"name": "q", "in": "query", "required": False,
      "schema": {"type": "string", "maxLength": MAX_QUERY, "pattern": "^[^\x00-\x1f]*$"}}


def _enum_query(name: str, values) -> dict:
    return {"name": name, "in": "query", "required": False,
            "schema": {"enum": list(values)}}


def _error(status: int, description: str | None = None, code: str | None = None) -> dict:
    code = code or CODES[status][0]
    answer = {"description": description or CODES[status][1],
              "content": {"application/json": {"schema": _ref("Error"), "example": {
                  "error": {"code": code, "message": "A plain sentence."}}}}}
    if status == 429:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait",
                                             "required": True,
                                             "schema": {"type": "integer", "minimum": 0}}}
    return answer


def _ok(schema: str, description: str) -> dict:
    return {"description": description, "content": {"application/json": {
        "schema": _ref(schema)}}}


def _operation(operation_id: str, summary: str, responses: dict, *, scope: str = "read",
               parameters=(), body: str | None = None, errors=()) -> dict:
    answers = {**responses, "401": _error(401), "429": _error(429)}
    if scope == "provision":
        answers["403"] = _error(403, "The token's scope is read; this needs provision.")
    for status in errors:
        status = (status,) if isinstance(status, int) else status
        answers[str(status[0])] = _error(*status)
    operation = {"operationId": operation_id, "summary": summary,
                 "description": f"Scope: {scope}.", "security": [{"bearerToken": []}],
                 "parameters": list(parameters), "responses": answers}
    if body:
        operation["requestBody"] = {"required": True, "content": {"application/json": {
            "schema": _ref(body)}}}
        for status in (400, 413, 415):
            answers[str(status)] = _error(status)
    return operation


_GONE = (410, "The QR code is revoked", "qr_revoked")
# Google's Android Management API failed (refused, unreachable, over quota) while the portal
# asked it for an Android Device Policy enrollment token: not the request's fault, and nothing
# was saved, so the same request may be sent again later (unlike a 422).
_GOOGLE = (502, "Google did not make an Android Device Policy enrollment token: nothing saved; "
                "error.message is Google's failure as a sentence and error.fields names "
                "management (rows[i].management for a batch). The same request may succeed "
                "later", "google_failed")


def document(server_url: str) -> dict:
    image = lambda kind: {"description": "The QR code's image", "content": {  # noqa: E731
        kind: {"schema": {"type": "string", "format": "binary"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Admin API", "version": "1.0.0",
                 "description": "QR codes, devices and licenses for scripts and other "
                                "systems. Tokens: Admin → API tokens (scope read or "
                                "provision). Lists are paged by cursor: pass next_cursor as "
                                "?after=."},
        "servers": [{"url": f"{server_url}/api/admin/v1"}],
        "paths": {
            "/qr-codes": {
                "post": _operation(
                    "createQrCode", "Create a QR code (as the wizard does)",
                    {"201": _ok("QrCode", "The new QR code")}, scope="provision",
                    body="QrCodeRequest", errors=[(422, "Invalid fields, by name "
                                                        "(error.fields)"), _GOOGLE]),
                "get": _operation(
                    "listQrCodes", "The Pending list: QR codes, newest first",
                    {"200": _ok("QrCodeList", "One page")},
                    parameters=[_LIMIT, _AFTER, _Q,
                                _enum_query("state", listing.STATES + (listing.STALE,)),
                                _enum_query("option", [o.value for o in EnrollmentOption]),
                                _BATCH],
                    errors=[(422, "A bad limit, cursor or filter"),
                            (404, "No batch has the id given as ?batch=")])},
            "/qr-codes/{public_id}": {"get": _operation(
                "getQrCode", "One QR code", {"200": _ok("QrCode", "The QR code")},
                parameters=[_QR_ID], errors=[404])},
            "/qr-codes/{public_id}/qr.png": {"get": _operation(
                "getQrCodePng", "The QR code as PNG (it holds the OTP and Wi-Fi password)",
                {"200": image("image/png")}, scope="provision", parameters=[_QR_ID],
                errors=[404, _GONE])},
            "/qr-codes/{public_id}/qr.svg": {"get": _operation(
                "getQrCodeSvg", "The QR code as SVG (it holds the OTP and Wi-Fi password)",
                {"200": image("image/svg+xml")}, scope="provision", parameters=[_QR_ID],
                errors=[404, _GONE])},
            "/qr-codes/{public_id}/payload": {"get": _operation(
                "getQrCodePayload", "The payload the QR code carries, secrets included",
                {"200": _ok("Payload", "The payload")}, scope="provision",
                parameters=[_QR_ID], errors=[404, _GONE])},
            "/qr-codes/{public_id}/revoke": {"post": _operation(
                "revokeQrCode", "Revoke a QR code; its pending enrollments end",
                {"200": _ok("Revoked", "Revoked now")}, scope="provision",
                parameters=[_QR_ID],
                errors=[404, (409, "Already revoked", "already_revoked")])},
            "/qr-codes/{public_id}/pending": {"get": _operation(
                "listPendingEnrollments", "A QR code's pending enrollments, oldest first "
                "(the OTP only for a provision token)",
                {"200": _ok("PendingList", "One page")},
                parameters=[_QR_ID, _LIMIT, _AFTER],
                errors=[404, (422, "A bad limit or cursor")])},
            "/devices": {"get": _operation(
                "listDevices", "Devices, newest first; ?q= searches by prefix (serial "
                "number, model, IMEI, user name) or the QR ID",
                {"200": _ok("DeviceList", "One page")},
                parameters=[_LIMIT, _AFTER, _Q, _enum_query("state", fleet.FILTERS)],
                errors=[(422, "A bad limit, cursor or filter")])},
            "/devices/{device_id}": {"get": _operation(
                "getDevice", "One device", {"200": _ok("Device", "The device")},
                parameters=[_DEVICE_ID], errors=[404])},
            "/devices/{device_id}/retire": {"post": _operation(
                "retireDevice", "Retire a device; its license returns to the pool",
                {"200": _ok("Retired", "Retired now")}, scope="provision",
                parameters=[_DEVICE_ID],
                errors=[404, (409, "Already retired", "already_retired")])},
            "/batches": {"post": _operation(
                "createBatch", "Create a bulk batch of Automatic Provisioning QR codes from "
                "rows (all or nothing)",
                {"201": _ok("Batch", "Made at once"),
                 "202": _ok("Batch", "Being made in the background: poll links.self")},
                scope="provision", body="BatchRequest",
                errors=[(422, "Invalid fields or rows, by name (error.fields: rows[3].user)"),
                        (409, "Too few licenses now (taken meanwhile): nothing saved",
                         "batch_failed"), _GOOGLE])},
            "/batches/{batch_id}": {"get": _operation(
                "getBatch", "A bulk batch: its state and progress",
                {"200": _ok("Batch", "The batch")}, parameters=[_BATCH_ID], errors=[404])},
            "/licenses": {"get": _operation(
                "getLicenses", "The license figures",
                {"200": _ok("Licenses", "Total, used, reserved, remaining")})},
        },
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "qrp_… from Admin → API tokens"}}},
    }


@bp.get("/openapi.json")
@public
def openapi():
    return jsonify(document(current_app.config["PORTAL_PUBLIC_URL"]))
