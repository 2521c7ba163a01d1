"""Local end users, created by the operator or an admin."""
import sqlalchemy as sa

from portal.accounts.errors import AccountError
from portal.accounts.models import PortalUser
from portal.accounts.validation import check_email, check_password, check_username
from portal.audit.log import record
from portal.database import db
from portal.vocabulary import UserSource


def add_local_user(username: str, email: str, password: str, *, display_name: str | None = None,
                   actor_type: str = "operator", actor: str = "operator") -> PortalUser:
    """Create and commit a local user; raises AccountError (nothing written) on bad input."""
    username, email = check_username(username), check_email(email)
    check_password(password)
    display_name = (display_name or "").strip() or None
    if display_name and len(display_name) > 256:
        raise AccountError({"display_name": "The display name must have at most 256 "
                                            "characters."})
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


def find_local_user(username: str) -> PortalUser | None:
    return db.session.scalar(sa.select(PortalUser).where(
        PortalUser.source == UserSource.LOCAL,
        sa.func.lower(PortalUser.username) == (username or "").strip().lower()))
