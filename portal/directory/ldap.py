"""Active Directory / LDAP with ldap3: sign-in, the wizard's user search, bulk's look-up of
many users by name and the admin's connection test. Pure functions of an LdapConfig: no
database, no request, nothing stored.

Every failure is a DirectoryError whose `.cause` is for the admin (what failed, where) and never
contains a password. Connections are opened per call and always closed.
"""
import logging
import math
import re
import socket
import ssl
import uuid
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SIMPLE, SUBTREE, Connection, Server, Tls
from ldap3.core import exceptions as ldap_errors
from ldap3.operation.search import parse_filter
from ldap3.utils.conv import escape_filter_chars
from pyasn1.error import PyAsn1Error

from portal.database import no_transaction_open

log = logging.getLogger(__name__)

USER_ATTRIBUTES = ("sAMAccountName", "userPrincipalName", "uid", "mail")
SECURITY_MODES = ("none", "starttls", "ldaps")
ACCOUNTDISABLE = 0x2       # userAccountControl bit
FIND_SCAN_LIMIT = 500      # entries find_users reads before sorting and cutting to `limit`
NAMES_PER_SEARCH = 50      # exact names find_users_named asks for in one filter
NAMED_SCAN_LIMIT = 500     # entries one such search may return (a unique name has one)
COUNT_LIMIT = 1000         # entries test_connection counts before saying "more than"
BAD_CREDENTIALS = "invalid user name or password"  # unknown user and wrong password alike

_SUCCESS, _SIZE_LIMIT, _REFERRAL, _NO_SUCH_OBJECT, _INVALID_CREDENTIALS = 0, 4, 10, 32, 49
_ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_USER_READS = ("objectGUID", "entryUUID", "cn", "displayName", "mail", "userPrincipalName",
               "userAccountControl")


@dataclass(frozen=True)
class LdapConfig:
    url: str                    # ldap://host:port or ldaps://host:port
    security: str               # "none" | "starttls" | "ldaps"
    ca_cert_pem: str | None     # CA to trust; None: the system trust store
    bind_dn: str | None         # service account; None: anonymous searches
    bind_password: str | None = field(repr=False)  # never in a repr, a log or a cause
    base_dn: str
    user_attribute: str         # one of USER_ATTRIBUTES
    user_filter: str | None     # ANDed into every user search
    connect_timeout: float = 5.0
    read_timeout: float = 10.0

    def __post_init__(self):
        if self.user_attribute not in USER_ATTRIBUTES:
            raise ValueError(f"user_attribute must be one of {', '.join(USER_ATTRIBUTES)}")
        if self.security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if not (self.connect_timeout > 0 and self.read_timeout > 0):
            raise ValueError("timeouts must be positive")


@dataclass(frozen=True)
class DirectoryUser:
    directory_id: str   # objectGUID (AD) or entryUUID (OpenLDAP) as a GUID string, else the DN
    username: str       # the value of the configured user_attribute
    display_name: str   # displayName, else cn, else the username
    email: str | None   # mail, else userPrincipalName when it looks like an address
    dn: str


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class DirectoryError(Exception):
    """Base of the directory failures; `.cause` says what failed, for the admin."""

    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


class InvalidCredentials(DirectoryError):
    """Unknown user or wrong password (deliberately one class and one message)."""


class AccountDisabled(DirectoryError):
    """userAccountControl has ACCOUNTDISABLE set."""


class DirectoryUnavailable(DirectoryError):
    """Cannot connect, timed out, TLS failed."""


class DirectoryMisconfigured(DirectoryError):
    """The settings do not fit the directory: service bind, base DN, filter, ambiguous users."""


