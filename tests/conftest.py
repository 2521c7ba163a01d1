"""The fixed test vocabulary: app, db, client, htmx_client, admin_client, admin_htmx_client,
post_form, sign_in and the make_* factories.

The suite runs on an SQLite file by default and, unchanged, on PostgreSQL when
TEST_DATABASE_URL is set. The schema is built once per run by the real Alembic migrations;
each test then runs inside one outer transaction that is rolled back (domain functions'
commits become savepoints), so tests never see each other's rows.
"""
import os
import re
import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask, g
from flask_migrate import upgrade
from flask_sqlalchemy.session import Session as _FlaskSession

from config import TestConfig, database_url
from portal import create_app
from portal.database import db as _db
from portal.extensions import limiter
from tests.support.amapi_standin import amapi, amapi_standin  # noqa: F401
from tests.support.ldap_server import ldap_server_fixture
from tests.support.oidc_provider import provider_fixture
from tests.support.shared_compilation import share_between_apps

share_between_apps(Flask)  # the suite's thousands of apps compile rules and templates once

ADMIN_PASSWORD = "correct horse battery"


def _worker_suffix() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session")
def database_uri(tmp_path_factory) -> str:
    """A database of our own for this test run (per xdist worker), migrated from empty."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        uri = _fresh_postgres_database(database_url(base), f"portal_test_{_worker_suffix()}")
    else:
        uri = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
    app = create_app(_config(uri, tmp_path_factory.mktemp("instance")))
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    return uri


# Every PostgreSQL database a test run makes starts with this run's token, so two runs on one
# server (CI beside a developer's run, two checkouts) never drop each other's databases; the
# run drops its own at the end. Set in the controller, inherited by xdist's workers and by the
# processes the tests start.
RUN_TOKEN_VARIABLE = "PORTAL_TEST_RUN"


def pytest_configure(config):
    os.environ.setdefault(RUN_TOKEN_VARIABLE, secrets.token_hex(4))


def pytest_sessionfinish(session):
    base = os.environ.get("TEST_DATABASE_URL")
    if not base or os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller (or a run without xdist) cleans up once every worker is done
    admin = sa.create_engine(database_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            names = conn.scalars(sa.text("SELECT datname FROM pg_database WHERE datname LIKE "
                                         ":prefix"), {"prefix": _run_prefix() + "%"}).all()
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    except sa.exc.OperationalError:
        pass  # a server that went away has nothing left to clean
    finally:
        admin.dispose()


def _run_prefix() -> str:
    return f"t{os.environ[RUN_TOKEN_VARIABLE]}_"


def drop_postgres_database(uri: str) -> None:
    """Drop the database of `uri` (one _fresh_postgres_database made), its sessions too."""
    url = sa.make_url(uri)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _fresh_postgres_database(uri: str, name: str) -> str:
    """An empty database called `name` (prefixed with this run's token; PostgreSQL keeps
    63 characters of a name) on the server of `uri`: its URI."""
    name = (_run_prefix() + name)[:63]
    url = sa.make_url(uri)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _config(uri: str, instance: Path, **overrides):
    attrs = {"SQLALCHEMY_DATABASE_URI": uri, "INSTANCE_PATH": str(instance)}
    attrs.update(overrides)
    return type("RunConfig", (TestConfig,), attrs)


@pytest.fixture
def config_overrides(request) -> dict:
    """Override in a test module, or parametrize indirectly, to change settings."""
    return getattr(request, "param", {})


@pytest.fixture
def app(database_uri, tmp_path, config_overrides):
    app = create_app(_config(database_uri, tmp_path, **config_overrides))
    # The test's app context outlives each request, so `g` would carry one request's CSRF
    # token, signed-in user and locale into the next; a server starts every request afresh.
    app.before_request_funcs.setdefault(None, []).insert(0, lambda: g.__dict__.clear())
    limiter.reset()
    with app.app_context():
        yield app
        _db.engine.dispose()


class _ConnectionSession(_FlaskSession):
    """Flask-SQLAlchemy's get_bind picks the engine by table; the tests need our connection."""

    def get_bind(self, *args, **kwargs):
        return self.bind


@pytest.fixture
def db(app):
    """The database, inside a transaction that is rolled back after the test."""
    connection = _db.engine.connect()
    transaction = connection.begin()
    original = _db.session
    _db.session = _db._make_scoped_session(
        {"bind": connection, "join_transaction_mode": "create_savepoint",
         "class_": _ConnectionSession})
    try:
        yield _db
    finally:
        _db.session.remove()
        _db.session = original
        transaction.rollback()
        connection.close()


@pytest.fixture
def client(app, db):
    return app.test_client()


def _as_htmx(client):
    client.environ_base["HTTP_HX_REQUEST"] = "true"
    return client


@pytest.fixture
def htmx_client(app, db):
    return _as_htmx(app.test_client())


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'"X-CSRFToken": "([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def csrf_token(client, page: str) -> str:
    """The CSRF token of `page` as a browser loads it: the whole page, even for an htmx client."""
    hx_request = client.environ_base.pop("HTTP_HX_REQUEST", None)
    try:
        return csrf_token_from(client.get(page).get_data(as_text=True))
    finally:
        if hx_request is not None:
            client.environ_base["HTTP_HX_REQUEST"] = hx_request


