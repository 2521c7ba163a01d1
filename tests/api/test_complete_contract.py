"""provisioning-complete and GET /devices/{id} as the Companion calls them; no secret leaks."""
import json
import logging
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.licensing.seats import figures
from tests.api.conftest import (altered, assert_figures_exact, auto_body, bearer, error_of,
                                otp_of, pending_states, redeem, ssp_body)

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def complete(client, device_id, token, body, **kwargs):
    return client.post(f"/api/v1/devices/{device_id}/provisioning-complete", json=body,
                       headers=bearer(token), **kwargs)


def status(client, device_id, token):
    return client.get(f"/api/v1/devices/{device_id}", headers=bearer(token))


@pytest.fixture
def enrolled(client, make_qr_code):
    """(qr, device JSON) of an automatic QR with Usage Count 2 and one device provisioning."""
    qr = make_qr_code("auto", usage_count=2)
    response = redeem(client, auto_body(qr))
    assert response.status_code == 201
    return qr, response.get_json()


@pytest.fixture
def ssp_enrolled(client, make_qr_code, make_user, issue):
    qr = make_qr_code("ssp", licenses=3)
    response = redeem(client, ssp_body(qr, issue(qr, make_user())))
    assert response.status_code == 201
    return qr, response.get_json()


# --- GET /devices/{id} ----------------------------------------------------------------------

def test_device_status_shows_state_user_and_no_enrolled_at_yet(client, enrolled):
    qr, device = enrolled
    response = status(client, device["device_id"], device["device_token"])

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"device_id": device["device_id"], "state": "provisioning",
                                   "user": device["user"], "enrolled_at": None}


# --- success ------------------------------------------------------------------------------

def test_success_enrolls_the_device_and_sets_enrolled_at_in_utc(db, client, enrolled):
    qr, device = enrolled
    spent = figures()

    response = complete(client, device["device_id"], device["device_token"], {"result": "success"})

    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"device_id": device["device_id"], "state": "enrolled"}
    shown = status(client, device["device_id"], device["device_token"]).get_json()
    assert shown["state"] == "enrolled"
    assert ISO_UTC.fullmatch(shown["enrolled_at"]), shown["enrolled_at"]
    assert figures() == spent
    assert_figures_exact(db)


def test_repeated_success_is_the_same_200_and_keeps_enrolled_at(client, enrolled):
    qr, device = enrolled
    first = complete(client, device["device_id"], device["device_token"], {"result": "success"})
    at = status(client, device["device_id"], device["device_token"]).get_json()["enrolled_at"]

    again = complete(client, device["device_id"], device["device_token"], {"result": "success"})

    assert (again.status_code, again.get_json()) == (200, first.get_json())
    assert status(client, device["device_id"],
                  device["device_token"]).get_json()["enrolled_at"] == at


# --- failure ------------------------------------------------------------------------------

def test_failure_of_an_automatic_device_gives_its_pending_enrollment_back(db, client, enrolled):
    qr, device = enrolled
    before = figures()
    assert pending_states(db, qr) == ["pending", "used"]

    response = complete(client, device["device_id"], device["device_token"],
                        {"result": "failure", "reason": "Wi-Fi unreachable"})

    assert (response.status_code, response.get_json()) == (
        200, {"device_id": device["device_id"], "state": "failed"})
    assert pending_states(db, qr) == ["pending", "pending"]
    assert (figures().used, figures().reserved) == (before.used - 1, before.reserved + 1)
    assert status(client, device["device_id"],
                  device["device_token"]).get_json()["state"] == "failed"
    assert_figures_exact(db)


def test_pending_enrollment_freed_by_a_failure_serves_another_device(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=1)
    failed = redeem(client, auto_body(qr, serial_number="FAILS")).get_json()
    complete(client, failed["device_id"], failed["device_token"], {"result": "failure"})

    assert redeem(client, auto_body(qr, serial_number="WORKS")).status_code == 201
    assert pending_states(db, qr) == ["used"]
    assert_figures_exact(db)


def test_failure_of_a_self_service_device_returns_its_license(db, client, ssp_enrolled):
    qr, device = ssp_enrolled
    before = figures()

    response = complete(client, device["device_id"], device["device_token"],
                        {"result": "failure"})

    assert (response.status_code, response.get_json()) == (
        200, {"device_id": device["device_id"], "state": "failed"})
    assert (figures().used, figures().reserved) == (before.used - 1, before.reserved)
    assert_figures_exact(db)


def test_repeated_failure_is_the_same_200_and_releases_only_once(db, client, enrolled):
    qr, device = enrolled
    complete(client, device["device_id"], device["device_token"], {"result": "failure"})
    released = figures()

    again = complete(client, device["device_id"], device["device_token"],
                     {"result": "failure", "reason": "again"})

    assert (again.status_code, again.get_json()) == (
        200, {"device_id": device["device_id"], "state": "failed"})
    assert figures() == released
    assert_figures_exact(db)


def test_success_after_failure_is_409_invalid_state(db, client, enrolled):
    qr, device = enrolled
    complete(client, device["device_id"], device["device_token"], {"result": "failure"})
    released = figures()

    response = complete(client, device["device_id"], device["device_token"],
                        {"result": "success"})

    error_of(response, 409, "invalid_state")
    assert status(client, device["device_id"],
                  device["device_token"]).get_json()["state"] == "failed"
    assert figures() == released
    assert_figures_exact(db)


