"""The Self Service Portal for QR codes managed by Android Device Policy: Google's sign-in URL
flow, against the Android Management API stand-in through Google's real client libraries.

Android Device Policy opens /ssp/?qr_id=…&provisioningInfo=provisioningInfo/<id>; the user signs
in; Start reads the device (provisioningInfo.get), asks Google for a one-time enrollment token
for the user and sends the device on to Google's enrollment URL with ?et=<token>."""
import json
import re
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.amapi.calls import read_token_data
from portal.audit.models import AuditEvent
from portal.directory import azure
from portal.licensing.seats import figures, set_total
from portal.web.headers import CONTENT_SECURITY_POLICY
from tests.conftest import csrf_token_from
from tests.security.test_csp import script_policy_problems
from tests.selfservice.conftest import Page, azure_values, get, ldap_values
from tests.support.amapi_standin import ENROLL_INVALID_URL, ENROLL_URL
from tests.support.ldap_server import STUDENTS_FILTER
from tests.support.oidc_provider import USERS, browser_login
from tests.web.test_reads_never_write import writes

PASSWORD = "ann-password-1"
ACTION = "ssp.device_policy_token"
UNAVAILABLE = "Google&#39;s service is not available right now"
SETUP_ONLY = "Open this page from the device&#39;s setup (scan the QR code)"


@pytest.fixture
def adp_qr(amapi_connected, make_qr_code):
    """A Self Service Portal QR code managed by Android Device Policy (its sign-in details at
    the stand-in point at /ssp/?qr_id=…)."""
    return make_qr_code("ssp", management="adp", licenses=10)


@pytest.fixture
def ann(make_user):
    return make_user("ann", password=PASSWORD, display_name="Ann Example")


def signin_url(amapi, qr, **device) -> str:
    """The URL the phone opens after scanning the QR: the enterprise's signinUrl for this QR
    code, plus Google's provisioningInfo (the path and query, for the test client)."""
    token = _signin_detail(amapi, qr)["signinEnrollmentToken"]
    url = amapi.start_signin(token, **device)
    parts = urlsplit(url)
    assert parts.path == "/ssp/"
    return f"{parts.path}?{parts.query}"


def _signin_detail(amapi, qr) -> dict:
    (enterprise,) = amapi.enterprises.values()
    (detail,) = [d for d in enterprise["signinDetails"] if d["tokenTag"] == qr.public_id]
    return detail


def sign_in(client, url, username="ann", password=PASSWORD) -> Page:
    page = get(client, url)
    assert page.status == 200 and 'id="ssp-sign-in"' in page.html, page.html
    qr_id = parse_qs(urlsplit(url).query)["qr_id"][0]
    response = client.post(f"/ssp/sign-in?qr_id={qr_id}", data={
        "csrf_token": csrf_token_from(page.html), "username": username, "password": password})
    return Page(response.status_code, response.get_data(as_text=True),
                response.headers.get("Location"))


def press_start(client, qr) -> Page:
    page = get(client, f"/ssp/start?qr_id={qr.public_id}")
    assert 'id="ssp-start"' in page.html, page.html
    response = client.post(f"/ssp/start?qr_id={qr.public_id}",
                           data={"csrf_token": csrf_token_from(page.html)})
    return Page(response.status_code, response.get_data(as_text=True),
                response.headers.get("Location"))


def signed_in_and_started(client, amapi, qr, **device) -> Page:
    signed_in = sign_in(client, signin_url(amapi, qr, **device))
    assert signed_in.status == 303 and "/ssp/start" in signed_in.location, signed_in.html
    return press_start(client, qr)


def created_tokens(amapi) -> list[dict]:
    return [r.json for r in amapi.calls("POST", r"/enrollmentTokens$") if r.status == 200]


def token_events(db) -> list[AuditEvent]:
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == ACTION)
                              .order_by(AuditEvent.id)).all()


# -- the flow

