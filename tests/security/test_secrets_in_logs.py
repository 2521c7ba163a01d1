"""No secret in any log line, error page or audit row during a whole enrollment.

A real server (werkzeug on loopback, so its access log is part of the logs) runs: the admin
signs in, saves LDAP and Azure AD secrets and tests both connections, searches the directory
with administrative credentials, creates an Automatic Provisioning QR with a Wi-Fi password and
views its OTP; the Companion redeems it, completes and reads its device; an end user signs in
to the Self Service Portal (Local, LDAP and Azure AD), presses Start, and the Companion redeems
the ticket. Some attempts fail on purpose, and a few error pages are asked for. Every logger
records at DEBUG meanwhile (SQL echo stays off), and every response is kept.
"""
import json
import logging
import re
import secrets

import pytest
import requests
import sqlalchemy as sa

from portal.accounts.admins import create_admin
from portal.accounts.users import add_local_user
from portal.audit.models import AuditEvent
from portal.database import db
from portal.directory import azure
from portal.enrollment.models import QrCode
from portal.licensing.seats import set_total
from portal.settings.companion import seed_example_companion
from tests.api.conftest import altered, bearer, device, otp_of
from tests.conftest import csrf_token_from
from tests.support.live import live_app, serving
from tests.support.oidc_provider import USERS, browser_login, running_provider

ADMIN, USER = "sec-admin", "sec-user"
AZURE_LOGIN = "juergen.mueller@example.org"
SIGN_IN_SETTINGS = "/admin/settings/sign-in"


def _secret(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(6)}"


@pytest.fixture(scope="module")
def azure_provider(tmp_path_factory):
    with running_provider(tmp_path_factory.mktemp("oidc-secrets"),
                          client_secret=_secret("az-Client~Secret")) as provider:
        yield provider


@pytest.fixture
def known_secrets(ldap_server, azure_provider) -> dict[str, str]:
    """Name -> value of every secret typed or issued; the OTP, tokens and ticket join later."""
    return {
        "admin password": _secret("Adm1n-Pw"), "mistyped admin password": _secret("Adm1n-Typo"),
        "user password": _secret("Us3r-Pw"), "mistyped user password": _secret("Us3r-Typo"),
        "Wi-Fi password": _secret("W1fi-Pw"),
        "LDAP bind password": ldap_server.service_password,
        "mistyped LDAP bind password": _secret("Ldap-Typo"),
        "LDAP search password": ldap_server.admin_password,
        "LDAP user password": ldap_server.user_password,
        "mistyped LDAP user password": _secret("Ldap-User-Typo"),
        "Azure client secret": azure_provider.client_secret,
        "mistyped Azure client secret": _secret("Az-Typo"),
        "Azure user password": USERS[AZURE_LOGIN]["password"],
    }


@pytest.fixture
def portal(tmp_path, azure_provider, known_secrets):
    app = live_app(tmp_path, "secrets", AZURE_CA_FILE=azure_provider.ca_file)
    with app.app_context():
        create_admin(ADMIN, "sec-admin@example.com", known_secrets["admin password"],
                     mail_recipient=True)
        add_local_user(USER, "sec-user@example.com", known_secrets["user password"])
        seed_example_companion()
        set_total(20)
    azure.forget_caches()
    with serving(app) as url:
        app.config["PORTAL_PUBLIC_URL"] = url  # Azure's redirect URI and the enrollment link
        yield app, url
    azure.forget_caches()


class Visitor:
    """One party's HTTP client; every response it gets is kept, with its session decoded."""

    def __init__(self, app, url: str, exchanges: list):
        self.http, self.url, self.exchanges = requests.Session(), url, exchanges
        self.serializer = app.session_interface.get_signing_serializer(app)

    def __call__(self, method: str, path: str, expect: int, **kwargs) -> requests.Response:
        response = self.http.request(method, self.url + path, allow_redirects=False,
                                     timeout=20, **kwargs)
        session = response.cookies.get("session")
        self.exchanges.append((f"{method} {path.split('?')[0]} {response.status_code}",
                               "\n".join([json.dumps(dict(response.headers)), response.text,
                                          json.dumps(self.serializer.loads(session), default=str)
                                          if session else ""])))
        assert response.status_code == expect, (method, path, response.text[:2000])
        return response

    def token(self, path: str) -> str:
        return csrf_token_from(self("GET", path, 200).text)


def _ldap_and_azure_form(ldap_server, azure_provider, known_secrets) -> dict:
    return {"local_enabled": "y", "ldap_enabled": "y", "ldap_url": ldap_server.url_ldaps,
            "ldap_security": "ldaps", "ldap_ca_cert": ldap_server.ca_pem,
            "ldap_bind_dn": ldap_server.service_dn,
            "ldap_bind_password": known_secrets["LDAP bind password"],
            "ldap_base_dn": ldap_server.base_dn, "ldap_user_attribute": "sAMAccountName",
            "ldap_timeout": "5", "azure_enabled": "y", "azure_authority": azure_provider.issuer,
            "azure_client_id": azure_provider.client_id,
            "azure_client_secret": known_secrets["Azure client secret"]}


