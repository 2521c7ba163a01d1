"""POST /api/amapi/notifications: only Google's Pub/Sub push, for the push account saved under
Admin → Android Management API, records anything. Its OIDC token is checked as Google signs it
(the stand-in's certificates; signature, audience, expiry, issuer, account); every refusal is
the API's JSON error shape, recorded nothing, and the log never holds the token."""
import base64
import json
import logging
import time

import pytest
import sqlalchemy as sa

from portal.amapi.client import current
from portal.api.amapi_push import forget_certificates
from portal.database import db as _db
from portal.enrollment.models import Device
from portal.licensing.seats import figures
from tests.enrollment.amapi_helpers import AUDIENCE, PUSH_PATH, adp_qr_code, enroll, push
from tests.support.amapi_standin import PUSH_CERTS_PATH


def _nothing_recorded(before):
    _db.session.expire_all()
    assert _db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0
    now = figures()
    assert (now.used, now.reserved) == before


@pytest.fixture
def phone(amapi_connected, make_qr_code):
    qr = adp_qr_code(make_qr_code, usage_count=1)
    return enroll(amapi_connected, qr, serial="PUSH0001")


def _figures():
    now = figures()
    return now.used, now.reserved


def test_google_s_push_is_acknowledged_and_records_the_device(client, amapi_connected, phone):
    answer = push(client, amapi_connected, phone)
    assert answer.status_code == 204 and answer.get_data() == b""
    assert _db.session.scalar(sa.select(Device.serial_number)) == "PUSH0001"


@pytest.mark.parametrize("case, status", [
    ("missing", 401), ("not bearer", 401), ("empty", 401), ("garbage", 401), ("expired", 401),
    ("foreign signature", 401), ("other audience", 401), ("other account", 403),
])
def test_a_push_without_google_s_token_for_the_push_account_is_refused(
        client, amapi_connected, phone, caplog, case, status):
    amapi = amapi_connected
    email = current().push_email
    token = {
        "garbage": "not.a.jwt",
        "expired": amapi.push_id_token(AUDIENCE, email=email, expired=True),
        "foreign signature": amapi.push_id_token(AUDIENCE, email=email, foreign=True),
        "other audience": amapi.push_id_token("https://elsewhere.example" + PUSH_PATH,
                                              email=email),
        "other account": amapi.push_id_token(AUDIENCE, email="someone@proj.iam.gserviceaccount"
                                                               ".com"),
    }.get(case, "")
    headers = {"missing": {}, "not bearer": {"Authorization": f"Basic {token or 'x'}"},
               "empty": {"Authorization": "Bearer "}}.get(
        case, {"Authorization": f"Bearer {token}"})
    before = _figures()

    with caplog.at_level(logging.WARNING):
        answer = push(client, amapi, phone, headers=headers)

    assert answer.status_code == status
    error = answer.get_json()["error"]
    assert error["code"] == ("invalid_credentials" if status == 401 else "forbidden")
    assert error["message"]
    _nothing_recorded(before)
    assert "notification refused" in caplog.text
    if len(token) > 20:
        assert token not in caplog.text and token.split(".")[2] not in caplog.text


def test_no_push_account_saved_refuses_every_push(client, amapi_connected, phone):
    settings = current()
    settings.push_email = None
    _db.session.commit()
    before = _figures()
    token = amapi_connected.push_id_token(AUDIENCE, email="pubsub-push@proj.iam."
                                                        "gserviceaccount.com")
    answer = push(client, amapi_connected, phone, token=token)
    assert answer.status_code == 403
    assert "no push account" in answer.get_json()["error"]["message"]
    _nothing_recorded(before)


def test_certificates_that_cannot_be_fetched_ask_pub_sub_to_try_again(client, amapi_connected,
                                                                      phone):
    client.application.config["AMAPI_PUSH_CERTS_URL"] = "http://127.0.0.1:9/oauth2/v1/certs"
    amapi = amapi_connected
    before = _figures()
    answer = push(client, amapi, phone)
    assert answer.status_code == 503 and answer.get_json()["error"]["code"] == "unavailable"
    _nothing_recorded(before)


