"""Admins of the Management Console and the end users devices are enrolled for."""
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from portal.accounts.passwords import hash_password, verify_password
from portal.database import UTCDateTime, db, utcnow
from portal.vocabulary import AdminRole, UserSource

USER_SOURCES = tuple(UserSource)
ADMIN_ROLES = tuple(AdminRole)
SEARCH_KEY = "lower(username || ' ' || coalesce(display_name, '') || ' ' || coalesce(email, ''))"


class AdminUser(UserMixin, db.Model):
    __tablename__ = "admin_users"
    __table_args__ = (
        sa.CheckConstraint("length(username) >= 1", name="username_not_empty"),
        sa.CheckConstraint("role IN ('administrator', 'helpdesk')", name="role_known"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    username: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(16), default=AdminRole.ADMINISTRATOR,
                                            server_default=AdminRole.ADMINISTRATOR.value)
    email: so.Mapped[str] = so.mapped_column(sa.String(254))
    password_hash: so.Mapped[str] = so.mapped_column(sa.String(255))
    mail_recipient: so.Mapped[bool] = so.mapped_column(default=False)
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Part of the id in the session cookie; sign-out counts it up, and every session cookie
    # issued before (copied, or still open in another browser) stops working.
    session_epoch: so.Mapped[int] = so.mapped_column(default=0, server_default="0")
    # Two-step sign-in (TOTP, RFC 6238): the shared secret, encrypted; set when turned on.
    totp_secret_enc: so.Mapped[str | None] = so.mapped_column(sa.Text)
    totp_enabled_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # The time step (Unix time // 30) of the last code accepted: a code is accepted once.
    totp_last_step: so.Mapped[int | None] = so.mapped_column(sa.BigInteger)

    @property
    def is_administrator(self) -> bool:
        return self.role == AdminRole.ADMINISTRATOR

    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        """What Flask-Login keeps in the session: the admin's id and session epoch."""
        return f"{self.id}.{self.session_epoch}"

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<AdminUser {self.username}>"


class RecoveryCode(db.Model):
    """A one-time code that stands in for the TOTP step; only its hash is kept."""

    __tablename__ = "admin_recovery_codes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    admin_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("admin_users.id", ondelete="CASCADE"), index=True)
    code_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)


class PortalUser(db.Model):
    """An end user: local (password here) or from a directory (LDAP, Azure AD)."""

    __tablename__ = "portal_users"
    __table_args__ = (
        sa.UniqueConstraint("source", "username"),
        sa.UniqueConstraint("source", "tenant_id", "directory_id"),
        sa.CheckConstraint("source IN ('local', 'ldap', 'azure')", name="source_known"),
        sa.CheckConstraint("source <> 'local' OR password_hash IS NOT NULL",
                           name="local_has_password"),
        sa.CheckConstraint("length(username) >= 1", name="username_not_empty"),
        # The Pending list's search by user: on PostgreSQL a trigram index of search_key
        # answers LIKE '%...%'. SQLite knows no such index and gets a plain one of the same
        # name (unused: its search reads the three columns of every user instead).
        sa.Index("ix_portal_users_search", "search_key", postgresql_using="gin",
                 postgresql_ops={"search_key": "gin_trgm_ops"}),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    source: so.Mapped[str] = so.mapped_column(sa.String(8), default=UserSource.LOCAL)
    username: so.Mapped[str] = so.mapped_column(sa.String(256), index=True)
    email: so.Mapped[str | None] = so.mapped_column(sa.String(254))
    display_name: so.Mapped[str | None] = so.mapped_column(sa.String(256))
    # Kept by the database: one lower-case text to search, so one trigram index serves it.
    search_key: so.Mapped[str | None] = so.mapped_column(sa.String(800), sa.Computed(
        SEARCH_KEY))
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    # The directory's own identifier: the DN (LDAP) or the object id `oid` (Azure AD).
    directory_id: so.Mapped[str | None] = so.mapped_column(sa.String(512))
    # Azure AD's tid; the issuer URL for OpenID providers that have no tenant id.
    tenant_id: so.Mapped[str | None] = so.mapped_column(sa.String(512))
    active: so.Mapped[bool] = so.mapped_column(default=True)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow,
                                                       onupdate=utcnow)
    last_sign_in_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    # Counted up when the user signs out of the Self Service Portal (or their password is
    # set): every session that names an older epoch, a copied cookie too, has ended.
    session_epoch: so.Mapped[int] = so.mapped_column(default=0, server_default="0")

    def set_password(self, password: str) -> None:
        self.password_hash = hash_password(password)

    def check_password(self, password: str) -> bool:
        return verify_password(self.password_hash, password)

    def __repr__(self) -> str:
        return f"<PortalUser {self.source}:{self.username}>"


class ApiToken(db.Model):
    """A token of the Admin API (/api/admin/v1). The token is `qrp_<public_id>_<secret>`:
    the public id finds the row, the secret (256 random bits) is kept only as a keyed hash
    (HMAC-SHA256 with a key derived from SECRET_KEY) and compared in constant time."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.CheckConstraint("scope IN ('read', 'provision')", name="scope_known"),
        sa.CheckConstraint("length(name) >= 1", name="name_not_empty"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    public_id: so.Mapped[str] = so.mapped_column(sa.String(16), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(100))
    name_key: so.Mapped[str] = so.mapped_column(sa.String(100), unique=True)  # lower case
    scope: so.Mapped[str] = so.mapped_column(sa.String(16))
    secret_hash: so.Mapped[str] = so.mapped_column(sa.String(64))
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime, default=utcnow)
    created_by: so.Mapped[str] = so.mapped_column(sa.String(64))
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime)
    revoked_by: so.Mapped[str | None] = so.mapped_column(sa.String(64))

    def state_at(self, now: datetime) -> str:
        """"active", "expired" or "revoked"."""
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def __repr__(self) -> str:
        return f"<ApiToken {self.public_id} {self.scope}>"
