"""QR codes, their pending enrollments, tickets, devices and the Zero-Touch/Knox list."""
import re
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal import vault
from portal.database import UTCDateTime, db, utcnow
from portal.vocabulary import (DeviceState, EnrollmentOption, Management, NetworkType,
                               PendingState)

PENDING_STATES = tuple(PendingState)
DEVICE_STATES = tuple(DeviceState)
OPTIONS = tuple(EnrollmentOption)
NETWORKS = tuple(NetworkType)
_PUBLIC_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")  # QR codes' and devices' (URL-safe, String(32))


def is_public_id(text: str | None) -> bool:
    """Whether the text can be a QR code's or a device's public id. Anything else names none
    and never reaches a query: a NUL fails PostgreSQL's (psycopg refuses to send it)."""
    return isinstance(text, str) and _PUBLIC_ID.fullmatch(text) is not None


TRIGRAMS = {"public_id": "gin_trgm_ops", "wifi_ssid": "gin_trgm_ops",
            "alternative_email": "gin_trgm_ops", "name": "gin_trgm_ops"}


# Shared with migration 0016_options, which widens them for EAP (enterprise Wi-Fi).
NETWORK_SETTINGS_CHECK = (
    "(network = 'wifi' AND wifi_ssid IS NOT NULL"
    " AND wifi_security IN ('WPA', 'WEP', 'EAP', 'NONE'))"
    " OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL"
    " AND wifi_password_enc IS NULL)")
WIFI_PASSWORD_CHECK = (
    "(wifi_security IN ('WPA', 'WEP') AND wifi_password_enc IS NOT NULL)"
    " OR (wifi_security = 'NONE' AND wifi_password_enc IS NULL)"
    " OR (wifi_security = 'EAP' AND wifi_eap_method IS NOT NULL AND wifi_identity IS NOT NULL)"
    " OR wifi_security IS NULL")


