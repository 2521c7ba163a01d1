"""The Self Service Portal with Active Directory (a real slapd) and Azure AD (a real OpenID
provider over https), through to the ticket redeemed by the Companion API."""
import pytest
import sqlalchemy as sa
from ldap3 import MODIFY_REPLACE, Connection, Server

from portal.accounts.models import PortalUser
from portal.audit.models import AuditEvent
from portal.directory import azure
from portal.enrollment.models import Device
from tests.api.conftest import redeem, ssp_body
from tests.selfservice.conftest import (azure_values, get, ldap_values, post_sign_in,
                                        press_start)
from tests.support.ldap_server import ALICE_GUID, STUDENTS_FILTER, user_dn
from tests.support.oidc_provider import USERS, browser_login

WRONG = "The user name or the password is wrong."


@pytest.fixture
def ad(ldap_server, methods):
    """Active Directory over StartTLS, students only, with local accounts switched off."""
    config = ldap_server.config("starttls", user_filter=STUDENTS_FILTER)
    methods(local=False, ldap_values=ldap_values(config))
    return ldap_server


def test_ad_user_signs_in_and_the_device_enrolls_with_the_ticket(client, db, ssp_qr, ad):
    page = get(client, f"/ssp/?qr_id={ssp_qr.public_id}")
    assert "Company account (Active Directory)" in page.html and 'name="method"' in page.html
    signed_in = post_sign_in(client, ssp_qr.public_id, "alice", ad.user_password)
    assert signed_in.status == 303, signed_in.html
    ticket = press_start(client, ssp_qr.public_id)
    response = redeem(client, ssp_body(ssp_qr, ticket))
    assert response.status_code == 201, response.get_json()
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.source == "ldap"))
    assert (user.username, user.display_name, user.email, user.directory_id) == (
        "alice", "Alice Example", "alice@example.org", str(ALICE_GUID))
    assert db.session.scalar(sa.select(Device.user_id)) == user.id


def test_directory_changes_update_the_recorded_user(app, client, db, ssp_qr, ad):
    assert post_sign_in(client, ssp_qr.public_id, "alice", ad.user_password).status == 303
    with Connection(Server(ad.url_plain), ad.admin_dn, ad.admin_password, auto_bind=True) as c:
        c.modify(user_dn("alice"), {"displayName": [(MODIFY_REPLACE, ["Alice Renamed"])]})
    try:
        again = app.test_client()
        assert post_sign_in(again, ssp_qr.public_id, "alice", ad.user_password).status == 303
        users = db.session.scalars(sa.select(PortalUser).where(PortalUser.source == "ldap")).all()
        assert [u.display_name for u in users] == ["Alice Renamed"]
    finally:
        with Connection(Server(ad.url_plain), ad.admin_dn, ad.admin_password,
                        auto_bind=True) as c:
            c.modify(user_dn("alice"), {"displayName": [(MODIFY_REPLACE, ["Alice Example"])]})


@pytest.mark.parametrize("username,password", [
    ("alice", "wrong-password"), ("nobody", "Passw0rd!"),
    ("bob", "Passw0rd!"),        # not in the students group the filter asks for
    ("alice)(uid=*", "Passw0rd!"), ("*", "Passw0rd!")])
def test_refusals_look_the_same_and_are_audited(client, db, ssp_qr, ad, username, password):
    page = post_sign_in(client, ssp_qr.public_id, username, password)
    assert page.status == 422 and WRONG in page.html
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.sign_in"))
    assert (event.outcome, event.code) == ("refused", "invalid_credentials")
    assert password not in repr(event.details)


def test_disabled_ad_account_is_refused(client, ssp_qr, ad):
    page = post_sign_in(client, ssp_qr.public_id, "carol", ad.user_password)
    assert page.status == 422 and "This account is disabled" in page.html


def test_german_page_for_a_de_ch_qr(client, make_qr_code, ad):
    qr = make_qr_code("ssp", lang="de-CH")
    page = post_sign_in(client, qr.public_id, "alice", "falsch")
    assert "Der Benutzername oder das Passwort ist falsch." in page.html
    assert post_sign_in(client, qr.public_id, "alice", ad.user_password).status == 303
    assert "Tippen Sie auf Start" in get(client, f"/ssp/start?qr_id={qr.public_id}").html


def test_directory_down_tells_the_user_and_the_admin_and_is_not_throttled(
        client, db, ssp_qr, ldap_server, methods):
    import socket
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = ldap_server.config("none", url=f"ldap://127.0.0.1:{port}")
    methods(local=False, ldap_values=ldap_values(config))
    page = post_sign_in(client, ssp_qr.public_id, "alice", "Passw0rd!")
    assert page.status == 503 and "cannot be reached right now" in page.html
    assert str(port) not in page.html  # the cause is for the admin only
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.sign_in"))
    assert event.code == "directory_unavailable" and str(port) in event.details["cause"]


def test_a_wrong_service_password_is_a_setup_problem_named_in_the_audit_log(
        client, db, ssp_qr, ldap_server, methods):
    config = ldap_server.config("none", bind_password="not-the-service-password")
    methods(local=False, ldap_values=ldap_values(config))
    page = post_sign_in(client, ssp_qr.public_id, "alice", "Passw0rd!")
    assert page.status == 503 and "setup problem" in page.html
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "user.sign_in"))
    assert event.code == "directory_misconfigured"
    assert ldap_server.service_dn in event.details["cause"]
    assert "not-the-service-password" not in repr(event.details)


