"""The mail outbox and the SMTP settings. An outbox row is written in the transaction that
creates the QR code; the worker claims, sends and records it in transactions of its own."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow

STATUSES = ("queued", "sending", "sent", "failed")
KINDS = ("qr_to_admin", "qr_to_user", "notification", "test")
SECURITY = ("none", "starttls", "tls")


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
    # Set with each claim: only the worker holding this claim may record the outcome.
    claim_token: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    qr_code: so.Mapped["QrCode | None"] = so.relationship()  # noqa: F821


class SmtpSettings(db.Model):
    """The mail server (Admin → Mail). Absent row: the SMTP_* environment seeds it.
    The password is stored encrypted and never shown again; host NULL means mail is off."""

    __tablename__ = "smtp_settings"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="singleton"),
        sa.CheckConstraint("security IN ('none', 'starttls', 'tls')", name="security_known"),
        sa.CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),
        sa.CheckConstraint("timeout BETWEEN 1 AND 120", name="timeout_range"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    host: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    port: so.Mapped[int] = so.mapped_column(default=587)
    security: so.Mapped[str] = so.mapped_column(sa.String(8), default="starttls")
    username: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    password_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    sender: so.Mapped[str] = so.mapped_column(sa.String(254))
    timeout: so.Mapped[int] = so.mapped_column(default=10)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)