def authenticate(config: LdapConfig, username: str, password: str) -> DirectoryUser:
    """The directory user whose user_attribute equals `username` (within user_filter) and whose
    password is `password`. Raises InvalidCredentials, AccountDisabled, DirectoryUnavailable or
    DirectoryMisconfigured."""
    username = (username or "").strip()
    if not username or not password:
        # An empty password would make the bind "unauthenticated", which servers accept.
        raise InvalidCredentials(BAD_CREDENTIALS)
    search_filter = _and(_equals(config.user_attribute, username), _user_filter(config))
    try:
        with _connection(config) as conn:
            _service_bind(conn, config)
            entries, _ = _search(conn, config, search_filter, _user_reads(config), size_limit=2)
            if not entries:
                log.info("LDAP sign-in refused for %r: no entry matches %s", username,
                         search_filter)
                raise InvalidCredentials(BAD_CREDENTIALS)
            if len(entries) > 1:
                raise DirectoryMisconfigured(
                    f"several entries match {search_filter} under {config.base_dn}: the user "
                    f"attribute {config.user_attribute} is not unique; narrow the user filter")
            user, disabled = _directory_user(entries[0], config, username)
            # The password first: "disabled" is told only to whoever knows it, so a guesser
            # cannot learn which accounts exist. (AD itself refuses a disabled account's bind.)
            result = _bind(conn, user.dn, password)
            if result["result"] == _INVALID_CREDENTIALS:
                log.info("LDAP sign-in refused for %s: %s", user.dn, _answer(result))
                raise InvalidCredentials(BAD_CREDENTIALS)
            if result["result"] != _SUCCESS:
                raise DirectoryMisconfigured(f"the bind as {user.dn} was refused: "
                                             f"{_answer(result)}")
            if disabled:
                raise AccountDisabled(f"the account {user.dn} is disabled (userAccountControl)")
            return user
    except (DirectoryUnavailable, DirectoryMisconfigured) as error:
        log.warning("LDAP sign-in failed: %s", error.cause)
        raise


def find_users(config: LdapConfig, admin_bind: str, admin_password: str, query: str,
               limit: int = 20) -> list[DirectoryUser]:
    """Enabled users whose user_attribute, cn, mail or displayName starts with `query`, within
    user_filter, bound with the admin's own credentials (used once, never kept); at most `limit`,
    sorted by display name. Raises InvalidCredentials for bad admin credentials, else as
    authenticate."""
    admin_bind = _admin_name(admin_bind, admin_password)
    if limit < 1:
        return []
    attribute = config.user_attribute
    prefix = escape_filter_chars((query or "").strip())
    matches = None
    if prefix:
        matches = "(|" + "".join(f"({name}={prefix}*)" for name in
                                 dict.fromkeys((attribute, "cn", "mail", "displayName"))) + ")"
    search_filter = _and(f"({attribute}=*)", matches, _user_filter(config))
    try:
        with _connection(config) as conn:
            _admin_bind(conn, admin_bind, admin_password)
            entries, _ = _search(conn, config, search_filter, _user_reads(config),
                                 size_limit=FIND_SCAN_LIMIT)
    except (DirectoryUnavailable, DirectoryMisconfigured) as error:
        log.warning("LDAP user search failed: %s", error.cause)
        raise
    users = [user for user, disabled in (_directory_user(e, config) for e in entries)
             if not disabled]
    users.sort(key=lambda u: (u.display_name.casefold(), u.username.casefold(), u.dn))
    return users[:limit]


def find_users_named(config: LdapConfig, admin_bind: str, admin_password: str,
                     names: Iterable[str]) -> tuple[dict[str, DirectoryUser], dict[str, list]]:
    """The enabled users whose user_attribute equals one of `names` (ignoring case, as LDAP's
    equality does), within user_filter: one connection, one bind with the admin's credentials
    (used once, never kept), one search per NAMES_PER_SEARCH names. Returns ({lowercased name:
    user}, {lowercased name: the DNs of its entries} for the names several entries share, which
    the first leaves out). Raises as find_users."""
    admin_bind = _admin_name(admin_bind, admin_password)
    wanted = {}  # LDAP's folding of a name (case, runs of spaces) → the names asked for
    for name in names:
        name = (name or "").strip()
        if name:
            wanted.setdefault(_folded(name), set()).add(name.lower())
    if not wanted:
        return {}, {}
    entries = []
    try:
        with _connection(config) as conn:
            _admin_bind(conn, admin_bind, admin_password)
            folded = sorted(wanted)
            for start in range(0, len(folded), NAMES_PER_SEARCH):
                entries += _entries_named(conn, config, folded[start:start + NAMES_PER_SEARCH])
    except (DirectoryUnavailable, DirectoryMisconfigured) as error:
        log.warning("LDAP user search failed: %s", error.cause)
        raise
    return _by_name(entries, config, wanted)


