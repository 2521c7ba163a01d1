"""Flask-Login wiring for admins, with an htmx-aware unauthorized handler."""
from urllib.parse import unquote

from flask import Response, redirect, request, url_for

from portal.database import db
from portal.extensions import htmx


def safe_next(target: str | None, default: str) -> str:
    """Only a path on this site: no scheme, no host, no `//` or `\\` tricks, even once decoded."""
    if not target:
        return default
    target = target.strip()
    # Checking the decoded form too keeps `/%2F%2Fevil` or `/%0d%0a...` from reaching a proxy
    # or a later redirect that decodes it.
    if not (_is_local_path(target) and _is_local_path(unquote(target))):
        return default
    return target


def _is_local_path(path: str) -> bool:
    # A path starting with one "/" has no scheme and no host; "//" and "\\" would start one.
    return (path.startswith("/") and not path.startswith("//") and "\\" not in path
            and not any(ord(c) < 32 or ord(c) == 127 for c in path))


def configure_login(app, login_manager) -> None:
    from portal.accounts.models import AdminUser

    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_admin(user_id: str):
        if not user_id.isdigit():
            return None
        admin = db.session.get(AdminUser, int(user_id))
        return admin if admin is not None and admin.active else None

    @login_manager.unauthorized_handler
    def unauthorized():
        login_url = url_for("admin.login", next=request.full_path.rstrip("?"))
        if htmx:
            # A 302 would be followed invisibly and the login page swapped into a fragment.
            return Response(status=401, headers={"HX-Redirect": login_url})
        return redirect(login_url)
