"""Creating admins, signing them in and out."""
import secrets
from collections.abc import Callable

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


def authenticate(username: str, password: str, *, client_address: str,
                 second_step: Callable[[AdminUser], bool] | None = None) -> AdminUser | None:
    """The active admin with these credentials, or None; records the attempt either way.

    `second_step(admin)` says whether a two-step code must follow: then the record says that
    only the password was right, and the code step records the sign-in itself."""
    admin = db.session.scalar(sa.select(AdminUser).where(
        sa.func.lower(AdminUser.username) == (username or "").strip().lower()))
    ok = verify_password(admin.password_hash if admin else None, password or "")
    if ok and admin.active:
        if second_step and second_step(admin):
            record("admin.sign_in", actor_type="admin", actor=admin.username,
                   client_address=client_address, step="password", next_step="two-step code")
        else:
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


# Admin → Administrators: the changes one admin makes to another (or to themselves).

ADMIN_ORDER = (AdminUser.username, AdminUser.id)
_LAST_ADMINISTRATOR = ("'{name}' is the last active Administrator; make another admin an "
                       "Administrator first.")


def list_admins() -> list[AdminUser]:
    return list(db.session.scalars(sa.select(AdminUser).order_by(*ADMIN_ORDER)))


def _admin(admin_id) -> AdminUser:
    admin = db.session.get(AdminUser, admin_id) if isinstance(admin_id, int) else None
    if admin is None:
        raise AccountError({"": "There is no such admin."})
    return admin


def _lock_administrators() -> None:
    """PostgreSQL: lock the active Administrators' rows, so that two admins demoting or
    disabling the last two Administrators at once queue, and the second sees the first's
    change. (SQLite renders no FOR UPDATE; its single writer serializes the UPDATE below.)"""
    db.session.execute(sa.select(AdminUser.id).where(
        AdminUser.role == AdminRole.ADMINISTRATOR, AdminUser.active.is_(True))
        .with_for_update())


def _another_administrator(admin_id: int):
    """SQL: is there an active Administrator other than this admin (read by the UPDATE)?"""
    other = sa.orm.aliased(AdminUser)
    return sa.exists().where(other.role == AdminRole.ADMINISTRATOR, other.active.is_(True),
                             other.id != admin_id)


def _guarded_update(admin: AdminUser, values: dict) -> None:
    """UPDATE the admin only if an active Administrator remains afterwards; refused (rolled
    back, AccountError) when this admin is the last one."""
    _lock_administrators()
    stays = AdminUser.role == AdminRole.ADMINISTRATOR
    if values.get("active", True) is not False and values.get("role", admin.role) == \
            AdminRole.ADMINISTRATOR:
        guard = sa.true()
    else:
        guard = sa.or_(~stays, AdminUser.active.is_(False), _another_administrator(admin.id))
    result = db.session.execute(sa.update(AdminUser).where(AdminUser.id == admin.id, guard)
                                .values(**values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise AccountError({"role" if "role" in values else "":
                            _LAST_ADMINISTRATOR.format(name=admin.username)})
    db.session.refresh(admin)


def check_role(role) -> AdminRole:
    if role not in tuple(AdminRole):
        raise AccountError({"role": "Choose the role: Administrator or Helpdesk."})
    return AdminRole(role)


def update_admin(admin_id: int, *, email: str, role: str, mail_recipient: bool,
                 actor: AdminUser) -> AdminUser:
    """Change an admin's email, role and Mail recipient flag; no admin demotes themselves and
    the last active Administrator stays one. Audited with before and after. Commits."""
    admin = _admin(admin_id)
    values = {"email": check_email(email), "role": check_role(role),
              "mail_recipient": bool(mail_recipient)}
    if admin.id == actor.id and values["role"] != admin.role:
        raise AccountError({"role": "You cannot change your own role; another Administrator "
                                    "can."})
    before = {name: _plain(getattr(admin, name)) for name in values}
    changed = sorted(name for name in values if before[name] != _plain(values[name]))
    if not changed:
        return admin
    _guarded_update(admin, {name: values[name] for name in changed})
    record("admin.update", actor_type="admin", actor=actor.username, target=admin.username,
           before={name: before[name] for name in changed},
           after={name: _plain(getattr(admin, name)) for name in changed})
    db.session.commit()
    return admin


def _plain(value):
    return str(value) if isinstance(value, AdminRole) else value


def set_admin_active(admin_id: int, active: bool, *, actor: AdminUser) -> AdminUser:
    """Disable (ending every session) or enable an admin; never oneself, never the last
    active Administrator. Audited. Commits."""
    admin = _admin(admin_id)
    if admin.id == actor.id and not active:
        raise AccountError({"": "You cannot disable yourself; another Administrator can."})
    if admin.active == active:
        raise AccountError({"": f"The admin '{admin.username}' is already "
                                f"{'enabled' if active else 'disabled'}."})
    values = {"active": active}
    if not active:
        values["session_epoch"] = AdminUser.session_epoch + 1
    _guarded_update(admin, values)
    record("admin.enable" if active else "admin.disable", actor_type="admin",
           actor=actor.username, target=admin.username)
    db.session.commit()
    return admin


def set_admin_password(admin_id: int, password: str, *, actor: AdminUser) -> AdminUser:
    """Give an admin a new password and end their sessions (audited without it). Commits."""
    admin = _admin(admin_id)
    check_password(password)
    _new_password(admin, password)
    record("admin.password_set", actor_type="admin", actor=actor.username,
           target=admin.username)
    db.session.commit()
    return admin


def change_own_password(admin: AdminUser, current: str, new: str) -> AdminUser:
    """The signed-in admin's new password, the current one required. Every session of the
    admin ends; the caller signs the current one in again. Audited without either. Commits."""
    if not verify_password(admin.password_hash, current or ""):
        record("admin.password_change", actor_type="admin", actor=admin.username,
               target=admin.username, outcome="refused", code="invalid_credentials")
        db.session.commit()
        raise AccountError({"current_password": "The current password is wrong."})
    check_password(new)
    if verify_password(admin.password_hash, new):
        raise AccountError({"password": "The new password is the same as the current one."})
    _new_password(admin, new)
    record("admin.password_change", actor_type="admin", actor=admin.username,
           target=admin.username)
    db.session.commit()
    return admin


def _new_password(admin: AdminUser, password: str) -> None:
    admin.set_password(password)
    admin.session_epoch = AdminUser.session_epoch + 1  # counted up by the database
    db.session.flush()
    db.session.refresh(admin)
