"""A real OpenLDAP slapd on loopback, shaped like Active Directory, for the directory tests.

    server = start_slapd(tmp_path)             # free ports, its own CA, seeded users
    authenticate(server.config(security="ldaps"), "alice", USER_PASSWORD)
    stop_slapd(server)

Or, in a conftest.py: `ldap_server = ldap_server_fixture()` (session scope). slapd runs in the
foreground as our child (so stopping it is a kill and a wait) with an mdb database, the memberof
overlay and a small AD-like schema: sAMAccountName, userPrincipalName, userAccountControl and
objectGUID in an auxiliary class mixed into inetOrgPerson; entryUUID is OpenLDAP's own. The
monitor backend (cn=Monitor, readable by the admin) counts the operations slapd served:
`with counted(server) as seen: ...` then `seen["binds"]`, `seen["entries"]`.
slapd comes from apt (`./dev test` installs it); a missing slapd is a failure, never a skip.
"""
import base64
import ctypes
import hashlib
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ldap3 import NONE, Connection, Server

from portal.directory.ldap import LdapConfig

SLAPD = "/usr/sbin/slapd"
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")
START_TIMEOUT = 60.0  # seconds until slapd must accept connections (a hang guard: an exit is seen at once)

BASE_DN = "dc=example,dc=org"
USERS_DN = f"ou=users,{BASE_DN}"
GROUPS_DN = f"ou=groups,{BASE_DN}"
ADMIN_DN = f"cn=admin,{BASE_DN}"
ADMIN_PASSWORD = "adminpw"
SERVICE_DN = f"cn=portal-svc,ou=service,{BASE_DN}"
SERVICE_PASSWORD = "svc-pass"
USER_PASSWORD = "Passw0rd!"
JUERG_PASSWORD = "Grüezi-123"
STUDENTS_DN = f"cn=students,{GROUPS_DN}"
STUDENTS_FILTER = f"(memberOf={STUDENTS_DN})"
ALICE_GUID = uuid.UUID("6f1c2a4e-93b0-4d57-a8e1-0c5f3b2d7e91")  # stored as AD does: bytes_le

# Microsoft's attribute OIDs; the auxiliary class sits on a private test arc.
AD_LITE_SCHEMA = """\
attributetype ( 1.2.840.113556.1.4.221 NAME 'sAMAccountName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{256} SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.656 NAME 'userPrincipalName'
  EQUALITY caseIgnoreMatch SUBSTR caseIgnoreSubstringsMatch
  SYNTAX 1.3.6.1.4.1.1466.115.121.1.15{1024} SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.8 NAME 'userAccountControl'
  EQUALITY integerMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.2.840.113556.1.4.2 NAME 'objectGUID'
  EQUALITY octetStringMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.40{16} SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'adLiteUser' SUP top AUXILIARY
  MAY ( sAMAccountName $ userPrincipalName $ userAccountControl $ objectGUID ) )
"""

SLAPD_CONF = """\
include {schema}/core.schema
include {schema}/cosine.schema
include {schema}/inetorgperson.schema
include {root}/ad-lite.schema
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath {modules}
moduleload back_mdb
moduleload memberof
TLSCACertificateFile {root}/ca.crt
TLSCertificateFile {root}/server.crt
TLSCertificateKeyFile {root}/server.key
loglevel none

database mdb
maxsize 16777216
suffix "{base}"
rootdn "{admin}"
rootpw {admin_hash}
directory {root}/db
index objectClass eq
index uid,mail,cn,displayName,sAMAccountName,userPrincipalName eq,sub
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by anonymous auth

database monitor
access to * by dn.exact="{admin}" read by * none
"""

