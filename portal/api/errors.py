"""Every API error is contract JSON: {"error": {"code", "message"}}, never HTML or a trace
(the shape and the contract's codes: portal.web.json_errors)."""
from flask import request
from werkzeug.exceptions import HTTPException

from portal.api import bp
from portal.web.errors import Audience, add_audience
from portal.web.json_errors import http_error_response, internal_error_response


@bp.errorhandler(HTTPException)
def api_http_error(error: HTTPException):
    return http_error_response(error)


def _speaks_contract() -> bool:
    # Also URLs under /api/ that no view matched, and the health check the same clients poll;
    # not the Admin API's (/api/admin/), which answers in its own words.
    return (request.path.startswith("/api/") and not request.path.startswith("/api/admin/")) \
        or request.path == "/healthz"


add_audience(bp, Audience(matches=_speaks_contract, http_error=http_error_response,
                          internal_error=internal_error_response))
