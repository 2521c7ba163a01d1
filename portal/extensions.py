"""Flask extensions, created unbound and bound in create_app with init_app."""
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from portal.database import db
from portal.web.addresses import client_address

migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
htmx = HTMX()
limiter = Limiter(key_func=client_address, strategy="moving-window")

__all__ = ["db", "migrate", "login_manager", "csrf", "babel", "htmx", "limiter"]
