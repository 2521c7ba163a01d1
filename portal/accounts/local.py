"""Local sign-in for end users: hashed passwords, no user enumeration."""
import sqlalchemy as sa

from portal.accounts.directory import SignInRefused

from portal.accounts.models import PortalUser
from portal.accounts.passwords import verify_password
from portal.audit.log import record
from portal.database import db, utcnow
from portal.vocabulary import UserSource


def authenticate_local_user(username: str, password: str, *,
                            client_address: str) -> PortalUser | None:
    """The active local user with these credentials, or None; an unknown user costs the same
    time as a wrong password. Every attempt is audited; commits.

    A disabled user who gives the right password is told so (SignInRefused account_disabled),
    as a disabled directory user is; anyone else learns only that the password is wrong."""
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
    if ok:
        record("user.sign_in", actor_type="user", actor=user.username, outcome="refused",
               code="account_disabled", client_address=client_address, method=UserSource.LOCAL)
        db.session.commit()
        raise SignInRefused("account_disabled")
    record("user.sign_in", actor_type="user", actor=(username or "")[:64], outcome="refused",
           code="invalid_credentials", client_address=client_address)
    db.session.commit()
    return None
