"""portal.directory.ldap against a real slapd (tests/support/ldap_server.py): sign-in, the
wizard's user search, bulk's look-up by name and the admin's connection test, over plain LDAP,
StartTLS and LDAPS. Nothing is mocked."""
import logging
import socket
import ssl
import time
import warnings

import pytest

from portal.directory.ldap import (BAD_CREDENTIALS, NAMES_PER_SEARCH, AccountDisabled,
                                   DirectoryMisconfigured, DirectoryUnavailable,
                                   InvalidCredentials, LdapConfig, authenticate, find_users,
                                   find_users_named, test_connection)
from tests.support.ldap_server import (ALICE_GUID, CROWD, JUERG_PASSWORD, SERVICE_DN,
                                       SERVICE_PASSWORD, USER_PASSWORD, counted,
                                       ldap_server_fixture, make_ca, user_dn)

TRANSPORTS = ["none", "starttls", "ldaps"]
STEPS = ["Connect", "Service account bind", "Base DN", "User search"]
WRONG_SECRET = "Wr0ng-s3cret-6789"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nobody listens once the probe is closed


@pytest.fixture
def silent_port():
    """A port that accepts TCP connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


@pytest.fixture
def full_backlog_port():
    """A port whose accept queue is full, so Linux drops new SYNs: connect() hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.05)
    yield port
    for sock in (*fillers, server):
        sock.close()


# --- authenticate ---------------------------------------------------------------------------

@pytest.mark.parametrize("attribute, login", [
    ("sAMAccountName", "alice"), ("userPrincipalName", "alice@example.org"),
    ("uid", "alice"), ("mail", "alice@example.org")])
def test_authenticate_finds_the_user_by_each_allowed_attribute(ldap_server, attribute, login):
    user = authenticate(ldap_server.config(user_attribute=attribute), login, USER_PASSWORD)

    assert user.username == login
    assert user.dn == user_dn("alice")
    assert user.display_name == "Alice Example"
    assert user.email == "alice@example.org"
    assert user.directory_id == str(ALICE_GUID)  # objectGUID, read as AD stores it


@pytest.mark.parametrize("security", TRANSPORTS)
def test_authenticate_over_each_transport(ldap_server, security):
    user = authenticate(ldap_server.config(security), "bob", USER_PASSWORD)

    assert user.dn == user_dn("bob")
    assert len(user.directory_id) == 36 and user.directory_id != str(ALICE_GUID)  # entryUUID


def test_username_matches_case_insensitively_and_reports_the_stored_value(ldap_server):
    assert authenticate(ldap_server.config(), " ALICE ", USER_PASSWORD).username == "alice"


@pytest.mark.parametrize("security", TRANSPORTS)
def test_requests_go_out_at_once_on_every_transport(ldap_server, security):
    """TCP_NODELAY: with Nagle's algorithm a request written in pieces waited for slapd's
    delayed ACK, 49.5 ms for a connection, bind and search over LDAPS against 7.5 ms without
    (bench.bulk's directory figures, docs/benchmarks.md)."""
    from portal.directory.ldap import _connection
    with _connection(ldap_server.config(security)) as conn:
        assert conn.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        assert conn.bind()  # (anonymous) over the transport asked for
        assert isinstance(conn.socket, ssl.SSLSocket) == (security != "none")


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
@pytest.mark.parametrize("ca", ["foreign", "system"])
def test_a_certificate_from_an_untrusted_ca_is_refused(ldap_server, security, ca):
    pem = make_ca("Someone Else's CA")[0] if ca == "foreign" else None

    with pytest.raises(DirectoryUnavailable) as refused:
        authenticate(ldap_server.config(security, ca_cert_pem=pem), "alice", USER_PASSWORD)
    assert "certificate verify failed" in refused.value.cause


@pytest.mark.parametrize("security", ["starttls", "ldaps"])
def test_a_host_name_the_certificate_does_not_name_is_refused(ldap_server, security):
    # 127.1 reaches 127.0.0.1, but the certificate names only localhost and 127.0.0.1
    url = (ldap_server.url_ldaps if security == "ldaps" else ldap_server.url_plain)
    config = ldap_server.config(security, url=url.replace("127.0.0.1", "127.1"))

    with pytest.raises(DirectoryUnavailable) as refused:
        authenticate(config, "alice", USER_PASSWORD)
    assert "Hostname mismatch" in refused.value.cause


