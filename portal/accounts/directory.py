"""End users from a directory: sign-in through LDAP and Azure AD, recorded on first sign-in."""
import logging

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, URLSafeTimedSerializer

from portal.accounts.models import PortalUser
from portal.audit.log import record
from portal.database import db, end_transaction, utcnow
from portal.directory import ldap
from portal.directory.azure import AzureIdentity
from portal.vocabulary import UserSource

log = logging.getLogger(__name__)


class SignInRefused(Exception):
    """Why an end user cannot sign in, as a code the page turns into a message:
    invalid_credentials, account_disabled, directory_unavailable, directory_misconfigured."""

    def __init__(self, code: str):
        super().__init__(code)
        self.code = code


_LDAP_CODES = {ldap.InvalidCredentials: "invalid_credentials",
               ldap.AccountDisabled: "account_disabled",
               ldap.DirectoryUnavailable: "directory_unavailable",
               ldap.DirectoryMisconfigured: "directory_misconfigured"}


def _ldap_code(error: ldap.DirectoryError) -> str:
    for cls, code in _LDAP_CODES.items():
        if isinstance(error, cls):
            return code
    return "directory_unavailable"


def authenticate_ldap_user(config: ldap.LdapConfig, username: str, password: str, *,
                           client_address: str) -> PortalUser:
    """Sign in through the directory and record the user; raises SignInRefused. Commits.

    The audit entry of a refusal names the cause for the admin (the directory's answer, never
    the password); the end user only learns the code."""
    end_transaction()  # the directory answers outside a transaction (SQLite's write lock)
    try:
        found = ldap.authenticate(config, username, password)
    except ldap.DirectoryError as error:
        code = _ldap_code(error)  # (the ldap module logs the cause of a failure)
        record("user.sign_in", actor_type="user", actor=(username or "")[:64],
               outcome="refused", code=code, client_address=client_address,
               method=UserSource.LDAP, cause=error.cause)
        db.session.commit()
        raise SignInRefused(code) from None
    user = record_directory_user(UserSource.LDAP, found.directory_id, None, found.username,
                                 found.display_name, found.email)
    return _signed_in(user, UserSource.LDAP, client_address)


def sign_in_azure_user(identity: AzureIdentity, *, client_address: str) -> PortalUser:
    user = record_directory_user(UserSource.AZURE, identity.oid, identity.tenant_id,
                                 identity.username, identity.display_name, identity.email)
    return _signed_in(user, UserSource.AZURE, client_address)


def refuse_azure(code: str, cause: str, *, client_address: str) -> None:
    log.warning("Azure AD sign-in failed: %s", cause)
    record("user.sign_in", actor_type="user", outcome="refused", code=code,
           client_address=client_address, method=UserSource.AZURE, cause=cause)
    db.session.commit()


def _signed_in(user: PortalUser, method: str, client_address: str) -> PortalUser:
    if not user.active:
        record("user.sign_in", actor_type="user", actor=user.username, outcome="refused",
               code="account_disabled", client_address=client_address, method=method)
        db.session.commit()
        raise SignInRefused("account_disabled")
    user.last_sign_in_at = utcnow()
    record("user.sign_in", actor_type="user", actor=user.username, code=method,
           client_address=client_address)
    db.session.commit()
    return user


def record_directory_user(source: str, directory_id: str, tenant_id: str | None, username: str,
                          display_name: str | None, email: str | None) -> PortalUser:
    """The user with this directory id, created on first sight and updated afterwards
    (name, email, user name). Adds to the session; the caller commits."""
    values = {"username": username[:256], "display_name": (display_name or "")[:256] or None,
              "email": (email or "")[:254] or None}
    for attempt in (1, 2):
        try:
            with db.session.begin_nested():  # flushed at the end of the block
                user = _find(source, directory_id, tenant_id, values["username"])
                if user is None:
                    user = PortalUser(source=source, directory_id=directory_id[:512],
                                      tenant_id=tenant_id, **values)
                    db.session.add(user)
                else:
                    user.directory_id, user.tenant_id = directory_id[:512], tenant_id
                    for name, value in values.items():
                        setattr(user, name, value)
        except sa.exc.IntegrityError:
            if attempt == 2:
                raise
            continue  # someone recorded the same user at the same moment: take theirs
        return user
    raise AssertionError("unreachable")


def _find(source: str, directory_id: str, tenant_id: str | None,
          username: str) -> PortalUser | None:
    tenant = PortalUser.tenant_id.is_(None) if tenant_id is None \
        else PortalUser.tenant_id == tenant_id
    user = db.session.scalar(sa.select(PortalUser).where(
        PortalUser.source == source, PortalUser.directory_id == directory_id, tenant))
    if user is None:  # e.g. created by the wizard before the directory id was known
        user = db.session.scalar(sa.select(PortalUser).where(
            PortalUser.source == source,
            sa.func.lower(PortalUser.username) == username.lower()))
    return user


# The wizard's User Type LDAP: the admin searches the directory with credentials typed into
# the wizard (used for that one search, never stored); the chosen user travels in the form as
# a signed token, so saving the QR code needs neither the credentials nor a second search.

_PICK_SALT = "wizard-ldap-user"
PICK_MAX_AGE = 3600


def _pick_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_PICK_SALT)


def pick_token(found: ldap.DirectoryUser) -> str:
    return _pick_serializer().dumps({"id": found.directory_id, "u": found.username,
                                     "n": found.display_name, "e": found.email})


def picked_user(token: str | None) -> dict | None:
    """The directory user a pick token names ({id, u, n, e}), or None if forged or stale."""
    if not token:
        return None
    try:
        return _pick_serializer().loads(token, max_age=PICK_MAX_AGE)
    except BadData:
        return None


def record_picked_user(token: str | None) -> PortalUser | None:
    """The portal user for a pick token, recorded or updated; the caller commits."""
    picked = picked_user(token)
    if picked is None:
        return None
    return record_directory_user(UserSource.LDAP, picked["id"], None, picked["u"], picked["n"],
                                 picked["e"])


def search_directory(config: ldap.LdapConfig, admin_bind: str, admin_password: str, query: str,
                     *, actor: str) -> list[ldap.DirectoryUser]:
    """Search the directory as the admin; raises ldap.DirectoryError. Audited without the
    credentials' password; commits the audit entry."""
    end_transaction()
    try:
        found = ldap.find_users(config, admin_bind, admin_password, query)
    except ldap.DirectoryError as error:
        record("directory.search", actor_type="admin", actor=actor, outcome="error",
               code=_ldap_code(error), query=query[:64], bind=admin_bind[:128],
               cause=error.cause)
        db.session.commit()
        raise
    record("directory.search", actor_type="admin", actor=actor, query=query[:64],
           bind=admin_bind[:128], found=len(found))
    db.session.commit()
    return found
