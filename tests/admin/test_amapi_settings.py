"""Admin → Android Management API: saving (every field's checks), the key stored encrypted and
never shown again, Administrators only, and Test connection naming the step that fails, through
the real Google client libraries against the loopback stand-in."""
import io
import json
import logging
import time

import pytest
import sqlalchemy as sa

from portal import vault
from portal.amapi.models import AmapiSettings
from portal.audit.models import AuditEvent
from portal.enrollment.pending import revoke_qr_code
from tests.conftest import csrf_token, post_form

PAGE = "/admin/settings/android-management"
TEST = PAGE + "/test"
PUSH_URL = "https://portal.test/api/amapi/notifications"
VALID = {"enterprise": "enterprises/LC0abc", "policy_ssp": "fully-managed",
         "policy_auto": "kiosk", "push_email": "pubsub-push@proj.iam.gserviceaccount.com"}


@pytest.fixture
def standin(app, amapi):
    """The stand-in (enterprise LC0abc, policies fully-managed and kiosk) as Google's API."""
    app.config.update(AMAPI_ENDPOINT=amapi.url)
    return amapi


def key_file(key: dict | str, name="portal-key.json"):
    text = key if isinstance(key, str) else json.dumps(key, indent=2)
    return (io.BytesIO(text.encode()), name)


def secret_parts(key: dict) -> list[str]:
    """What must never reach a page or a log: the private key's base64 lines, whole or as
    the key file writes it (with \\n escapes)."""
    lines = [line for line in key["private_key"].splitlines() if len(line) > 40]
    return lines + [json.dumps(key["private_key"])[1:60], key["private_key"][:80]]


def assert_no_secret(text: str, key: dict) -> None:
    for part in secret_parts(key):
        assert part not in text


def post(client, url, **data):
    return post_form(client, url, page=PAGE, **data)


def events(db, action):
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))


def row(db) -> AmapiSettings | None:
    db.session.expire_all()
    return db.session.get(AmapiSettings, 1)


# --- the page ---------------------------------------------------------------------------------

def test_page_shows_the_push_endpoint_audience_and_the_menu_entry(admin_client):
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "<h1>Android Management API</h1>" in html and "Not set up" in html
    assert f'<code id="amapi-push-url">{PUSH_URL}</code>' in html
    assert f'<code id="amapi-push-audience">{PUSH_URL}</code>' in html
    assert f'href="{PAGE}"' in admin_client.get("/admin/settings/companion").get_data(as_text=True)
    assert "Remove the saved key" not in html  # nothing to remove yet


def test_helpdesk_gets_403_and_changes_nothing(helpdesk_client, db, standin):
    token = csrf_token(helpdesk_client, "/admin/devices/pending")
    assert helpdesk_client.get(PAGE).status_code == 403
    for url in (PAGE, TEST):
        response = helpdesk_client.post(url, data={"csrf_token": token, **VALID,
                                                   "key": key_file(standin.service_account_key())})
        assert response.status_code == 403
    assert row(db) is None and standin.requests == [] and events(db, "amapi.test_connection") == []
    assert 'href="/admin/settings/android-management"' not in \
        helpdesk_client.get("/admin/devices/pending").get_data(as_text=True)


def test_anonymous_is_sent_to_sign_in(client):
    assert client.get(PAGE).status_code in (302, 303)
    assert client.post(TEST).status_code in (302, 303, 400)


def test_posts_without_the_csrf_token_are_refused(admin_client, db, standin):
    key = standin.service_account_key()
    for url in (PAGE, TEST):
        response = admin_client.post(url, data={**VALID, "key": key_file(key)})
        assert response.status_code == 400
    assert row(db) is None and standin.requests == []


# --- saving -----------------------------------------------------------------------------------

