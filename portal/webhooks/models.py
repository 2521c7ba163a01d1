"""Webhook endpoints and their deliveries (one row per event and endpoint: the queue)."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow

STATUSES = ("queued", "sending", "delivered", "failed")


class WebhookEndpoint(db.Model):
    """An https:// address that receives the events it subscribed to. The signing secret is
    stored encrypted (portal.vault): signing needs it, and it is shown only once."""

    __tablename__ = "webhook_endpoints"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    url: so.Mapped[str] = so.mapped_column(sa.String(2048))
    description: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    # The event types it wants, e.g. ["device.enrolled", "qr_code.revoked"].
    events: so.Mapped[list] = so.mapped_column(sa.JSON, default=list)
    enabled: so.Mapped[bool] = so.mapped_column(default=True)
    secret_enc: so.Mapped[str] = so.mapped_column(sa.Text)
    # After Rotate secret, the previous secret signs too until then (both signatures are sent),
    # so receivers switch without losing an event.
    previous_secret_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    previous_secret_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    created_by: so.Mapped[str | None] = so.mapped_column(sa.String(150))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)

    def previous_secret_signs(self, now: datetime | None = None) -> bool:
        now = now or utcnow()
        return self.previous_secret_enc is not None and self.previous_secret_until is not None \
            and now < self.previous_secret_until


class WebhookDelivery(db.Model):
    """One event for one endpoint. The body is stored as sent (and signed), so every attempt
    sends the same bytes with the same webhook-id (at-least-once, the receiver dedupes)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        sa.CheckConstraint("status IN ('queued', 'sending', 'delivered', 'failed')",
                           name="status_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        sa.UniqueConstraint("endpoint_id", "event_id", name="event_once_per_endpoint"),
        sa.Index("ix_webhook_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
        sa.Index("ix_webhook_deliveries_endpoint_id_id", "endpoint_id", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    event_id: so.Mapped[str] = so.mapped_column(sa.String(40))         # msg_…, the webhook-id
    event_type: so.Mapped[str] = so.mapped_column(sa.String(32))
    body: so.Mapped[str] = so.mapped_column(sa.Text)                   # the JSON, as signed
    endpoint_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: so.Mapped[str] = so.mapped_column(sa.String(9), default="queued")
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    # A worker claims a delivery until this time; another worker may take it over afterwards.
    locked_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    claim_token: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    last_status: so.Mapped[int | None]                                  # the last HTTP status
    last_answer: so.Mapped[str | None] = so.mapped_column(sa.Text)     # its body, truncated
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)
    delivered_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    endpoint: so.Mapped[WebhookEndpoint] = so.relationship()
