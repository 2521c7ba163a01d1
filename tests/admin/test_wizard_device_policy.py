"""The wizard's Management choice with Android Device Policy, against the Android Management API
stand-in (tests/support/amapi_standin.py) through Google's real client libraries: what Google
receives, what the QR code holds, the license figures, and Google's failures beside Save."""
import json
import re

import pytest
import sqlalchemy as sa

from portal.android.qr import render_png
from portal.enrollment.models import QrCode
from portal.licensing.seats import figures, set_total
from portal.settings.companion import seed_example_companion
from tests.conftest import csrf_token_from
from tests.support.amapi_standin import TOKEN_EXTRA
from tests.support.qr import decode_qr

NEW = "/admin/devices/pending/new"
VERSION = "/admin/devices/pending/new/qr-version"
P = "android.app.extra."
EXTRAS = P + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
MAX_DURATION = "315576000000s"


@pytest.fixture
def wizard(admin_client, make_user, db):
    seed_example_companion()
    set_total(50)
    admin_client.alice = make_user("alice", email="alice@example.com")
    admin_client.token = csrf_token_from(admin_client.get(NEW).get_data(as_text=True))
    return admin_client


def values(client, option="auto", **overrides):
    data = {"csrf_token": client.token, "option": option, "management": "adp", "lang": "de-CH",
            "network": "wifi", "wifi_ssid": "Corp-WLAN", "wifi_security": "WPA",
            "wifi_password": "correct-horse", "name": "Library tablets"}
    if option == "auto":
        data.update(user_type="local", username="alice", usage_count="3")
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def save(client, data, htmx=False):
    return client.post("/admin/devices/pending", data=data,
                       headers={"HX-Request": "true"} if htmx else {})


def qr_count(db):
    return db.session.scalar(sa.select(sa.func.count()).select_from(QrCode))


def newest(db) -> QrCode:
    return db.session.scalar(sa.select(QrCode).order_by(QrCode.id.desc()).limit(1))


def token_requests(amapi):
    return amapi.calls("POST", r"/enrollmentTokens$")


def as_tuple(found):
    return found.total, found.used, found.reserved


# ---- The choice itself ----

def test_without_the_api_android_device_policy_is_shown_disabled_with_the_way_to_set_it_up(
        wizard, db):
    html = wizard.get(NEW).get_data(as_text=True)
    companion = re.search(r'<input[^>]*name="management"[^>]*value="companion"[^>]*>', html)
    adp = re.search(r'<input[^>]*name="management"[^>]*value="adp"[^>]*>', html)
    assert companion and "checked" in companion.group(0) and "disabled" not in companion.group(0)
    assert adp and "disabled" in adp.group(0) and 'aria-describedby="adp-unavailable"' in adp.group(0)
    note = re.search(r'<p class="note" id="adp-unavailable">(.*?)</p>', html, re.S).group(1)
    assert "Android Management API" in note and "not set up" in note


