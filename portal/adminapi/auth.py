"""Bearer tokens, scopes, throttling per token and the audit row of every call.

Every request under /api/admin/v1 except the OpenAPI document carries
`Authorization: Bearer qrp_…`. A missing, malformed, unknown, wrong, expired or revoked token
gets the same 401 (no oracle). A view needs scope `read` unless marked `@needs(PROVISION)`;
a `read` token gets 403 there. Each token has its own budget of ADMIN_API_LIMIT requests,
counted in Flask-Limiter's storage (memory, or the Redis every worker shares) under the
token's id; past it, 429 with Retry-After. Every authenticated call, reads too, is one audit
row by the token's name (api.call: method, path, status), and sets the token's last use."""
from dataclasses import dataclass

import sqlalchemy as sa
from flask import abort, current_app, g, request
from werkzeug.exceptions import TooManyRequests

from portal.accounts import api_tokens
from portal.adminapi import bp
from portal.database import db
from portal.throttle import fail
from portal.vocabulary import ApiScope

MAX_BODY = 16 * 1024
_LIMIT = ("ADMIN_API_LIMIT", "admin-api")


@dataclass(frozen=True)
class Caller:
    token_id: int
    name: str
    scope: str

    @property
    def actor(self) -> tuple[str, str]:
        """(actor_type, actor) for the domain's audit rows."""
        return "api_token", self.name

    @property
    def provisions(self) -> bool:
        return self.scope == ApiScope.PROVISION


def needs(scope: ApiScope):
    """The scope a view needs (views without it need `read`)."""
    def decorator(view):
        view.required_scope = scope
        return view
    return decorator


def accepts_body(max_bytes: int):
    """A view whose request body may be larger than MAX_BODY (a bulk batch's rows)."""
    def decorator(view):
        view.max_body = max_bytes
        return view
    return decorator


def public(view):
    """A view anyone may read without a token (the OpenAPI document)."""
    view.public = True
    return view


def caller() -> Caller:
    return g.admin_api_caller


def _bearer() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@bp.before_request
def authenticate():
    view = current_app.view_functions.get(request.endpoint)
    request.max_content_length = getattr(view, "max_body", MAX_BODY)
    if view is None or getattr(view, "public", False):
        return
    token = api_tokens.authenticate(_bearer())
    if token is None:
        abort(401)
    g.admin_api_caller = Caller(token.id, token.name, token.scope)
    db.session.rollback()  # the look-up's read transaction ends here (SQLite: no lock kept)
    if getattr(view, "required_scope", ApiScope.READ) == ApiScope.PROVISION and \
            token.scope != ApiScope.PROVISION:
        abort(403)
    retry_after = fail(*_LIMIT, token.public_id)
    if retry_after is not None:
        raise TooManyRequests(retry_after=retry_after)


@bp.after_request
def audit(response):
    called = g.pop("admin_api_caller", None)
    if called is None:
        return response
    try:
        db.session.rollback()  # whatever the view left open; its own writes are committed
        api_tokens.record_call(called.token_id, called.name, method=request.method,
                               path=request.path[:200], status=response.status_code,
                               target=(request.view_args or {}).get("public_id")
                               or (request.view_args or {}).get("device_id")
                               or (request.view_args or {}).get("batch_id"))
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        current_app.logger.warning("Admin API call by token %s not audited: %s", called.name,
                                   str(getattr(error, "orig", None) or error).splitlines()[0][:200])
    return response