def test_sign_in_and_start_redirect_to_google_with_a_one_time_token_for_the_user(
        client, db, amapi, adp_qr, ann):
    started = signed_in_and_started(client, amapi, adp_qr, serial="R58N12345", model="SM-A536B")
    assert started.status == 303, started.html
    (body,) = created_tokens(amapi)
    (token,) = amapi.tokens.values()
    assert started.location == f"{ENROLL_URL}?et={quote(token['value'])}"
    assert body["oneTimeOnly"] is True
    assert body["policyName"] == "enterprises/LC0abc/policies/fully-managed"
    assert body["allowPersonalUsage"] == "PERSONAL_USAGE_DISALLOWED"
    assert body["user"] == {"accountIdentifier": f"portal-user-{ann.id}"}
    assert json.loads(body["additionalData"]) == {"qr": adp_qr.public_id, "user": "ann",
                                                  "uid": ann.id}
    assert read_token_data(body["additionalData"]) == (adp_qr.public_id, "ann")
    # Google's provisioningInfo.get was asked about the device that opened the page.
    (info_call,) = amapi.calls("GET", r"/v1/provisioningInfo/")
    assert info_call.status == 200
    # The device follows the redirect and enrolls at Google with that token, once.
    device = amapi.enroll_from_url(started.location, serial="R58N12345")
    assert device["enrollmentTokenData"] == body["additionalData"]
    with pytest.raises(ValueError, match="already used"):
        amapi.enroll_from_url(started.location, serial="R58N99999")


def test_the_token_is_audited_without_its_value(client, db, amapi, adp_qr, ann):
    started = signed_in_and_started(client, amapi, adp_qr, serial="R58N12345", model="SM-A536B")
    (token,) = amapi.tokens.values()
    (event,) = token_events(db)
    assert (event.outcome, event.actor, event.target) == ("success", "ann", adp_qr.public_id)
    assert event.serial_number == "R58N12345" and event.details["model"] == "SM-A536B"
    assert event.details["enrollment_token"] == token["name"]
    assert event.details["provisioning_info"].startswith("provisioningInfo/")
    assert token["value"] not in json.dumps(event.details) and started.status == 303


def test_start_asks_for_no_second_token_after_the_redirect(client, amapi, adp_qr, ann):
    assert signed_in_and_started(client, amapi, adp_qr).status == 303
    again = get(client, f"/ssp/start?qr_id={adp_qr.public_id}")
    assert SETUP_ONLY in again.html and len(created_tokens(amapi)) == 1


def test_the_provisioning_info_survives_the_sign_in_and_a_language_switch(
        client, amapi, adp_qr, ann):
    url = signin_url(amapi, adp_qr)
    assert get(client, url).status == 200
    german = get(client, f"/ssp/?qr_id={adp_qr.public_id}&lang=de")  # the language links
    assert german.status == 200 and "Anmelden" in german.html
    signed_in = sign_in(client, f"/ssp/?qr_id={adp_qr.public_id}")
    assert signed_in.status == 303
    assert press_start(client, adp_qr).status == 303
    (call,) = amapi.calls("GET", r"/v1/provisioningInfo/")
    assert call.path == "/v1/" + parse_qs(urlsplit(url).query)["provisioningInfo"][0]


def test_a_wrong_password_stays_on_our_page_to_try_again(client, amapi, adp_qr, ann):
    url = signin_url(amapi, adp_qr)
    wrong = sign_in(client, url, password="not-her-password")
    assert wrong.status == 422 and "The user name or the password is wrong." in wrong.html
    assert ENROLL_INVALID_URL not in (wrong.location or "")
    # ... and the page offers Google's "failed sign-in" only as the user's own choice.
    assert f'href="{ENROLL_INVALID_URL}"' in wrong.html
    assert sign_in(client, f"/ssp/?qr_id={adp_qr.public_id}").status == 303
    assert press_start(client, adp_qr).status == 303


