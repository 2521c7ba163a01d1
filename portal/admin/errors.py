"""The console's own error page: a signed-in admin refused a page (403) keeps the console's
menu, which shows what their role may open."""
from flask import render_template, request
from flask_login import current_user
from werkzeug.exceptions import HTTPException

from portal.accounts.models import AdminUser
from portal.admin import bp
from portal.web.errors import Audience, add_audience, default_http_error


def _signed_in_admin() -> bool:
    return request.blueprint == bp.name and isinstance(current_user._get_current_object(),
                                                       AdminUser)


def http_error(error: HTTPException):
    if error.code == 403:
        return render_template("admin/forbidden.html", error=error), 403
    return default_http_error(error)


add_audience(bp, Audience(matches=_signed_in_admin, http_error=http_error))
