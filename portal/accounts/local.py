"""Local sign-in for end users: hashed passwords, no user enumeration."""
import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.accounts.passwords import verify_password
from portal.audit.log import record
from portal.database import db, utcnow
from portal.vocabulary import UserSource


def authenticate_local_user(username: str, password: str, *,
                            client_address: str) -> PortalUser | None:
    """The active local user with these credentials, or None; an unknown user costs the same
    time as a wrong password. Every attempt is audited; commits."""
    user = db.session.scalar(sa.select(PortalUser).where(
        PortalUser.source == UserSource.LOCAL,
        sa.func.lower(PortalUser.username) == (username or "").strip().lower()))
    ok = verify_password(user.password_hash if user else None, password or "")
    if ok and user.active:
        user.last_sign_in_at = utcnow()
        record("user.sign_in", actor_type="user", actor=user.username, code=UserSource.LOCAL,
               client_address=client_address)
        db.session.commit()
        return user
    record("user.sign_in", actor_type="user", actor=(username or "")[:64], outcome="refused",
           code="invalid_credentials", client_address=client_address)
    db.session.commit()
    return None
