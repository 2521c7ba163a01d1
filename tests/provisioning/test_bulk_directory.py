"""Bulk provisioning's directory users: every row's name looked up by exact value, with the
Administrative LDAP credentials typed on the form, in one bind (a real slapd of this module,
crowded: tests/support/ldap_server.py CROWD)."""
import pytest

from portal.licensing.seats import set_total
from portal.provisioning import bulk
from tests.support.ldap_server import CROWD, counted, ldap_server_fixture, user_dn

URL = "https://portal.test"

crowd_server = ldap_server_fixture("crowd_server", scope="module", more_users=CROWD)


@pytest.fixture
def profile(profile):
    set_total(1000)
    return profile


@pytest.fixture
def directory(db, crowd_server):
    """The portal's LDAP settings for the crowded server (LDAPS), sign-in itself off."""
    from portal.settings import sign_in
    from tests.selfservice.conftest import save_directory_without_sign_in
    save_directory_without_sign_in(crowd_server)
    return sign_in.current().ldap


def preview(rows, profile, directory, crowd_server, password=None):
    typed = bulk.Directory(directory, crowd_server.admin_dn,
                           password or crowd_server.admin_password)
    return bulk.preview_rows(rows, network_profile_id=profile.id, otp_validity=None,
                             created_by=None, server_url=URL, directory=typed)


def picked(row):
    from portal.accounts.directory import picked_user
    return picked_user(row.ldap_user)


def test_a_row_naming_jo_finds_jo_among_five_names_jo_prefixes(profile, directory,
                                                                crowd_server):
    found = preview([{"username": "jo"}, {"username": "JOSH"}], profile, directory,
                    crowd_server)

    assert found.ok, found.problems
    assert [(picked(row)["u"], picked(row)["n"]) for row in found.rows] == [
        ("jo", "Zeta Jo"), ("josh", "Eve Josh")]


def test_120_rows_are_looked_up_with_one_bind_and_three_searches(profile, directory,
                                                                 crowd_server):
    names = [f"user{n:03}" for n in range(100)] + ["uSER100"] \
        + [f"ghost{n:02}" for n in range(19)]
    rows = [{"username": name} for name in names]

    with counted(crowd_server) as seen:
        found = preview(rows, profile, directory, crowd_server)

    assert seen == {"binds": 1, "searches": 3, "connections": 1, "entries": 101}
    unknown = [row.username for row in found.rows if not row.ok]
    assert unknown == ["user007"] + [f"ghost{n:02}" for n in range(19)]  # user007 is disabled
    assert all(problem.column == "username" and "Unknown user" in problem.message
               for row in found.rows for problem in row.problems)
    assert picked(found.rows[100])["u"] == "user100"


def test_a_name_two_directory_entries_share_is_that_rows_one_problem(profile, directory,
                                                                     crowd_server):
    found = preview([{"username": "alice"}, {"username": "dup"}, {"username": "bob"}], profile,
                    directory, crowd_server)

    assert [row.ok for row in found.rows] == [True, False, True]
    assert found.rows[1].ldap_user is None
    assert found.rows[1].problems == [bulk.Problem(2, "username", (
        f"2 directory entries have this user name ({user_dn('dup1')}; {user_dn('dup2')}), and "
        "a QR code is for one person: make the name unique in the directory or narrow the LDAP "
        "user filter."))]
    assert found.problems == found.rows[1].problems


def test_wrong_admin_credentials_are_the_same_problem_as_before(profile, directory,
                                                                 crowd_server):
    refused = preview([{"username": "alice"}], profile, directory, crowd_server,
                      password="wrong password")

    assert bulk.Problem(0, "ldap_bind", "The directory search failed: the directory rejected "
                        f"the credentials for {crowd_server.admin_dn}") in refused.problems
    assert "wrong password" not in str(refused.problems)


def test_local_users_are_not_asked_for(profile, directory, crowd_server, make_user):
    make_user("jo")  # a local user shadows the directory's jo
    with counted(crowd_server) as seen:
        found = preview([{"username": "jo"}], profile, directory, crowd_server)
    assert found.ok and found.rows[0].ldap_user is None
    assert seen == {"binds": 0, "searches": 0, "connections": 0, "entries": 0}
