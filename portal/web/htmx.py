"""One helper decides page or fragment; responses vary on HX-Request."""
import json
from collections.abc import Sequence

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


def saved(message: str | Sequence[tuple[str, str]], endpoint: str, fragment: str | None = None,
          /, *, quiet: bool = False, **context):
    """A saved form: 303 back to the page after a plain POST; htmx gets the fragment (if any)
    and the flash. The message is one text or (text, category) pairs. quiet: the fragment
    shows the outcome itself, so only a plain POST's page flashes it."""
    if not wants_fragment():
        _flash(message)
        return redirect(url_for(endpoint, **context.pop("url_values", {})), 303)
    body = render_template(fragment, **context) if fragment else ""
    if quiet:
        return make_response(body)
    _flash(message)
    return with_flash(body)


def refused(message: str, page: str | None = None, /, *, back: str | None = None, **context):
    """422 with the message: the whole page, or (htmx) only the flash, leaving in place what
    the request came from. back: a plain POST goes there (303) instead, to read the message."""
    flash(message, "error")
    if not wants_fragment():
        return redirect(back, 303) if back else (render_template(page, **context), 422)
    response = with_flash("", 422)
    response.headers["HX-Reswap"] = "none"
    return response


def _flash(message: str | Sequence[tuple[str, str]]) -> None:
    for text, category in [(message, "info")] if isinstance(message, str) else message:
        flash(text, category)