def _entries_named(conn: Connection, config: LdapConfig, names: list[str]) -> list[dict]:
    """The entries whose user attribute equals one of `names` (at most NAMES_PER_SEARCH)."""
    attribute = config.user_attribute
    matches = "(|" + "".join(_equals(attribute, name) for name in names) + ")"
    search_filter = _and(f"({attribute}=*)", matches, _user_filter(config))
    entries, truncated = _search(conn, config, search_filter, _user_reads(config),
                                 size_limit=NAMED_SCAN_LIMIT)
    if truncated:  # one name held by hundreds of entries: no answer for the others is sure
        raise DirectoryMisconfigured(
            f"more than {len(entries)} entries under {config.base_dn} have one of {len(names)} "
            f"{attribute} values: the user attribute {attribute} is not unique")
    return entries


def _by_name(entries: list[dict], config: LdapConfig,
             wanted: dict[str, set[str]]) -> tuple[dict[str, DirectoryUser], dict[str, list[str]]]:
    """Each asked name's entries; a name with one entry is found unless it is disabled, a
    name with several is ambiguous (disabled or not: sign-in refuses it too)."""
    held: dict[str, list[dict]] = {}
    # An entry with several values (uid is multi-valued) can come back from two searches.
    for entry in {entry["dn"].lower(): entry for entry in entries}.values():
        for value in {_folded(value) for value in _texts(entry, config.user_attribute)}:
            for name in wanted.get(value, ()):
                held.setdefault(name, []).append(entry)
    found, ambiguous = {}, {}
    for name, matches in held.items():
        if len(matches) > 1:
            ambiguous[name] = sorted(entry["dn"] for entry in matches)
            continue
        user, disabled = _directory_user(matches[0], config, name)
        if not disabled:
            found[name] = user
    return found, ambiguous


def _folded(name: str) -> str:
    """A user name as caseIgnoreMatch compares it: case and runs of spaces aside."""
    return " ".join(name.split()).lower()


def test_connection(config: LdapConfig) -> list[Check]:
    """The admin's "Test connection": Connect, Service account bind, Base DN, User search, in
    order, stopping after the first failure. Never raises for directory problems."""
    checks, step = [], "Connect"
    try:
        with _connection(config) as conn:
            checks.append(Check(step, True, _connected(config)))
            step = "Service account bind"
            _service_bind(conn, config)
            checks.append(Check(step, True, f"bound as {config.bind_dn}" if config.bind_dn
                                else "no service account: searching anonymously"))
            step = "Base DN"
            _search(conn, config, "(objectClass=*)", ["1.1"], size_limit=1, scope=BASE)
            checks.append(Check(step, True, f"{config.base_dn} exists"))
            step = "User search"
            checks.append(Check(step, True, _count_users(conn, config)))
    except DirectoryError as error:
        checks.append(Check(step, False, error.cause))
    return checks


test_connection.__test__ = False  # a product function, not a test, wherever pytest imports it


def _count_users(conn: Connection, config: LdapConfig) -> str:
    search_filter = _and(f"({config.user_attribute}=*)", _user_filter(config))
    entries, truncated = _search(conn, config, search_filter, [config.user_attribute],
                                 size_limit=COUNT_LIMIT)
    if not entries:
        raise DirectoryMisconfigured(
            f"no entry under {config.base_dn} matches {search_filter}: check the user attribute "
            "and the user filter")
    example = _text(entries[0], config.user_attribute)
    found = f"more than {len(entries)}" if truncated else str(len(entries))
    return (f"{found} users found with {search_filter} under {config.base_dn} "
            f"(e.g. {config.user_attribute} {example})")


