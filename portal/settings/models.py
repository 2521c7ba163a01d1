"""Run-time settings kept in the database; each singleton row has id 1."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from portal.database import UTCDateTime, db, utcnow


class CompanionSettings(db.Model):
    """The Companion app the QR installs. Absent row: the COMPANION_* environment seeds it."""

    __tablename__ = "companion_settings"
    __table_args__ = (sa.CheckConstraint("id = 1", name="singleton"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    component_name: so.Mapped[str] = so.mapped_column(sa.String(255))
    download_url: so.Mapped[str] = so.mapped_column(sa.String(2048))
    signature_checksum: so.Mapped[str] = so.mapped_column(sa.String(64))
    leave_system_apps_enabled: so.Mapped[bool] = so.mapped_column(default=True)
    enrollment_link_scheme: so.Mapped[str] = so.mapped_column(sa.String(32), default="companion")
    # The APK saved with the settings (Admin → Companion read it), kept as
    # instance/companion/<apk_sha256>.apk and served at /companion/<apk_version_code>.apk.
    apk_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    apk_version_code: so.Mapped[int | None] = so.mapped_column(sa.Integer)
    apk_version_name: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)


class OtpPolicy(db.Model):
    """OTP defaults under Admin → Self Service Portal; validity NULL means unlimited."""

    __tablename__ = "otp_policy"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="singleton"),
        sa.CheckConstraint("length BETWEEN 6 AND 64", name="length_range"),
        sa.CheckConstraint("alphabet IN ('digits', 'alnum', 'upper')", name="alphabet_known"),
        sa.CheckConstraint("validity_hours IS NULL OR validity_hours BETWEEN 1 AND 87600",
                           name="validity_range"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    length: so.Mapped[int] = so.mapped_column(default=12)
    alphabet: so.Mapped[str] = so.mapped_column(sa.String(8), default="alnum")
    validity_hours: so.Mapped[int | None] = so.mapped_column(default=72)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)


class Localization(db.Model):
    """A language tag offered in the wizard; built-in ones cannot be deleted."""

    __tablename__ = "localizations"
    __table_args__ = (sa.CheckConstraint("length(tag) BETWEEN 2 AND 35", name="tag_length"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    tag: so.Mapped[str] = so.mapped_column(sa.String(35), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(64))
    builtin: so.Mapped[bool] = so.mapped_column(default=False)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)


LDAP_SECURITY = ("none", "starttls", "ldaps")
LDAP_USER_ATTRIBUTES = ("sAMAccountName", "userPrincipalName", "uid", "mail")


class SignInSettings(db.Model):
    """The Self Service Portal's sign-in methods (Admin → Sign-in methods).

    Absent row: local sign-in only, with LDAP and Azure AD seeded from the environment.
    Secrets (the LDAP service password, the Azure client secret) are stored encrypted.
    """

    __tablename__ = "sign_in_settings"
    __table_args__ = (
        sa.CheckConstraint("id = 1", name="singleton"),
        sa.CheckConstraint("ldap_security IN ('none', 'starttls', 'ldaps')",
                           name="ldap_security_known"),
        sa.CheckConstraint("ldap_user_attribute IN "
                           "('sAMAccountName', 'userPrincipalName', 'uid', 'mail')",
                           name="ldap_user_attribute_known"),
        sa.CheckConstraint("ldap_timeout BETWEEN 1 AND 60", name="ldap_timeout_range"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True, default=1)
    local_enabled: so.Mapped[bool] = so.mapped_column(default=True)

    ldap_enabled: so.Mapped[bool] = so.mapped_column(default=False)
    ldap_url: so.Mapped[str | None] = so.mapped_column(sa.String(2048))
    ldap_security: so.Mapped[str] = so.mapped_column(sa.String(8), default="none")
    ldap_ca_cert: so.Mapped[str | None] = so.mapped_column(sa.Text)
    ldap_bind_dn: so.Mapped[str | None] = so.mapped_column(sa.String(1024))
    ldap_bind_password_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    ldap_base_dn: so.Mapped[str | None] = so.mapped_column(sa.String(1024))
    ldap_user_attribute: so.Mapped[str] = so.mapped_column(sa.String(32),
                                                           default="sAMAccountName")
    ldap_user_filter: so.Mapped[str | None] = so.mapped_column(sa.String(1024))
    ldap_timeout: so.Mapped[int] = so.mapped_column(default=5)

    azure_enabled: so.Mapped[bool] = so.mapped_column(default=False)
    azure_tenant: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    azure_authority: so.Mapped[str | None] = so.mapped_column(sa.String(2048))
    azure_client_id: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    azure_client_secret_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    # Every admin must sign in with a second step (TOTP); set by an Administrator.
    admin_totp_required: so.Mapped[bool] = so.mapped_column(default=False,
                                                            server_default=sa.false())

    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)


class NetworkProfile(db.Model):
    """A named, reusable network (Admin → Network profiles): Wi-Fi or mobile data. A QR code
    made from it copies the values into its frozen payload and remembers the profile's version,
    so an edited profile changes no QR code, yet each QR code can say it is from an older one."""

    __tablename__ = "network_profiles"
    __table_args__ = (
        sa.CheckConstraint("network IN ('wifi', 'mobile')", name="network_known"),
        sa.CheckConstraint(
            "(network = 'wifi' AND wifi_ssid IS NOT NULL AND wifi_security IN ('WPA', 'WEP', "
            "'NONE')) OR (network = 'mobile' AND wifi_ssid IS NULL AND wifi_security IS NULL "
            "AND wifi_password_enc IS NULL)", name="network_settings"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("management IN ('companion', 'adp')", name="management_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    # Compared without regard to case: the unique index is on lower(name) (migration 0017).
    name_key: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)
    version: so.Mapped[int] = so.mapped_column(default=1)
    network: so.Mapped[str] = so.mapped_column(sa.String(6))
    wifi_ssid: so.Mapped[str | None] = so.mapped_column(sa.String(128))
    wifi_security: so.Mapped[str | None] = so.mapped_column(sa.String(4))
    wifi_password_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    wifi_hidden: so.Mapped[bool] = so.mapped_column(default=False)
    # What manages the devices of QR codes made from it (a vocabulary.Management).
    management: so.Mapped[str] = so.mapped_column(sa.String(9), default="companion",
                                                  server_default="companion")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_by: so.Mapped[str | None] = so.mapped_column(sa.String(150))
