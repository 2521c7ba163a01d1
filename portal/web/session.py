"""Flask-Login wiring for admins, with an htmx-aware unauthorized handler."""
from urllib.parse import unquote

from flask import Response, current_app, g, redirect, request, session, url_for
from flask_login import user_logged_in

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


def _new_csrf_token(sender, **extra) -> None:
    # Whoever planted the session before sign-in (session fixation) knows its CSRF token: the
    # signed-in session gets a token of its own, made when the next page asks for one.
    name = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
    session.pop(name, None)
    g.pop(name, None)


def configure_login(app, login_manager) -> None:
    from portal.accounts.models import AdminUser

    user_logged_in.connect(_new_csrf_token)  # once per process: blinker ignores repeats
    login_manager.init_app(app)
    login_manager.login_view = "admin.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_admin(session_id: str):
        # "<id>.<epoch>" (AdminUser.get_id): a session from before the admin's last sign-out
        # carries an older epoch and is refused, as is one from before epochs existed.
        admin_id, _, epoch = session_id.partition(".")
        if not (admin_id.isdigit() and epoch.isdigit()):
            return None
        admin = db.session.get(AdminUser, int(admin_id))
        if admin is None or not admin.active or admin.session_epoch != int(epoch):
            return None
        return admin

    @login_manager.unauthorized_handler
    def unauthorized():
        login_url = url_for("admin.login", next=request.full_path.rstrip("?"))
        if htmx:
            # A 302 would be followed invisibly and the login page swapped into a fragment.
            return Response(status=401, headers={"HX-Redirect": login_url})
        return redirect(login_url)
