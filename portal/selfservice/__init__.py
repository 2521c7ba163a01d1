"""Blueprint: the Self Service Portal the Companion opens on the device, /ssp."""
from flask import Blueprint

bp = Blueprint("selfservice", __name__)

from portal.selfservice import sign_in  # noqa: E402,F401
