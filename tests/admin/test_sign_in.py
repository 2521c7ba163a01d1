"""Admin sign-in and sign-out: credentials, audit, CSRF, `next`, throttling, cookies, access."""
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.models import AdminUser
from portal.audit.models import AuditEvent
from tests.conftest import ADMIN_PASSWORD, csrf_token, csrf_token_from, post_form, sign_in

PENDING = "/admin/devices/pending"
WRONG = "The user name or the password is wrong."



def _next_of(location: str) -> str:
    parts = urlsplit(location)
    assert parts.path == "/admin/login", location
    return parse_qs(parts.query)["next"][0]


def _sign_in_events(db) -> list[AuditEvent]:
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "admin.sign_in")
                              .order_by(AuditEvent.id)).all()


def _session_cookie_attributes(response) -> set[str]:
    """The attributes after `session=value`, such as {"httponly", "samesite=lax", "path=/"}."""
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert cookies, response.headers
    return {part.strip().lower() for part in cookies[-1].split(";")[1:]}


# Credentials

def test_good_credentials_redirect_to_pending_with_license_figures(client, make_admin):
    admin = make_admin()

    response = sign_in(client, admin.username)

    assert response.status_code == 303
    assert response.headers["Location"] == PENDING
    page = client.get(PENDING)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for figure in ("total", "used", "reserved", "remaining"):
        assert f'data-figure="{figure}"' in html
        assert f"<dt>{figure.capitalize()}</dt>" in html


def test_user_name_is_matched_without_regard_to_case(client, make_admin):
    make_admin(username="CaseAdmin")

    assert sign_in(client, "caseadmin").status_code == 303


@pytest.mark.parametrize("who", ["wrong password", "unknown user"])
def test_refusal_says_the_same_thing_and_keeps_the_typed_user_name(client, make_admin, who):
    admin = make_admin()
    username = admin.username if who == "wrong password" else "nobody-here"

    response = sign_in(client, username, password="not-the-password-42")

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert WRONG in html
    assert f'value="{username}"' in html
    assert "not-the-password-42" not in html
    assert client.get(PENDING).status_code == 302


def test_inactive_admin_cannot_sign_in(client, db, make_admin):
    admin = make_admin()
    admin.active = False
    db.session.commit()

    response = sign_in(client, admin.username)

    assert response.status_code == 422
    assert WRONG in response.get_data(as_text=True)
    assert client.get(PENDING).status_code == 302


def test_admin_deactivated_after_sign_in_loses_the_session(admin_client, db):
    admin_client.admin.active = False
    db.session.commit()

    assert admin_client.get(PENDING).status_code == 302


def test_password_is_stored_as_argon2id(db, make_admin):
    admin = make_admin()

    stored = db.session.scalar(sa.select(AdminUser.password_hash).where(AdminUser.id == admin.id))
    assert stored.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in stored


def test_every_sign_in_attempt_is_audited_with_address_and_without_password(client, db,
                                                                            make_admin):
    admin = make_admin()
    sign_in(client, admin.username, password="Wr0ng-Secret-pw")
    sign_in(client, "ghost-admin", password="Gh0st-Secret-pw")
    sign_in(client, admin.username)

    events = _sign_in_events(db)

    assert [(e.actor, e.outcome) for e in events] == [
        (admin.username, "refused"), ("ghost-admin", "refused"), (admin.username, "success")]
    assert {e.client_address for e in events} == {"127.0.0.1"}
    columns = [c.key for c in sa.inspect(AuditEvent).column_attrs]
    for event in events:
        stored = " ".join(repr(getattr(event, key)) for key in columns)
        for password in ("Wr0ng-Secret-pw", "Gh0st-Secret-pw", ADMIN_PASSWORD):
            assert password not in stored


# CSRF

def test_sign_in_without_csrf_token_is_refused_with_400(client, make_admin):
    admin = make_admin()
    client.get("/admin/login")

    response = client.post("/admin/login",
                           data={"username": admin.username, "password": ADMIN_PASSWORD})

    assert response.status_code == 400
    assert "session has expired" in response.get_data(as_text=True)
    assert client.get(PENDING).status_code == 302


def test_csrf_token_in_x_csrftoken_header_is_accepted(client, make_admin):
    admin = make_admin()
    token = csrf_token(client, "/admin/login")

    response = client.post("/admin/login", headers={"X-CSRFToken": token},
                           data={"username": admin.username, "password": ADMIN_PASSWORD})

    assert response.status_code == 303


