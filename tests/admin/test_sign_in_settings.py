"""Admin → Sign-in methods: enabling methods, LDAP and Azure AD settings, secrets at rest."""
import pytest
import sqlalchemy as sa

from portal import vault
from portal.audit.models import AuditEvent
from portal.settings import sign_in
from portal.settings.models import SignInSettings
from tests.conftest import csrf_token_from

PAGE = "/admin/settings/sign-in"
HX = {"HX-Request": "true"}

LDAP = {"ldap_enabled": "y", "ldap_url": "ldaps://dc01.example.org:636",
        "ldap_security": "ldaps", "ldap_bind_dn": "cn=portal-svc,ou=service,dc=example,dc=org",
        "ldap_bind_password": "svc-Pa55word!", "ldap_base_dn": "ou=users,dc=example,dc=org",
        "ldap_user_attribute": "sAMAccountName", "ldap_timeout": "5",
        "ldap_user_filter": "(memberOf=cn=students,ou=groups,dc=example,dc=org)"}
AZURE = {"azure_enabled": "y", "azure_tenant": "contoso.onmicrosoft.com",
         "azure_client_id": "11111111-2222-3333-4444-555555555555",
         "azure_client_secret": "az-Secret~value.123"}


def _save(client, data, htmx=False):
    token = csrf_token_from(client.get(PAGE).get_data(as_text=True))
    base = {"local_enabled": "y", "ldap_security": "none",
            "ldap_user_attribute": "sAMAccountName", "ldap_timeout": "5"}
    headers = {**HX, "X-CSRFToken": token} if htmx else {}
    body = {**base, **data} if htmx else {"csrf_token": token, **base, **data}
    return client.post(PAGE, data=body, headers=headers)


def test_page_lists_the_three_methods_and_the_redirect_uri(admin_client):
    html = admin_client.get(PAGE).get_data(as_text=True)
    for text in ("Sign-in methods", "Local", "Active Directory", "Azure AD", "Test connection",
                 "https://portal.test/ssp/azure/callback"):
        assert text in html
    assert 'href="/admin/settings/sign-in"' in admin_client.get("/admin/settings/companion") \
        .get_data(as_text=True)


def test_anonymous_and_end_users_cannot_open_it(client):
    assert client.get(PAGE).status_code in (302, 303)
    assert client.post(PAGE + "/test-ldap").status_code in (302, 303, 400)


def test_secrets_are_stored_encrypted_never_shown_and_kept_when_left_empty(admin_client, db):
    response = _save(admin_client, {**LDAP, **AZURE})
    assert response.status_code == 303, response.get_data(as_text=True)
    row = db.session.get(SignInSettings, 1)
    assert row.ldap_enabled and row.azure_enabled
    for stored, plain in ((row.ldap_bind_password_enc, LDAP["ldap_bind_password"]),
                          (row.azure_client_secret_enc, AZURE["azure_client_secret"])):
        assert plain not in stored and vault.decrypt(stored) == plain
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "svc-Pa55word!" not in html and "az-Secret~value.123" not in html
    assert "A password is stored (encrypted)" in html and "A secret is stored" in html
    # Saving again with the secret fields empty keeps them.
    keep = {k: v for k, v in {**LDAP, **AZURE}.items()
            if k not in ("ldap_bind_password", "azure_client_secret")}
    assert _save(admin_client, {**keep, "ldap_timeout": "9"}).status_code == 303
    db.session.expire_all()
    methods = sign_in.current()
    assert methods.ldap.bind_password == "svc-Pa55word!" and methods.ldap.connect_timeout == 9
    assert methods.azure.client_secret == "az-Secret~value.123"
    assert methods.enabled == ["local", "ldap", "azure"]
    # The audit log records the change, never the secrets.
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "settings.sign_in")).all()
    assert len(events) == 2 and "Pa55" not in repr([e.details for e in events])


def test_a_stored_secret_can_be_removed(admin_client, db):
    _save(admin_client, {**LDAP, "ldap_enabled": ""})
    keep = {k: v for k, v in LDAP.items() if k not in ("ldap_bind_password", "ldap_enabled")}
    response = _save(admin_client, {**keep, "ldap_bind_dn": "", "ldap_clear_password": "y"})
    assert response.status_code == 303, response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(SignInSettings, 1).ldap_bind_password_enc is None


