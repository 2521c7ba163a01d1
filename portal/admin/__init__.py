"""Blueprint: the Management Console under /admin (HTML + htmx)."""
from flask import Blueprint

from portal.database import utcnow

bp = Blueprint("admin", __name__)


@bp.context_processor
def template_globals():
    return {"now": utcnow}


from portal.admin import audit, auth, devices, mail, qr_codes, settings  # noqa: E402,F401
from portal.admin import sign_in_settings  # noqa: E402,F401
from portal.admin import navigation  # noqa: E402,F401
