"""CSRF on every state change: each POST of /admin and /ssp refuses a request without a token
or with another session's token and accepts htmx's X-CSRFToken header; only the Companion API
and the Admin API are exempt (they authenticate with a bearer token or a one-time credential,
never a cookie)."""
import functools

import sqlalchemy as sa

from config import Config, TestConfig
from portal.enrollment.models import QrCode
from portal.settings.models import Localization
from tests.conftest import ADMIN_PASSWORD, csrf_token_from
from tests.security.conftest import (END_USER_PASSWORD, STATE_CHANGING, anonymous_client,
                                     changed_tables, end_user_client, is_admin_rule,
                                     methods_of, snapshot, url_for_rule)

# portal/setup.py exempts the api blueprint (and /healthz, which has no POST), and Google's
# Pub/Sub push, which an OIDC token in a header authenticates (portal/api/amapi_push.py).
EXEMPT_BY_DESIGN = {"api.create_enrollment", "api.provisioning_complete",
                    "amapi_push.notifications"}
# And the Admin API's, which only a bearer token authenticates (never a cookie): without one
# its requests are refused before any view (401), whatever the session holds.
BEARER_ONLY = {"adminapi.create_qr", "adminapi.revoke_qr", "adminapi.retire",
               "adminapi.create_batch"}


def stub_views(app) -> list[str]:
    """Swap every view for a stub that records its endpoint: a request that reaches its view
    got past the CSRF check. functools.wraps keeps the name csrf.exempt matches on."""
    reached = []
    for endpoint, view in list(app.view_functions.items()):
        def stub(*args, _endpoint=endpoint, **kwargs):
            reached.append(_endpoint)
            return "", 204
        app.view_functions[endpoint] = functools.wraps(view)(stub)
    return reached


