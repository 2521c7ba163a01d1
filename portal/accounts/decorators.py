"""Role checks for the admin console.

Every console view says which role may open it: `admin_required` (every active admin,
Administrator and Helpdesk) or `administrator_required` (Administrators only). The role is
kept on the view as `required_role`, so the menu shows only what the signed-in admin may use
(`may_open`) and the security sweep can tell a route that forgot its check."""
from functools import wraps

from flask import abort, current_app
from flask_login import current_user, login_required

from portal.accounts.models import AdminUser
from portal.extensions import login_manager
from portal.vocabulary import AdminRole


def _requires(role: AdminRole | None):
    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            admin = current_user._get_current_object()
            if not isinstance(admin, AdminUser):
                return login_manager.unauthorized()
            if role is not None and admin.role != role:
                abort(403)
            return view(*args, **kwargs)
        wrapped.required_role = role
        return wrapped
    return decorator


admin_required = _requires(None)
"""Only a signed-in, active admin of any role; everyone else is sent to the admin sign-in."""

administrator_required = _requires(AdminRole.ADMINISTRATOR)
"""Only an Administrator; a Helpdesk admin gets 403, everyone else the admin sign-in."""


def may_open(endpoint: str, admin=None) -> bool:
    """Whether the admin (the signed-in one by default) may open the endpoint's view."""
    admin = current_user if admin is None else admin
    view = current_app.view_functions.get(endpoint)
    role = getattr(view, "required_role", None)
    return role is None or getattr(admin, "role", None) == role


def is_administrator(admin=None) -> bool:
    admin = current_user if admin is None else admin
    return getattr(admin, "role", None) == AdminRole.ADMINISTRATOR