# (rdn uid, sAMAccountName, display name, sn, mail, userAccountControl, in students?, password)
USERS = [
    ("alice", "alice", "Alice Example", "Example", "alice@example.org", 512, True, USER_PASSWORD),
    ("bob", "bob", "Bob Brown", "Brown", "bob@example.org", 512, False, USER_PASSWORD),
    ("carol", "carol", "Carol Chen", "Chen", "carol@example.org", 514, True, USER_PASSWORD),
    ("dave*(x)", "dave*(x)", "Dave Star", "Star", "dave@example.org", 512, True, USER_PASSWORD),
    ("jürg", "juerg", "Jürg Müller", "Müller", "juerg@example.org", 512, True, JUERG_PASSWORD),
    # two people sharing a mailbox: signing in "by mail" with it is ambiguous
    ("twin1", "twin1", "Twin One", "One", "twins@example.org", 512, False, USER_PASSWORD),
    ("twin2", "twin2", "Twin Two", "Two", "twins@example.org", 512, False, USER_PASSWORD),
]


# A crowd for the look-ups by exact name, on a server of its own (ldap_server_fixture's
# more_users), as (rdn uid, sAMAccountName, display name, userAccountControl):
# - "jo" and five names it prefixes, whose display names sort before Jo's, so a prefix search
#   cut to 5 misses the exact "jo";
# - user000 … user109, user007 disabled, user042's sAMAccountName written User042;
# - names with filter metacharacters;
# - "dup" held by two entries, "dup-off" by an enabled and a disabled one.
JO_CROWD = [("jo", "jo", "Zeta Jo", 512), ("joan", "joan", "Ann Joan", 512),
            ("joe", "joe", "Bea Joe", 512), ("john", "john", "Cid John", 512),
            ("jose", "jose", "Dan Jose", 512), ("josh", "josh", "Eve Josh", 512)]
NUMBERED_CROWD = [(f"user{n:03}", "User042" if n == 42 else f"user{n:03}",
                   f"Crowd User {n:03}", 514 if n == 7 else 512) for n in range(110)]
ODD_CROWD = [("star", "star*(x)", "Star Odd", 512),
             ("backslash", "back\\slash", "Back Slash", 512),
             ("dup1", "dup", "Dup One", 512), ("dup2", "dup", "Dup Two", 512),
             ("dupoff1", "dup-off", "Dup Off One", 512),
             ("dupoff2", "dup-off", "Dup Off Two", 514)]
CROWD = JO_CROWD + NUMBERED_CROWD + ODD_CROWD


@dataclass(frozen=True)
class LdapServer:
    url_plain: str      # ldap://127.0.0.1:<port> (StartTLS capable)
    url_ldaps: str      # ldaps://127.0.0.1:<port>
    port: int
    ldaps_port: int
    ca_pem: str         # the test CA that signed the server certificate
    root: Path          # slapd.conf, the certificates, the database, slapd.log
    base_dn: str = BASE_DN
    users_dn: str = USERS_DN
    service_dn: str = SERVICE_DN
    service_password: str = SERVICE_PASSWORD
    admin_dn: str = ADMIN_DN
    admin_password: str = ADMIN_PASSWORD
    user_password: str = USER_PASSWORD
    students_filter: str = STUDENTS_FILTER
    process: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def config(self, security: str = "none", **overrides) -> LdapConfig:
        """An LdapConfig for this server: the service account, sAMAccountName, no filter, the
        URL and CA matching `security`; any field can be overridden."""
        values = dict(url=self.url_ldaps if security == "ldaps" else self.url_plain,
                      security=security,
                      ca_cert_pem=None if security == "none" else self.ca_pem,
                      bind_dn=self.service_dn, bind_password=self.service_password,
                      base_dn=self.base_dn, user_attribute="sAMAccountName", user_filter=None)
        values.update(overrides)
        return LdapConfig(**values)


def start_slapd(root: Path) -> LdapServer:
    """slapd on two free loopback ports with its own CA and the seeded users; `root` must be
    a fresh directory of this test run. Raises RuntimeError if slapd is missing or fails."""
    if slapd_missing():
        raise RuntimeError(slapd_missing())
    root.mkdir(parents=True, exist_ok=True)
    ca_pem = _write_files(root)
    for _ in range(3):  # a free port can be taken between probing and slapd's bind
        server = _launch(root, ca_pem)
        if server is not None:
            _seed(server)
            return server
    raise RuntimeError(f"slapd did not start; its log:\n{_log(root)}")