def _capture_every_logger(caplog, monkeypatch) -> None:
    """Every logger at DEBUG into caplog, except SQL echo. Loggers that Alembic's fileConfig
    switched off while migrating the test database are switched back on, as they are in a
    server, which never migrates in its own process."""
    names = [""] + [name for name in logging.root.manager.loggerDict
                    if not name.startswith("sqlalchemy")] + ["werkzeug", "portal"]
    for name in names:
        logger = logging.getLogger(name)
        caplog.set_level(logging.DEBUG, logger=name)
        monkeypatch.setattr(logger, "disabled", False)
        if not logger.propagate and caplog.handler not in logger.handlers:
            monkeypatch.setattr(logger, "handlers", [*logger.handlers, caplog.handler])


def _admin_signs_in_and_sets_up_directories(admin, form, known_secrets):
    token = admin.token("/admin/login")
    admin("POST", "/admin/login", 422, data={"csrf_token": token, "username": ADMIN,
                                             "password": known_secrets["mistyped admin password"]})
    admin("POST", "/admin/login", 303, data={"csrf_token": token, "username": ADMIN,
                                             "password": known_secrets["admin password"]})
    # Admin → Sign-in methods: a CSRF failure, a refused form, the save, both connection tests.
    token = admin.token(SIGN_IN_SETTINGS)
    admin("POST", SIGN_IN_SETTINGS, 400, data=form)
    admin("POST", SIGN_IN_SETTINGS, 422, data={**form, "csrf_token": token, "ldap_url": "dc01"})
    admin("POST", SIGN_IN_SETTINGS, 303, data={**form, "csrf_token": token})
    admin("GET", SIGN_IN_SETTINGS, 200)
    for kind, typo in (("ldap", {"ldap_bind_password": "mistyped LDAP bind password"}),
                       ("azure", {"azure_client_secret": "mistyped Azure client secret"})):
        works = admin("POST", f"{SIGN_IN_SETTINGS}/test-{kind}", 200,
                      data={**form, "csrf_token": token})
        assert "The connection works." in works.text, works.text
        wrong = {field: known_secrets[name] for field, name in typo.items()}
        fails = admin("POST", f"{SIGN_IN_SETTINGS}/test-{kind}", 200,
                      data={**form, **wrong, "csrf_token": token})
        assert "The connection test failed." in fails.text


def _admin_creates_qr_codes(admin, found, known_secrets, ldap_server):
    """A directory search with administrative credentials, then one QR code of each option."""
    token = admin.token("/admin/devices/pending/new")
    search = admin("POST", "/admin/devices/pending/new/directory-users", 200, data={
        "csrf_token": token, "option": "auto", "user_type": "ldap", "ldap_query": "alice",
        "ldap_bind": ldap_server.admin_dn, "ldap_password": known_secrets["LDAP search password"],
        "lang": "en", "network": "mobile"})
    assert "Alice Example" in search.text
    created = admin("POST", "/admin/devices/pending", 303, data={
        "csrf_token": token, "option": "auto", "user_type": "local", "username": USER,
        "lang": "en", "usage_count": "1", "network": "wifi", "wifi_ssid": "Corp-WLAN",
        "wifi_security": "WPA", "wifi_password": known_secrets["Wi-Fi password"]})
    found["auto"] = created.headers["Location"].rsplit("/", 1)[1]
    admin("GET", f"/admin/qr-codes/{found['auto']}", 200)
    otp_page = admin("POST", f"/admin/qr-codes/{found['auto']}/otp", 200,
                     data={"csrf_token": token})
    found["OTP"] = re.search(r'<code id="otp-value">([^<]+)</code>', otp_page.text)[1]
    created = admin("POST", "/admin/devices/pending", 303, data={
        "csrf_token": token, "option": "ssp", "lang": "en", "network": "mobile"})
    found["ssp"] = created.headers["Location"].rsplit("/", 1)[1]
    admin("GET", "/admin/no-such-page", 404)


def _companion_flow(companion, found, qr_id, credential, serial, name):
    enrollments = "/api/v1/enrollments"
    companion("POST", enrollments, 400, data="{not json",
              headers={"Content-Type": "application/json"})
    wrong = {k: altered(v) for k, v in credential.items()}
    companion("POST", enrollments, 401, json={"qr_id": qr_id, **wrong,
                                              "device": device(serial_number=serial)})
    redeemed = companion("POST", enrollments, 201, json={
        "qr_id": qr_id, **credential, "device": device(serial_number=serial)}).json()
    found[name] = redeemed["device_token"]
    path = f"/api/v1/devices/{redeemed['device_id']}"
    companion("POST", f"{path}/provisioning-complete", 401, json={"result": "success"},
              headers=bearer(altered(found[name])))
    companion("POST", f"{path}/provisioning-complete", 200, json={"result": "success"},
              headers=bearer(found[name]))
    companion("GET", path, 200, headers=bearer(found[name]))
    companion("GET", "/api/v1/devices/no-such-device", 401, headers=bearer(found[name]))