def test_local_and_ad_together_offer_a_choice(client, ssp_qr, ldap_server, methods, make_user):
    make_user("lena", password="lena-password-1")
    methods(local=True, ldap_values=ldap_values(ldap_server.config("ldaps")))
    page = get(client, f"/ssp/?qr_id={ssp_qr.public_id}")
    assert 'value="ldap"' in page.html and 'value="local"' in page.html
    assert post_sign_in(client, ssp_qr.public_id, "lena", "lena-password-1",
                        method="ldap").status == 422  # lena is not in the directory
    assert post_sign_in(client, ssp_qr.public_id, "lena", "lena-password-1",
                        method="local").status == 303


# Azure AD

@pytest.fixture
def entra(app, oidc_provider, methods):
    azure.forget_caches()
    app.config["AZURE_CA_FILE"] = oidc_provider.ca_file
    app.config["PORTAL_PUBLIC_URL"] = "http://localhost"
    methods(local=False, azure_values=azure_values(oidc_provider))
    yield oidc_provider
    azure.forget_caches()


def _azure_round_trip(client, qr, provider, login, action="login"):
    """Press the Azure AD button, sign in at the provider, come back to the callback."""
    start = client.get(f"/ssp/azure/start?qr_id={qr.public_id}")
    assert start.status_code == 303, start.get_data(as_text=True)
    query = browser_login(start.headers["Location"], login, USERS[login]["password"],
                          ca_file=provider.ca_file, action=action)
    return client.get("/ssp/azure/callback", query_string=query)


def test_azure_user_signs_in_is_recorded_and_enrolls(client, db, ssp_qr, entra):
    page = get(client, f"/ssp/?qr_id={ssp_qr.public_id}")
    assert "Sign in with Microsoft (Azure AD)" in page.html and 'name="password"' not in page.html
    back = _azure_round_trip(client, ssp_qr, entra, "alice@example.org")
    assert back.status_code == 303 and "/ssp/start" in back.headers["Location"]
    ticket = press_start(client, ssp_qr.public_id)
    assert redeem(client, ssp_body(ssp_qr, ticket)).status_code == 201
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.source == "azure"))
    claims = USERS["alice@example.org"]
    assert user.directory_id == claims["oid"] and user.tenant_id == entra.tenant
    assert user.email == "alice@example.org"


def test_azure_users_are_keyed_by_object_id_and_updated(client, app, db, ssp_qr, entra):
    for _ in range(2):
        fresh = app.test_client()
        assert _azure_round_trip(fresh, ssp_qr, entra, "juergen.mueller@example.org") \
            .status_code == 303
    users = db.session.scalars(sa.select(PortalUser).where(PortalUser.source == "azure")).all()
    assert len(users) == 1 and "Müller" in users[0].display_name


def test_cancelled_azure_sign_in_says_so(client, ssp_qr, entra):
    back = _azure_round_trip(client, ssp_qr, entra, "alice@example.org", action="cancel")
    assert back.status_code == 400 and "Sign-in was cancelled" in back.get_data(as_text=True)


def test_a_replayed_or_foreign_callback_is_refused(client, app, ssp_qr, entra):
    start = client.get(f"/ssp/azure/start?qr_id={ssp_qr.public_id}")
    query = browser_login(start.headers["Location"], "alice@example.org",
                          USERS["alice@example.org"]["password"], ca_file=entra.ca_file)
    other = app.test_client()  # another browser: no flow in its session
    response = other.get("/ssp/azure/callback", query_string=query)
    assert response.status_code == 400 and "took too long" in response.get_data(as_text=True)
    assert client.get("/ssp/azure/callback", query_string=query).status_code == 303
    replay = client.get("/ssp/azure/callback", query_string=query)  # the flow is used up
    assert replay.status_code == 400


def test_wrong_client_secret_is_a_refusal_with_the_cause_in_the_audit_log(
        client, db, ssp_qr, entra, methods):
    from portal import vault
    methods(local=False, azure_values={"azure_client_secret_enc": vault.encrypt("wrong")})
    back = _azure_round_trip(client, ssp_qr, entra, "alice@example.org")
    assert back.status_code == 400
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "user.sign_in").order_by(AuditEvent.id.desc()))
    assert event.outcome == "refused" and "invalid_client" in event.details["cause"]
    assert "wrong" not in event.details["cause"].replace("invalid_client", "")


def test_azure_provider_down_is_a_clear_message(client, ssp_qr, app, oidc_provider, methods):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    values = azure_values(oidc_provider)
    values["azure_authority"] = f"https://127.0.0.1:{port}/tenant/v2.0"
    methods(local=False, azure_values=values)
    app.config["AZURE_CA_FILE"] = oidc_provider.ca_file
    response = client.get(f"/ssp/azure/start?qr_id={ssp_qr.public_id}")
    assert response.status_code == 503
    assert "cannot be reached right now" in response.get_data(as_text=True)