def test_wrong_password_and_unknown_user_are_indistinguishable(ldap_server):
    with pytest.raises(InvalidCredentials) as wrong_password:
        authenticate(ldap_server.config(), "alice", "not-her-password")
    with pytest.raises(InvalidCredentials) as unknown_user:
        authenticate(ldap_server.config(), "mallory", USER_PASSWORD)

    assert str(wrong_password.value) == str(unknown_user.value) == BAD_CREDENTIALS
    assert wrong_password.value.cause == unknown_user.value.cause


@pytest.mark.parametrize("password", ["", None])
def test_an_empty_password_is_refused_before_any_connection(ldap_server, password):
    # an unauthenticated simple bind (DN, no password) would "succeed" on the real server
    nowhere = ldap_server.config(url=f"ldap://127.0.0.1:{_closed_port()}")

    with pytest.raises(InvalidCredentials):
        authenticate(nowhere, "alice", password)
    with pytest.raises(InvalidCredentials):
        authenticate(ldap_server.config(), "alice", password)


def test_a_disabled_account_is_refused(ldap_server):
    with pytest.raises(AccountDisabled) as refused:
        authenticate(ldap_server.config(), "carol", USER_PASSWORD)
    assert user_dn("carol") in refused.value.cause


def test_a_disabled_account_with_a_wrong_password_looks_like_any_wrong_password(ldap_server):
    with pytest.raises(InvalidCredentials):  # not AccountDisabled: that would confirm carol
        authenticate(ldap_server.config(), "carol", "guessed-password")


@pytest.mark.parametrize("user_filter", [
    "(memberOf=cn=students,ou=groups,dc=example,dc=org)",
    "memberOf=cn=students,ou=groups,dc=example,dc=org"])  # parentheses are added
def test_the_user_filter_excludes_bob_who_is_no_student(ldap_server, user_filter):
    config = ldap_server.config(user_filter=user_filter)

    assert authenticate(config, "alice", USER_PASSWORD).username == "alice"
    with pytest.raises(InvalidCredentials):
        authenticate(config, "bob", USER_PASSWORD)


@pytest.mark.parametrize("username", ["*", "alice)(uid=*", "al*", "*)(|(uid=*"])
def test_filter_injection_in_the_username_matches_nobody(ldap_server, username):
    with pytest.raises(InvalidCredentials):
        authenticate(ldap_server.config(user_attribute="uid"), username, USER_PASSWORD)


@pytest.mark.parametrize("attribute", ["sAMAccountName", "uid"])
def test_a_user_whose_name_needs_escaping_signs_in(ldap_server, attribute):
    user = authenticate(ldap_server.config(user_attribute=attribute), "dave*(x)", USER_PASSWORD)
    assert (user.username, user.dn) == ("dave*(x)", user_dn("dave*(x)"))


def test_a_user_with_a_non_ascii_name_and_password_signs_in(ldap_server):
    by_uid = authenticate(ldap_server.config(user_attribute="uid"), "jürg", JUERG_PASSWORD)
    by_sam = authenticate(ldap_server.config("ldaps"), "juerg", JUERG_PASSWORD)

    assert by_uid.display_name == by_sam.display_name == "Jürg Müller"
    assert (by_uid.username, by_sam.username) == ("jürg", "juerg")
    assert by_uid.directory_id == by_sam.directory_id


def test_several_matching_entries_are_a_misconfiguration(ldap_server):
    with pytest.raises(DirectoryMisconfigured) as refused:
        authenticate(ldap_server.config(user_attribute="mail"), "twins@example.org",
                     USER_PASSWORD)
    assert "several entries" in refused.value.cause


def test_a_rejected_service_bind_names_the_account_never_the_password(ldap_server, caplog):
    config = ldap_server.config("starttls", bind_password=WRONG_SECRET)

    with caplog.at_level(logging.DEBUG), pytest.raises(DirectoryMisconfigured) as refused:
        authenticate(config, "alice", USER_PASSWORD)
    assert SERVICE_DN in refused.value.cause
    assert "invalid credentials" in refused.value.cause
    assert WRONG_SECRET not in str(refused.value) + caplog.text + repr(config)
    assert USER_PASSWORD not in caplog.text


def test_a_missing_base_dn_is_a_misconfiguration(ldap_server):
    with pytest.raises(DirectoryMisconfigured) as refused:
        authenticate(ldap_server.config(base_dn="ou=gone,dc=example,dc=org"), "alice",
                     USER_PASSWORD)
    assert "ou=gone,dc=example,dc=org does not exist" in refused.value.cause


def test_a_closed_port_is_unavailable_at_once(ldap_server):
    port = _closed_port()
    config = ldap_server.config(url=f"ldap://127.0.0.1:{port}", connect_timeout=2)

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as refused:
        authenticate(config, "alice", USER_PASSWORD)
    assert time.monotonic() - started < config.connect_timeout + 2
    assert refused.value.cause == f"connection refused at 127.0.0.1:{port}"