def slapd_missing() -> str | None:
    """Why slapd cannot run here, or None."""
    if os.access(SLAPD, os.X_OK):
        return None
    return (f"{SLAPD} is not installed: `./dev test` installs slapd, ldap-utils and openssl "
            "(apt), or run: apt-get install slapd ldap-utils openssl")


def stop_slapd(server: LdapServer) -> None:
    """Kill slapd, wait for it, and remove its directory."""
    if server.process is not None and server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    shutil.rmtree(server.root, ignore_errors=True)


def ldap_server_fixture(name: str = "ldap_server", scope: str = "session", more_users=()):
    """A pytest fixture named `name` that yields a running LdapServer for the whole `scope`
    (a unique temp dir per session and xdist worker), with `more_users` (see add_users) beside
    the seeded USERS. Assign it in a conftest.py or a test module."""
    @pytest.fixture(scope=scope, name=name)
    def _ldap_server(tmp_path_factory):
        if slapd_missing():  # a failure, not a skip: the suite must not pass without it
            pytest.fail(slapd_missing(), pytrace=False)
        server = start_slapd(tmp_path_factory.mktemp("slapd"))
        if more_users:
            add_users(server, list(more_users))
        yield server
        stop_slapd(server)
    return _ldap_server


def make_ca(common_name: str = "Test LDAP CA") -> tuple[str, ec.EllipticCurvePrivateKey]:
    """A self-signed CA: (certificate PEM, private key). Also serves as a foreign CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (_builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                         False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode(), key


def _server_cert(ca_pem: str, ca_key) -> tuple[bytes, bytes]:
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (_builder(subject, ca.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _builder(subject, issuer, public_key) -> x509.CertificateBuilder:
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=2)))


def _write_files(root: Path) -> str:
    ca_pem, ca_key = make_ca()
    cert_pem, key_pem = _server_cert(ca_pem, ca_key)
    (root / "ca.crt").write_text(ca_pem)
    (root / "server.crt").write_bytes(cert_pem)
    (root / "server.key").write_bytes(key_pem)
    (root / "ad-lite.schema").write_text(AD_LITE_SCHEMA)
    (root / "db").mkdir(exist_ok=True)
    (root / "slapd.conf").write_text(SLAPD_CONF.format(
        schema=SCHEMA_DIR, root=root, modules=MODULE_DIR, base=BASE_DN, admin=ADMIN_DN,
        admin_hash=ssha(ADMIN_PASSWORD)))
    return ca_pem


def _launch(root: Path, ca_pem: str) -> LdapServer | None:
    """slapd in the foreground (-d 0) as our child; None if it exited (a port was taken)."""
    port, ldaps_port = _free_port(), _free_port()
    urls = f"ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{ldaps_port}/"
    with open(root / "slapd.log", "ab") as log:
        process = subprocess.Popen([SLAPD, "-f", str(root / "slapd.conf"), "-h", urls, "-d", "0"],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                   preexec_fn=_die_with_parent)
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return None
        if _accepts(port) and _accepts(ldaps_port):
            return LdapServer(url_plain=f"ldap://127.0.0.1:{port}",
                              url_ldaps=f"ldaps://127.0.0.1:{ldaps_port}", port=port,
                              ldaps_port=ldaps_port, ca_pem=ca_pem, root=root, process=process)
        time.sleep(0.01)
    process.kill()
    process.wait()
    raise RuntimeError(f"slapd did not accept connections within {START_TIMEOUT:g} s; its log:\n"
                       f"{_log(root)}")


def _seed(server: LdapServer) -> None:
    conn = Connection(Server(server.url_plain), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True,
                      raise_exceptions=True)
    try:
        conn.add(BASE_DN, ["dcObject", "organization"], {"dc": "example", "o": "Example Org"})
        for ou in ("users", "groups", "service"):
            conn.add(f"ou={ou},{BASE_DN}", "organizationalUnit", {"ou": ou})
        conn.add(SERVICE_DN, ["organizationalRole", "simpleSecurityObject"],
                 {"cn": "portal-svc", "userPassword": ssha(SERVICE_PASSWORD)})
        students = []
        for uid, sam, display, sn, mail, uac, student, password in USERS:
            dn = user_dn(uid)
            attributes = {"uid": uid, "cn": display, "sn": sn, "displayName": display,
                          "mail": mail, "sAMAccountName": sam, "userAccountControl": str(uac),
                          "userPrincipalName": f"{sam}@example.org", "userPassword": ssha(password)}
            if uid == "alice":
                attributes["objectGUID"] = ALICE_GUID.bytes_le
            conn.add(dn, ["inetOrgPerson", "adLiteUser"], attributes)
            if student:
                students.append(dn)
        conn.add(STUDENTS_DN, "groupOfNames", {"cn": "students", "member": students})
    finally:
        conn.unbind()


def add_users(server: LdapServer, users: list[tuple[str, str, str, int]]) -> None:
    """More users, as (rdn uid, sAMAccountName, display name, userAccountControl), each with
    USER_PASSWORD and mail <uid>@example.org. For a test's own server: the seeded USERS are
    what the shared one's tests count on."""
    conn = Connection(Server(server.url_plain), ADMIN_DN, ADMIN_PASSWORD, auto_bind=True,
                      raise_exceptions=True)
    try:
        for uid, sam, display, uac in users:
            conn.add(user_dn(uid), ["inetOrgPerson", "adLiteUser"], {
                "uid": uid, "cn": display, "sn": display.split()[-1], "displayName": display,
                "mail": f"{uid}@example.org", "sAMAccountName": sam,
                "userAccountControl": str(uac), "userPassword": ssha(USER_PASSWORD)})
    finally:
        conn.unbind()