@contextmanager
def _connection(config: LdapConfig):
    """An open connection (TLS established and verified when configured), not yet bound;
    ldap3's exceptions inside become DirectoryUnavailable / DirectoryMisconfigured."""
    no_transaction_open("The directory")
    server = _server(config)
    conn = Connection(server, receive_timeout=math.ceil(config.read_timeout),  # ldap3 needs int
                      auto_referrals=False, raise_exceptions=False, read_only=True,
                      return_empty_attributes=False)
    try:
        conn.open(read_server_info=False)
        # Each request is sent at once: with Nagle's algorithm on, a TLS request written in
        # pieces waited for the server's delayed ACK, about 40 ms per operation over LDAPS.
        conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if config.security == "starttls" and not server.ssl and not conn.start_tls(False):
            raise DirectoryUnavailable(f"StartTLS failed at {_where(config)}")
        yield conn
    except (ldap_errors.LDAPCommunicationError, ldap_errors.LDAPStartTLSError, OSError) as error:
        raise DirectoryUnavailable(_describe(error, config)) from error
    except (KeyError, IndexError, ValueError, PyAsn1Error) as error:  # ldap3 decoding garbage
        raise DirectoryUnavailable(f"{_where(config)} answered, but not in LDAP "
                                   f"({type(error).__name__})") from error
    finally:
        try:
            conn.unbind()
        except (ldap_errors.LDAPException, OSError):
            pass
        if conn.socket is not None:  # ldap3 leaves it open when connect or TLS failed
            conn.socket.close()


def _server(config: LdapConfig) -> Server:
    host, port, use_ssl = _address(config)
    tls = None
    if use_ssl or config.security == "starttls":
        tls = _VerifiedTls(validate=ssl.CERT_REQUIRED, ca_certs_data=_ca_pem(config))
    return Server(host, port=port, use_ssl=use_ssl, tls=tls, get_info=NONE,
                  connect_timeout=config.connect_timeout)