def _end_user_flows(visitor, found, known_secrets, azure_provider):
    qr_id = found["ssp"]
    phone = visitor()
    page = f"/ssp/?qr_id={qr_id}"
    token = phone.token(page)
    for method, username, name, status in (
            ("local", USER, "mistyped user password", 422),
            ("ldap", "alice", "mistyped LDAP user password", 422),
            ("ldap", "alice", "LDAP user password", 303),
            ("local", USER, "user password", 303)):
        phone("POST", f"/ssp/sign-in?qr_id={qr_id}", status, data={
            "csrf_token": token, "method": method, "username": username,
            "password": known_secrets[name]})
        token = phone.token(page if status == 422 else f"/ssp/start?qr_id={qr_id}")
    phone("POST", f"/ssp/sign-out?qr_id={qr_id}", 400)  # without its CSRF token
    enroll = phone("POST", f"/ssp/start?qr_id={qr_id}", 200, data={"csrf_token": token})
    found["ticket"] = re.search(r"ticket=([^\"&]+)", enroll.text)[1]
    phone("GET", "/ssp/?qr_id=no-such-qr", 404)
    # Azure AD: the provider's own pages are not the portal's and are not kept.
    azure_phone = visitor()
    start = azure_phone("GET", f"/ssp/azure/start?qr_id={qr_id}", 303)
    answer = browser_login(start.headers["Location"], AZURE_LOGIN,
                           known_secrets["Azure user password"], ca_file=azure_provider.ca_file)
    azure_phone("GET", "/ssp/azure/callback", 303, params=answer)


def test_no_secret_in_logs_error_pages_or_audit(portal, caplog, monkeypatch, ldap_server,
                                                azure_provider, known_secrets):
    app, url = portal
    exchanges, found = [], {}
    _capture_every_logger(caplog, monkeypatch)

    def visitor():
        return Visitor(app, url, exchanges)

    form = _ldap_and_azure_form(ldap_server, azure_provider, known_secrets)
    admin = visitor()
    _admin_signs_in_and_sets_up_directories(admin, form, known_secrets)
    _admin_creates_qr_codes(admin, found, known_secrets, ldap_server)
    with app.app_context():  # the OTP shown is the one in the QR code
        qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == found["auto"]))
        assert otp_of(qr) == found["OTP"]
    companion = visitor()
    _companion_flow(companion, found, found["auto"], {"otp": found["OTP"]}, "R58NSEC0001",
                    "device token (Automatic Provisioning)")
    _end_user_flows(visitor, found, known_secrets, azure_provider)
    _companion_flow(companion, found, found["ssp"], {"ticket": found["ticket"]}, "R58NSEC0002",
                    "device token (Self Service Portal)")

    issued = {name: value for name, value in found.items() if name not in ("auto", "ssp")}
    every_secret = {**known_secrets, **issued,
                    **{f"mistyped {name}": altered(value) for name, value in issued.items()}}
    logs = caplog.text + "\n".join(repr(vars(record)) for record in caplog.records)
    assert len(caplog.records) > 50 and "POST /api/v1/enrollments" in logs
    assert [name for name, value in every_secret.items() if value in logs] == []

    shown = {(exchange, name) for exchange, text in exchanges
             for name, value in every_secret.items() if value in text}
    assert shown == {
        (f"POST /admin/qr-codes/{found['auto']}/otp 200", "OTP"),  # View OTP
        ("POST /ssp/start 200", "ticket"),  # the enrollment link
        ("POST /api/v1/enrollments 201", "device token (Automatic Provisioning)"),
        ("POST /api/v1/enrollments 201", "device token (Self Service Portal)"),
    }
    assert {exchange.rsplit(" ", 1)[1] for exchange, _ in exchanges} >= {
        "200", "201", "303", "400", "401", "404", "422"}

    with app.app_context():
        events = db.session.scalars(sa.select(AuditEvent)).all()
        columns = [c.key for c in sa.inspect(AuditEvent).column_attrs]
        audit = "\n".join(repr([getattr(e, key) for key in columns]) for e in events)
        # Beyond the audit log: no table keeps a secret in clear (they are hashed or encrypted).
        stored = {table.name: repr(db.session.execute(sa.select(table)).all())
                  for table in db.metadata.sorted_tables}
    assert len(events) > 10
    assert [name for name, value in every_secret.items() if value in audit] == []
    assert {(table, name) for table, text in stored.items()
            for name, value in every_secret.items() if value in text} == set()