def test_forged_csrf_header_is_refused(client, make_admin):
    admin = make_admin()
    client.get("/admin/login")

    response = client.post("/admin/login", headers={"X-CSRFToken": "forged"},
                           data={"username": admin.username, "password": ADMIN_PASSWORD})

    assert response.status_code == 400


# Sign-out

def test_sign_out_by_get_is_not_allowed(admin_client):
    assert admin_client.get("/admin/logout").status_code == 405
    assert admin_client.get(PENDING).status_code == 200


def test_sign_out_without_csrf_token_is_refused_and_keeps_the_session(admin_client):
    response = admin_client.post("/admin/logout")

    assert response.status_code == 400
    assert admin_client.get(PENDING).status_code == 200


def test_sign_out_ends_the_session(admin_client):
    response = post_form(admin_client, "/admin/logout", page=PENDING)

    assert response.status_code == 303
    assert urlsplit(response.headers["Location"]).path == "/admin/login"
    after = admin_client.get(PENDING)
    assert after.status_code == 302
    assert _next_of(after.headers["Location"]) == PENDING


def _sign_out(client):
    assert post_form(client, "/admin/logout", page=PENDING).status_code == 303


def test_a_copy_of_the_session_cookie_stops_working_at_sign_out(app, admin_client):
    stolen = app.test_client()
    stolen.set_cookie("session", admin_client.get_cookie("session").value)
    assert stolen.get(PENDING).status_code == 200  # the copy works while the admin is in

    _sign_out(admin_client)

    after = stolen.get(PENDING)
    assert after.status_code == 302 and _next_of(after.headers["Location"]) == PENDING


def test_sign_out_ends_the_admins_session_in_another_browser_too(app, admin_client, make_admin):
    other = app.test_client()
    assert sign_in(other, admin_client.admin.username).status_code == 303
    colleague = app.test_client()  # another admin is not affected
    assert sign_in(colleague, make_admin().username).status_code == 303

    _sign_out(admin_client)

    assert other.get(PENDING).status_code == 302
    assert colleague.get(PENDING).status_code == 200
    assert sign_in(other, admin_client.admin.username).status_code == 303  # signing in again
    assert other.get(PENDING).status_code == 200


def test_sign_out_is_in_the_audit_log(db, admin_client):
    _sign_out(admin_client)

    event = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "admin.sign_out")).one()
    assert (event.actor, event.actor_type, event.outcome, event.client_address) == (
        admin_client.admin.username, "admin", "success", "127.0.0.1")


@pytest.mark.parametrize("session_id", ["{id}", "{id}.", "{id}.x", "{id}.-1", "x.0", ".0", ""])
def test_a_session_without_the_current_epoch_is_refused(app, admin_client, session_id):
    # "{id}" alone is what sessions held before epochs existed: they sign in again.
    with admin_client.session_transaction() as session:
        assert session["_user_id"] == f"{admin_client.admin.id}.0"
        session["_user_id"] = session_id.format(id=admin_client.admin.id)

    assert admin_client.get(PENDING).status_code == 302


# `next`

def test_safe_relative_next_is_followed(client, make_admin):
    admin = make_admin()

    response = sign_in(client, admin.username, next_url="/admin/devices/licenses?x=1")

    assert response.headers["Location"] == "/admin/devices/licenses?x=1"


def test_next_from_the_query_string_survives_the_sign_in_form(client, make_admin):
    admin = make_admin()
    html = client.get("/admin/login?next=/admin/devices/licenses").get_data(as_text=True)
    assert 'value="/admin/devices/licenses"' in html

    response = client.post("/admin/login", data={
        "csrf_token": csrf_token_from(html), "username": admin.username,
        "password": ADMIN_PASSWORD, "next": "/admin/devices/licenses"})

    assert response.headers["Location"] == "/admin/devices/licenses"


OPEN_REDIRECTS = [
    "https://evil.example",
    "//evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "javascript:alert(1)",
    "http:/evil.example",
    "/%0d%0aLocation:evil",
    "/\r\nLocation: https://evil.example",
    " //evil.example",
    "/\t/evil.example",
    "/%2F%2Fevil.example",
    "/%5Cevil.example",
    "https:evil.example",
    "//[evil.example",
]