def test_an_uploaded_key_is_stored_encrypted_and_never_shown_again(admin_client, db, standin):
    key = standin.service_account_key()
    response = post(admin_client, PAGE, **{**VALID, "enterprise": "LC0abc"}, key=key_file(key))
    assert response.status_code == 303, response.get_data(as_text=True)
    saved = row(db)
    assert saved.enterprise_name == "enterprises/LC0abc"  # the bare id is normalised
    assert (saved.policy_ssp, saved.policy_auto) == ("fully-managed", "kiosk")
    assert saved.push_email == VALID["push_email"]
    assert (saved.key_email, saved.key_id) == (key["client_email"], key["private_key_id"])
    assert_no_secret(saved.key_enc, key)
    assert json.loads(vault.decrypt(saved.key_enc)) == key
    assert saved.updated_by == admin_client.admin.username
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert_no_secret(html, key)
    assert key["client_email"] in html and key["private_key_id"] in html
    assert "A key is saved (encrypted)" in html and "Remove the saved key" in html
    [event] = events(db, "amapi.settings.update")
    assert event.actor == admin_client.admin.username and event.target == "enterprises/LC0abc"
    assert event.details["key_replaced"] is True and event.details["key_removed"] is False
    assert_no_secret(json.dumps(event.details), key)


def test_htmx_save_answers_the_form_and_the_flash_without_the_key(admin_htmx_client, db,
                                                                   standin):
    key = standin.service_account_key()
    response = post(admin_htmx_client, PAGE, **{**VALID, "enterprise": " LC0abc "},
                    key_text=json.dumps(key))
    body = response.get_data(as_text=True)
    assert response.status_code == 200, body
    assert 'value="enterprises/LC0abc"' in body  # the form shows what was saved
    assert body.startswith('<form id="amapi-form"') and 'id="flash"' in body
    assert "The Android Management API settings are saved." in body
    assert "Set up; not tested yet" in body
    assert_no_secret(body, key)
    assert json.loads(vault.decrypt(row(db).key_enc)) == key  # the pasted key


def test_an_empty_key_keeps_the_saved_one_and_the_audit_says_so(admin_client, db, standin):
    key = standin.service_account_key()
    post(admin_client, PAGE, **VALID, key=key_file(key))
    stored = row(db).key_enc
    response = post(admin_client, PAGE, **{**VALID, "policy_ssp": ""})
    assert response.status_code == 303, response.get_data(as_text=True)
    saved = row(db)
    assert saved.key_enc == stored and saved.policy_ssp is None and saved.policy_auto == "kiosk"
    first, second = events(db, "amapi.settings.update")
    assert first.details["key_replaced"] and not second.details["key_replaced"]
    assert "No policy for Self Service Portal" in admin_client.get(PAGE).get_data(as_text=True)


def test_a_new_key_replaces_the_saved_one(admin_client, db, standin):
    post(admin_client, PAGE, **VALID, key=key_file(standin.service_account_key()))
    other = standin.service_account_key("portal-2@proj.iam.gserviceaccount.com")
    assert post(admin_client, PAGE, **VALID, key=key_file(other)).status_code == 303
    saved = row(db)
    assert (saved.key_email, saved.key_id) == (other["client_email"], other["private_key_id"])
    assert json.loads(vault.decrypt(saved.key_enc)) == other


def test_remove_key_forgets_the_key(admin_client, db, standin):
    post(admin_client, PAGE, **VALID, key=key_file(standin.service_account_key()))
    assert post(admin_client, PAGE, **VALID, remove_key="y").status_code == 303
    saved = row(db)
    assert saved.key_enc is None and saved.key_email is None and saved.key_id is None
    assert saved.enterprise_name == "enterprises/LC0abc"
    assert events(db, "amapi.settings.update")[-1].details["key_removed"] is True
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "No service-account key is saved" in html and "no key saved" in html


