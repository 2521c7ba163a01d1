"""Blueprint: the Management Console under /admin (HTML + htmx)."""
from flask import Blueprint

bp = Blueprint("admin", __name__)

from portal.admin import auth, devices  # noqa: E402,F401
