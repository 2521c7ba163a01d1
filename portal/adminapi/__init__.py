"""Blueprint: the Admin API under /api/admin/v1, for scripts and other systems (bearer tokens
of Admin → API tokens; scopes read and provision)."""
from flask import Blueprint

bp = Blueprint("adminapi", __name__)

from portal.adminapi import auth, errors, openapi, views  # noqa: E402,F401
