"""Creating admins, signing them in and out."""
import secrets

import sqlalchemy as sa

from portal.accounts.errors import AccountError
from portal.accounts.models import AdminUser
from portal.accounts.passwords import verify_password
from portal.accounts.validation import check_email, check_password, check_username
from portal.audit.log import record
from portal.database import db, utcnow
from portal.vocabulary import AdminRole


def create_admin(username: str, email: str, password: str, *, mail_recipient: bool = False,
                 role: str = AdminRole.ADMINISTRATOR, created_by: str = "operator",
                 actor_type: str = "operator") -> AdminUser:
    """Create and commit an admin; raises AccountError (nothing written) on bad input."""
    username, email = check_username(username), check_email(email)
    check_password(password)
    if role not in tuple(AdminRole):
        raise AccountError({"role": "Choose the role: Administrator or Helpdesk."})
    exists = db.session.scalar(sa.select(AdminUser.id).where(
        sa.func.lower(AdminUser.username) == username.lower()))
    if exists:
        raise AccountError({"username": f"An admin named '{username}' already exists."})
    admin = AdminUser(username=username, email=email, mail_recipient=mail_recipient,
                      role=AdminRole(role))
    admin.set_password(password)
    db.session.add(admin)
    record("admin.create", actor_type=actor_type, actor=created_by, target=username,
           mail_recipient=mail_recipient, role=str(role))
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise AccountError({"username": f"An admin named '{username}' already "
                                        "exists."}) from None
    return admin


def ensure_first_admin(username: str = "admin") -> tuple[AdminUser, str] | None:
    """When no admin exists, create one with a random password and return it (shown once)."""
    if db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser)):
        return None
    password = secrets.token_urlsafe(12)
    admin = create_admin(username, "admin@example.com", password, mail_recipient=True,
                         created_by="quick start")
    return admin, password


def authenticate(username: str, password: str, *, client_address: str) -> AdminUser | None:
    """The active admin with these credentials, or None; records the attempt either way."""
    admin = db.session.scalar(sa.select(AdminUser).where(
        sa.func.lower(AdminUser.username) == (username or "").strip().lower()))
    ok = verify_password(admin.password_hash if admin else None, password or "")
    if ok and admin.active:
        admin.last_login_at = utcnow()
        record("admin.sign_in", actor_type="admin", actor=admin.username,
               client_address=client_address)
        db.session.commit()
        return admin
    record("admin.sign_in", actor_type="admin", actor=(username or "")[:64], outcome="refused",
           code="invalid_credentials", client_address=client_address)
    db.session.commit()
    return None


def sign_out(admin: AdminUser, *, client_address: str) -> None:
    """End every session of this admin: the one signing out, a copy of its cookie, and the
    admin's sessions in other browsers (AdminUser.get_id). Recorded in the audit log."""
    db.session.execute(sa.update(AdminUser).where(AdminUser.id == admin.id)
                       .values(session_epoch=AdminUser.session_epoch + 1)
                       .execution_options(synchronize_session=False))
    record("admin.sign_out", actor_type="admin", actor=admin.username,
           client_address=client_address)
    db.session.commit()