_COUNTERS = {"binds": "cn=Bind,cn=Operations,cn=Monitor",
             "searches": "cn=Search,cn=Operations,cn=Monitor",
             "connections": "cn=Total,cn=Connections,cn=Monitor",
             "entries": "cn=Entries,cn=Statistics,cn=Monitor"}


@contextmanager
def counted(server: LdapServer):
    """The binds, searches, connections and entries sent that slapd counted inside the block,
    from its monitor backend: {"binds": n, "searches": n, "connections": n, "entries": n},
    filled when the block ends."""
    seen = {}
    before = _counters(server)
    yield seen
    after = _counters(server)
    # A reading counts some of its own operations and entries, the next one the rest: what
    # one more reading adds with nothing in between is what `before`'s reading added.
    again = _counters(server)
    seen.update({name: after[name] - before[name] - (again[name] - after[name])
                 for name in _COUNTERS})


def _counters(server: LdapServer) -> dict[str, int]:
    conn = Connection(Server(server.url_plain, get_info=NONE), ADMIN_DN, ADMIN_PASSWORD,
                      auto_bind=True, raise_exceptions=True)
    try:  # one search, so that every reading costs the same
        conn.search("cn=Monitor", "(|(cn=Bind)(cn=Search)(cn=Total)(cn=Entries))",
                    attributes=["monitorOpCompleted", "monitorCounter"])
        values = {entry["dn"]: entry["attributes"] for entry in conn.response}
        return {name: int((values[dn].get("monitorOpCompleted")
                           or values[dn].get("monitorCounter"))[0])
                for name, dn in _COUNTERS.items()}
    finally:
        conn.unbind()


def user_dn(uid: str) -> str:
    """The DN of a seeded user (the uid is used as given: `*()` need no escaping in a DN)."""
    return f"uid={uid},{USERS_DN}"


def ssha(password: str) -> str:
    """An OpenLDAP {SSHA} userPassword value."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


try:
    _LIBC = ctypes.CDLL("libc.so.6", use_errno=True)  # loaded here: the child only calls it
except OSError:
    _LIBC = None


def _die_with_parent() -> None:
    """Linux: SIGTERM slapd if the test process dies without tearing down."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _log(root: Path) -> str:
    try:
        return (root / "slapd.log").read_text(errors="replace")[-4000:]
    except OSError:
        return "(no log)"