def _address(config: LdapConfig) -> tuple[str, int, bool]:
    """Host, port and whether to speak LDAPS (security "ldaps" or an ldaps:// URL: a TLS URL
    is never downgraded)."""
    parts = urlsplit(config.url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    if scheme not in ("ldap", "ldaps") or not parts.hostname or port == -1:
        raise DirectoryMisconfigured(f"the server address {config.url!r} is not "
                                     "ldap://host:port or ldaps://host:port")
    use_ssl = config.security == "ldaps" or scheme == "ldaps"
    return parts.hostname, port or (636 if use_ssl else 389), use_ssl


class _VerifiedTls(Tls):
    """ldap3's Tls, with the host name checked by the ssl module during the handshake.

    ldap3 2.9.1 checks it afterwards with ssl.match_hostname, which warns (DeprecationWarning)
    on every TLS connection and no longer exists from Python 3.12, where ldap3's fallback does
    not match IP addresses. ldap3 calls this for LDAPS and for StartTLS alike."""

    def wrap_socket(self, connection, do_handshake=False):
        context = ssl.create_default_context(cadata=self.ca_certs_data)  # CERT_REQUIRED
        connection.socket = context.wrap_socket(connection.socket,
                                                server_hostname=connection.server.host,
                                                do_handshake_on_connect=do_handshake)


def _ca_pem(config: LdapConfig) -> str | None:
    pem = (config.ca_cert_pem or "").strip()
    if not pem:
        return None
    try:
        ssl.create_default_context(cadata=pem)
    except (ssl.SSLError, ValueError) as error:
        raise DirectoryMisconfigured(f"the CA certificate is not a usable PEM certificate "
                                     f"({error})") from None
    return pem


def _service_bind(conn: Connection, config: LdapConfig) -> None:
    if not config.bind_dn:
        return
    if not config.bind_password:
        raise DirectoryMisconfigured(f"no password is set for the service account {config.bind_dn}")
    result = _bind(conn, config.bind_dn, config.bind_password)
    if result["result"] == _INVALID_CREDENTIALS:
        raise DirectoryMisconfigured(f"invalid credentials for {config.bind_dn} "
                                     f"(the service account bind was rejected)")
    if result["result"] != _SUCCESS:
        raise DirectoryMisconfigured(f"the service account bind as {config.bind_dn} was refused: "
                                     f"{_answer(result)}")


def _admin_name(admin_bind: str, admin_password: str) -> str:
    admin_bind = (admin_bind or "").strip()
    if not admin_bind or not admin_password:
        raise InvalidCredentials("enter the directory user name and password to search with")
    return admin_bind


def _admin_bind(conn: Connection, admin_bind: str, admin_password: str) -> None:
    result = _bind(conn, admin_bind, admin_password)
    if result["result"] == _INVALID_CREDENTIALS:
        raise InvalidCredentials(f"the directory rejected the credentials for {admin_bind}")
    if result["result"] != _SUCCESS:
        raise DirectoryMisconfigured(f"the bind as {admin_bind} was refused: {_answer(result)}")


def _bind(conn: Connection, user: str, password: str) -> dict:
    """A simple bind on the open connection; the server's result (ldap3's dict)."""
    conn.authentication, conn.user, conn.password = SIMPLE, user, password
    try:
        conn.bind(read_server_info=False)
    except (ldap_errors.LDAPPasswordIsMandatoryError, ldap_errors.LDAPUserNameIsMandatoryError,
            ldap_errors.LDAPSASLPrepError):  # refused before sending; never quote the password
        return {"result": _INVALID_CREDENTIALS, "description": "invalidCredentials",
                "message": "refused by the client (empty or unusable name or password)"}
    finally:
        conn.password = None
    return conn.result


def _search(conn: Connection, config: LdapConfig, search_filter: str, attributes,
            size_limit: int, scope=SUBTREE) -> tuple[list[dict], bool]:
    """Entries (ldap3 response dicts) under the base DN, and whether the size limit cut them."""
    try:
        conn.search(config.base_dn, search_filter, scope, attributes=list(attributes),
                    size_limit=size_limit, time_limit=math.ceil(config.read_timeout))
    except ldap_errors.LDAPInvalidDnError:
        raise DirectoryMisconfigured(f"the base DN {config.base_dn!r} is not a valid DN") from None
    except ldap_errors.LDAPInvalidFilterError as error:
        raise DirectoryMisconfigured(f"the search filter {search_filter} is invalid "
                                     f"({error})") from None
    result = conn.result
    if result["result"] == _NO_SUCH_OBJECT:
        closest = f" (the closest existing entry is {result['dn']})" if result.get("dn") else ""
        raise DirectoryMisconfigured(f"the base DN {config.base_dn} does not exist{closest}")
    if result["result"] == _REFERRAL:
        raise DirectoryMisconfigured(f"the base DN {config.base_dn} is not held by this server "
                                     f"(referral to {', '.join(result.get('referrals') or [])})")
    if result["result"] not in (_SUCCESS, _SIZE_LIMIT):
        raise DirectoryMisconfigured(f"the search {search_filter} under {config.base_dn} failed: "
                                     f"{_answer(result)}")
    entries = [item for item in conn.response or [] if item.get("type") == "searchResEntry"]
    return entries, result["result"] == _SIZE_LIMIT


def _user_filter(config: LdapConfig) -> str | None:
    """The admin's extra filter, parenthesized and checked to be one well-formed filter, so
    that ANDing it in cannot change the meaning of the rest."""
    text = (config.user_filter or "").strip()
    if not text:
        return None
    if not text.startswith("("):
        text = f"({text})"
    depth = 0
    for position, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or (depth == 0 and position < len(text) - 1):
            break
    else:
        if depth == 0:
            try:
                parse_filter(text, None, True, False, None, False)
                return text
            except ldap_errors.LDAPInvalidFilterError:
                pass
    raise DirectoryMisconfigured(f"the user filter {text} is not a valid LDAP filter")


def _equals(attribute: str, value: str) -> str:
    return f"({attribute}={escape_filter_chars(value)})"


def _and(*parts: str | None) -> str:
    parts = [part for part in parts if part]
    return parts[0] if len(parts) == 1 else "(&" + "".join(parts) + ")"


def _user_reads(config: LdapConfig) -> list[str]:
    return list(dict.fromkeys((*_USER_READS, config.user_attribute)))


def _directory_user(entry: dict, config: LdapConfig,
                    typed: str | None = None) -> tuple[DirectoryUser, bool]:
    """The DirectoryUser of a search entry, and whether the account is disabled."""
    names = _texts(entry, config.user_attribute)
    username = next((name for name in names if typed and name.casefold() == typed.casefold()),
                    names[0] if names else typed or "")
    guid = (entry["raw_attributes"].get("objectGUID") or [b""])[0]
    if len(guid) == 16:
        directory_id = str(uuid.UUID(bytes_le=guid))
    else:
        directory_id = (_text(entry, "entryUUID") or entry["dn"]).lower()
    upn = _text(entry, "userPrincipalName")
    email = _text(entry, "mail") or (upn if upn and _ADDRESS.fullmatch(upn) else None)
    display_name = _text(entry, "displayName") or _text(entry, "cn") or username
    control = _text(entry, "userAccountControl")
    disabled = bool(control and control.lstrip("-").isdigit() and int(control) & ACCOUNTDISABLE)
    return DirectoryUser(directory_id, username, display_name, email, entry["dn"]), disabled


def _texts(entry: dict, attribute: str) -> list[str]:
    return [value.decode("utf-8", "replace")
            for value in entry["raw_attributes"].get(attribute) or []]


def _text(entry: dict, attribute: str) -> str | None:
    values = _texts(entry, attribute)
    return values[0] if values else None


def _answer(result: dict) -> str:
    """The server's answer to an operation, e.g. "invalidCredentials: 80090308: LdapErr: ..."."""
    message = (result.get("message") or "").strip()
    return f"{result.get('description')}: {message}" if message else str(result.get("description"))


def _where(config: LdapConfig) -> str:
    host, port, _ = _address(config)
    return f"{host}:{port}"


def _connected(config: LdapConfig) -> str:
    if _address(config)[2]:
        how = "over LDAPS, certificate verified"
    elif config.security == "starttls":
        how = "with StartTLS, certificate verified"
    else:
        how = "without TLS"
    return f"connected to {_where(config)} {how}"


def _describe(error: Exception, config: LdapConfig) -> str:
    """What went wrong talking to the server, in the admin's terms (ldap3 merges the socket or
    TLS exception type into its own, so isinstance sees both; its text is nested reprs)."""
    (host, _, _), where, text = _address(config), _where(config), str(error)
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused at {where}"
    if isinstance(error, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in text:
        reason = re.search(r"certificate verify failed:?\s*([^(]*)", text.replace("\\", ""))
        detail = f" ({reason.group(1).strip()})" if reason and reason.group(1).strip() else ""
        return f"TLS with {where}: certificate verify failed{detail}"
    if isinstance(error, TimeoutError) or "timed out" in text:
        if "while opening" in text:
            return f"timed out after {config.connect_timeout:g} s connecting to {where}"
        return (f"no answer from {where} within {math.ceil(config.read_timeout)} s "
                "(read timeout)")
    if isinstance(error, ldap_errors.LDAPSessionTerminatedByServerError) \
            or isinstance(error, ssl.SSLError) or "[SSL" in text:
        reason = re.search(r"\[SSL(?:: [A-Z0-9_]+)?\] ([^(\'\"]+)", text)
        what = f"the TLS handshake failed ({reason.group(1).strip()})" if reason \
            else "the server closed the connection"
        return (f"{where}: {what}; check that the security setting matches the port "
                "(LDAPS usually listens on 636, LDAP and StartTLS on 389)")
    if isinstance(error, ldap_errors.LDAPStartTLSError):
        return f"StartTLS failed at {where}: {text}"
    if "invalid server address" in text:
        return f"cannot resolve the host name {host}"
    return f"cannot talk to {where}: {text}"