def test_companion_ssp_pages_offer_no_google_cancel(client, make_qr_code):
    qr = make_qr_code("ssp", licenses=10)
    page = get(client, f"/ssp/?qr_id={qr.public_id}")
    assert page.status == 200 and "cancel-setup" not in page.html


# -- opened outside the device's setup, or edited

def test_opened_in_a_browser_without_provisioning_info_says_how_to_open_it(
        client, amapi, adp_qr, ann, make_qr_code):
    page = get(client, f"/ssp/?qr_id={adp_qr.public_id}")
    assert page.status == 200 and SETUP_ONLY in page.html
    assert 'id="ssp-sign-in"' not in page.html and "csrf_token" not in page.html
    # Signed in all the same (a session's CSRF token from another page), Start asks Google
    # for nothing.
    other = f"/ssp/?qr_id={make_qr_code('ssp').public_id}"
    response = client.post(f"/ssp/sign-in?qr_id={adp_qr.public_id}", data={
        "csrf_token": csrf_token_from(get(client, other).html), "username": "ann",
        "password": PASSWORD})
    assert response.status_code == 303
    assert SETUP_ONLY in get(client, f"/ssp/start?qr_id={adp_qr.public_id}").html
    start = client.post(f"/ssp/start?qr_id={adp_qr.public_id}",
                        data={"csrf_token": csrf_token_from(get(client, other).html)})
    assert SETUP_ONLY in start.get_data(as_text=True)
    assert not amapi.calls(path_regex="provisioningInfo") and not amapi.tokens


@pytest.mark.parametrize("value", [
    "", "provisioningInfo/", "provisioningInfo/a/b", "../enterprises/LC0abc", "x" * 201,
    "provisioningInfo/abc def", "provisioningInfo/abc%00", "enterprises/LC0abc/devices/1",
    "abc\u00e9", "provisioningInfo/abc\x00"])
def test_edited_provisioning_info_values_are_refused_before_google(client, amapi, adp_qr,
                                                                   value):
    before = len(amapi.requests)
    page = get(client, f"/ssp/?qr_id={adp_qr.public_id}&provisioningInfo={quote(value)}")
    assert page.status == 400 and "incomplete or was changed" in page.html
    assert len(amapi.requests) == before


def test_an_unknown_provisioning_info_is_a_plain_page_and_no_token(client, db, amapi,
                                                                   adp_qr, ann):
    url = f"/ssp/?qr_id={adp_qr.public_id}&provisioningInfo=provisioningInfo/abc123"
    assert sign_in(client, url).status == 303
    started = press_start(client, adp_qr)
    assert started.status == 400 and "Restart the device&#39;s setup" in started.html
    assert not amapi.tokens
    assert [(e.outcome, e.code) for e in token_events(db)] == [("refused", "unknown_device")]


def test_a_bare_provisioning_info_id_is_accepted(client, amapi, adp_qr, ann):
    info_id = amapi.add_provisioning_info(serial="R58NBARE")
    assert sign_in(client, f"/ssp/?qr_id={adp_qr.public_id}&provisioningInfo={info_id}"
                   ).status == 303
    assert press_start(client, adp_qr).status == 303
    assert amapi.calls("GET", rf"/v1/provisioningInfo/{info_id}$")


# -- refusals

def test_a_device_of_another_enterprise_is_refused(client, db, amapi, adp_qr, ann):
    amapi.add_enterprise("LC0other")
    info_id = amapi.add_provisioning_info(enterprise_id="LC0other")
    url = f"/ssp/?qr_id={adp_qr.public_id}&provisioningInfo=provisioningInfo/{info_id}"
    assert sign_in(client, url).status == 303
    started = press_start(client, adp_qr)
    assert started.status == 403 and "another organization" in started.html
    assert "LC0other" not in started.html and "LC0abc" not in started.html
    assert not amapi.tokens
    (event,) = token_events(db)
    assert (event.outcome, event.code) == ("refused", "wrong_enterprise")
    assert "LC0other" in event.details["message"]  # the admin sees which one


