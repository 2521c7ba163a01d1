"""The mail outbox. A row is written in the transaction that creates the QR code."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow


class OutboxMessage(db.Model):
    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'sending', 'sent', 'failed')",
                           name="status_known"),
        sa.CheckConstraint("kind IN ('qr_to_admin', 'qr_to_user', 'notification', 'test')",
                           name="kind_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.Index("ix_outbox_messages_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    qr_code_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("qr_codes.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    recipient: so.Mapped[str] = so.mapped_column(sa.String(254))
    lang: so.Mapped[str] = so.mapped_column(sa.String(35), default="en")
    subject: so.Mapped[str] = so.mapped_column(sa.String(255))
    status: so.Mapped[str] = so.mapped_column(sa.String(8), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # A worker claims a message until this time; another worker may take it over afterwards.
    locked_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
