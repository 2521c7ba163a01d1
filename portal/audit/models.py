"""Audit events; details never hold an OTP, password or token."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow


class AuditEvent(db.Model):
    __tablename__ = "audit_events"
    __table_args__ = (
        sa.CheckConstraint("actor_type IN ('admin', 'user', 'device', 'operator', 'system', "
                           "'api_token')",
                           name="actor_type_known"),
        sa.CheckConstraint("outcome IN ('success', 'refused', 'error')", name="outcome_known"),
        # The audit list is read newest first, (occurred_at, id) being its keyset; each filter
        # has an index that yields its rows already in that order.
        sa.Index("ix_audit_events_occurred_at_id", "occurred_at", "id"),
        sa.Index("ix_audit_events_action_occurred_at_id", "action", "occurred_at", "id"),
        sa.Index("ix_audit_events_outcome_occurred_at_id", "outcome", "occurred_at", "id"),
        sa.Index("ix_audit_events_actor_occurred_at_id", "actor", "occurred_at", "id"),
        sa.Index("ix_audit_events_target_occurred_at_id", "target", "occurred_at", "id"),
        sa.Index("ix_audit_events_serial_number_occurred_at_id", "serial_number",
                 "occurred_at", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    occurred_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    actor_type: so.Mapped[str] = so.mapped_column(sa.String(16))
    actor: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    action: so.Mapped[str] = so.mapped_column(sa.String(64))
    outcome: so.Mapped[str] = so.mapped_column(sa.String(8), default="success")
    code: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    target: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    client_address: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    serial_number: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    details: so.Mapped[dict | None] = so.mapped_column(sa.JSON)
    # Only on rows that stand for many attempts (attempts.py): how many, one row per action,
    # address, code, target and window, however long a flood goes on.
    attempts: so.Mapped[int | None] = so.mapped_column()


# One row per attempt window: concurrent processes add to the same row (INSERT … ON CONFLICT).
sa.Index("ux_audit_events_attempt_window", AuditEvent.action, AuditEvent.occurred_at,
         AuditEvent.client_address, AuditEvent.code, AuditEvent.target, unique=True,
         sqlite_where=AuditEvent.attempts.is_not(None),
         postgresql_where=AuditEvent.attempts.is_not(None))

# The actor and serial-number filters match the lower-cased value by prefix (listing.py):
# these indexes lead with it, then the keyset. PostgreSQL's LIKE 'prefix%' needs
# text_pattern_ops; SQLite is asked for a range of the same expression instead.
for _column in (AuditEvent.actor, AuditEvent.serial_number):
    sa.Index(f"ix_audit_events_{_column.key}_prefix",
             sa.func.lower(_column).label(f"{_column.key}_lower"), AuditEvent.occurred_at,
             AuditEvent.id, postgresql_ops={f"{_column.key}_lower": "text_pattern_ops"})