def test_choosing_it_anyway_without_the_api_is_refused_beside_save_and_nothing_saved(
        wizard, db, amapi):
    before = as_tuple(figures())
    response = save(wizard, values(wizard), htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    beside_save = re.search(r'<span class="error" id="save-error"[^>]*>(.*?)</span>', html).group(1)
    assert "needs the Android Management API" in beside_save
    assert "needs the Android Management API" in re.search(
        r'id="management-error"[^>]*>(.*?)</span>', html).group(1)
    assert qr_count(db) == 0 and as_tuple(figures()) == before and amapi.requests == []


def test_with_the_api_set_up_it_can_be_chosen_and_companion_stays_the_default(
        wizard, db, amapi_connected):
    html = wizard.get(NEW).get_data(as_text=True)
    adp = re.search(r'<input[^>]*name="management"[^>]*value="adp"[^>]*>', html).group(0)
    assert "disabled" not in adp and 'id="adp-unavailable"' not in html
    assert 'id="adp-note" data-when="adp"' in html
    data = values(wizard, management=None)
    assert save(wizard, data).status_code == 303
    assert newest(db).management == "companion" and token_requests(amapi_connected) == []


def test_the_live_qr_version_sizes_googles_payload_and_needs_no_companion(
        admin_client, db, amapi_connected):
    from portal.settings.companion import current
    assert current() is None
    query = {"option": "auto", "management": "adp", "user_type": "local", "username": "x",
             "usage_count": "1", "lang": "en", "network": "wifi", "wifi_ssid": "Corp-WLAN",
             "wifi_security": "NONE"}
    adp = admin_client.get(VERSION, query_string=query).get_data(as_text=True)
    assert 'id="qr-version-number"' in adp
    companion = admin_client.get(VERSION, query_string=dict(query, management="companion"))
    assert "shown once the Companion is configured" in companion.get_data(as_text=True)
    assert amapi_connected.requests == []  # sizing asks Google nothing


# ---- Automatic Provisioning ----

@pytest.mark.parametrize("otp,usage,duration,one_time", [
    ({}, "1", "259200s", True),                                            # the 72 h default
    ({"define_otp": "y", "otp_validity": "5"}, "3", "18000s", False),       # custom hours
    ({"define_otp": "y", "otp_unlimited": "y"}, "2", MAX_DURATION, False),  # Unlimited
], ids=["default-72h", "custom-5h", "unlimited"])
def test_automatic_asks_google_for_a_token_and_the_qr_carries_it_with_our_network_and_locale(
        wizard, db, amapi_connected, otp, usage, duration, one_time):
    before = figures()
    response = save(wizard, values(wizard, usage_count=usage, **otp))
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    qr = newest(db)
    (call,) = token_requests(amapi_connected)
    assert call.path == "/v1/enterprises/LC0abc/enrollmentTokens"
    body = call.json
    assert body["policyName"] == "enterprises/LC0abc/policies/kiosk"
    assert body["duration"] == duration and body["oneTimeOnly"] is one_time
    assert body["allowPersonalUsage"] == "PERSONAL_USAGE_DISALLOWED"
    assert json.loads(body["additionalData"]) == {"qr": qr.public_id}
    assert body["user"] == {"accountIdentifier": f"portal-user-{wizard.alice.id}"}
    token = amapi_connected.tokens[qr.enrollment_token_name]
    assert qr.management == "adp" and qr.companion_component is None
    # The image as a camera reads it: Google's extras bundle, our Wi-Fi and locale.
    payload = json.loads(decode_qr(render_png(qr.payload_text())))
    assert payload[EXTRAS] == {TOKEN_EXTRA: token["value"]}
    assert payload[P + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME"].startswith(
        "com.google.android.apps.work.clouddpc/")
    assert payload[P + "PROVISIONING_WIFI_SSID"] == "Corp-WLAN"
    assert payload[P + "PROVISIONING_LOCALE"] == "de_CH"
    assert "otp" not in json.dumps(payload[EXTRAS]) and "alice" not in json.dumps(payload)
    after = figures()
    assert (after.total, after.used, after.reserved) == (
        before.total, before.used, before.reserved + int(usage))
    assert (qr.otp_expires_at is None) == ("otp_unlimited" in otp)


def test_the_qr_codes_page_shows_management_the_token_and_view_otp_shows_googles_token(
        wizard, db, amapi_connected):
    assert save(wizard, values(wizard)).status_code == 303
    qr = newest(db)
    page = wizard.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert re.search(r'id="qr-management">Android Device Policy<', page)
    assert qr.enrollment_token_name in re.search(
        r'id="qr-enrollment-token">(.*?)</dd>', page, re.S).group(1)
    assert qr.otp_expires_at.strftime("%Y-%m-%d %H:%M") in re.search(
        r'id="qr-token-expires">(.*?)</dd>', page).group(1)
    assert "Google&#39;s enrollment token" in page or "Google's enrollment token" in page
    assert ">Extend<" not in page  # Google cannot extend a token
    otp = wizard.post(f"/admin/qr-codes/{qr.public_id}/otp",
                      data={"csrf_token": csrf_token_from(page)}).get_data(as_text=True)
    token = amapi_connected.tokens[qr.enrollment_token_name]["value"]
    assert f'<code id="otp-value">{token}</code>' in otp
    assert "afw#setup" in otp and "enrollment token" in otp
    listing = wizard.get("/admin/devices/pending").get_data(as_text=True)
    row = re.search(rf'<tr id="qr-code-{qr.id}">(.*?)</tr>', listing, re.S).group(1)
    assert "Android Device Policy" in row and ">Extend<" not in row


# ---- Self Service Portal ----

def test_self_service_adds_sign_in_details_pointing_at_our_page_and_reserves_nothing(
        wizard, db, amapi_connected, app):
    before = as_tuple(figures())
    assert save(wizard, values(wizard, option="ssp")).status_code == 303
    qr = newest(db)
    (patch,) = amapi_connected.calls("PATCH", r"/v1/enterprises/LC0abc$")
    (detail,) = patch.json["signinDetails"]
    public_url = app.config["PORTAL_PUBLIC_URL"].rstrip("/")
    assert detail["signinUrl"] == f"{public_url}/ssp/?qr_id={qr.public_id}"
    assert detail["tokenTag"] == qr.public_id
    assert detail["allowPersonalUsage"] == "PERSONAL_USAGE_DISALLOWED"
    payload = json.loads(decode_qr(render_png(qr.payload_text())))
    saved = amapi_connected.enterprises["enterprises/LC0abc"]["signinDetails"][0]
    assert payload[EXTRAS] == json.loads(saved["qrCode"])[EXTRAS]
    assert payload[P + "PROVISIONING_WIFI_SSID"] == "Corp-WLAN"
    assert qr.management == "adp" and qr.option == "ssp" and qr.otp_enc is None
    assert as_tuple(figures()) == before


# ---- Google's failures ----

@pytest.mark.parametrize("status,words", [
    (403, "Google refused permission"), (500, "Google had an internal error"),
])
def test_google_refusing_the_token_shows_a_sentence_beside_save_and_saves_nothing(
        wizard, db, amapi_connected, status, words):
    amapi_connected.fail(r"/enrollmentTokens$", status, times=None, method="POST")
    before = as_tuple(figures())
    response = save(wizard, values(wizard), htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = re.search(r'<span class="error" id="save-error"[^>]*>(.*?)</span>', html).group(1)
    assert words in message and "Traceback" not in html and "private_key" not in html
    # htmx gets the error regions only: nothing the admin typed is replaced.
    assert 'name="wifi_ssid"' not in html and 'name="name"' not in html
    assert qr_count(db) == 0 and as_tuple(figures()) == before
    assert amapi_connected.tokens == {}


@pytest.mark.parametrize("config_overrides", [{"AMAPI_SIGNIN_WAIT": 0.2}], indirect=True)
def test_sign_in_details_another_process_is_changing_are_waited_for_then_a_sentence(
        wizard, db, amapi_connected):
    from datetime import timedelta

    from portal.amapi.lease import BUSY
    from portal.amapi.models import AmapiSettings
    from portal.database import utcnow
    settings = db.session.get(AmapiSettings, 1)
    settings.signin_lock_holder = "another-process"
    settings.signin_lock_until = utcnow() + timedelta(minutes=5)
    db.session.commit()
    response = save(wizard, values(wizard, option="ssp"), htmx=True)
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    message = re.search(r'<span class="error" id="save-error"[^>]*>(.*?)</span>', html).group(1)
    assert message == BUSY
    assert qr_count(db) == 0 and amapi_connected.calls("PATCH") == []


def test_a_refused_plain_save_gives_the_wizard_back_with_every_value_typed(
        wizard, db, amapi_connected):
    amapi_connected.fail(r"/enrollmentTokens$", 500, times=None, method="POST")
    response = save(wizard, values(wizard, usage_count="4", time_zone="Europe/Zurich"))
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'value="Library tablets"' in html and 'value="Corp-WLAN"' in html
    assert 'value="Europe/Zurich"' in html and re.search(r'name="usage_count"[^>]*value="4"', html)
    assert re.search(r'<input[^>]*checked[^>]*value="adp"|<input[^>]*value="adp"[^>]*checked', html)
    assert re.search(r'id="save-error">Google had an internal error[^<]*</span>', html)
    assert qr_count(db) == 0


@pytest.mark.parametrize("config_overrides", [{"AMAPI_TIMEOUT": 0.5}], indirect=True)
def test_google_timing_out_shows_a_sentence_beside_save_and_saves_nothing(
        wizard, db, amapi_connected):
    amapi_connected.delay(r"/enrollmentTokens$", 2, times=None)
    before = as_tuple(figures())
    response = save(wizard, values(wizard), htmx=True)
    assert response.status_code == 422
    message = re.search(r'id="save-error"[^>]*>(.*?)</span>', response.get_data(as_text=True))
    assert message.group(1)
    assert qr_count(db) == 0 and as_tuple(figures()) == before
    # Not repeated: Google may have made the token, and a second one would be another token.
    assert len(token_requests(amapi_connected)) == 1


def test_a_429_with_retry_after_is_waited_for_and_the_qr_code_saved(
        wizard, db, amapi_connected):
    amapi_connected.fail(r"/enrollmentTokens$", 429, times=1, method="POST", retry_after=0)
    before = figures()
    assert save(wizard, values(wizard, usage_count="2")).status_code == 303
    assert [call.status for call in token_requests(amapi_connected)] == [429, 200]
    assert qr_count(db) == 1 and figures().reserved == before.reserved + 2


def test_too_few_licenses_are_refused_before_google_is_asked(wizard, db, amapi_connected):
    set_total(2)
    assert save(wizard, values(wizard, usage_count="2")).status_code == 303  # exactly enough
    response = save(wizard, values(wizard, usage_count="1"), htmx=True)
    assert response.status_code == 422 and qr_count(db) == 1
    assert re.search(r'id="usage_count-error"[^>]*>[^<]+</span>', response.get_data(as_text=True))
    assert len(token_requests(amapi_connected)) == 1 and len(amapi_connected.tokens) == 1


def test_the_hint_links_administrators_to_the_settings_and_tells_helpdesk_whom_to_ask(
        wizard, helpdesk_client, db):
    note = re.compile(r'<p class="note" id="adp-unavailable">(.*?)</p>', re.S)
    administrator = note.search(wizard.get(NEW).get_data(as_text=True)).group(1)
    assert '<a href="/admin/settings/android-management">' in administrator
    helpdesk = note.search(helpdesk_client.get(NEW).get_data(as_text=True)).group(1)
    assert "<a " not in helpdesk and "an Administrator sets it up" in helpdesk


def test_googles_enrollment_token_is_masked_on_the_page_and_redacted_in_the_export(
        admin_client, db, make_qr_code, make_user, amapi_connected):
    qr = make_qr_code("auto", management="adp", user=make_user("eve"))
    token = amapi_connected.tokens[qr.enrollment_token_name]["value"]
    page = admin_client.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert TOKEN_EXTRA in page and token not in page
    exported = admin_client.get(f"/admin/qr-codes/{qr.public_id}/payload.json")
    payload = json.loads(exported.data)
    assert payload["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"][TOKEN_EXTRA] \
        .startswith("REDACTED")
    assert token not in exported.get_data(as_text=True)