def test_a_server_that_never_accepts_times_out_after_the_connect_timeout(ldap_server,
                                                                      full_backlog_port):
    config = ldap_server.config(url=f"ldap://127.0.0.1:{full_backlog_port}",
                                connect_timeout=0.5)

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as refused:
        authenticate(config, "alice", USER_PASSWORD)
    assert 0.4 < time.monotonic() - started < config.connect_timeout + 2
    assert refused.value.cause.startswith("timed out after 0.5 s connecting to 127.0.0.1:")


@pytest.mark.parametrize("security", ["none", "ldaps"])  # the bind / the TLS handshake hangs
def test_a_server_that_never_answers_times_out_after_the_read_timeout(ldap_server, silent_port,
                                                                   security):
    config = ldap_server.config(security, url=f"ldap{'s' if security == 'ldaps' else ''}://"
                                              f"127.0.0.1:{silent_port}", read_timeout=1)

    started = time.monotonic()
    with pytest.raises(DirectoryUnavailable) as refused:
        authenticate(config, "alice", USER_PASSWORD)
    assert time.monotonic() - started < config.read_timeout + 2
    assert "no answer" in refused.value.cause and "within 1 s" in refused.value.cause


def test_ldap3_deprecations_do_not_break_a_tls_sign_in(ldap_server):
    """ldap3 2.9.1 checks host names with the deprecated ssl.match_hostname; ours does not."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for security in ("starttls", "ldaps"):
            assert authenticate(ldap_server.config(security), "alice", USER_PASSWORD)


def test_only_the_four_user_attributes_are_allowed(ldap_server):
    with pytest.raises(ValueError):
        ldap_server.config(user_attribute="cn")
    with pytest.raises(ValueError):
        LdapConfig("ldap://x", "tls", None, None, None, "dc=x", "uid", None)


# --- find_users -----------------------------------------------------------------------------

def _names(users):
    return [user.display_name for user in users]


@pytest.mark.parametrize("query, expected", [
    ("ali", ["Alice Example"]),                # the user attribute
    ("Twin", ["Twin One", "Twin Two"]),        # cn / displayName, sorted
    ("juerg@", ["Jürg Müller"]),               # mail
    ("Jür", ["Jürg Müller"]),                  # non-ASCII
    ("dave*(", ["Dave Star"]),                 # escaped, literally
    ("*", []),                                 # not a wildcard
    ("car", []),                               # carol is disabled
])
def test_find_users_by_prefix(ldap_server, query, expected):
    found = find_users(ldap_server.config(), ldap_server.admin_dn, ldap_server.admin_password,
                       query)
    assert _names(found) == expected


def test_find_users_cuts_at_the_limit_in_display_name_order(ldap_server):
    found = find_users(ldap_server.config(), ldap_server.admin_dn, ldap_server.admin_password,
                       "", limit=2)
    assert _names(found) == ["Alice Example", "Bob Brown"]


def test_find_users_applies_the_user_filter(ldap_server):
    config = ldap_server.config(user_filter=ldap_server.students_filter)
    found = find_users(config, ldap_server.admin_dn, ldap_server.admin_password, "")
    assert _names(found) == ["Alice Example", "Dave Star", "Jürg Müller"]


def test_find_users_binds_as_the_admin_not_the_service_account(ldap_server):
    config = ldap_server.config("ldaps", bind_password=WRONG_SECRET)  # service bind would fail
    found = find_users(config, user_dn("alice"), USER_PASSWORD, "bob")
    assert [(u.username, u.email, u.dn) for u in found] == [
        ("bob", "bob@example.org", user_dn("bob"))]


def test_find_users_refuses_wrong_or_empty_admin_credentials(ldap_server, caplog):
    config = ldap_server.config()
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidCredentials) as refused:
        find_users(config, ldap_server.admin_dn, WRONG_SECRET, "a")
    assert WRONG_SECRET not in refused.value.cause + caplog.text
    nowhere = ldap_server.config(url=f"ldap://127.0.0.1:{_closed_port()}")
    with pytest.raises(InvalidCredentials):
        find_users(nowhere, ldap_server.admin_dn, "", "a")  # refused before any bind


# --- find_users_named: bulk's look-up by exact name, on a crowded server of this module ------

crowd_server = ldap_server_fixture("crowd_server", scope="module", more_users=CROWD)


def _named(server, names, **config):
    return find_users_named(server.config(**config), server.admin_dn, server.admin_password,
                            names)


def test_the_exact_name_is_found_where_a_prefix_search_cut_to_five_misses_it(crowd_server):
    by_prefix = find_users(crowd_server.config(), crowd_server.admin_dn,
                           crowd_server.admin_password, "jo", limit=5)
    assert "jo" not in [user.username for user in by_prefix]  # bulk's old look-up

    with counted(crowd_server) as seen:
        found, ambiguous = _named(crowd_server, ["jo"])

    assert seen["entries"] == 1  # jo's alone: joan, joe, john, jose and josh stay at home
    assert ambiguous == {}
    assert [(name, user.username, user.display_name, user.dn) for name, user in found.items()] \
        == [("jo", "jo", "Zeta Jo", user_dn("jo"))]


def test_120_names_in_three_searches_and_one_bind_find_exactly_the_enabled_known_ones(
        crowd_server):
    known = [f"user{n:03}" for n in range(105)]
    names = ["uSER042" if name == "user042" else name for name in known] \
        + [f"ghost{n:02}" for n in range(15)]
    assert len(names) == 120 and NAMES_PER_SEARCH == 50

    with counted(crowd_server) as seen:
        found, ambiguous = _named(crowd_server, names)

    assert seen == {"binds": 1, "searches": 3, "connections": 1, "entries": 105}
    assert sorted(found) == sorted(set(known) - {"user007"})  # disabled; ghosts unknown
    assert found["user042"].username == "User042"  # asked as uSER042: the stored value
    assert found["user104"].display_name == "Crowd User 104"
    assert ambiguous == {}


def test_no_names_is_no_connection(crowd_server):
    with counted(crowd_server) as seen:
        assert _named(crowd_server, ["", "  "]) == ({}, {})
    assert seen == {"binds": 0, "searches": 0, "connections": 0, "entries": 0}


@pytest.mark.parametrize("names, expected", [
    (["*"], []), (["jo*"], []), (["*slash"], []),  # each a valid filter, were it not escaped
    (["*", "star*", "*(x)", "(", ")", "\\", "back*", "*slash"], []),
    (["*)(sAMAccountName=*", "x)(|(sAMAccountName=*", "jo)(cn=*", "\\2a"], []),
    (["star*(x)", "back\\slash", "*"], ["back\\slash", "star*(x)"]),  # literally, themselves
])
def test_filter_metacharacters_in_names_match_only_themselves(crowd_server, names, expected):
    with counted(crowd_server) as seen:
        found, ambiguous = _named(crowd_server, names)
    assert seen["entries"] == len(expected)  # the directory sent nothing else
    assert sorted(found) == expected and ambiguous == {}
    assert [found[name].username for name in expected] == expected


def test_a_name_several_entries_share_is_ambiguous_and_picked_for_nobody(crowd_server):
    found, ambiguous = _named(crowd_server, ["dup", "Dup-Off", "jo"])

    assert list(found) == ["jo"]
    assert ambiguous == {"dup": [user_dn("dup1"), user_dn("dup2")],
                         "dup-off": [user_dn("dupoff1"), user_dn("dupoff2")]}  # one disabled


def test_a_search_the_size_limit_cuts_is_refused_not_half_answered(crowd_server, monkeypatch):
    """Two entries share "dup": with room for one answer, which one came back (and whether a
    second exists) is unknown, so nothing is answered."""
    monkeypatch.setattr("portal.directory.ldap.NAMED_SCAN_LIMIT", 1)
    with pytest.raises(DirectoryMisconfigured) as refused:
        _named(crowd_server, ["dup"])
    assert refused.value.cause == ("more than 1 entries under dc=example,dc=org have one of 1 "
                                   "sAMAccountName values: the user attribute sAMAccountName "
                                   "is not unique")


def test_an_entry_answering_two_names_in_two_searches_is_one_user(crowd_server):
    """uid is multi-valued: an entry holding a name of the first search and one of the last
    comes back twice, and is still one user per name, not two entries."""
    import ldap3
    conn = ldap3.Connection(ldap3.Server(crowd_server.url_plain), crowd_server.admin_dn,
                            crowd_server.admin_password, auto_bind=True)
    conn.modify(user_dn("user099"), {"uid": [(ldap3.MODIFY_ADD, ["aa-first", "zz-last"])]})
    conn.unbind()
    names = ["aa-first"] + [f"user{n:03}" for n in range(60)] + ["zz-last"]

    found, ambiguous = _named(crowd_server, names, user_attribute="uid")

    assert ambiguous == {}
    assert found["aa-first"].dn == found["zz-last"].dn == user_dn("user099")
    assert found["aa-first"].username == "aa-first" and found["zz-last"].username == "zz-last"


def test_find_users_named_applies_the_user_filter(crowd_server):
    found, _ = _named(crowd_server, ["alice", "bob", "juerg", "user001"],
                      user_filter=crowd_server.students_filter)
    assert sorted(found) == ["alice", "juerg"]


@pytest.mark.parametrize("security", TRANSPORTS)
def test_find_users_named_over_each_transport(crowd_server, security):
    found, _ = _named(crowd_server, ["alice", "BOB"], security=security)
    assert [(name, user.email) for name, user in sorted(found.items())] == [
        ("alice", "alice@example.org"), ("bob", "bob@example.org")]


def test_find_users_named_refuses_wrong_or_empty_admin_credentials_as_find_users(
        crowd_server, caplog):
    config = crowd_server.config()
    with caplog.at_level(logging.DEBUG), pytest.raises(InvalidCredentials) as refused:
        find_users_named(config, crowd_server.admin_dn, WRONG_SECRET, ["alice"])
    with pytest.raises(InvalidCredentials) as by_prefix:
        find_users(config, crowd_server.admin_dn, WRONG_SECRET, "alice")
    assert refused.value.cause == by_prefix.value.cause \
        == f"the directory rejected the credentials for {crowd_server.admin_dn}"
    assert WRONG_SECRET not in refused.value.cause + caplog.text
    nowhere = crowd_server.config(url=f"ldap://127.0.0.1:{_closed_port()}")
    with pytest.raises(InvalidCredentials):
        find_users_named(nowhere, crowd_server.admin_dn, "", ["alice"])  # before any bind
    with pytest.raises(DirectoryUnavailable):
        find_users_named(nowhere, crowd_server.admin_dn, "pw", ["alice"])
    with pytest.raises(DirectoryMisconfigured):
        find_users_named(crowd_server.config(base_dn="ou=nowhere,dc=example,dc=org"),
                         crowd_server.admin_dn, crowd_server.admin_password, ["alice"])


# --- test_connection ------------------------------------------------------------------------

@pytest.mark.parametrize("security", TRANSPORTS)
def test_connection_test_passes_every_step_for_a_good_config(ldap_server, security):
    checks = test_connection(ldap_server.config(security,
                                                user_filter=ldap_server.students_filter))

    assert [(check.name, check.ok) for check in checks] == [(step, True) for step in STEPS]
    assert "4 users found" in checks[-1].detail
    assert all(SERVICE_PASSWORD not in check.detail for check in checks)


def _failing(ldap_server, problem):
    if problem == "refused":
        return ldap_server.config(url=f"ldap://127.0.0.1:{_closed_port()}")
    if problem == "foreign CA":
        return ldap_server.config("ldaps", ca_cert_pem=make_ca()[0])
    if problem == "wrong bind password":
        return ldap_server.config("starttls", bind_password=WRONG_SECRET)
    if problem == "missing base DN":
        return ldap_server.config(base_dn="ou=gone,dc=example,dc=org")
    if problem == "bad filter":
        return ldap_server.config(user_filter="(memberOf=cn=students")
    if problem == "filter matching nobody":
        return ldap_server.config(user_filter="(memberOf=cn=nobody,dc=example,dc=org)")
    raise AssertionError(problem)


@pytest.mark.parametrize("problem, failing_step, detail", [
    ("refused", "Connect", "connection refused at 127.0.0.1:"),
    ("foreign CA", "Connect", "certificate verify failed"),
    ("wrong bind password", "Service account bind", f"invalid credentials for {SERVICE_DN}"),
    ("missing base DN", "Base DN", "ou=gone,dc=example,dc=org does not exist"),
    ("bad filter", "User search", "is not a valid LDAP filter"),
    ("filter matching nobody", "User search", "no entry under dc=example,dc=org matches"),
])
def test_connection_test_stops_at_the_failing_step(ldap_server, problem, failing_step, detail):
    config = _failing(ldap_server, problem)

    checks = test_connection(config)

    failed = STEPS.index(failing_step)
    assert [check.name for check in checks] == STEPS[:failed + 1]
    assert [check.ok for check in checks] == [True] * failed + [False]
    assert detail in checks[-1].detail
    assert all(config.bind_password not in check.detail for check in checks)


def test_connection_test_reports_a_silent_server_instead_of_raising(ldap_server, silent_port):
    checks = test_connection(ldap_server.config("ldaps", url=f"ldaps://127.0.0.1:{silent_port}",
                                                read_timeout=1))
    assert [(check.name, check.ok) for check in checks] == [("Connect", False)]
    assert "no answer" in checks[0].detail
