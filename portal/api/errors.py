"""Every API error is contract JSON: {"error": {"code", "message"}}, never HTML or a trace."""
from flask import jsonify, request
from werkzeug.exceptions import HTTPException

from portal.api import bp
from portal.web.errors import Audience, add_audience

_CODES = {
    400: ("invalid_request", "The request is not valid."),
    401: ("invalid_credentials", "The credentials are not valid."),
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    413: ("payload_too_large", "The request body is larger than 16 KiB."),
    415: ("unsupported_media_type", "The request body must be application/json."),
    429: ("rate_limited", "Too many failed attempts; try again later."),
}


def error_response(status: int, code: str, message: str, headers: dict | None = None):
    response = jsonify(error={"code": code, "message": message})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def http_error_response(error: HTTPException):
    code, message = _CODES.get(error.code or 500, ("http_error", error.name + "."))
    headers = {}
    for name in ("Allow", "Retry-After"):  # 405's methods, 429's wait
        value = error.get_response().headers.get(name) if error.code in (405, 429) else None
        if value:
            headers[name] = value
    return error_response(error.code or 500, code, message, headers)


def internal_error_response():
    return error_response(500, "internal_error", "The server could not complete the request.")


@bp.errorhandler(HTTPException)
def api_http_error(error: HTTPException):
    return http_error_response(error)


def _speaks_contract() -> bool:
    # Also URLs under /api/ that no view matched, and the health check the same clients poll.
    return request.path.startswith("/api/") or request.path == "/healthz"


add_audience(bp, Audience(matches=_speaks_contract, http_error=http_error_response,
                          internal_error=internal_error_response))