def state_changes(app, prefix: str) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) of every state-changing route whose address starts with prefix."""
    return [(rule.endpoint, method, url_for_rule(app, rule, {}))
            for rule in app.url_map.iter_rules() if rule.rule.startswith(prefix)
            for method in methods_of(rule) if method in STATE_CHANGING]


def _foreign_token(app) -> str:
    return anonymous_client(app).csrf_token


def test_csrf_protection_is_on_for_production_and_for_the_tests(app):
    for config in (Config, TestConfig):
        assert getattr(config, "WTF_CSRF_ENABLED", True) is True
        assert getattr(config, "WTF_CSRF_CHECK_DEFAULT", True) is True
    assert app.config["WTF_CSRF_ENABLED"] and app.config["WTF_CSRF_CHECK_DEFAULT"]
    assert STATE_CHANGING <= set(app.config["WTF_CSRF_METHODS"])


def test_only_the_companion_api_is_exempt(app, db):
    client = anonymous_client(app)  # a session with a token, which the requests do not send
    reached = stub_views(app)
    routes = state_changes(app, "/")
    assert len(routes) >= 20

    refused = {}
    for endpoint, method, url in routes:
        response = client.open(url, method=method)
        if endpoint not in reached:
            refused[endpoint] = response.status_code

    assert set(reached) == EXEMPT_BY_DESIGN
    assert {refused.pop(endpoint) for endpoint in BEARER_ONLY} == {401}
    assert set(refused.values()) == {400}
    assert all(url.startswith(("/api/v1/", "/api/amapi/")) for endpoint, _, url in routes
               if endpoint in EXEMPT_BY_DESIGN)


def test_every_post_of_admin_and_ssp_needs_this_sessions_token(app, db, admin_client,
                                                                make_qr_code, make_user):
    admin_client.csrf_token = csrf_token_from(
        admin_client.get("/admin/devices/pending").get_data(as_text=True))
    end_user = end_user_client(app, make_qr_code, make_user)
    foreign = _foreign_token(app)
    reached = stub_views(app)
    routes = [(admin_client, *route) for route in state_changes(app, "/admin")] + \
        [(end_user, endpoint, method, f"{url}?qr_id={end_user.qr_id}")
         for endpoint, method, url in state_changes(app, "/ssp")]
    assert len(routes) >= 20 and any(url.startswith("/ssp") for _, _, _, url in routes)

    for client, endpoint, method, url in routes:
        attempts = {"no token": {}, "another session's token": {"data": {"csrf_token": foreign}},
                    "another session's header": {"headers": {"X-CSRFToken": foreign}},
                    "a forged token": {"data": {"csrf_token": client.csrf_token + "x"}}}
        for attempt, kwargs in attempts.items():
            response = client.open(url, method=method, **kwargs)
            assert response.status_code == 400, (url, attempt, response.status_code)
            assert reached == [], (url, attempt)

        response = client.open(url, method=method, headers={"HX-Request": "true",
                                                            "X-CSRFToken": client.csrf_token})
        assert reached.pop() == endpoint, (url, response.status_code)


def test_the_csrf_refusal_is_an_html_page_that_says_what_to_do(admin_client, known):
    response = admin_client.post(f"/admin/qr-codes/{known['public_id']}/revoke")

    assert response.status_code == 400
    assert response.mimetype == "text/html"
    assert "session has expired" in response.get_data(as_text=True)


def test_htmx_header_token_passes_end_to_end_and_a_foreign_one_changes_nothing(
        app, admin_client, db, known):
    token = csrf_token_from(admin_client.get("/admin/settings/localizations")
                            .get_data(as_text=True))
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == known["public_id"]))

    forged = admin_client.post(f"/admin/qr-codes/{qr.public_id}/revoke",
                               headers={"HX-Request": "true",
                                        "X-CSRFToken": _foreign_token(app)})
    added = admin_client.post("/admin/settings/localizations",
                              headers={"HX-Request": "true", "X-CSRFToken": token},
                              data={"tag": "nl-BE", "name": "Nederlands (België)"})

    assert forged.status_code == 400
    db.session.refresh(qr)
    assert not qr.is_revoked
    assert added.status_code == 200, added.get_data(as_text=True)
    assert db.session.scalar(sa.select(Localization).where(Localization.tag == "nl-BE"))


def test_ssp_start_with_the_header_token_issues_a_link(app, db, make_qr_code, make_user):
    end_user = end_user_client(app, make_qr_code, make_user)

    response = end_user.post(f"/ssp/start?qr_id={end_user.qr_id}",
                             headers={"X-CSRFToken": end_user.csrf_token})

    assert response.status_code == 200
    assert 'id="enrollment-link"' in response.get_data(as_text=True)


def test_no_page_changes_anything_on_get(app, db, admin_client, known, make_qr_code,
                                         make_user):
    """CSRF guards POST only, so a GET that changed state would be open to any other site."""
    end_user = end_user_client(app, make_qr_code, make_user)
    pages = [(admin_client, url_for_rule(app, rule, known)) for rule in app.url_map.iter_rules()
             if is_admin_rule(rule) and "GET" in rule.methods]
    pages += [(end_user, f"{url_for_rule(app, rule, known)}?qr_id={end_user.qr_id}")
              for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/ssp") and "GET" in rule.methods]
    before = snapshot(db)

    for client, url in pages:
        assert client.get(url).status_code < 500, url

    assert changed_tables(before, snapshot(db)) == []


def test_a_token_from_before_sign_in_stops_working_at_sign_in(app, client, db, make_admin,
                                                              known):
    """Session fixation: whoever planted the session cookie (and so knows its CSRF token)
    must not be able to forge the admin's requests once the admin has signed in on it."""
    planted = csrf_token_from(client.get("/admin/login").get_data(as_text=True))
    admin = make_admin()
    assert client.post("/admin/login", data={"csrf_token": planted, "username": admin.username,
                                             "password": ADMIN_PASSWORD}).status_code == 303
    revoke = f"/admin/qr-codes/{known['public_id']}/revoke"

    forged = client.post(revoke, data={"csrf_token": planted})
    fresh = csrf_token_from(client.get(revoke).get_data(as_text=True))
    genuine = client.post(revoke, data={"csrf_token": fresh})

    assert forged.status_code == 400
    assert fresh != planted
    assert genuine.status_code == 303


def test_an_end_users_token_from_before_sign_in_stops_working_too(client, make_qr_code,
                                                                   make_user):
    qr, user = make_qr_code("ssp", licenses=5), make_user(password=END_USER_PASSWORD)
    planted = csrf_token_from(client.get(f"/ssp/?qr_id={qr.public_id}").get_data(as_text=True))
    assert client.post(f"/ssp/sign-in?qr_id={qr.public_id}", data={
        "csrf_token": planted, "username": user.username,
        "password": END_USER_PASSWORD}).status_code == 303

    forged = client.post(f"/ssp/start?qr_id={qr.public_id}", data={"csrf_token": planted})

    assert forged.status_code == 400
