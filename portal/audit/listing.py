"""Listing and filtering the audit log, newest first, at any size.

Each filter has an index that leads with the filtered column and ends with (occurred_at, id),
the list's keyset, so a page of any filter is read from one index range.
"""
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import db

ORDER = (AuditEvent.occurred_at, AuditEvent.id)
OUTCOMES = ("success", "refused", "error")


@dataclass(frozen=True)
class AuditFilters:
    """Exact matches (None: any); `since` and `until` are whole UTC days, both included."""
    action: str | None = None
    outcome: str | None = None
    actor: str | None = None
    serial_number: str | None = None
    target: str | None = None
    since: date | None = None
    until: date | None = None


def events(filters: AuditFilters) -> sa.Select:
    """The audit events that pass every filter; to be paged by ORDER."""
    statement = sa.select(AuditEvent)
    for column, value in ((AuditEvent.action, filters.action),
                          (AuditEvent.outcome, filters.outcome),
                          (AuditEvent.actor, filters.actor),
                          (AuditEvent.serial_number, filters.serial_number),
                          (AuditEvent.target, filters.target)):
        if value:
            statement = statement.where(column == value)
    if filters.since:
        statement = statement.where(AuditEvent.occurred_at >= _midnight(filters.since))
    if filters.until:
        statement = statement.where(
            AuditEvent.occurred_at < _midnight(filters.until + timedelta(days=1)))
    return statement


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def known_actions() -> list[str]:
    """The distinct actions in the log, in order. A loose index scan (one index seek per
    action, not a read of every event): a recursive query asks for the next action after
    the last one found."""
    found = sa.select(sa.func.min(AuditEvent.action).label("action")).cte(
        "actions", recursive=True)
    following = sa.select(sa.func.min(AuditEvent.action)).where(
        AuditEvent.action > found.c.action).scalar_subquery()
    found = found.union_all(sa.select(following).where(found.c.action.is_not(None)))
    return list(db.session.scalars(sa.select(found.c.action).where(found.c.action.is_not(None))))
