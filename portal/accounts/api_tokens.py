"""Admin API tokens: created by an Administrator, shown once, stored as a keyed hash, revocable.

A token reads `qrp_<id>_<secret>`: the 16 hexadecimal characters of its id find the row, the
secret (256 random bits, URL-safe base64) is kept only as HMAC-SHA256 under a key derived from
SECRET_KEY (portal.vault.lookup_hash) and compared with hmac.compare_digest. Neither the token
nor its hash is ever logged or audited; the audit log names a token by its name.
"""
import re
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from portal import vault
from portal.accounts.errors import AccountError
from portal.accounts.models import ApiToken
from portal.accounts.validation import one_line_error
from portal.audit.log import record, write
from portal.database import db, utcnow
from portal.vocabulary import ApiScope

PREFIX = "qrp"
_PURPOSE = "admin-api-token"
_SHAPE = re.compile(r"qrp_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
MAX_NAME_LENGTH = 100
EXPIRY_DAYS = (30, 90, 365)   # the choices offered; or a date up to MAX_DAYS ahead
DEFAULT_EXPIRY_DAYS = 90
MAX_DAYS = 730
# What a wrong, unknown, expired or revoked token is told alike: no oracle.
_DUMMY_HASH = "0" * 64


class ApiTokenError(AccountError):
    """A token that cannot be created or revoked as asked; .errors names the field."""


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    text: str  # the whole token, shown once and never again


def name_error(name: str | None) -> str | None:
    return one_line_error(name, max_length=MAX_NAME_LENGTH, empty="Enter a name for the token, "
                          "such as the system that uses it.")


def expiry(*, days: int | None = None, on: date | None = None,
           now: datetime | None = None) -> datetime | str:
    """When a token made now expires: after `days` (one of EXPIRY_DAYS), or at the end of the
    day `on` (UTC; tomorrow to MAX_DAYS ahead). A message (str) when neither fits."""
    now = now or utcnow()
    if on is not None:
        today = now.date()
        if on <= today:
            return "Choose a date after today."
        if on > today + timedelta(days=MAX_DAYS):
            return f"Choose a date at most {MAX_DAYS} days (two years) ahead."
        return datetime.combine(on + timedelta(days=1), time(), tzinfo=timezone.utc)
    if days not in EXPIRY_DAYS:
        return "Choose 30, 90 or 365 days, or a date."
    return now + timedelta(days=days)


def create_token(name: str, scope: str, *, created_by: str, days: int | None = None,
                 on: date | None = None) -> NewToken:
    """Create a token; raises ApiTokenError with every problem by field (name, scope,
    expires). The returned text is the only copy of the token."""
    name = (name or "").strip()
    errors = {}
    if message := name_error(name):
        errors["name"] = message
    elif find_by_name(name) is not None:
        errors["name"] = f"A token named '{name}' already exists: choose another name."
    if scope not in tuple(ApiScope):
        errors["scope"] = "Choose Read or Provision."
    expires_at = expiry(days=days, on=on)
    if isinstance(expires_at, str):
        errors["expires_on" if on is not None else "expires_in"] = expires_at
    if errors:
        raise ApiTokenError(errors)
    public_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    token = ApiToken(public_id=public_id, name=name, name_key=name.lower(), scope=scope,
                     secret_hash=vault.lookup_hash(secret, _PURPOSE), expires_at=expires_at,
                     created_at=utcnow(), created_by=created_by)
    db.session.add(token)
    record("api_token.create", actor_type="admin", actor=created_by, target=name,
           scope=scope, expires_at=expires_at.isoformat())
    try:
        db.session.commit()
    except sa.exc.IntegrityError:  # the same name saved a moment ago by another admin
        db.session.rollback()
        raise ApiTokenError({"name": f"A token named '{name}' already exists: choose "
                                     "another name."}) from None
    return NewToken(token, f"{PREFIX}_{public_id}_{secret}")


def authenticate(text: str | None, now: datetime | None = None) -> ApiToken | None:
    """The active token `text` is; None when it is malformed, unknown, wrong, expired or
    revoked (all alike). The secret is compared in constant time even for an unknown id."""
    match = _SHAPE.fullmatch(text or "")
    if match is None:
        return None
    public_id, secret = match.groups()
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.public_id == public_id))
    right = vault.matches(secret, token.secret_hash if token else _DUMMY_HASH, _PURPOSE)
    if token is None or not right or token.state_at(now or utcnow()) != "active":
        return None
    return token


def all_tokens() -> list[ApiToken]:
    """Every token, newest first (revoked and expired ones too: their history)."""
    return db.session.scalars(sa.select(ApiToken)
                              .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())).all()


def get(token_id: int) -> ApiToken | None:
    return db.session.get(ApiToken, token_id)


def find_by_name(name: str) -> ApiToken | None:
    return db.session.scalar(sa.select(ApiToken).where(ApiToken.name_key == name.strip().lower()))


def revoke_token(token: ApiToken, *, revoked_by: str) -> None:
    """Revoke from now on (a conditional update: once); raises ApiTokenError when it was
    revoked already."""
    changed = db.session.execute(
        sa.update(ApiToken).where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_by=revoked_by)
        .execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        db.session.rollback()
        raise ApiTokenError(f"The token {token.name} was already revoked.")
    record("api_token.revoke", actor_type="admin", actor=revoked_by, target=token.name)
    db.session.commit()
    db.session.refresh(token)


def record_call(token_id: int, token_name: str, *, method: str, path: str, status: int,
                target: str | None = None) -> None:
    """One audit row for an Admin API call (reads too), by the token's name, and the token's
    last use; committed. Never the token, a payload or an OTP: the method, the path (ids
    only), the answer's status."""
    now = utcnow()
    db.session.execute(sa.update(ApiToken).where(ApiToken.id == token_id)
                       .values(last_used_at=now).execution_options(synchronize_session=False))
    write("api.call", actor_type="api_token", actor=token_name, target=target,
          outcome="success" if status < 400 else "refused" if status < 500 else "error", code=str(status),
          method=method, path=path)
    db.session.commit()
