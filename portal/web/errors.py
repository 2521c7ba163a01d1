"""Error pages per audience: each blueprint adds its own; browsers get the HTML pages."""
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.database import db


@dataclass(frozen=True)
class Audience:
    """Requests that get their own error answers. matches() decides from the request alone
    (a URL no view matched has no blueprint, only a path); each answer is a whole response."""
    matches: Callable[[], bool]
    http_error: Callable[[HTTPException], object]
    internal_error: Callable[[], object] | None = None


def add_audience(bp: Blueprint, audience: Audience) -> None:
    """Called by a blueprint's module: from its registration on, its requests' errors (also
    those raised before any view, such as a CSRF failure or an unknown URL) are its own."""
    bp.record_once(lambda state: state.app.extensions.setdefault(
        "error_audiences", []).append(audience))


def _audience() -> Audience | None:
    audiences = current_app.extensions.get("error_audiences", [])
    return next((audience for audience in audiences if audience.matches()), None)


def register(app: Flask) -> None:
    app.register_error_handler(CSRFError, _http_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _internal_error)


def _http_error(error: HTTPException):  # CSRFError too: it is a 400
    if audience := _audience():
        return audience.http_error(error)
    return default_http_error(error)


def default_http_error(error: HTTPException):
    """The plain HTML error page, for an audience that adds nothing of its own to this one."""
    if isinstance(error, CSRFError):
        return render_template("errors/csrf.html"), 400
    response = error.get_response()
    response.content_type = "text/html; charset=utf-8"
    template = f"errors/{error.code}.html" if error.code in (403, 404, 429) else \
        "errors/generic.html"
    response.data = render_template(template, error=error)
    return response


def _internal_error(error: Exception):
    try:
        db.session.rollback()
    except sa.exc.SQLAlchemyError:
        pass  # the connection died with the request (database restart): answer all the same
    if isinstance(error, sa.exc.OperationalError):
        # The database is away (restart, network): one line per request, not a traceback.
        cause = str(error.orig or error).strip().splitlines()[0][:200]
        current_app.logger.error("database unavailable on %s %s: %s", request.method,
                                 request.path, cause)
    else:
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    audience = _audience()
    if audience and audience.internal_error:
        return audience.internal_error()
    return render_template("errors/500.html"), 500