class QrCode(db.Model):
    """The payload is frozen (encrypted) at creation, so the code printed, mailed and
    downloaded later is always the same one, even after the Companion settings change."""

    __tablename__ = "qr_codes"
    __table_args__ = (
        sa.CheckConstraint("option IN ('ssp', 'auto')", name="option_known"),
        sa.CheckConstraint("network IN ('wifi', 'mobile')", name="network_known"),
        sa.CheckConstraint("management IN ('companion', 'adp')", name="management_known"),
        sa.CheckConstraint(
            NETWORK_SETTINGS_CHECK, name="network_settings"),
        sa.CheckConstraint(WIFI_PASSWORD_CHECK, name="wifi_password_presence"),
        sa.CheckConstraint(
            "(option = 'auto' AND user_id IS NOT NULL AND usage_count >= 1"
            " AND otp_hash IS NOT NULL AND otp_enc IS NOT NULL)"
            " OR (option = 'ssp' AND user_id IS NULL AND usage_count IS NULL"
            " AND otp_hash IS NULL AND otp_enc IS NULL AND otp_expires_at IS NULL)",
            name="option_settings"),
        sa.CheckConstraint("length(public_id) >= 8", name="public_id_length"),
        # The Pending list: newest first, and its search reads only this index (a QR row
        # carries kilobytes of ciphertext; the index entry about a hundred bytes).
        sa.Index("ix_qr_codes_listing", "created_at", "id", "public_id", "wifi_ssid",
                 "alternative_email", "user_id", "name"),
        # The search "anywhere in the text": on PostgreSQL a trigram index answers ILIKE
        # '%...%' without reading every row. SQLite knows no such index and gets a plain one
        # of the same name (unused: its search scans ix_qr_codes_listing instead).
        sa.Index("ix_qr_codes_search", "public_id", "wifi_ssid", "alternative_email", "name",
                 postgresql_using="gin", postgresql_ops=TRIGRAMS),
        # The Pending list's Stale filter: the unrevoked QR codes made with another Companion,
        # from narrow index entries rather than the QR rows (usually none are stale).
        sa.Index("ix_qr_codes_companion", "companion_checksum", "companion_component", "id",
                 "revoked_at",  # always NULL here; named so that SQLite reads only the index
                 sqlite_where=sa.text("revoked_at IS NULL"),
                 postgresql_where=sa.text("revoked_at IS NULL")),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    # An optional name the admin gives the QR code, to tell it apart ("Library tablets").
    name: so.Mapped[str | None] = so.mapped_column(sa.String(100))
    option: so.Mapped[str] = so.mapped_column(sa.String(4))
    # Companion (our app, the Companion API) or Android Device Policy (the Android Management
    # API): for the latter the payload is Google's enrollment token plus our network and locale
    # extras, and the "OTP" is the token's value (View OTP shows it; ADP's setup accepts it typed).
    management: so.Mapped[str] = so.mapped_column(sa.String(9), default=Management.COMPANION,
                                                  server_default=Management.COMPANION.value)
    # Automatic Provisioning with Android Device Policy: the token at Google
    # (enterprises/{e}/enrollmentTokens/{id}); deleted there when no longer needed.
    enrollment_token_name: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    lang: so.Mapped[str] = so.mapped_column(sa.String(35))
    network: so.Mapped[str] = so.mapped_column(sa.String(6))
    wifi_ssid: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    wifi_security: so.Mapped[str | None] = so.mapped_column(sa.String(4))
    wifi_password_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    wifi_hidden: so.Mapped[bool] = so.mapped_column(default=False)
    # --- provisioning options (issue 15): time zone, enterprise Wi-Fi, proxy -----------------
    time_zone: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    wifi_eap_method: so.Mapped[str | None] = so.mapped_column(sa.String(8))
    wifi_phase2: so.Mapped[str | None] = so.mapped_column(sa.String(8))
    wifi_identity: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    wifi_anonymous_identity: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    wifi_domain: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    # WIFI_CA_CERTIFICATE as the payload carries it (public); the client certificate holds
    # its private key, so it is encrypted like the passwords.
    wifi_ca_certificate: so.Mapped[str | None] = so.mapped_column(sa.Text)
    wifi_user_certificate_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    proxy_host: so.Mapped[str | None] = so.mapped_column(sa.String(253))
    proxy_port: so.Mapped[int | None]
    proxy_bypass: so.Mapped[str | None] = so.mapped_column(sa.String(1024))
    pac_url: so.Mapped[str | None] = so.mapped_column(sa.String(1024))
    # --- end of provisioning options ----------------------------------------------------------

    user_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("portal_users.id"), index=True)
    usage_count: so.Mapped[int | None]
    # The one OTP that all pending enrollments of an automatic QR share: encrypted for
    # View OTP, and a keyed hash to compare without decrypting.
    otp_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    otp_hash: so.Mapped[str | None] = so.mapped_column(sa.String(64), index=True)
    otp_expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    send_to_user: so.Mapped[bool] = so.mapped_column(default=False)
    alternative_email: so.Mapped[str | None] = so.mapped_column(sa.String(254))

    payload_enc: so.Mapped[str] = so.mapped_column(sa.Text)
    qr_version: so.Mapped[int]
    # The Companion the frozen payload names (in clear: neither is secret), so the Pending list
    # tells a stale QR code (made before the Companion changed) without decrypting payloads.
    # NULL: not known (a payload migration 0013 could not decrypt), never shown stale.
    companion_component: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    companion_checksum: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    # The network profile the QR code was made from and its version then (the payload is a
    # copy): a newer profile version marks the QR code as made from an older one.
    network_profile_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("network_profiles.id", ondelete="SET NULL"), index=True)
    network_profile_version: so.Mapped[int | None]
    # The bulk batch it belongs to (Devices → Pending → Bulk provisioning).
    batch_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("batches.id"), index=True)

    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))

    user: so.Mapped["PortalUser | None"] = so.relationship(foreign_keys=[user_id])  # noqa: F821
    created_by: so.Mapped["AdminUser | None"] = so.relationship(  # noqa: F821
        foreign_keys=[created_by_id])
    network_profile: so.Mapped["NetworkProfile | None"] = so.relationship()  # noqa: F821
    batch: so.Mapped["Batch | None"] = so.relationship(back_populates="qr_codes")

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @staticmethod
    def companion_values(config) -> dict[str, str]:
        """The companion_* columns of a QR code made with this CompanionConfig (the checksum
        as the payload carries it, without base64 padding)."""
        return {"companion_component": config.component_name,
                "companion_checksum": (config.signature_checksum or "").rstrip("=")}

    def payload_text(self) -> str:
        """The exact text inside the QR code (it holds secrets: only for rendering)."""
        return vault.decrypt(self.payload_enc)

    def __repr__(self) -> str:
        return f"<QrCode {self.public_id} {self.option}>"


