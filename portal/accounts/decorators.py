"""Role checks for the admin console."""
from functools import wraps

from flask_login import current_user, login_required

from portal.accounts.models import AdminUser
from portal.extensions import login_manager


def admin_required(view):
    """Only a signed-in, active admin; everyone else is sent to the admin sign-in."""
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not isinstance(current_user._get_current_object(), AdminUser):
            return login_manager.unauthorized()
        return view(*args, **kwargs)
    return wrapped
