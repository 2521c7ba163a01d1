"""Local end users, created by the operator or an admin."""
import sqlalchemy as sa

from portal.accounts.errors import AccountError
from portal.accounts.models import PortalUser
from portal.accounts.validation import check_email, check_password, check_username
from portal.audit.log import record
from portal.database import db, read_once
from portal.vocabulary import UserSource


def add_local_user(username: str, email: str, password: str, *, display_name: str | None = None,
                   actor_type: str = "operator", actor: str = "operator") -> PortalUser:
    """Create and commit a local user; raises AccountError (nothing written) on bad input."""
    username, email = check_username(username), check_email(email)
    check_password(password)
    display_name = _display_name(display_name)
    exists = db.session.scalar(sa.select(PortalUser.id).where(
        PortalUser.source == UserSource.LOCAL,
        sa.func.lower(PortalUser.username) == username.lower()))
    if exists:
        raise AccountError({"username": f"A local user named '{username}' already exists."})
    user = PortalUser(source=UserSource.LOCAL, username=username, email=email,
                      display_name=display_name)
    user.set_password(password)
    db.session.add(user)
    record("user.create", actor_type=actor_type, actor=actor, target=username)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise AccountError({"username": f"A local user named '{username}' already "
                                        "exists."}) from None
    return user


def search_local_users(query: str, limit: int = 10) -> list[PortalUser]:
    """Active local users whose name, display name or email contains the query."""
    query = (query or "").strip()[:128]
    if not query:
        return []
    columns = (PortalUser.username, PortalUser.display_name, PortalUser.email)
    return list(db.session.scalars(
        sa.select(PortalUser)
        .where(PortalUser.source == UserSource.LOCAL, PortalUser.active.is_(True),
               sa.or_(*(sa.func.lower(column).contains(query.lower(), autoescape=True)
                        for column in columns)))
        .order_by(PortalUser.username).limit(limit)))


@read_once
def find_local_user(username: str) -> PortalUser | None:
    return db.session.scalar(sa.select(PortalUser).where(
        PortalUser.source == UserSource.LOCAL,
        sa.func.lower(PortalUser.username) == (username or "").strip().lower()))


# Admin → Users: the list, and the changes an Administrator makes to a local user.

USER_ORDER = (PortalUser.username, PortalUser.id)
MAX_DISPLAY_NAME = 256


def users_statement(query: str | None = None, source: str | None = None) -> sa.Select:
    """End users whose name, display name or email contains the query, of one source or all;
    in the order of USER_ORDER (for the keyset pager)."""
    statement = sa.select(PortalUser)
    if source in tuple(UserSource):
        statement = statement.where(PortalUser.source == source)
    query = (query or "").strip().lower()[:128]
    if query:
        statement = statement.where(PortalUser.search_key.contains(query, autoescape=True))
    return statement


def count_users(source: str | None = None) -> int:
    statement = sa.select(sa.func.count()).select_from(PortalUser)
    if source in tuple(UserSource):
        statement = statement.where(PortalUser.source == source)
    return db.session.scalar(statement) or 0


def _local_user(user_id) -> PortalUser:
    user = db.session.get(PortalUser, user_id) if isinstance(user_id, int) else None
    if user is None or user.source != UserSource.LOCAL:
        raise AccountError({"": "There is no such local user; directory users are changed "
                                "in their directory."})
    return user


def _display_name(display_name: str | None) -> str | None:
    """The display name, stripped: one line (it is written into mails' headers and texts)."""
    display_name = (display_name or "").strip() or None
    if display_name and any(ord(c) < 32 or ord(c) == 127 for c in display_name):
        raise AccountError({"display_name": "The display name must be one line, without "
                                            "line breaks or control characters."})
    if display_name and len(display_name) > MAX_DISPLAY_NAME:
        raise AccountError({"display_name": f"The display name must have at most "
                                            f"{MAX_DISPLAY_NAME} characters."})
    return display_name


def update_local_user(user_id: int, *, display_name: str | None, email: str,
                      actor: str) -> PortalUser:
    """Change a local user's display name and email; audited with before and after. Commits."""
    user = _local_user(user_id)
    display_name, email = _display_name(display_name), check_email(email)
    before = {"display_name": user.display_name, "email": user.email}
    user.display_name, user.email = display_name, email
    after = {"display_name": user.display_name, "email": user.email}
    changed = {name for name in before if before[name] != after[name]}
    if changed:
        record("user.update", actor_type="admin", actor=actor, target=user.username,
               before={name: before[name] for name in sorted(changed)},
               after={name: after[name] for name in sorted(changed)})
    db.session.commit()
    return user


def set_user_password(user_id: int, password: str, *, actor: str) -> PortalUser:
    """Give a local user a new password (audited without it). Commits."""
    user = _local_user(user_id)
    check_password(password)
    user.set_password(password)
    _end_sessions(user)  # whoever signed in with the old password is signed out
    record("user.password_set", actor_type="admin", actor=actor, target=user.username)
    db.session.commit()
    return user


def sign_out(user: PortalUser, *, client_address: str) -> None:
    """End every Self Service Portal session of this user: the one signing out and any copy
    of its cookie (sessions name the user's epoch). Audited; commits."""
    _end_sessions(user)
    record("user.sign_out", actor_type="user", actor=user.username,
           client_address=client_address)
    db.session.commit()


def _end_sessions(user: PortalUser) -> None:
    db.session.execute(sa.update(PortalUser).where(PortalUser.id == user.id)
                       .values(session_epoch=PortalUser.session_epoch + 1,
                               updated_at=PortalUser.updated_at)
                       .execution_options(synchronize_session=False))


def set_user_active(user_id: int, active: bool, *, actor: str) -> PortalUser:
    """Disable or enable a local user: a disabled one cannot sign in to the Self Service
    Portal, be chosen for a QR code, or enroll devices with an automatic QR. Commits."""
    user = _local_user(user_id)
    if user.active == active:
        raise AccountError({"": f"The user '{user.username}' is already "
                                f"{'enabled' if active else 'disabled'}."})
    user.active = active
    record("user.enable" if active else "user.disable", actor_type="admin", actor=actor,
           target=user.username)
    db.session.commit()
    return user
