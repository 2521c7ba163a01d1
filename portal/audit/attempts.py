"""Attempts past a limit and malformed requests, in the audit log without letting a flood grow it.

Each kind of attempt from one address, with one code and target, is one row per 10-minute
window (its occurred_at is the window's start) that counts the attempts (`attempts`) and says
when the last came (details.last_at). Concurrent processes add to the same row: a partial
unique index and INSERT … ON CONFLICT DO UPDATE, on SQLite and PostgreSQL alike. A window keeps
rows for at most MAX_ADDRESSES (config AUDIT_ATTEMPT_ADDRESSES) addresses per kind; attempts from any further address are
counted in one row under the address "other addresses". So however many requests a flood
sends, from however many addresses, a window adds at most (MAX_ADDRESSES + 1) rows per kind,
code and target.
"""
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite

from portal.audit.models import AuditEvent
from portal.database import db, utcnow

THROTTLED = "attempt.throttled"
MALFORMED = "attempt.malformed"
ACTIONS = (THROTTLED, MALFORMED)
WINDOW = timedelta(minutes=10)
MAX_ADDRESSES = 100
OTHER_ADDRESSES = "other addresses"

_TABLE = AuditEvent.__table__
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def window_start(moment: datetime) -> datetime:
    """The start of the window `moment` falls in (windows start on the hour and every 10 min)."""
    return moment.replace(minute=moment.minute - moment.minute % 10, second=0, microsecond=0)


def note(action: str, *, actor_type: str, client_address: str, code: str, target: str,
         now: datetime | None = None) -> None:
    """Count one attempt in its window's row (created on the first); the caller commits."""
    now = now or utcnow()
    start = window_start(now)
    address = (client_address or "unknown")[:64]
    if not _has_row(action, start, address, code, target) and _addresses(action, start) \
            >= current_app.config.get("AUDIT_ATTEMPT_ADDRESSES", MAX_ADDRESSES):
        address = OTHER_ADDRESSES
    insert = _INSERTS[db.session.get_bind().dialect.name](_TABLE).values(
        occurred_at=start, actor_type=actor_type, action=action, outcome="refused", code=code,
        target=target[:256], client_address=address, attempts=1,
        details={"last_at": _iso(now)})
    db.session.execute(insert.on_conflict_do_update(
        index_elements=["action", "occurred_at", "client_address", "code", "target"],
        index_where=_TABLE.c.attempts.is_not(None),
        set_={"attempts": _TABLE.c.attempts + 1, "details": insert.excluded.details}))


def _has_row(action, start, address, code, target) -> bool:
    return db.session.scalar(sa.select(sa.literal(1)).where(
        _TABLE.c.action == action, _TABLE.c.occurred_at == start,
        _TABLE.c.client_address == address, _TABLE.c.code == code, _TABLE.c.target == target,
        _TABLE.c.attempts.is_not(None))) is not None


def _addresses(action, start) -> int:
    """The rows this kind has in the window (its index: action, occurred_at, id)."""
    return db.session.scalar(sa.select(sa.func.count()).where(
        _TABLE.c.action == action, _TABLE.c.occurred_at == start,
        _TABLE.c.attempts.is_not(None)))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