def post_form(client, url: str, *, page: str | None = None, headers: dict | None = None,
              **data):
    """POST `data` to `url` as the browser would, with the CSRF token of `page` (default `url`):
    in the form without JavaScript, in the X-CSRFToken header from an htmx client."""
    token = csrf_token(client, page or url)
    if "HTTP_HX_REQUEST" in client.environ_base:
        return client.post(url, data=data, headers={"X-CSRFToken": token, **(headers or {})})
    return client.post(url, data={"csrf_token": token, **data}, headers=headers)


def admin_factory():
    """make_admin without the `db` fixture: for a live server's committed database too."""
    from portal.accounts.admins import create_admin

    def make(username=None, password=ADMIN_PASSWORD, email=None, mail_recipient=False,
             role="administrator"):
        username = username or f"admin{secrets.token_hex(3)}"
        return create_admin(username, email or f"{username}@example.com", password,
                            mail_recipient=mail_recipient, role=role)
    return make


def user_factory():
    from portal.accounts.users import add_local_user

    def make(username=None, password="user-password-1", email=None, display_name=None):
        username = username or f"user{secrets.token_hex(3)}"
        return add_local_user(username, email or f"{username}@example.com", password,
                              display_name=display_name)
    return make


@pytest.fixture
def make_admin(db):
    return admin_factory()


@pytest.fixture
def make_user(db):
    return user_factory()


def sign_in(client, username, password=ADMIN_PASSWORD, next_url=None):
    extra = {} if next_url is None else {"next": next_url}
    return post_form(client, "/admin/login", username=username, password=password, **extra)


def _signed_in(client, admin):
    response = sign_in(client, admin.username)
    assert response.status_code == 303, response.get_data(as_text=True)
    client.admin = admin
    return client


@pytest.fixture
def admin_client(client, make_admin):
    return _signed_in(client, make_admin())


@pytest.fixture
def helpdesk_client(app, db, make_admin):
    """A Helpdesk admin's browser: devices, pending enrollments and QR codes only."""
    return _signed_in(app.test_client(), make_admin(role="helpdesk"))


@pytest.fixture
def admin_htmx_client(app, db, make_admin):
    """An admin's browser with htmx: every request says HX-Request: true."""
    return _as_htmx(_signed_in(app.test_client(), make_admin()))


@pytest.fixture
def make_qr_code(db, make_user):
    """Create a QR code through the domain function, with a Companion and licenses in place."""
    return qr_code_factory(make_user)


def qr_code_factory(make_user):
    """make_qr_code without the `db` fixture: for a live server's committed database too."""
    from portal.licensing.seats import figures, set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    from portal.settings.companion import seed_example_companion

    seed_example_companion()

    def make(option="auto", *, licenses=None, created_by=None, **overrides):
        if licenses is not None:
            set_total(licenses)
        elif figures().total == 0:
            set_total(100)
        values = dict(option=option, lang="en", network="wifi", wifi_ssid="Corp-WLAN",
                      wifi_security="WPA", wifi_password="correct-horse")
        if option == "auto":
            values.update(usage_count=1)
            if "user" not in overrides:
                values["user"] = make_user()
        values.update(overrides)
        return create_qr_code(QrCodeRequest(**values), created_by=created_by,
                              server_url="https://portal.test")
    return make


# Real directories on loopback, one each per test session (and xdist worker).
ldap_server = ldap_server_fixture()
oidc_provider = provider_fixture()


def connect_portal_to_standin(app, standin, *, enterprise_id="LC0abc", policy_ssp="fully-managed",
                              policy_auto="kiosk",
                              push_email="amapi-push@proj.iam.gserviceaccount.com"):
    """Point the portal at the Android Management API stand-in (tests/support/amapi_standin.py)
    and save a connection with a key the stand-in issued; commits (a live server sees it too).
    Returns the AmapiSettings row."""
    import json

    from portal import vault
    from portal.amapi.models import AmapiSettings

    app.config.update(AMAPI_ENDPOINT=standin.url,
                      AMAPI_PUSH_CERTS_URL=standin.url + "/oauth2/v1/certs")
    key = standin.service_account_key()
    settings = _db.session.get(AmapiSettings, 1) or AmapiSettings(id=1)
    settings.enterprise_name = f"enterprises/{enterprise_id}"
    settings.key_enc = vault.encrypt(json.dumps(key))
    settings.key_email, settings.key_id = key["client_email"], key["private_key_id"]
    settings.policy_ssp, settings.policy_auto = policy_ssp, policy_auto
    settings.push_email = push_email
    _db.session.add(settings)
    _db.session.commit()
    return settings


@pytest.fixture
def amapi_connected(app, db, amapi):
    """The portal connected to the stand-in (`amapi`: enterprise LC0abc with the policies
    fully-managed and kiosk): yields the stand-in."""
    connect_portal_to_standin(app, amapi)
    yield amapi
