"""Listing and filtering the audit log, newest first, at any size.

Each filter has an index that leads with the filtered column and ends with (occurred_at, id),
the list's keyset, so a page of any filter is read from one index range. The actor and the
serial number match by prefix, without regard to case: their indexes lead with the
lower-cased value (ix_audit_events_actor_prefix, …), read as a range.
"""
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import db

ORDER = (AuditEvent.occurred_at, AuditEvent.id)
OUTCOMES = ("success", "refused", "error")


@dataclass(frozen=True)
class AuditFilters:
    """Matches (None: any): actor and serial_number by prefix, without regard to case, the
    others exactly; `since` and `until` are whole UTC days, both included."""
    action: str | tuple[str, ...] | None = None  # a tuple: any of these actions
    outcome: str | None = None
    actor: str | None = None
    serial_number: str | None = None
    target: str | None = None
    since: date | None = None
    until: date | None = None


def events(filters: AuditFilters) -> sa.Select:
    """The audit events that pass every filter; to be paged by ORDER."""
    statement = sa.select(AuditEvent)
    if isinstance(filters.action, tuple):
        statement = statement.where(AuditEvent.action.in_(filters.action))
    for column, value in ((AuditEvent.action, filters.action if isinstance(filters.action, str)
                           else None),
                          (AuditEvent.outcome, filters.outcome),
                          (AuditEvent.target, filters.target)):
        if value:
            statement = statement.where(column == value)
    for column, value in ((AuditEvent.actor, filters.actor),
                          (AuditEvent.serial_number, filters.serial_number)):
        if value:
            statement = statement.where(starts_with(column, value))
    if filters.since:
        statement = statement.where(AuditEvent.occurred_at >= _midnight(filters.since))
    if filters.until and filters.until < date.max:  # date.max: no day after it to stop at
        statement = statement.where(
            AuditEvent.occurred_at < _midnight(filters.until + timedelta(days=1)))
    return statement


def starts_with(column, prefix: str) -> sa.ColumnElement[bool]:
    """lower(column) starts with the prefix, lower-cased: a condition its prefix index reads.

    When one value alone starts so (an actor's whole name, most often: the table links to
    it), the condition is that value, whose index range is already in keyset order; three
    index seeks tell (one value, none below it, none above it). Several values need their
    rows sorted."""
    lowered = sa.func.lower(column)
    condition = _prefix_range(lowered, prefix)
    found = db.session.scalar(sa.select(lowered).where(condition).limit(1))
    if found is None:
        return condition
    for other in _around(lowered, prefix, condition, found):
        if db.session.scalar(sa.select(sa.literal(1)).where(other).limit(1)):
            return condition
    return lowered == found


def _around(lowered, prefix: str, condition, found: str) -> tuple:
    """The prefix's values below `found` and above it, each as one index range."""
    if _is_postgresql():  # text_pattern_ops compares with ~<~ and ~>~
        return (sa.and_(condition, lowered.op("~<~", is_comparison=True)(found)),
                sa.and_(condition, lowered.op("~>~", is_comparison=True)(found)))
    following = _following(prefix.translate(_ASCII_LOWER))
    above = lowered > found
    return (sa.and_(lowered >= prefix.translate(_ASCII_LOWER), lowered < found),
            above if following is None else sa.and_(above, lowered < following))


def _is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _prefix_range(lowered, prefix: str) -> sa.ColumnElement[bool]:
    """PostgreSQL reads LIKE 'prefix%' from an index with text_pattern_ops. SQLite uses an
    index for LIKE only on a plain column, so it is asked for the range [prefix, next prefix)
    of the expression instead; its lower() knows only ASCII, so only ASCII is lowered here."""
    if _is_postgresql():
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return lowered.like(escaped + "%", escape="\\")
    prefix = prefix.translate(_ASCII_LOWER)
    following = _following(prefix)
    if following is None:
        return lowered >= prefix
    return sa.and_(lowered >= prefix, lowered < following)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _following(prefix: str) -> str | None:
    """The smallest text after every text that starts with the prefix (code point order)."""
    while prefix:
        last = ord(prefix[-1]) + 1
        if last == 0xD800:
            last = 0xE000  # surrogates are not characters
        if last <= 0x10FFFF:
            return prefix[:-1] + chr(last)
        prefix = prefix[:-1]
    return None


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


def action_groups(actions: list[str]) -> dict[str, tuple[str, ...]]:
    """The actions by what they act on ("admin.*": admin.sign_in, admin.totp_on, …), for the
    groups of more than one action; a group is matched by its known actions (an index look-up
    each, exact under every collation)."""
    groups: dict[str, list[str]] = {}
    for action in actions:
        if "." in action:
            groups.setdefault(action.split(".", 1)[0] + ".*", []).append(action)
    return {group: tuple(members) for group, members in groups.items() if len(members) > 1}


CSV_HEADER = ("Time (UTC)", "Action", "Outcome", "Code", "Actor type", "Actor",
              "QR code or target", "Serial number", "Address", "Details")


def csv_rows(filters: AuditFilters, batch: int = 1000):
    """The filtered log, newest first, as CSV rows; read in batches, never all at once."""
    columns = (AuditEvent.occurred_at, AuditEvent.action, AuditEvent.outcome, AuditEvent.code,
               AuditEvent.actor_type, AuditEvent.actor, AuditEvent.target,
               AuditEvent.serial_number, AuditEvent.client_address, AuditEvent.details,
               AuditEvent.attempts)
    statement = events(filters).with_only_columns(*columns).order_by(
        *(column.desc() for column in ORDER))
    for row in db.session.execute(statement.execution_options(yield_per=batch)):
        *values, details, attempts = row
        if attempts is not None:  # a row that counts attempts (audit/attempts.py)
            details = {**(details or {}), "attempts": attempts}
        yield (*values, json.dumps(details, ensure_ascii=False, sort_keys=True)
               if details else "")
