"""HTML error pages for browsers; the API registers its own JSON handlers."""
import sqlalchemy as sa
from flask import Flask, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.database import db


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/healthz"


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        if request.blueprint == "selfservice":
            from portal.selfservice.errors import error_page
            return error_page(error), 400
        return render_template("errors/csrf.html"), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        if _wants_json():
            from portal.api.errors import http_error_response
            return http_error_response(error)
        response = error.get_response()
        response.content_type = "text/html; charset=utf-8"
        if request.blueprint == "selfservice":
            from portal.selfservice.errors import error_page
            response.data = error_page(error)
            return response
        template = f"errors/{error.code}.html" if error.code in (403, 404, 429) else \
            "errors/generic.html"
        response.data = render_template(template, error=error)
        return response

    @app.errorhandler(Exception)
    def internal_error(error: Exception):
        try:
            db.session.rollback()
        except sa.exc.SQLAlchemyError:
            pass  # the connection died with the request (database restart): answer all the same
        if isinstance(error, sa.exc.OperationalError):
            # The database is away (restart, network): one line per request, not a traceback.
            cause = str(error.orig or error).strip().splitlines()[0][:200]
            app.logger.error("database unavailable on %s %s: %s", request.method, request.path,
                             cause)
        else:
            app.logger.exception("unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            from portal.api.errors import internal_error_response
            return internal_error_response()
        return render_template("errors/500.html"), 500