@pytest.mark.parametrize("target", OPEN_REDIRECTS)
def test_open_redirect_attempt_lands_on_pending(client, make_admin, target):
    admin = make_admin()
    credentials = {"username": admin.username, "password": ADMIN_PASSWORD}

    # As the hidden form field carries it, and as it arrives in ?next= from a crafted link.
    in_form = post_form(client, "/admin/login", **credentials, next=target)
    in_query = post_form(client, "/admin/login?next=" + quote(target, safe=""),
                         page="/admin/login", **credentials)

    assert (in_form.status_code, in_form.headers["Location"]) == (303, PENDING)
    assert (in_query.status_code, in_query.headers["Location"]) == (303, PENDING)


# Throttling

def _fail(client, username):
    return sign_in(client, username, password="wrong-password-1")


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_fourth_failure_for_one_user_name_gets_429_with_retry_after(client, make_admin):
    admin = make_admin()
    assert [_fail(client, admin.username).status_code for _ in range(3)] == [422] * 3

    response = _fail(client, admin.username)

    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.mimetype == "text/html"
    assert "Too many attempts" in response.get_data(as_text=True)
    assert sign_in(client, admin.username).status_code == 429


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_per_user_limit_does_not_block_another_user_name(client, make_admin):
    blocked, other = make_admin(), make_admin()
    for _ in range(3):
        _fail(client, blocked.username)
    assert _fail(client, blocked.username).status_code == 429

    assert _fail(client, other.username).status_code == 422
    assert sign_in(client, other.username).status_code == 303


@pytest.mark.parametrize("config_overrides", [
    {"ADMIN_LOGIN_LIMIT": "3 per minute", "ADMIN_LOGIN_IP_LIMIT": "3 per minute"}], indirect=True)
def test_successful_sign_ins_are_not_counted(client, make_admin):
    admin = make_admin()

    assert [sign_in(client, admin.username).status_code for _ in range(5)] == [303] * 5


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_IP_LIMIT": "3 per minute"}],
                         indirect=True)
def test_rotating_user_names_from_one_address_gets_429(client):
    assert [_fail(client, f"guess{i}").status_code for i in range(3)] == [422] * 3

    response = _fail(client, "guess3")

    assert response.status_code == 429
    assert "Retry-After" in response.headers


# Session cookie

def test_session_cookie_is_httponly_and_samesite_lax(client, make_admin):
    admin = make_admin()

    attributes = _session_cookie_attributes(sign_in(client, admin.username))

    assert {"httponly", "samesite=lax"} <= attributes
    assert "secure" not in attributes  # TestConfig serves plain http


@pytest.mark.parametrize("config_overrides", [{"SESSION_COOKIE_SECURE": True}], indirect=True)
def test_session_cookie_is_secure_when_configured(client, make_admin):
    admin = make_admin()
    page = client.get("/admin/login", base_url="https://localhost").get_data(as_text=True)
    data = {"csrf_token": csrf_token_from(page), "username": admin.username,
            "password": ADMIN_PASSWORD}

    # Over HTTPS, Flask-WTF also wants a same-origin Referer, as a browser sends.
    response = client.post("/admin/login", base_url="https://localhost", data=data,
                           headers={"Referer": "https://localhost/admin/login"})

    assert response.status_code == 303
    assert {"secure", "httponly", "samesite=lax"} <= _session_cookie_attributes(response)


# Anonymous access

def _sample(rule, name):
    # An `any(png, svg)` argument needs one of its words; every other argument takes 1.
    items = getattr(rule._converters[name], "items", None)
    return sorted(items)[0] if items else 1


def _anonymous_get_urls(app) -> list[str]:
    adapter = app.url_map.bind("localhost")
    return sorted(
        adapter.build(rule.endpoint, {name: _sample(rule, name) for name in rule.arguments})
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/admin") and "GET" in rule.methods
        # The sign-in's two steps: the password, then the code (tests/admin/test_two_step.py).
        and rule.endpoint not in ("admin.login", "admin.sign_in_code"))


def test_every_admin_page_sends_anonymous_users_to_sign_in(app, client):
    urls = _anonymous_get_urls(app)
    assert {"/admin/", PENDING, "/admin/devices/licenses"} <= set(urls)

    for url in urls:
        response = client.get(url)
        assert response.status_code == 302, url
        assert _next_of(response.headers["Location"]) == url


def test_anonymous_htmx_request_gets_401_with_hx_redirect(htmx_client):
    response = htmx_client.get(PENDING + "?page=2")

    assert response.status_code == 401
    assert _next_of(response.headers["HX-Redirect"]) == PENDING + "?page=2"
    assert "Location" not in response.headers
