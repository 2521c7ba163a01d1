"""One helper decides page or fragment; responses vary on HX-Request."""
import json

from flask import Response, flash, redirect, render_template, url_for
from flask import make_response as flask_make_response

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


def with_flash(body: str = "", status: int = 200):
    """An htmx answer: the body (if any), then the flash region out of band."""
    return make_response(body + render_template("_flash.html", oob=True), status)


def go(target: str):
    """After a successful POST that changes the whole view: 303 for browsers and boosted
    forms (post/redirect/get), HX-Redirect for a plain htmx request."""
    if wants_fragment():
        return Response(status=204, headers={"HX-Redirect": target})
    return redirect(target, 303)


def saved(message: str, endpoint: str, fragment: str | None = None, /, **context):
    """A saved form: 303 back to the page after a plain POST; htmx gets the fragment (if any)
    and the flash."""
    flash(message, "info")
    if not wants_fragment():
        return redirect(url_for(endpoint, **context.pop("url_values", {})), 303)
    return with_flash(render_template(fragment, **context) if fragment else "")


def refused(message: str, page: str, /, **context):
    """422 with the message: the whole page, or (htmx) only the flash, leaving in place what
    the request came from."""
    flash(message, "error")
    if not wants_fragment():
        return render_template(page, **context), 422
    response = with_flash("", 422)
    response.headers["HX-Reswap"] = "none"
    return response
