"""Sign-in throttling as the admin sees it: who is locked out, and lifting it (Unlock).

The sign-in routes count failed attempts per user name with Flask-Limiter (admin: the console's
sign-in, portal/admin/auth.py; end users: the Self Service Portal's, portal/selfservice/
sign_in.py). The keys below are the ones those routes count under; reading them writes
nothing, so a list may show "Locked out" on a GET."""
from dataclasses import dataclass

from flask import current_app
from limits import parse_many

from portal.audit.log import record
from portal.database import db
from portal.extensions import limiter


@dataclass(frozen=True)
class Throttle:
    prefix: str    # the route's key_func: prefix + the user name as typed, lower case
    scope: str     # the route's endpoint, Flask-Limiter's scope of a route limit
    setting: str   # the config key of the limit


ADMIN = Throttle("admin-login:", "admin.login", "ADMIN_LOGIN_LIMIT")
USER = Throttle("ssp-sign-in:", "selfservice.sign_in", "SSP_SIGN_IN_LIMIT")


def _identifiers(throttle: Throttle, username: str) -> list[str]:
    key = throttle.prefix + (username or "").strip().lower()[:64]
    prefix = getattr(limiter, "_key_prefix", "")
    return [prefix, key, throttle.scope] if prefix else [key, throttle.scope]


def _limits(throttle: Throttle):
    return parse_many(current_app.config[throttle.setting])


def is_locked_out(throttle: Throttle, username: str) -> bool:
    """Whether the next sign-in under this name would be refused by throttling; reads only."""
    if not limiter.enabled:
        return False
    identifiers = _identifiers(throttle, username)
    try:
        return any(not limiter.limiter.test(item, *identifiers) for item in _limits(throttle))
    except Exception:  # storage down: the sign-in itself lets people through (swallow errors)
        return False


def unlock(throttle: Throttle, username: str, *, kind: str, actor: str) -> None:
    """Forget the failed sign-ins counted against this user name; audited, commits."""
    identifiers = _identifiers(throttle, username)
    for item in _limits(throttle):
        limiter.limiter.clear(item, *identifiers)
    record(f"{kind}.unlock", actor_type="admin", actor=actor, target=username)
    db.session.commit()
