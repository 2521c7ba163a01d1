"""The portal's one client of the Android Management API (portal/amapi): Google's own libraries
against the loopback stand-in; Google's errors as plain sentences naming the step, retries where
Google asks for them, never the key in a message or the log."""
import json
import logging

import pytest
import sqlalchemy as sa

from portal import vault
from portal.amapi import calls, tasks
from portal.amapi.client import (MAX_DURATION_SECONDS, AmapiError, duration, fetch_access_token,
                                 parse_key)
from portal.amapi.client import connect as connect_reading_settings
from portal.amapi.models import AmapiSettings, AmapiTask
from portal.database import end_transaction, utcnow
from portal.vocabulary import AmapiTaskKind

TOKENS = r"/v1/enterprises/LC0abc/enrollmentTokens$"


def connect():
    """As the portal does: read the settings, end the transaction, then ask Google."""
    connection = connect_reading_settings()
    end_transaction()
    return connection


def _create(connection, **overrides):
    values = dict(policy_id="kiosk", seconds=3600, one_time_only=False,
                  additional_data=calls.token_data("QRpublic01"), account_identifier="portal-user-7")
    values.update(overrides)
    return calls.create_enrollment_token(connection, **values)


def test_an_enrollment_token_is_created_as_google_expects_it(amapi_connected):
    answer = _create(connect(), one_time_only=True)
    [call] = amapi_connected.calls("POST", TOKENS)
    assert call.json == {"policyName": "enterprises/LC0abc/policies/kiosk", "duration": "3600s",
                         "oneTimeOnly": True, "allowPersonalUsage": "PERSONAL_USAGE_DISALLOWED",
                         "additionalData": '{"qr":"QRpublic01"}',
                         "user": {"accountIdentifier": "portal-user-7"}}
    assert call.authorized
    assert answer["name"] in amapi_connected.tokens
    assert json.loads(answer["qrCode"])[
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]


def test_durations_are_written_as_the_api_writes_them():
    assert duration(72 * 3600) == "259200s"
    assert duration(None) == f"{MAX_DURATION_SECONDS}s" == "315576000000s"
    assert duration(5) == "60s"  # Google's shortest is one minute


def test_unlimited_is_the_longest_token_google_issues(amapi_connected):
    answer = _create(connect(), seconds=None)
    assert amapi_connected.calls("POST", TOKENS)[0].json["duration"] == "315576000000s"
    assert answer["expirationTimestamp"].startswith("9999-12-31")


def test_token_data_names_the_qr_code_and_reads_back():
    assert calls.read_token_data(calls.token_data("QRpublic01", "alice")) == ("QRpublic01",
                                                                                "alice")
    assert calls.read_token_data(calls.token_data("QRpublic01")) == ("QRpublic01", None)
    for foreign in (None, "", "not json", "[1]", '{"qr": 5}', '{"other": "x"}'):
        assert calls.read_token_data(foreign) == (None, None)


def test_429_is_retried_after_the_wait_google_asks_for(amapi_connected):
    amapi_connected.fail(TOKENS, 429, retry_after=0.1)
    answer = _create(connect())
    assert answer["value"]
    assert [c.status for c in amapi_connected.calls("POST", TOKENS)] == [429, 200]


def test_a_create_is_not_repeated_after_a_500_google_may_have_acted_on(amapi_connected):
    amapi_connected.fail(TOKENS, 500, message="Backend error.")
    with pytest.raises(AmapiError) as caught:
        _create(connect())
    assert len(amapi_connected.calls("POST", TOKENS)) == 1
    error = caught.value
    assert (error.step, error.status, error.transient) == ("enrollment_token", 500, True)
    assert error.message == 'Google had an internal error. Google said: "Backend error."'


def test_reads_and_deletes_are_retried_after_a_500_and_give_up_after_the_last(app,
                                                                                amapi_connected):
    connection = connect()
    name = _create(connection)["name"]
    amapi_connected.fail(r"/enrollmentTokens/", 500, times=2, method="DELETE")
    calls.delete_enrollment_token(connection, name)
    assert [c.status for c in amapi_connected.calls("DELETE")] == [500, 500, 200]
    assert name not in amapi_connected.tokens
    amapi_connected.fail(r"/devices", 503, times=None)
    with pytest.raises(AmapiError) as caught:
        list(calls.list_devices(connection))
    assert len(amapi_connected.calls("GET", r"/devices")) == app.config["AMAPI_RETRIES"] + 1
    assert caught.value.message.startswith("Google is unavailable for the moment.")


def test_a_deleted_token_google_no_longer_knows_counts_as_deleted(amapi_connected):
    connection = connect()
    calls.delete_enrollment_token(connection, "enterprises/LC0abc/enrollmentTokens/gone")
    assert amapi_connected.calls("DELETE")[0].status == 404


def test_a_timeout_is_a_plain_sentence(app, amapi_connected):
    app.config.update(AMAPI_TIMEOUT=0.3, AMAPI_RETRIES=0)
    amapi_connected.delay(r"/v1/enterprises/LC0abc$", 1.0)
    with pytest.raises(AmapiError) as caught:
        connect().call("enterprise", connect().service.enterprises().get(
            name="enterprises/LC0abc"))
    assert caught.value.message == "Google did not answer in time; the portal will try again."
    assert caught.value.transient


