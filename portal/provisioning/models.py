"""A QR code: its enrollment option, network, localization and the frozen payload."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow

OPTIONS = ("ssp", "auto")
NETWORKS = ("wifi", "mobile")
TRIGRAMS = {"public_id": "gin_trgm_ops", "wifi_ssid": "gin_trgm_ops",
            "alternative_email": "gin_trgm_ops"}


class QrCode(db.Model):
    """The payload is frozen (encrypted) at creation, so the code printed, mailed and
    downloaded later is always the same one, even after the Companion settings change."""

    __tablename__ = "qr_codes"
    __table_args__ = (
        sa.CheckConstraint("option IN ('ssp', 'auto')", name="option_known"),
        sa.CheckConstraint("network IN ('wifi', 'mobile')", name="network_known"),
        sa.CheckConstraint(
            "(network = 'wifi' AND wifi_ssid IS NOT NULL AND wifi_security IN ('WPA', 'WEP', 'NONE'))"
            " OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL"
            " AND wifi_password_enc IS NULL)",
            name="network_settings"),
        sa.CheckConstraint(
            "(wifi_security IN ('WPA', 'WEP') AND wifi_password_enc IS NOT NULL)"
            " OR (wifi_security = 'NONE' AND wifi_password_enc IS NULL) OR wifi_security IS NULL",
            name="wifi_password_presence"),
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
                 "alternative_email", "user_id"),
        # The search "anywhere in the text": on PostgreSQL a trigram index answers ILIKE
        # '%...%' without reading every row. SQLite knows no such index and gets a plain one
        # of the same name (unused: its search scans ix_qr_codes_listing instead).
        sa.Index("ix_qr_codes_search", "public_id", "wifi_ssid", "alternative_email",
                 postgresql_using="gin", postgresql_ops=TRIGRAMS),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    option: so.Mapped[str] = so.mapped_column(sa.String(4))
    lang: so.Mapped[str] = so.mapped_column(sa.String(35))
    network: so.Mapped[str] = so.mapped_column(sa.String(6))
    wifi_ssid: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    wifi_security: so.Mapped[str | None] = so.mapped_column(sa.String(4))
    wifi_password_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    wifi_hidden: so.Mapped[bool] = so.mapped_column(default=False)

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

    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("admin_users.id"))

    user: so.Mapped["PortalUser | None"] = so.relationship(foreign_keys=[user_id])  # noqa: F821
    created_by: so.Mapped["AdminUser | None"] = so.relationship(  # noqa: F821
        foreign_keys=[created_by_id])

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def __repr__(self) -> str:
        return f"<QrCode {self.public_id} {self.option}>"