BAD = {
    "url scheme": ({"ldap_url": "http://dc01"}, "ldap_url", "ldap://host:port"),
    "ldaps on ldap://": ({"ldap_url": "ldap://dc01:389"}, "ldap_security", "LDAPS needs"),
    "bad port": ({"ldap_url": "ldaps://dc01:99999"}, "ldap_url", "port"),
    "no base DN": ({"ldap_base_dn": ""}, "ldap_base_dn", "base DN"),
    "bad base DN": ({"ldap_base_dn": "dc=example,,=x"}, "ldap_base_dn", "distinguished name"),
    "bad CA": ({"ldap_ca_cert": "not a certificate"}, "ldap_ca_cert", "PEM"),
    "bad filter": ({"ldap_user_filter": "memberOf=cn=x"}, "ldap_user_filter", "parentheses"),
    "unbalanced filter": ({"ldap_user_filter": "(&(a=b)"}, "ldap_user_filter", "parentheses"),
    "no password": ({"ldap_bind_password": ""}, "ldap_bind_password", "password"),
    "timeout": ({"ldap_timeout": "0"}, "ldap_timeout", "1 to 60"),
    "tenant and authority": ({**AZURE, "azure_authority": "https://id.example.com"},
                             "azure_authority", "not both"),
    "http authority": ({**AZURE, "azure_tenant": "", "azure_authority": "http://id.example"},
                       "azure_authority", "https://"),
    "no client id": ({**AZURE, "azure_client_id": ""}, "azure_client_id", "client) ID"),
    "no secret": ({**AZURE, "azure_client_secret": ""}, "azure_client_secret", "secret"),
    "bad tenant": ({**AZURE, "azure_tenant": "contoso/evil"}, "azure_tenant", "GUID"),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("overrides,field,fragment", BAD.values(), ids=BAD.keys())
def test_bad_values_get_422_next_to_the_field_and_nothing_is_saved(admin_client, db, overrides,
                                                                   field, fragment, htmx):
    response = _save(admin_client, {**LDAP, **overrides}, htmx=htmx)
    html = response.get_data(as_text=True)
    assert response.status_code == 422, html
    if htmx:
        assert html.lstrip().startswith('<form id="sign-in-form"')
    block = html[html.index(f'id="{field}-field"'):]
    block = block[:block.index("</div>")]
    assert fragment in block, block
    assert db.session.get(SignInSettings, 1) is None


def test_environment_seeds_the_methods_until_the_page_is_saved(app, admin_client, db):
    app.config.update(LDAP_URL="ldap://127.0.0.1:3890", LDAP_BASE_DN="dc=example,dc=org",
                      LDAP_BIND_DN="cn=admin,dc=example,dc=org", LDAP_BIND_PASSWORD="envpw",
                      LDAP_USER_ATTRIBUTE="uid")
    methods = sign_in.current()
    assert methods.source == "environment" and methods.enabled == ["local", "ldap"]
    assert methods.ldap.bind_password == "envpw" and methods.ldap.user_attribute == "uid"
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "LDAP_* and AZURE_* environment variables" in html and "envpw" not in html
    keep = {"ldap_enabled": "y", "ldap_url": "ldap://127.0.0.1:3890",
            "ldap_base_dn": "dc=example,dc=org", "ldap_bind_dn": "cn=admin,dc=example,dc=org",
            "ldap_user_attribute": "uid"}
    assert _save(admin_client, keep).status_code == 303  # the environment's password is kept
    db.session.expire_all()
    assert vault.decrypt(db.session.get(SignInSettings, 1).ldap_bind_password_enc) == "envpw"
    app.config.update(LDAP_URL=None)
    assert sign_in.current().source == "saved"


def test_switching_every_method_off_warns_the_admin(admin_client):
    response = _save(admin_client, {"local_enabled": ""})
    assert response.status_code == 303
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "No method is enabled" in html


def test_connection_test_reports_invalid_settings_without_trying(admin_client):
    token = csrf_token_from(admin_client.get(PAGE).get_data(as_text=True))
    response = admin_client.post(PAGE + "/test-ldap", headers={**HX, "X-CSRFToken": token},
                                 data={**LDAP, "ldap_url": "dc01"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "The connection test failed" in html
    assert "ldap://host:port" in html


def _test_connection(client, kind, data):
    token = csrf_token_from(client.get(PAGE).get_data(as_text=True))
    base = {"local_enabled": "y", "ldap_security": "none",
            "ldap_user_attribute": "sAMAccountName", "ldap_timeout": "5"}
    response = client.post(f"{PAGE}/test-{kind}", headers={**HX, "X-CSRFToken": token},
                           data={**base, **data})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _ldap_form(server, **overrides):
    data = {"ldap_enabled": "y", "ldap_url": server.url_ldaps, "ldap_security": "ldaps",
            "ldap_ca_cert": server.ca_pem, "ldap_bind_dn": server.service_dn,
            "ldap_bind_password": server.service_password, "ldap_base_dn": server.base_dn,
            "ldap_user_attribute": "sAMAccountName"}
    data.update(overrides)
    return data


def test_ldap_connection_test_against_slapd_passes_every_step(admin_client, db, ldap_server):
    html = _test_connection(admin_client, "ldap", _ldap_form(ldap_server))
    assert "The connection works." in html
    for step in ("Connect", "Service account bind", "Base DN", "User search"):
        assert f"<strong>{step}</strong>" in html
    assert db.session.get(SignInSettings, 1) is None  # testing saves nothing
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "settings.test_ldap"))
    assert event.outcome == "success"


def test_ldap_connection_test_names_the_failing_step_and_hides_the_password(
        admin_client, db, ldap_server):
    html = _test_connection(admin_client, "ldap", _ldap_form(
        ldap_server, ldap_bind_password="wrong-service-secret"))
    assert "The connection test failed." in html
    failed = html[html.index('class="failed"'):]
    assert "Service account bind" in failed and ldap_server.service_dn in failed
    assert "wrong-service-secret" not in html
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "settings.test_ldap"))
    assert event.outcome == "error" and "wrong-service-secret" not in repr(event.details)


