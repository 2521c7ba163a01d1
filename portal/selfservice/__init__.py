"""Blueprint: the Self Service Portal the Companion opens on the device, /ssp."""
from flask import Blueprint, request, session
from flask_babel import get_locale

from portal.i18n import LANGUAGE_NAMES, supported_language

bp = Blueprint("selfservice", __name__)


@bp.before_request
def remember_language():
    """?lang=de on any page switches the portal's language for the rest of the visit."""
    language = supported_language(request.args.get("lang"))
    if language:
        session["lang"] = language


@bp.context_processor
def languages():
    return {"languages": LANGUAGE_NAMES, "page_lang": str(get_locale() or "en")}


from portal.selfservice import azure, errors, sign_in  # noqa: E402,F401