def test_reason_of_500_characters_is_accepted(client, enrolled):
    qr, device = enrolled
    response = complete(client, device["device_id"], device["device_token"],
                        {"result": "failure", "reason": "r" * 500})
    assert response.status_code == 200


# --- 401 invalid_token: the same answer whether or not the device exists --------------------

def test_every_token_failure_is_the_same_401(client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    mine = redeem(client, auto_body(qr, serial_number="MINE")).get_json()
    other = redeem(client, auto_body(qr, serial_number="OTHER")).get_json()
    device_id, token = mine["device_id"], mine["device_token"]
    cases = {
        "no header": {},
        "empty bearer": {"Authorization": "Bearer "},
        "wrong scheme": {"Authorization": f"Basic {token}"},
        "token without scheme": {"Authorization": token},
        "wrong token": bearer(altered(token)),
        "token of another device": bearer(other["device_token"]),
    }
    messages = []
    for name, headers in cases.items():
        for response in (
                client.get(f"/api/v1/devices/{device_id}", headers=headers),
                client.post(f"/api/v1/devices/{device_id}/provisioning-complete",
                            json={"result": "success"}, headers=headers)):
            messages.append(error_of(response, 401, "invalid_token"))
    for unknown in ("no-such-device", "x" * 200, "dev%00ice", "d%C3%A9vice", ".."):
        messages.append(error_of(status(client, unknown, token), 401, "invalid_token"))
        messages.append(error_of(complete(client, unknown, token, {"result": "success"}),
                                 401, "invalid_token"))

    assert len(set(messages)) == 1
    assert status(client, device_id, token).get_json()["state"] == "provisioning"


def test_token_is_checked_before_the_body(client, enrolled):
    qr, device = enrolled
    response = client.post(f"/api/v1/devices/{device['device_id']}/provisioning-complete",
                           data="result=success", content_type="text/plain")
    error_of(response, 401, "invalid_token")


# --- body errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({}, "result"),
    ({"result": "maybe"}, "result"),
    ({"result": None}, "result"),
    ({"result": True}, "result"),
    ({"result": "SUCCESS"}, "result"),
    ({"result": "failure", "reason": "r" * 501}, "reason"),
    ({"result": "failure", "reason": 42}, "reason"),
    ({"result": "failure", "reason": "cable\x00pulled"}, "reason"),
    ({"result": "failure", "reason": "cable \ud800"}, "reason"),
    ([], None),
    ("success", None),
])
def test_invalid_completion_body_is_400_naming_the_field(client, enrolled, body, field):
    qr, device = enrolled
    message = error_of(complete(client, device["device_id"], device["device_token"], body),
                       400, "invalid_request")
    assert f"'{field}'" in message if field else "body" in message
    assert status(client, device["device_id"],
                  device["device_token"]).get_json()["state"] == "provisioning"


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_completion_body_that_is_not_json_is_415(client, enrolled, content_type):
    qr, device = enrolled
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post(f"/api/v1/devices/{device['device_id']}/provisioning-complete",
                           data=json.dumps({"result": "success"}),
                           headers=bearer(device["device_token"]), **kwargs)
    error_of(response, 415, "unsupported_media_type")


def test_completion_body_over_16_kib_is_413(client, enrolled):
    qr, device = enrolled
    response = complete(client, device["device_id"], device["device_token"],
                        {"result": "failure", "reason": "r" * (16 * 1024)})
    error_of(response, 413, "payload_too_large")


# --- audit and logs: never a secret ---------------------------------------------------------

def test_no_otp_ticket_or_token_reaches_the_audit_log_or_the_logs(db, client, make_qr_code,
                                                                  make_user, issue, caplog):
    caplog.set_level(logging.DEBUG)
    auto, ssp = make_qr_code("auto", usage_count=2), make_qr_code("ssp")
    user = make_user()
    otp, ticket, other_ticket = otp_of(auto), issue(ssp, user), issue(ssp, user)
    secrets = [otp, ticket, other_ticket]

    first = redeem(client, auto_body(auto)).get_json()
    again = redeem(client, auto_body(auto)).get_json()
    ssp_device = redeem(client, ssp_body(ssp, ticket, serial_number="SSP1")).get_json()
    redeem(client, ssp_body(ssp, ticket, serial_number="SSP1"))
    redeem(client, {**auto_body(auto, serial_number="GUESS"), "otp": altered(otp)})
    redeem(client, ssp_body(ssp, altered(other_ticket), serial_number="GUESS"))
    redeem(client, {**auto_body(auto, serial_number="BAD SERIAL")})
    status(client, again["device_id"], again["device_token"])
    status(client, first["device_id"], first["device_token"])
    complete(client, again["device_id"], again["device_token"], {"result": "success"})
    complete(client, ssp_device["device_id"], ssp_device["device_token"],
             {"result": "failure", "reason": "user cancelled"})
    secrets += [first["device_token"], again["device_token"], ssp_device["device_token"],
                altered(otp), altered(other_ticket)]

    rows = db.session.execute(sa.select(AuditEvent.__table__)).all()
    dump = "\n".join(repr(tuple(row)) for row in rows)
    assert {"created", "retried", "invalid_credentials"} <= {row.code for row in rows}
    assert "enrollment.complete" in dump
    for secret in secrets:
        assert secret not in dump
        assert secret not in caplog.text