def test_no_free_license_refuses_as_the_companion_flow_does(client, db, amapi, adp_qr, ann):
    set_total(figures().used + figures().reserved)
    started = signed_in_and_started(client, amapi, adp_qr)
    assert started.status == 409 and "No license is free" in started.html
    assert not amapi.tokens
    assert [(e.outcome, e.code) for e in token_events(db)] == [("refused", "no_license")]
    set_total(figures().used + figures().reserved + 1)  # a license freed: Try again works
    retry = client.post(f"/ssp/start?qr_id={adp_qr.public_id}",
                        data={"csrf_token": csrf_token_from(started.html)})
    assert retry.status_code == 303 and retry.headers["Location"].startswith(ENROLL_URL + "?et=")


@pytest.mark.parametrize("path,status,expected,code", [
    (r"/enrollmentTokens$", 500, UNAVAILABLE, 503),
    (r"/enrollmentTokens$", 403, "Setup is not working right now", 502),
    (r"/v1/provisioningInfo/", 500, UNAVAILABLE, 503),
    (r"/v1/provisioningInfo/", 403, "Setup is not working right now", 502),
    (r"/enrollmentTokens$", 503, UNAVAILABLE, 503),
])
def test_google_failures_are_a_plain_page_with_try_again_and_no_token(
        client, db, amapi, adp_qr, ann, path, status, expected, code):
    amapi.fail(path, status, times=None)
    started = signed_in_and_started(client, amapi, adp_qr)
    assert started.status == code and expected in started.html
    assert 'id="try-again"' in started.html
    assert "Traceback" not in started.html and "Google said" not in started.html
    assert "PRIVATE KEY" not in started.html and "LC0abc" not in started.html
    assert not amapi.tokens and started.location is None
    (event,) = token_events(db)
    assert event.outcome == "refused" and event.details["message"].startswith("Google ")


def test_a_connection_removed_since_the_qr_was_made_is_a_plain_page(client, db, amapi,
                                                                   adp_qr, ann):
    from portal.amapi.models import AmapiSettings
    assert sign_in(client, signin_url(amapi, adp_qr)).status == 303
    db.session.delete(db.session.get(AmapiSettings, 1))
    db.session.commit()
    started = press_start(client, adp_qr)
    assert started.status == 502 and "Setup is not working right now" in started.html
    assert "Admin" not in started.html and not amapi.tokens
    (event,) = token_events(db)
    assert event.code == "google" and "Android Management API" in event.details["message"]


def test_a_google_timeout_is_a_plain_page_and_no_token(app, client, db, amapi, adp_qr, ann):
    app.config["AMAPI_TIMEOUT"] = 0.3
    amapi.delay(r"/v1/provisioningInfo/", 2, times=10)
    started = signed_in_and_started(client, amapi, adp_qr)
    assert started.status == 503 and UNAVAILABLE in started.html
    assert not amapi.tokens


def test_try_again_after_google_recovered_goes_on_to_google(client, db, amapi, adp_qr, ann):
    amapi.fail(r"/enrollmentTokens$", 500, times=1)
    started = signed_in_and_started(client, amapi, adp_qr)
    assert started.status == 503
    retry = client.post(f"/ssp/start?qr_id={adp_qr.public_id}",
                        data={"csrf_token": csrf_token_from(started.html)})
    (token,) = amapi.tokens.values()
    assert retry.status_code == 303
    assert retry.headers["Location"] == f"{ENROLL_URL}?et={quote(token['value'])}"


def test_the_error_page_speaks_the_qr_language(client, amapi, amapi_connected, make_qr_code,
                                               ann):
    qr = make_qr_code("ssp", management="adp", licenses=10, lang="de-CH")
    amapi.fail(r"/enrollmentTokens$", 503, times=None)
    started = signed_in_and_started(client, amapi, qr)
    assert started.status == 503 and 'lang="de' in started.html
    assert UNAVAILABLE not in started.html