@pytest.mark.parametrize("field, value, message", [
    ("enterprise", "", "Enter the enterprise&#39;s name"),
    ("enterprise", "enterprises/LC 0abc", "enterprises/ followed by its id"),
    ("enterprise", "x" * 101, "enterprises/ followed by its id"),
    ("policy_ssp", "fully managed", "A policy id"),
    ("policy_auto", "enterprises/LCother/policies/kiosk", "must be of the enterprise above"),
    ("policy_auto", "p" * 101, "A policy id"),
    ("push_email", "someone@example.com", "Enter a service account&#39;s address"),
    ("key_text", "{not json", "The service-account key is not JSON"),
    ("key_text", json.dumps({"type": "service_account"}), "lacks client_email, private_key"),
    ("key_text", json.dumps({"type": "authorized_user", "client_email": "a@b",
                             "private_key": "x", "private_key_id": "1", "token_uri": "u"}),
     "not a service-account key"),
])
def test_each_field_is_checked_and_nothing_is_saved(admin_htmx_client, db, standin, field,
                                                      value, message):
    data = {**VALID, "key_text": json.dumps(standin.service_account_key()), field: value}
    response = post(admin_htmx_client, PAGE, **data)
    body = response.get_data(as_text=True)
    assert response.status_code == 422, body
    assert message in body and "error-summary" in body
    assert row(db) is None and events(db, "amapi.settings.update") == []


def test_policies_full_names_are_accepted_and_one_policy_is_required(admin_client, db, standin):
    key = key_file(standin.service_account_key())
    response = post(admin_client, PAGE, **{**VALID, "policy_ssp": "", "policy_auto": ""},
                    key=key)
    assert response.status_code == 422
    assert "Enter the policy of at least one enrollment option" in response.get_data(as_text=True)
    response = post(admin_client, PAGE, **{**VALID, "policy_ssp": "",
                                           "policy_auto": "enterprises/LC0abc/policies/kiosk"},
                    key=key_file(standin.service_account_key()))
    assert response.status_code == 303
    assert (row(db).policy_ssp, row(db).policy_auto) == (None, "kiosk")


def test_every_error_at_once_and_the_pasted_key_is_not_shown_back(admin_htmx_client, db,
                                                                   standin):
    key = standin.service_account_key()
    response = post(admin_htmx_client, PAGE, enterprise="bad name!", key_text=json.dumps(key),
                    policy_ssp="a b", policy_auto="", push_email="x@example.com")
    body = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "3 problems to fix before saving" in body
    assert_no_secret(body, key)
    assert '<textarea' in body and key["client_email"] not in body


def test_the_first_save_needs_a_key(admin_client, db, standin):
    response = post(admin_client, PAGE, **VALID)
    assert response.status_code == 422
    assert "Upload the service-account key" in response.get_data(as_text=True)
    assert row(db) is None


def test_a_file_and_a_pasted_key_together_are_refused(admin_client, db, standin):
    key = standin.service_account_key()
    response = post(admin_client, PAGE, **VALID, key=key_file(key), key_text=json.dumps(key))
    assert response.status_code == 422
    assert "not both" in response.get_data(as_text=True) and row(db) is None


def test_a_damaged_or_huge_key_file_is_refused(admin_client, db, standin):
    key = standin.service_account_key()
    damaged = dict(key, private_key=key["private_key"].replace("A", "B", 40))
    response = post(admin_client, PAGE, **VALID, key=key_file(damaged))
    assert response.status_code == 422
    assert "private key cannot be read" in response.get_data(as_text=True)
    huge = json.dumps(dict(key, padding="x" * 70_000))
    response = post(admin_client, PAGE, **VALID, key=key_file(huge))
    assert response.status_code == 422
    assert "too large for a service-account key" in response.get_data(as_text=True)
    assert row(db) is None


# --- Test connection --------------------------------------------------------------------------

def steps_of(body: str) -> list[tuple[str, str]]:
    """(step, ✓/✗) in the order shown."""
    import re
    return re.findall(r'data-step="(\w+)"><span class="check-mark" aria-hidden="true">(.)',
                      body)


def test_saved_settings_pass_every_step(amapi_connected, admin_htmx_client, db):
    response = post(admin_htmx_client, TEST)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert body.startswith('<div class="connection-test ok" id="amapi-test-result"')
    assert steps_of(body) == [("key", "✓"), ("token", "✓"), ("enterprise", "✓"),
                              ("policy", "✓"), ("policy", "✓")]
    for text in ("Service-account key", "portal@proj.iam.gserviceaccount.com", "Access token",
                 "Found: Example Corp.", "Policy for Self Service Portal",
                 "Policy for Automatic Provisioning", "Found: kiosk."):
        assert text in body
    [event] = events(db, "amapi.test_connection")
    assert event.outcome == "success" and event.target == "enterprises/LC0abc"
    assert amapi_connected.calls("POST", "/token")
    # The status line says so at once, out of band.
    assert '<dd id="amapi-connection-status" hx-swap-oob="true">Set up; last test' in body
    assert "UTC: passed</dd>" in body
    assert "last test" in admin_htmx_client.get(PAGE, headers={"HX-Boosted": "true"}) \
        .get_data(as_text=True)


