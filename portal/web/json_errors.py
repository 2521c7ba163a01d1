"""The JSON APIs' one error shape: {"error": {"code", "message"}}, never HTML or a trace.

The Companion API (/api/v1, companion-api.md) and the Admin API (/api/admin/v1) both answer
with it; each passes its own table of codes and messages for Werkzeug's HTTP errors. The
Admin API adds "fields" ({field: message}) to a 422 validation error: an extension of the
shape that a client reading only code and message can ignore."""
from collections.abc import Mapping

from flask import jsonify
from werkzeug.exceptions import HTTPException

# The Companion contract's codes and messages (companion-api.md §2), exactly.
COMPANION_CODES = {
    400: ("invalid_request", "The request is not valid."),
    401: ("invalid_credentials", "The credentials are not valid."),
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is larger than 16 KiB."),
    415: ("unsupported_media_type", "The request body must be application/json."),
    429: ("rate_limited", "Too many failed attempts; try again later."),
}


def error_response(status: int, code: str, message: str, headers: dict | None = None,
                   fields: Mapping[str, str] | None = None):
    error = {"code": code, "message": message}
    if fields is not None:
        error["fields"] = dict(fields)
    response = jsonify(error=error)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def http_error_response(error: HTTPException, codes: Mapping[int, tuple[str, str]] = COMPANION_CODES):
    code, message = codes.get(error.code or 500, ("http_error", error.name + "."))
    headers = {}
    for name in ("Allow", "Retry-After"):  # 405's methods, 429's wait
        value = error.get_response().headers.get(name) if error.code in (405, 429) else None
        if value:
            headers[name] = value
    return error_response(error.code or 500, code, message, headers)


def internal_error_response():
    return error_response(500, "internal_error", "The server could not complete the request.")
