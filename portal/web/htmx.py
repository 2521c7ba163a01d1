"""One helper decides page or fragment; responses vary on HX-Request."""
import json

from flask import make_response as flask_make_response
from flask import render_template

from portal.extensions import htmx


def wants_fragment() -> bool:
    """A plain htmx request; boosted navigations and history restores get the whole page."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render(page: str, fragment: str, /, **context) -> str:
    return render_template(fragment if wants_fragment() else page, **context)


def make_response(body, status: int = 200, trigger: dict | None = None):
    response = flask_make_response(body, status)
    if trigger:
        response.headers["HX-Trigger"] = json.dumps(trigger)
    return response


def add_vary(response):
    response.vary.add("HX-Request")
    return response
