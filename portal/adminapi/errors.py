"""The Admin API's errors, in the Companion API's shape (portal.web.json_errors), for every
URL under /api/admin/ (also one no view matched, an edited one): never HTML, never a trace.
A 422 names each field it refuses in "fields"; a 502 (Google's Android Management API failed an
Android Device Policy QR code) names "management" there, with Google's failure as a sentence."""
from flask import request
from werkzeug.exceptions import HTTPException

from portal.adminapi import bp
from portal.errors import DomainError
from portal.web.errors import Audience, add_audience
from portal.web.json_errors import error_response, http_error_response, internal_error_response

CODES = {
    400: ("invalid_request", "The request is not valid."),
    401: ("invalid_token", "The token is missing, wrong, expired or revoked."),
    403: ("insufficient_scope", "This token's scope does not allow this request."),
    404: ("not_found", "There is no such resource."),
    405: ("method_not_allowed", "This method is not allowed here."),
    409: ("conflict", "The request conflicts with the resource's state."),
    410: ("gone", "The resource is revoked."),
    413: ("payload_too_large", "The request body is too large: at most 16 KiB (1 MiB for "
                               "POST /batches)."),
    415: ("unsupported_media_type", "The request body must be application/json."),
    422: ("validation_failed", "The request has invalid fields."),
    429: ("rate_limited", "Too many requests with this token; try again later."),
    502: ("google_failed", "Google's Android Management API did not make the enrollment "
                           "token; nothing was saved. Try again later."),
}


class ApiError(Exception):
    """An answer other than the table's: its own code and message (409 already revoked), and
    the fields it is about (502: Google's failure, on "management")."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields


class ValidationFailed(DomainError):
    """422: .errors maps the API's field names (network.ssid, user, …) to messages."""


def admin_http_error(error: HTTPException):
    response = http_error_response(error, CODES)
    if error.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="admin-api"'
    return response


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException):
    return admin_http_error(error)


@bp.errorhandler(ApiError)
def _api_error(error: ApiError):
    return error_response(error.status, error.code, error.message, fields=error.fields)


@bp.errorhandler(ValidationFailed)
def _validation_failed(error: ValidationFailed):
    return error_response(422, "validation_failed", error.message, fields=error.errors)


def _admin_api() -> bool:
    return request.path == "/api/admin" or request.path.startswith("/api/admin/")


add_audience(bp, Audience(matches=_admin_api, http_error=admin_http_error,
                          internal_error=internal_error_response))
