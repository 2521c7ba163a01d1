"""Flask extensions, created unbound and bound in create_app with init_app."""
from flask import current_app, request
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from portal.database import db


def client_address() -> str:
    """The address of the client, as the last trusted proxy saw it.

    With TRUSTED_PROXIES = n, the n right-most X-Forwarded-For entries were appended by our own
    proxies; the entry just left of them is the client. Anything further left is client-supplied
    and ignored, so a device cannot spoof its way past throttling.
    """
    trusted = current_app.config.get("TRUSTED_PROXIES", 0)
    remote = request.remote_addr or "unknown"
    if trusted <= 0:
        return remote
    forwarded = [part.strip() for part in request.headers.get("X-Forwarded-For", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < trusted:
        return remote
    return forwarded[-trusted]


migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
limiter = Limiter(key_func=client_address, strategy="moving-window")

__all__ = ["db", "migrate", "login_manager", "csrf", "babel", "htmx", "limiter"]