@pytest.mark.parametrize("body, why", [
    ({"nothing": 1}, "no \"message\" object"),
    ([1, 2], "no \"message\" object"),
    ({"message": {"attributes": {"notificationType": "ENROLLMENT"}, "data": "%%%"}},
     "not base64-encoded JSON"),
    ({"message": {"attributes": {"notificationType": "ENROLLMENT"},
                  "data": base64.b64encode(b"{not json").decode()}}, "not base64-encoded JSON"),
    ({"message": {"attributes": {"notificationType": "STATUS_REPORT"},
                  "data": base64.b64encode(json.dumps({"state": "ACTIVE"}).encode()).decode()}},
     "not a Device"),
    ({"message": {"attributes": {"notificationType": "ENROLLMENT"},
                  "data": base64.b64encode(b"[1]").decode()}}, "not a Device"),
])
def test_a_malformed_message_is_a_400_that_says_why(client, amapi_connected, phone, body, why):
    before = _figures()
    answer = push(client, amapi_connected, phone, body=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["code"] == "invalid_request"
    assert why in answer.get_json()["error"]["message"]
    _nothing_recorded(before)


@pytest.mark.parametrize("kind", ["COMMAND", "USAGE_LOGS", "ENTERPRISE_UPGRADE", "test"])
def test_other_notifications_are_acknowledged_and_ignored(client, amapi_connected, phone, kind):
    before = _figures()
    body = amapi_connected.pubsub_push_body(phone, kind)
    if kind == "test":  # Google's "Test notification": no data, no notificationType
        body["message"].pop("data")
        body["message"]["attributes"] = {}
    answer = push(client, amapi_connected, phone, body=body)
    assert answer.status_code == 204
    _nothing_recorded(before)


def test_the_endpoint_is_post_only_and_answers_in_json(client, amapi_connected):
    answer = client.get(PUSH_PATH)
    assert answer.status_code == 405 and answer.get_json()["error"]["code"] == \
        "method_not_allowed"


# Google's certificates: fetched once, kept as Cache-Control says; the endpoint's rate limit

@pytest.fixture
def no_cached_certificates():
    forget_certificates()
    yield
    forget_certificates()


def _certificate_fetches(amapi) -> int:
    return len(amapi.calls("GET", PUSH_CERTS_PATH))


def test_google_s_certificates_are_fetched_once_for_many_pushes(
        client, amapi_connected, phone, no_cached_certificates):
    for _ in range(25):
        assert push(client, amapi_connected, phone).status_code == 204
    assert _certificate_fetches(amapi_connected) == 1
    (fetch,) = [r for r in amapi_connected.requests if r.path == PUSH_CERTS_PATH]
    assert fetch.status == 200


def test_a_rotated_key_is_picked_up_once_the_certificates_max_age_has_passed(
        client, amapi_connected, phone, no_cached_certificates):
    amapi = amapi_connected
    amapi.push_certs_max_age = 2
    assert push(client, amapi, phone).status_code == 204
    amapi.rotate_push_key()
    # Within max-age the cached certificates are used: the new key is not known yet.
    assert push(client, amapi, phone).status_code == 401
    assert _certificate_fetches(amapi) == 1
    deadline, answer = time.monotonic() + 15, None
    while time.monotonic() < deadline:  # bounded; ends at the first push accepted
        answer = push(client, amapi, phone)
        if answer.status_code == 204:
            break
        assert answer.status_code == 401
        time.sleep(0.2)
    assert answer is not None and answer.status_code == 204
    assert _certificate_fetches(amapi) == 2


@pytest.mark.parametrize("config_overrides", [{"AMAPI_PUSH_CERTS_TIMEOUT": 0.5}],
                         indirect=True)
def test_a_certificate_server_that_does_not_answer_refuses_the_push_within_the_timeout(
        client, amapi_connected, phone, no_cached_certificates):
    """Not google-auth's 120 s: the push is a 503 (Pub/Sub pushes again) once the timeout has
    passed, and the next push, with the server answering again, fetches and caches as before."""
    amapi = amapi_connected
    amapi.delay(PUSH_CERTS_PATH, 10)
    before = _figures()

    started = time.monotonic()
    answer = push(client, amapi, phone)
    took = time.monotonic() - started

    assert answer.status_code == 503 and answer.get_json()["error"] == {
        "code": "unavailable", "message": "Google's certificates could not be fetched; try again."}
    assert 0.45 < took < 3 and _certificate_fetches(amapi) == 1
    _nothing_recorded(before)
    for _ in range(3):
        assert push(client, amapi, phone).status_code == 204
    assert _certificate_fetches(amapi) == 2


@pytest.mark.parametrize("config_overrides", [{"AMAPI_PUSH_LIMIT": "3 per minute"}],
                         indirect=True)
def test_pushes_past_the_limit_get_429_in_the_api_s_error_shape(client, amapi_connected, phone):
    for _ in range(3):
        assert push(client, amapi_connected, phone).status_code == 204
    refused = push(client, amapi_connected, phone)
    assert refused.status_code == 429 and refused.mimetype == "application/json"
    assert refused.get_json() == {"error": {
        "code": "rate_limited",
        "message": "Too many notifications; Pub/Sub delivers this one again later."}}
    assert int(refused.headers["Retry-After"]) > 0
    body = amapi_connected.pubsub_push_body(phone)
    other = client.post(PUSH_PATH, json=body, environ_base={"REMOTE_ADDR": "192.0.2.9"},
                        headers={"Authorization": "Bearer " + amapi_connected.push_id_token(
                            AUDIENCE, email=current().push_email)})
    assert other.status_code == 204  # another address has its own budget


def test_threads_share_the_process_s_certificates(amapi_connected, no_cached_certificates):
    """Each thread has its own session (requests' Session is not shared across threads); the
    cache is the process's: after the first round, no thread fetches again."""
    from concurrent.futures import ThreadPoolExecutor

    from google.oauth2 import id_token

    from portal.api.amapi_push import _certificate_transport
    url = amapi_connected.url + PUSH_CERTS_PATH

    def verify(_):
        token = amapi_connected.push_id_token(AUDIENCE)
        return id_token.verify_token(token, _certificate_transport(), audience=AUDIENCE,
                                     certs_url=url)["aud"]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(verify, range(16))) == [AUDIENCE] * 16
        first_round = _certificate_fetches(amapi_connected)
        assert 1 <= first_round <= 8
        assert list(pool.map(verify, range(32))) == [AUDIENCE] * 32
    assert _certificate_fetches(amapi_connected) == first_round