def test_a_revoked_qr_code_is_403_before_google_is_asked(client, db, amapi, adp_qr, ann):
    from portal.enrollment.pending import revoke_qr_code
    url = signin_url(amapi, adp_qr)
    assert sign_in(client, url).status == 303
    revoke_qr_code(adp_qr, revoked_by=None)
    before = len(amapi.requests)
    assert get(client, url).status == 403
    start = get(client, f"/ssp/start?qr_id={adp_qr.public_id}")
    assert start.status == 403
    assert not [r for r in amapi.requests[before:] if "provisioningInfo" in r.path]
    assert not amapi.tokens


def test_start_needs_the_csrf_token(client, amapi, adp_qr, ann):
    assert sign_in(client, signin_url(amapi, adp_qr)).status == 303
    response = client.post(f"/ssp/start?qr_id={adp_qr.public_id}", data={})
    assert response.status_code == 400 and not amapi.tokens


def test_the_start_page_lets_its_form_go_on_to_google(client, amapi, adp_qr, ann):
    """Chromium holds a form's redirect to the page's CSP form-action."""
    assert sign_in(client, signin_url(amapi, adp_qr)).status == 303
    response = client.get(f"/ssp/start?qr_id={adp_qr.public_id}")
    csp = response.headers["Content-Security-Policy"]
    assert "form-action 'self' https://enterprise.google.com;" in csp + ";"
    assert script_policy_problems(response) == []  # nothing else of the policy is widened
    assert csp.replace(" https://enterprise.google.com", "") == CONTENT_SECURITY_POLICY
    other = client.get(f"/ssp/?qr_id={adp_qr.public_id}").headers["Content-Security-Policy"]
    assert "form-action 'self';" in other + ";"


# -- the other sign-in methods land in the same continuation

def test_an_active_directory_user_goes_on_to_google(client, db, amapi, adp_qr, ldap_server,
                                                    methods):
    methods(local=False, ldap_values=ldap_values(
        ldap_server.config("starttls", user_filter=STUDENTS_FILTER)))
    signed_in = sign_in(client, signin_url(amapi, adp_qr), "alice", ldap_server.user_password)
    assert signed_in.status == 303, signed_in.html
    started = press_start(client, adp_qr)
    (token,) = amapi.tokens.values()
    assert started.location == f"{ENROLL_URL}?et={quote(token['value'])}"
    assert read_token_data(token["additionalData"]) == (adp_qr.public_id, "alice")


def test_an_azure_ad_user_comes_back_from_the_provider_and_goes_on_to_google(
        app, client, db, amapi, adp_qr, oidc_provider, methods):
    azure.forget_caches()
    app.config.update(AZURE_CA_FILE=oidc_provider.ca_file, PORTAL_PUBLIC_URL="http://localhost")
    methods(local=False, azure_values=azure_values(oidc_provider))
    try:
        page = get(client, signin_url(amapi, adp_qr))
        assert page.status == 200 and 'id="azure-sign-in"' in page.html
        start = client.get(f"/ssp/azure/start?qr_id={adp_qr.public_id}")
        assert start.status_code == 303
        login = "alice@example.org"
        query = browser_login(start.headers["Location"], login, USERS[login]["password"],
                              ca_file=oidc_provider.ca_file)
        back = client.get("/ssp/azure/callback", query_string=query)
        assert back.status_code == 303 and "/ssp/start" in back.headers["Location"]
        started = press_start(client, adp_qr)
    finally:
        azure.forget_caches()
    (token,) = amapi.tokens.values()
    assert started.location == f"{ENROLL_URL}?et={quote(token['value'])}"
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.source == "azure"))
    assert token["user"] == {"accountIdentifier": f"portal-user-{user.id}"}
    assert read_token_data(token["additionalData"]) == (adp_qr.public_id, user.username)


