"""Blueprint: the Companion's JSON API under /api/v1 (companion-api.md §2)."""
from flask import Blueprint

bp = Blueprint("api", __name__)

from portal.api import enrollments, errors, openapi  # noqa: E402,F401