def test_unsaved_values_and_an_uploaded_key_are_tested_without_saving(admin_htmx_client, db,
                                                                       standin):
    key = standin.service_account_key("tester@proj.iam.gserviceaccount.com")
    response = post(admin_htmx_client, TEST, **VALID, key=key_file(key))
    body = response.get_data(as_text=True)
    assert [mark for _step, mark in steps_of(body)] == ["✓"] * 5, body
    assert "tester@proj.iam.gserviceaccount.com" in body
    assert_no_secret(body, key)
    assert row(db) is None  # nothing saved
    assert len(events(db, "amapi.test_connection")) == 1


def test_without_javascript_the_page_comes_back_with_the_result(amapi_connected, admin_client):
    response = post(admin_client, TEST)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Android Management API</h1>" in body
    assert 'id="amapi-test-result"' in body and "The connection works." in body


def failing(admin_htmx_client, data=None, **files):
    response = post(admin_htmx_client, TEST, **(data or {}), **files)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'class="connection-test failed"' in body and "Traceback" not in body
    return body, steps_of(body)


def test_a_key_that_is_not_json_fails_at_the_key_step(admin_htmx_client, db, standin):
    body, steps = failing(admin_htmx_client, VALID, key=key_file("{this is no key"))
    assert steps == [("key", "✗")] and "is not JSON" in body
    assert standin.requests == []  # Google was not asked
    [event] = events(db, "amapi.test_connection")
    assert event.outcome == "error" and event.details["failed"].startswith("Service-account key")


def test_a_key_google_does_not_know_fails_at_the_token_step(admin_htmx_client, db, standin):
    key = standin.foreign_key()
    body, steps = failing(admin_htmx_client, VALID, key=key_file(key))
    assert steps == [("key", "✓"), ("token", "✗")]
    assert "Google refused the service-account key" in body and "Invalid JWT Signature" in body
    assert_no_secret(body, key)


def test_an_unknown_enterprise_fails_at_the_enterprise_step(amapi_connected, admin_htmx_client):
    body, steps = failing(admin_htmx_client, {**VALID, "enterprise": "LC0unknown"})
    assert steps == [("key", "✓"), ("token", "✓"), ("enterprise", "✗")]
    assert "Google does not know the enterprise enterprises/LC0unknown." in body


def test_a_service_account_not_allowed_fails_at_the_enterprise_step(amapi_connected,
                                                                    admin_htmx_client):
    amapi_connected.add_enterprise("LC0other",
                                   allowed_emails=["someone@proj.iam.gserviceaccount.com"])
    body, steps = failing(admin_htmx_client, {**VALID, "enterprise": "enterprises/LC0other"})
    assert steps == [("key", "✓"), ("token", "✓"), ("enterprise", "✗")]
    assert "Google refused permission: the service account may not manage " \
           "enterprises/LC0other." in body


def test_a_missing_policy_fails_at_the_policy_step(amapi_connected, admin_htmx_client):
    body, steps = failing(admin_htmx_client, {**VALID, "policy_auto": "no-such-policy"})
    assert steps == [("key", "✓"), ("token", "✓"), ("enterprise", "✓"), ("policy", "✓"),
                     ("policy", "✗")]
    assert "Policy for Automatic Provisioning" in body
    assert "Google does not know the policy no-such-policy in enterprises/LC0abc." in body


def test_values_that_cannot_be_saved_fail_before_google_is_asked(amapi_connected,
                                                                 admin_htmx_client):
    body, steps = failing(admin_htmx_client, {**VALID, "enterprise": "not an enterprise"})
    assert steps == [("settings", "✗")] and "enterprises/ followed by its id" in body
    assert amapi_connected.requests == []


