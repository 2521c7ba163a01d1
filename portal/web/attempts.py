"""Attempts past a limit (429 anywhere) and malformed API and sign-in requests go into the
audit log, counted per address and window (portal/audit/attempts.py), whichever route refused
them and whether a view or Flask-Limiter did."""
import sqlalchemy as sa
from flask import Flask, current_app, request

from portal.audit import attempts
from portal.database import db
from portal.extensions import client_address

# Malformed: what the Companion API refuses before looking at a credential, and a sign-in
# form posted without a valid CSRF token (a script, not a person).
_API_MALFORMED = {400, 404, 405, 413, 415}
_SIGN_INS = {"admin.login", "admin.sign_in_code", "selfservice.sign_in"}


def _kind(response) -> tuple[str, str, str] | None:
    """(action, actor type, code) for a response worth noting, or None."""
    api = request.path.startswith("/api/")
    if response.status_code == 429:
        return attempts.THROTTLED, "device" if api else "user", "rate_limited"
    if api and response.status_code in _API_MALFORMED:
        body = response.get_json(silent=True) or {}
        code = (body.get("error") or {}).get("code") if isinstance(body, dict) else None
        return attempts.MALFORMED, "device", str(code or response.status_code)[:64]
    if request.endpoint in _SIGN_INS and request.method == "POST" \
            and response.status_code == 400:
        return attempts.MALFORMED, "user", "csrf_failed"
    return None


def _note(response):
    kind = _kind(response)
    if kind is None:
        return response
    action, actor_type, code = kind
    # A URL no route matched is not named: a scanner's thousand paths are one row.
    target = request.endpoint or "unknown URL"
    try:
        db.session.rollback()  # whatever the refused request left unsaved stays unsaved
        attempts.note(action, actor_type=actor_type, client_address=client_address(),
                      code=code, target=target)
        db.session.commit()
    except sa.exc.SQLAlchemyError as error:  # the answer goes out all the same
        db.session.rollback()
        current_app.logger.warning("attempt not audited (%s): %s", action,
                                   str(getattr(error, "orig", None) or error).splitlines()[0][:200])
    return response


def register(app: Flask) -> None:
    app.after_request(_note)
