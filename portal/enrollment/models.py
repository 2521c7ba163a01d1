"""Pending enrollments, enrollment tickets, devices and the Zero-Touch/Knox list."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow

PENDING_STATES = ("pending", "used", "expired", "revoked")
DEVICE_STATES = ("provisioning", "enrolled", "failed", "retired")


class Device(db.Model):
    """A device that redeemed a QR code. It holds a license while provisioning or enrolled."""

    __tablename__ = "devices"
    __table_args__ = (
        sa.CheckConstraint("state IN ('provisioning', 'enrolled', 'failed', 'retired')",
                           name="state_known"),
        sa.CheckConstraint("android_api_level >= 0", name="api_level_not_negative"),
        sa.CheckConstraint("length(serial_number) BETWEEN 1 AND 64", name="serial_length"),
        sa.CheckConstraint("imei IS NULL OR length(imei) = 15", name="imei_length"),
        sa.Index("ix_devices_qr_code_id_serial_number", "qr_code_id", "serial_number"),
        # One active device per QR code and serial number: two concurrent first requests of
        # the same device cannot both spend a pending enrollment or a license.
        sa.Index("uq_devices_active_serial", "qr_code_id", "serial_number", unique=True,
                 sqlite_where=sa.text("state IN ('provisioning', 'enrolled')"),
                 postgresql_where=sa.text("state IN ('provisioning', 'enrolled')")),
        sa.Index("ix_devices_created_at_id", "created_at", "id"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    qr_code_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("qr_codes.id"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("portal_users.id"), index=True)
    serial_number: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    imei: so.Mapped[str | None] = so.mapped_column(sa.String(15), index=True)
    manufacturer: so.Mapped[str] = so.mapped_column(sa.String(64))
    model: so.Mapped[str] = so.mapped_column(sa.String(64))
    android_api_level: so.Mapped[int]
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default="provisioning")
    # SHA-256 of the bearer token (high-entropy, so a plain digest is enough).
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    failure_reason: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)
    enrolled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    qr_code: so.Mapped["QrCode"] = so.relationship()  # noqa: F821
    user: so.Mapped["PortalUser"] = so.relationship()  # noqa: F821


class PendingEnrollment(db.Model):
    """One reserved license of an automatic QR, waiting for a device."""

    __tablename__ = "pending_enrollments"
    __table_args__ = (
        sa.CheckConstraint("state IN ('pending', 'used', 'expired', 'revoked')",
                           name="state_known"),
        sa.CheckConstraint("(state = 'used') = (device_id IS NOT NULL)", name="used_has_device"),
        sa.Index("ix_pending_enrollments_qr_code_id_state", "qr_code_id", "state"),
        sa.Index("ix_pending_enrollments_state_expires_at", "state", "expires_at"),
        sa.Index("ix_pending_enrollments_qr_code_id_id", "qr_code_id", "id"),  # View OTP
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    qr_code_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("qr_codes.id"))
    state: so.Mapped[str] = so.mapped_column(sa.String(8), default="pending")
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("devices.id"), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    qr_code: so.Mapped["QrCode"] = so.relationship()  # noqa: F821
    device: so.Mapped[Device | None] = so.relationship()


class EnrollmentTicket(db.Model):
    """The one-time ticket the Self Service Portal hands to the Companion (15 minutes)."""

    __tablename__ = "enrollment_tickets"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    ticket_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    qr_code_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("qr_codes.id"), index=True)
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("portal_users.id"))
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("devices.id"), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


class ZeroTouchEntry(db.Model):
    """A serial number or IMEI registered in Zero-Touch or Knox Mobile Enrollment."""

    __tablename__ = "zero_touch_entries"
    __table_args__ = (
        sa.CheckConstraint("kind IN ('serial', 'imei')", name="kind_known"),
        sa.CheckConstraint("length(identifier) BETWEEN 1 AND 64", name="identifier_length"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # Serial numbers are stored upper-case so the check is case-insensitive.
    identifier: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(6))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