@pytest.mark.parametrize("text, words", [
    ("not json", "is not JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('{"type": "service_account"}', "lacks client_email, private_key, private_key_id, token_uri"),
])
def test_a_bad_key_says_what_is_wrong(text, words):
    with pytest.raises(AmapiError) as caught:
        parse_key(text)
    assert caught.value.step == "key" and words in caught.value.message


def test_a_key_of_another_kind_or_with_a_damaged_private_key_is_refused(amapi):
    key = amapi.service_account_key()
    with pytest.raises(AmapiError, match='type "authorized_user"'):
        parse_key(json.dumps(key | {"type": "authorized_user"}))
    damaged = key | {"private_key": key["private_key"].replace("A", "B", 40)[:200]}
    with pytest.raises(AmapiError) as caught:
        parse_key(json.dumps(damaged))
    assert "cannot be read" in caught.value.message
    assert damaged["private_key"][40:80] not in caught.value.message


def test_a_key_google_does_not_know_fails_at_the_token_step_without_the_key(
        app, db, amapi_connected, caplog):
    foreign = amapi_connected.foreign_key()
    settings = db.session.get(AmapiSettings, 1)
    settings.key_enc = vault.encrypt(json.dumps(foreign))
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AmapiError) as caught:
        fetch_access_token(connect())
    assert caught.value.step == "token"
    assert "Google refused the service-account key" in caught.value.message
    assert "Invalid JWT Signature" in caught.value.message
    body = foreign["private_key"].split("-----")[2].strip()
    for secret in (body[:40], body[-40:]):
        assert secret not in caught.value.message and secret not in caplog.text


def test_test_connection_names_each_step(db, amapi_connected):
    settings = db.session.get(AmapiSettings, 1)
    end_transaction()
    steps = calls.test_connection(settings)
    assert [(s.name, s.ok) for s in steps] == [("key", True), ("token", True),
                                               ("enterprise", True), ("policy", True),
                                               ("policy", True)]
    settings.policy_auto = "missing"
    end_transaction()
    last = calls.test_connection(settings)[-1]
    assert (last.name, last.ok) == ("policy", False)
    assert last.message == "Google does not know the policy missing in enterprises/LC0abc."
    settings.enterprise_name = "enterprises/LCnone"
    end_transaction()
    last = calls.test_connection(settings)[-1]
    assert (last.name, last.ok) == ("enterprise", False)
    assert last.message.startswith("Google does not know the enterprise enterprises/LCnone.")
    amapi_connected.fail("/token", 400)
    end_transaction()
    steps = calls.test_connection(settings)
    assert [(s.name, s.ok) for s in steps] == [("key", True), ("token", False)]
    steps = calls.test_connection(settings, key_text="{}")
    assert [(s.name, s.ok) for s in steps] == [("key", False)]


def test_a_service_account_without_permission_is_told_so(db, amapi_connected):
    amapi_connected.add_enterprise("LCother", allowed_emails=["someone@else.iam"])
    settings = db.session.get(AmapiSettings, 1)
    settings.enterprise_name = "enterprises/LCother"
    end_transaction()
    last = calls.test_connection(settings)[-1]
    assert (last.name, last.ok) == ("enterprise", False)
    assert last.message.startswith("Google refused permission: the service account may not "
                                   "manage enterprises/LCother.")


def test_sign_in_details_are_added_and_removed_by_their_tag(amapi_connected):
    connection = connect()
    first = calls.add_signin_detail(connection, tag="QRssp00001",
                                    signin_url="https://portal.test/ssp/?qr_id=QRssp00001")
    second = calls.add_signin_detail(connection, tag="QRssp00002",
                                     signin_url="https://portal.test/ssp/?qr_id=QRssp00002")
    details = amapi_connected.enterprises["enterprises/LC0abc"]["signinDetails"]
    assert [d["tokenTag"] for d in details] == ["QRssp00001", "QRssp00002"]
    # The first QR code's sign-in token survives the second one's patch.
    assert details[0]["signinEnrollmentToken"] == first["signinEnrollmentToken"]
    calls.remove_signin_detail(connection, "QRssp00001")
    details = amapi_connected.enterprises["enterprises/LC0abc"]["signinDetails"]
    assert [d["signinEnrollmentToken"] for d in details] == [second["signinEnrollmentToken"]]


def test_owed_deletions_are_retried_with_back_off_until_google_answers(app, db, amapi_connected):
    name = _create(connect())["name"]
    tasks.owe(AmapiTaskKind.DELETE_TOKEN, name)
    tasks.owe(AmapiTaskKind.DELETE_TOKEN, name)  # asking twice owes it once
    db.session.commit()
    amapi_connected.fail(r"/enrollmentTokens/", 403, method="DELETE")
    assert tasks.run_due() == (0, 1)
    task = db.session.scalars(sa.select(AmapiTask)).one()
    assert task.attempts == 1 and task.done_at is None
    assert task.last_error.startswith("Google refused permission")
    first_wait = (task.next_attempt_at - utcnow()).total_seconds()
    assert 0 < first_wait <= app.config["AMAPI_TASK_RETRY_SECONDS"]
    assert tasks.run_due() == (0, 0)  # not due yet
    assert tasks.run_due(task.next_attempt_at) == (1, 0)
    db.session.refresh(task)
    assert task.done_at is not None and task.last_error is None and task.attempts == 2
    assert name not in amapi_connected.tokens


def test_the_saved_keys_client_and_access_token_are_reused_until_the_key_changes(
        db, amapi_connected):
    _create(connect())
    _create(connect())
    assert len(amapi_connected.calls("POST", r"^/token$")) == 1
    settings = db.session.get(AmapiSettings, 1)
    settings.key_enc = vault.encrypt(json.dumps(amapi_connected.service_account_key(
        "other@proj.iam.gserviceaccount.com")))
    _create(connect())
    assert len(amapi_connected.calls("POST", r"^/token$")) == 2