class Batch(db.Model):
    """A bulk batch: QR codes created together from one CSV (or the Admin API's rows), in one
    transaction. While its rows are prepared, `state` and `done` tell the progress."""

    __tablename__ = "batches"
    __table_args__ = (
        sa.CheckConstraint("state IN ('preparing', 'created', 'failed')", name="state_known"),
        sa.CheckConstraint("done >= 0 AND done <= row_count", name="done_range"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    name: so.Mapped[str | None] = so.mapped_column(sa.String(255))   # e.g. the file's name
    state: so.Mapped[str] = so.mapped_column(sa.String(10), default="preparing")
    row_count: so.Mapped[int] = so.mapped_column(default=0)
    done: so.Mapped[int] = so.mapped_column(default=0)
    error: so.Mapped[str | None] = so.mapped_column(sa.Text)
    network_profile_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("network_profiles.id", ondelete="SET NULL"))
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))
    created_by_name: so.Mapped[str | None] = so.mapped_column(sa.String(150))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)

    qr_codes: so.Mapped[list[QrCode]] = so.relationship(back_populates="batch")

    def __repr__(self) -> str:
        return f"<Batch {self.public_id} {self.state}>"


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
        # Devices → Devices filtered by state (and "stuck"), newest first.
        sa.Index("ix_devices_state_created_at_id", "state", "created_at", "id"),
        # Its search by prefix, case-insensitive: the lower-case serial number and model
        # (text_pattern_ops: PostgreSQL answers LIKE 'abc%' from them whatever the collation).
        sa.Index("ix_devices_serial_key", "serial_key",
                 postgresql_ops={"serial_key": "text_pattern_ops"}),
        sa.Index("ix_devices_model_key", "model_key",
                 postgresql_ops={"model_key": "text_pattern_ops"}),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    qr_code_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("qr_codes.id"))
    user_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("portal_users.id"), index=True)
    # A device managed by Android Device Policy: its name at Google
    # (enterprises/{e}/devices/{id}), which notifications and the sync match on. Its token_hash
    # is then a random value's: it has no bearer token of ours.
    amapi_name: so.Mapped[str | None] = so.mapped_column(sa.String(255), unique=True,
                                                        index=True)
    serial_number: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    imei: so.Mapped[str | None] = so.mapped_column(sa.String(15), index=True)
    manufacturer: so.Mapped[str] = so.mapped_column(sa.String(64))
    model: so.Mapped[str] = so.mapped_column(sa.String(64))
    android_api_level: so.Mapped[int]
    state: so.Mapped[str] = so.mapped_column(sa.String(16), default=DeviceState.PROVISIONING)
    # SHA-256 of the bearer token (high-entropy, so a plain digest is enough).
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    failure_reason: so.Mapped[str | None] = so.mapped_column(sa.String(500))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)
    enrolled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # The last request the device itself made (redeem, status, provisioning-complete).
    last_contact_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    retired_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    retired_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))
    # Kept by the database (PostgreSQL: stored; SQLite: virtual), for the search by prefix.
    serial_key: so.Mapped[str | None] = so.mapped_column(sa.String(64), sa.Computed(
        "lower(serial_number)"))
    model_key: so.Mapped[str | None] = so.mapped_column(sa.String(64), sa.Computed(
        "lower(model)"))

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
    state: so.Mapped[str] = so.mapped_column(sa.String(8), default=PendingState.PENDING)
    expires_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    device_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("devices.id"), unique=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    ended_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)

    qr_code: so.Mapped["QrCode"] = so.relationship()  # noqa: F821
    device: so.Mapped[Device | None] = so.relationship()

    @property
    def current_state(self) -> str:
        """The state as of now: a pending enrollment whose OTP has expired shows as expired
        before the expiry is written (by `flask pending expire` or the next verb; a page
        never writes)."""
        if self.state == PendingState.PENDING and self.expires_at is not None \
                and self.expires_at < utcnow():
            return PendingState.EXPIRED
        return self.state

    @classmethod
    def current_state_at(cls, now: datetime) -> sa.ColumnElement[str]:
        """current_state in SQL, for counting by state."""
        return sa.case((sa.and_(cls.state == PendingState.PENDING, cls.expires_at < now),
                        PendingState.EXPIRED.value), else_=cls.state)


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
