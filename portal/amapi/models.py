"""The Android Management API connection (one row) and the work the portal owes Google."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow
from portal.vocabulary import AmapiTaskKind

TASK_KINDS = tuple(AmapiTaskKind)


class AmapiSettings(db.Model):
    """Admin → Android Management API. The service-account key is encrypted and never shown
    again; only its account (client_email) and key id are shown, to tell keys apart."""

    __tablename__ = "amapi_settings"
    __table_args__ = (sa.CheckConstraint("id = 1", name="single_row"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    # enterprises/{enterpriseId}
    enterprise_name: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    key_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    key_email: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    key_id: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    # The policy (its id, without enterprises/…/policies/) each enrollment option applies.
    policy_ssp: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    policy_auto: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    # Pub/Sub push: the service account whose OIDC token authenticates Google's pushes.
    push_email: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    # One change to the sign-in details at a time (portal.amapi.lease): who holds it, until when.
    signin_lock_holder: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    signin_lock_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_by: so.Mapped[str | None] = so.mapped_column(sa.String(150))

    @property
    def enterprise_id(self) -> str | None:
        return self.enterprise_name.removeprefix("enterprises/") if self.enterprise_name else None

    def policy_name(self, policy_id: str) -> str:
        return f"{self.enterprise_name}/policies/{policy_id}"


class AmapiTask(db.Model):
    """A call to Google the portal owes (delete a used/expired/revoked enrollment token, remove
    a Self Service QR code's sign-in details, delete a retired device): tried at once, then by
    the worker with back-off until Google answers, and shown on the QR code's page meanwhile."""

    __tablename__ = "amapi_tasks"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('delete_token', 'remove_signin', 'delete_device')",
                           name="kind_known"),
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # The worker's queue: what is not done, soonest first.
        sa.Index("ix_amapi_tasks_done_at_next_attempt_at", "done_at", "next_attempt_at"),
        # One task per resource and kind: asking twice (revoke after expiry) adds nothing.
        sa.UniqueConstraint("kind", "resource", name="one_task_per_resource"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(16))
    # The resource name at Google (enterprises/…/enrollmentTokens/…, …/devices/…) or, for
    # remove_signin, the QR code's public id (the sign-in details' tokenTag).
    resource: so.Mapped[str] = so.mapped_column(sa.String(255))
    qr_code_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("qr_codes.id"),
                                                         index=True)
    device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("devices.id"), index=True)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    done_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<AmapiTask {self.kind} {self.resource}>"