def test_ldap_connection_test_uses_the_stored_password_when_none_is_typed(
        admin_client, ldap_server):
    assert _save(admin_client, _ldap_form(ldap_server)).status_code == 303
    html = _test_connection(admin_client, "ldap", _ldap_form(ldap_server,
                                                             ldap_bind_password=""))
    assert "The connection works." in html


def test_ldap_connection_test_without_the_ca_says_certificate(admin_client, ldap_server):
    html = _test_connection(admin_client, "ldap", _ldap_form(ldap_server, ldap_ca_cert=""))
    assert "The connection test failed." in html and "certificate" in html.lower()


def test_azure_connection_test_against_the_provider(admin_client, app, oidc_provider):
    app.config["AZURE_CA_FILE"] = oidc_provider.ca_file
    form = {"azure_enabled": "y", "azure_authority": oidc_provider.issuer,
            "azure_client_id": oidc_provider.client_id,
            "azure_client_secret": oidc_provider.client_secret}
    html = _test_connection(admin_client, "azure", form)
    assert "The connection works." in html and "<strong>Signing keys</strong>" in html
    html = _test_connection(admin_client, "azure", {**form, "azure_client_secret": "nope"})
    assert "The connection test failed." in html and "invalid_client" in html


def test_a_secret_saved_under_another_secret_key_is_asked_for_again(admin_client, app, db,
                                                                    caplog, monkeypatch):
    import logging
    # (the migrations' logging setup disables loggers that existed before it ran)
    monkeypatch.setattr(logging.getLogger("portal.settings.sign_in"), "disabled", False)
    assert _save(admin_client, LDAP).status_code == 303
    app.config["SECRET_KEY"] = "another-secret-key-after-a-careless-redeploy-0123456789"
    methods = sign_in.current()  # no exception: the page and the portal keep working
    assert methods.ldap.bind_password is None and not methods.has_ldap_password
    assert "cannot be decrypted" in caplog.text
