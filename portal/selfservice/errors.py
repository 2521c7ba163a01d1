"""Friendly, translated error pages for the phone: unknown or revoked QR codes and the like."""
from flask import g, render_template, request
from flask_babel import gettext as _
from flask_babel import refresh
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from portal.enrollment.self_service import qr_code_language
from portal.i18n import use_language
from portal.selfservice import bp
from portal.web.errors import Audience, add_audience


def _use_qr_language() -> None:
    """Errors raised before the view ran (CSRF, throttling) still speak the QR's language."""
    if g.get("portal_language_hint") or not request.args.get("qr_id"):
        return
    lang = qr_code_language(request.args["qr_id"])
    if lang:
        use_language(lang)
        refresh()


def error_page(error: HTTPException):
    """The error as the phone's page, in the QR code's language where it is known."""
    response = error.get_response()
    response.content_type = "text/html; charset=utf-8"
    response.data = _error_html(error)
    return response


def _error_html(error: HTTPException) -> str:
    _use_qr_language()
    if isinstance(error, CSRFError):
        return render_template(
            "selfservice/error.html", qr_code=None, title=_("Please try again"),
            text=_("The page was open for too long or cookies are blocked. Go back, reload the "
                   "page and try again."))
    title, text = {
        404: (_("QR code not found"),
              _("This QR code is not known to the portal. Please ask your IT department for a "
                "new one.")),
        403: (_("QR code no longer valid"),
              _("This QR code has been withdrawn by your IT department and cannot set up "
                "devices any more. Please ask them for a new one.")),
        429: (_("Too many attempts"),
              _("There were too many failed sign-in attempts. Please wait a few minutes and "
                "try again.")),
    }.get(error.code, (_("Something went wrong"),
                       _("The page could not be shown. Please go back and try again.")))
    return render_template("selfservice/error.html", title=title, text=text, qr_code=None)


add_audience(bp, Audience(matches=lambda: request.blueprint == bp.name, http_error=error_page))