# -- a GET writes nothing

def test_the_pages_of_the_flow_write_no_row(client, db, amapi, adp_qr, ann):
    url = signin_url(amapi, adp_qr)
    engine = db.engine
    with writes(engine) as seen:
        assert get(client, url).status == 200
        assert get(client, f"/ssp/?qr_id={adp_qr.public_id}").status == 200
    assert seen == []
    assert sign_in(client, f"/ssp/?qr_id={adp_qr.public_id}").status == 303
    with writes(engine) as seen:
        assert 'id="ssp-start"' in get(client, f"/ssp/start?qr_id={adp_qr.public_id}").html
        assert get(client, f"/ssp/?qr_id={adp_qr.public_id}&provisioningInfo=x%2Fy").status \
            == 400
    assert seen == [] and not amapi.calls(path_regex="provisioningInfo|enrollmentTokens")


# -- Start is throttled: each press asks Google for a token

WAIT = "Please wait a moment"


@pytest.mark.parametrize("config_overrides", [{"SSP_DEVICE_POLICY_LIMIT": "2 per hour"}],
                         indirect=True)
def test_starts_past_the_user_s_limit_get_a_plain_sentence_and_no_token(
        app, client, db, amapi, adp_qr, ann, make_user):
    for serial in ("R58N00001", "R58N00002"):
        assert signed_in_and_started(app.test_client(), amapi, adp_qr,
                                     serial=serial).status == 303
    throttled = signed_in_and_started(client, amapi, adp_qr, serial="R58N00003")
    assert throttled.status == 429 and WAIT in throttled.html
    assert "Too many devices were set up with this account or from this network" in \
        throttled.html and "Please try again in 1 hour." in throttled.html
    assert 'id="try-again"' in throttled.html and 'id="cancel-setup"' in throttled.html
    assert len(created_tokens(amapi)) == 2 and len(amapi.tokens) == 2
    assert len(amapi.calls("GET", r"/v1/provisioningInfo/")) == 2  # Google not asked at all
    # Another user from the same address still goes on to Google.
    make_user("bob", password=PASSWORD)
    other = app.test_client()
    assert sign_in(other, signin_url(amapi, adp_qr), "bob").status == 303
    assert press_start(other, adp_qr).status == 303 and len(amapi.tokens) == 3


@pytest.mark.parametrize("config_overrides", [{"SSP_DEVICE_POLICY_IP_LIMIT": "2 per minute"}],
                         indirect=True)
def test_starts_past_the_address_limit_are_refused_for_every_user(
        app, client, db, amapi, adp_qr, ann, make_user):
    for name in ("u1", "u2"):
        make_user(name, password=PASSWORD)
        browser = app.test_client()
        assert sign_in(browser, signin_url(amapi, adp_qr), name).status == 303
        assert press_start(browser, adp_qr).status == 303
    throttled = signed_in_and_started(client, amapi, adp_qr)
    assert throttled.status == 429
    assert re.search(r"Please try again in (1 minute|\d\d seconds)\.", throttled.html)
    assert 1 <= int(client.post(f"/ssp/start?qr_id={adp_qr.public_id}", data={
        "csrf_token": csrf_token_from(throttled.html)}).headers["Retry-After"]) <= 60
    assert len(amapi.tokens) == 2
    elsewhere = app.test_client()
    assert sign_in(elsewhere, signin_url(amapi, adp_qr), "u1").status == 303
    page = get(elsewhere, f"/ssp/start?qr_id={adp_qr.public_id}")
    started = elsewhere.post(f"/ssp/start?qr_id={adp_qr.public_id}",
                             data={"csrf_token": csrf_token_from(page.html)},
                             environ_base={"REMOTE_ADDR": "192.0.2.44"})
    assert started.status_code == 303 and len(amapi.tokens) == 3
