"""Blueprint: the Management Console under /admin (HTML + htmx)."""
from flask import Blueprint

from portal.database import utcnow

bp = Blueprint("admin", __name__)


@bp.context_processor
def template_globals():
    return {"now": utcnow}


from portal.admin import audit, auth, companion, devices, localizations  # noqa: E402,F401
from portal.admin import mail, navigation, qr_codes, sign_in_settings  # noqa: E402,F401
from portal.admin import errors, ssp_settings, two_step, zero_touch  # noqa: E402,F401
from portal.admin import account, administrators, licenses, preflight, users  # noqa: E402,F401
from portal.admin import bulk  # noqa: E402,F401  (after zero_touch: its 413 handler defers there)
from portal.admin import printing  # noqa: E402,F401
from portal.admin import api_tokens  # noqa: E402,F401
from portal.admin import webhooks  # noqa: E402,F401
from portal.admin import network_profiles  # noqa: E402,F401
from portal.admin import amapi  # noqa: E402,F401