def test_a_removed_key_is_not_tested(amapi_connected, admin_htmx_client):
    body, steps = failing(admin_htmx_client, {**VALID, "remove_key": "y"})
    assert steps == [("key", "✗")] and "No service-account key is saved." in body


def test_google_failing_with_500_is_a_plain_sentence(amapi_connected, admin_htmx_client):
    amapi_connected.fail(r"^/v1/enterprises/LC0abc$", 500, times=None, method="GET")
    body, steps = failing(admin_htmx_client)
    assert steps[-1] == ("enterprise", "✗")
    assert "Google had an internal error." in body
    # A read is repeated on 500: AMAPI_RETRIES (2) more times, then the test says so.
    assert len(amapi_connected.calls("GET", r"^/v1/enterprises/LC0abc$")) == 3


def test_google_not_answering_in_time_is_a_plain_sentence(app, amapi_connected,
                                                          admin_htmx_client):
    app.config.update(AMAPI_TIMEOUT=0.3, AMAPI_RETRIES=1)
    amapi_connected.delay(r"^/v1/enterprises/LC0abc$", 2, times=None)
    body, steps = failing(admin_htmx_client)
    assert steps[-1] == ("enterprise", "✗")
    assert "Google did not answer in time" in body


def test_429_is_retried_after_what_retry_after_says(app, amapi_connected, admin_htmx_client):
    app.config.update(AMAPI_MAX_WAIT=0.5)
    amapi_connected.fail(r"^/v1/enterprises/LC0abc$", 429, times=1, retry_after=1)
    started = time.monotonic()
    body = post(admin_htmx_client, TEST).get_data(as_text=True)
    elapsed = time.monotonic() - started
    assert [mark for _step, mark in steps_of(body)] == ["✓"] * 5, body
    calls = amapi_connected.calls("GET", r"^/v1/enterprises/LC0abc$")
    assert [call.status for call in calls] == [429, 200]
    # Retry-After: 1, capped at AMAPI_MAX_WAIT (the back-off alone would wait 0.01 s).
    assert elapsed >= 0.45


def test_the_key_never_reaches_the_log(admin_htmx_client, db, standin, caplog):
    caplog.set_level(logging.DEBUG)
    key = standin.service_account_key()
    post(admin_htmx_client, PAGE, **VALID, key=key_file(key))
    post(admin_htmx_client, TEST, **VALID)
    post(admin_htmx_client, TEST, **VALID, key=key_file(standin.foreign_key()))
    standin.fail(r"^/v1/enterprises/LC0abc$", 403, times=1)
    post(admin_htmx_client, TEST, **VALID, key_text=json.dumps(key))
    post(admin_htmx_client, PAGE, **{**VALID, "enterprise": "bad!"}, key_text=json.dumps(key))
    assert caplog.records  # the libraries did log (at DEBUG), just never the key
    logged = "\n".join(record.getMessage() for record in caplog.records) + caplog.text
    assert_no_secret(logged, key)
    assert_no_secret(logged, standin.foreign_key())


def test_the_policy_of_an_option_in_use_cannot_be_removed(amapi_connected, admin_client, db,
                                                          make_qr_code):
    qr = make_qr_code("ssp", management="adp")
    response = post(admin_client, PAGE, **{**VALID, "policy_ssp": ""})
    assert response.status_code == 422
    assert "Android Device Policy QR codes of Self Service Portal are in use" in \
        response.get_data(as_text=True)
    assert row(db).policy_ssp == "fully-managed"
    # The other option's policy may go: no Automatic Provisioning QR code needs it.
    assert post(admin_client, PAGE, **{**VALID, "policy_auto": ""}).status_code == 303
    assert row(db).policy_auto is None
    # Once the QR code is revoked, its option's policy may go too.
    revoke_qr_code(qr, revoked_by=admin_client.admin)
    assert post(admin_client, PAGE, **{**VALID, "policy_auto": "kiosk", "policy_ssp": ""}) \
        .status_code == 303
    assert row(db).policy_ssp is None
