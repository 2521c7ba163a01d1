"""The wizard's User Type LDAP: a directory search with the admin's typed credentials (a real
slapd), the chosen user recorded, the credentials used once and never stored or logged."""
import re

import pytest
import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.audit.models import AuditEvent
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.licensing.seats import set_total
from portal.settings.companion import seed_example_companion
from tests.conftest import csrf_token_from
from tests.support.ldap_server import ALICE_GUID
from tests.selfservice.conftest import save_directory_without_sign_in

NEW = "/admin/devices/pending/new"
CREATE = "/admin/devices/pending"
SEARCH = "/admin/devices/pending/new/directory-users"
HX = {"HX-Request": "true"}


@pytest.fixture
def wizard(admin_client, db, ldap_server):
    seed_example_companion()
    set_total(20)
    save_directory_without_sign_in(ldap_server)  # the directory's address, not SSP sign-in
    admin_client.token = csrf_token_from(admin_client.get(NEW).get_data(as_text=True))
    return admin_client


def _form(client, **overrides):
    data = {"csrf_token": client.token, "option": "auto", "user_type": "ldap", "lang": "en",
            "usage_count": "2", "network": "mobile"}
    data.update(overrides)
    return data


def _search(client, ldap_server, query, password=None, headers=HX):
    return client.post(SEARCH, headers=headers, data=_form(
        client, ldap_bind=ldap_server.admin_dn,
        ldap_password=password or ldap_server.admin_password, ldap_query=query))


def test_search_pick_and_save_creates_the_qr_for_the_directory_user(wizard, db, ldap_server):
    html = _search(wizard, ldap_server, "ali").get_data(as_text=True)
    assert html.lstrip().startswith('<div id="ldap_user"')  # only the results region
    assert "<form" not in html and 'name="ldap_password"' not in html
    assert "1 user found" in html and "Alice Example (alice)" in html
    assert ldap_server.admin_password not in html  # the password is not sent back
    token = re.search(r'name="ldap_user" value="([^"]+)"', html).group(1)
    # A page rendered again (JavaScript off) keeps the chosen user.
    again = wizard.post(CREATE, data=_form(wizard, ldap_user=token, network="wifi"))
    assert again.status_code == 422 and 'id="ldap-picked"' in again.get_data(as_text=True)
    response = wizard.post(CREATE, data=_form(wizard, ldap_user=token))
    assert response.status_code == 303, response.get_data(as_text=True)
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.source == "ldap"))
    assert (user.username, user.directory_id, user.email) == ("alice", str(ALICE_GUID),
                                                              "alice@example.org")
    qr = db.session.scalar(sa.select(QrCode))
    assert qr.user_id == user.id and qr.usage_count == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PendingEnrollment)) == 2


def test_the_admin_credentials_are_not_stored_or_logged(wizard, db, ldap_server, caplog):
    html = _search(wizard, ldap_server, "a").get_data(as_text=True)
    token = re.search(r'name="ldap_user" value="([^"]+)"', html).group(1)
    wizard.post(CREATE, data=_form(wizard, ldap_user=token, ldap_bind=ldap_server.admin_dn,
                                   ldap_password=ldap_server.admin_password))
    secret = ldap_server.admin_password
    assert secret not in caplog.text
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            assert secret not in repr(tuple(row)), table.name
    search = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "directory.search"))
    assert search.details["bind"] == ldap_server.admin_dn and search.details["found"] == 1


def test_several_matches_are_listed_to_choose_from(wizard, ldap_server):
    html = _search(wizard, ldap_server, "twin").get_data(as_text=True)
    assert "2 users found" in html and html.count('name="ldap_user"') == 2
    assert " checked" not in html.split('id="ldap_user"')[1].split("</div>")[0]


def test_wrong_admin_credentials_are_said_plainly(wizard, ldap_server):
    html = _search(wizard, ldap_server, "alice", password="wrong").get_data(as_text=True)
    assert "The directory refused these administrative credentials." in html


def test_a_query_with_filter_characters_finds_only_what_it_says(wizard, ldap_server):
    html = _search(wizard, ldap_server, "*").get_data(as_text=True)
    assert "No directory user matches" in html
    html = _search(wizard, ldap_server, "dave*(").get_data(as_text=True)
    assert "Dave Star" in html


def test_without_javascript_search_directory_returns_the_whole_wizard_with_the_results(
        wizard, ldap_server):
    html = _search(wizard, ldap_server, "ali", headers={}).get_data(as_text=True)
    assert "<html" in html and 'id="qr-code-form"' in html and "Alice Example (alice)" in html
    assert ldap_server.admin_password not in html and "type it again" in html
    assert 'value="ali"' in html and f'value="{ldap_server.admin_dn}"' in html


def test_saving_without_a_chosen_user_is_refused(wizard, db):
    response = wizard.post(CREATE, headers=HX, data=_form(wizard))
    assert response.status_code == 422
    assert re.search(r'id="ldap_user-error"[^>]*>Search the directory and choose the user',
                     response.get_data(as_text=True))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)) == 0


def test_a_forged_user_token_is_refused(wizard, db):
    response = wizard.post(CREATE, headers=HX, data=_form(wizard, ldap_user="forged.token"))
    assert response.status_code == 422
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PortalUser)) == 0


def test_without_a_directory_the_wizard_says_where_to_set_it_up(admin_client, db):
    seed_example_companion()
    set_total(5)
    token = csrf_token_from(admin_client.get(NEW).get_data(as_text=True))
    html = admin_client.get(NEW).get_data(as_text=True)
    assert 'id="no-directory"' in html and 'href="/admin/settings/sign-in"' in html
    response = admin_client.post(CREATE, data={
        "csrf_token": token, "option": "auto", "user_type": "ldap", "lang": "en",
        "usage_count": "1", "network": "mobile"})
    assert response.status_code == 422
    assert re.search(r'id="ldap_user-error"[^>]*>No directory is configured',
                     response.get_data(as_text=True))
