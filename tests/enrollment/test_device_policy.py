"""Devices enrolled through Android Device Policy are counted exactly (issue 17, point 3): each
phone that Google enrolls with one of our QR codes' tokens appears on Devices with its serial
number, model and user, and takes what a Companion device takes (Automatic: a pending
enrollment, its reserved license becoming used; Self Service: a free license), once, however
often Google tells us. The real google-api-python-client talks to the loopback stand-in; the
notifications are the JSON Pub/Sub pushes, authenticated as Google signs them."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.amapi.models import AmapiTask
from portal.audit.models import AuditEvent
from portal.database import end_transaction, utcnow
from portal.provisioning.device_policy import connection as device_policy_connection
from portal.enrollment.device_policy import FAILED, KNOWN, NEW, NOT_OURS, record_device
from portal.enrollment.models import PendingEnrollment
from portal.enrollment.pending import revoke_qr_code
from portal.licensing.seats import figures, set_total
from portal.provisioning.device_policy import one_time_token
from portal.webhooks.endpoints import create_endpoint
from tests.api.conftest import ENROLLMENTS, device as companion_device
from tests.enrollment.amapi_helpers import (adp_qr_code, device_named, devices, enroll, push,
                                            token_value)
from tests.webhooks.conftest import audit_as, deliveries


def _one_time_token(qr, user):
    """As the Self Service Start does: what the token needs is read, the transaction ended."""
    qr.public_id, user.username, user.id  # noqa: B018
    connection = device_policy_connection()
    end_transaction()
    return one_time_token(qr, user, connection=connection)



def _counts():
    now = figures()
    return now.used, now.reserved


def test_a_pushed_enrollment_lists_the_device_with_its_user_and_uses_its_reserved_license(
        db, client, amapi_connected, make_qr_code, make_user, admin_client):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=2, user=make_user(username="pupil7"))
    used, reserved = _counts()

    phone = enroll(amapi, qr, serial="R58N7777AA", model="Pixel 8", manufacturer="Google",
                   api_level=34, imei="356938035643809")
    answer = push(client, amapi, phone)

    assert answer.status_code == 204, answer.get_data(as_text=True)
    device = device_named(phone["name"])
    assert (device.serial_number, device.manufacturer, device.model) == \
        ("R58N7777AA", "Google", "Pixel 8")
    assert device.android_api_level == 34 and device.imei == "356938035643809"
    assert device.user.username == "pupil7" and device.qr_code_id == qr.id
    assert device.state == "enrolled" and device.enrolled_at is not None
    assert _counts() == (used + 1, reserved - 1)
    pending = db.session.scalars(sa.select(PendingEnrollment.state)
                                 .where(PendingEnrollment.qr_code_id == qr.id)).all()
    assert sorted(pending) == ["pending", "used"]
    # As a Companion enrollment reads in the audit log and on the device's timeline.
    redeemed = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "enrollment.redeem", AuditEvent.target == qr.public_id))
    assert (redeemed.outcome, redeemed.code, redeemed.serial_number) == \
        ("success", "created", "R58N7777AA")
    assert redeemed.details["source"] == "push" and redeemed.details["management"] == "adp"
    complete = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "enrollment.complete", AuditEvent.target == device.public_id))
    assert complete.code == "enrolled"

    listing = admin_client.get("/admin/devices/").get_data(as_text=True)
    assert "R58N7777AA" in listing and "Android Device Policy" in listing
    assert "pupil7" in listing
    page = admin_client.get(f"/admin/devices/{device.public_id}").get_data(as_text=True)
    assert "Android Device Policy" in page and "Provisioning complete" in page


def test_a_redelivered_notification_a_status_report_and_the_sync_record_nothing_twice(
        db, client, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=3)
    used, reserved = _counts()
    phone = enroll(amapi, qr, serial="TWICE01")
    body = amapi.pubsub_push_body(phone)

    for _ in range(3):  # Pub/Sub delivers at least once: the same message again
        assert push(client, amapi, phone, body=body).status_code == 204
    assert push(client, amapi, phone, "STATUS_REPORT").status_code == 204
    assert record_device(amapi.devices[phone["name"]], source="sync").outcome == KNOWN

    assert [d.serial_number for d in devices()] == ["TWICE01"]
    assert _counts() == (used + 1, reserved - 1)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "enrollment.complete")) == 1


def test_the_last_pending_enrollment_used_deletes_the_token_at_google(
        db, client, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=2)
    value = token_value(amapi, qr)
    first, second = enroll(amapi, qr, serial="LAST01"), enroll(amapi, qr, serial="LAST02")

    assert push(client, amapi, first).status_code == 204
    assert qr.enrollment_token_name in amapi.tokens          # one pending left: still needed
    assert push(client, amapi, second).status_code == 204

    assert qr.enrollment_token_name not in amapi.tokens
    [deleted] = amapi.calls("DELETE", "/enrollmentTokens/")
    assert deleted.path.endswith(qr.enrollment_token_name)
    task = db.session.scalar(sa.select(AmapiTask).where(AmapiTask.qr_code_id == qr.id))
    assert task.kind == "delete_token" and task.done_at is not None
    with pytest.raises(ValueError, match="deleted"):
        amapi.enroll(value, serial="LAST03")                # Google enrolls nothing more


def test_a_device_beyond_the_usage_count_is_failed_with_its_reason_and_deleted_at_google(
        db, client, amapi_connected, make_qr_code, admin_client):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=2)
    used, reserved = _counts()
    # Three phones scan before Google hears of the first (the token is not one-time only).
    phones = [enroll(amapi, qr, serial=f"OVER0{n}") for n in range(3)]

    for phone in phones:
        assert push(client, amapi, phone).status_code == 204

    states = {d.serial_number: d.state for d in devices()}
    assert states == {"OVER00": "enrolled", "OVER01": "enrolled", "OVER02": "failed"}
    extra = device_named(phones[2]["name"])
    assert "beyond the QR code's usage count" in extra.failure_reason
    assert _counts() == (used + 2, reserved - 2)              # the extra one holds nothing
    assert [wipe["device"] for wipe in amapi.wipes] == [phones[2]["name"]]
    assert phones[2]["name"] not in amapi.devices
    refused = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "enrollment.redeem", AuditEvent.serial_number == "OVER02"))
    assert (refused.outcome, refused.code) == ("refused", "usage_exhausted")
    page = admin_client.get(f"/admin/devices/{extra.public_id}").get_data(as_text=True)
    assert "beyond the QR code&#39;s usage count" in page
    # The sync later finds nothing more to do with it.
    assert record_device({**phones[2], "state": "ACTIVE"}, source="sync").outcome == KNOWN
    assert _counts() == (used + 2, reserved - 2)


def test_a_device_enrolled_with_a_revoked_qr_code_takes_nothing(
        db, client, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=2)
    phone = enroll(amapi, qr, serial="REVOKED1")
    revoke_qr_code(qr, revoked_by=None)
    used, reserved = _counts()

    assert push(client, amapi, phone).status_code == 204

    device = device_named(phone["name"])
    assert device.state == "failed" and "revoked" in device.failure_reason
    assert _counts() == (used, reserved)
    assert phone["name"] in [wipe["device"] for wipe in amapi.wipes]


def test_self_service_takes_a_free_license_for_the_signed_in_user_and_none_free_fails(
        db, client, amapi_connected, make_qr_code, make_user):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, option="ssp")
    alice, bob = make_user(username="alice-ssp"), make_user(username="bob-ssp")
    total = figures().used + figures().reserved + 1
    set_total(total)                                          # exactly one license free
    used, reserved = _counts()

    first = amapi.enroll(_one_time_token(qr, alice)["value"], serial="SSP001")
    second = amapi.enroll(_one_time_token(qr, bob)["value"], serial="SSP002")
    assert push(client, amapi, first).status_code == 204
    assert push(client, amapi, second).status_code == 204

    mine, theirs = device_named(first["name"]), device_named(second["name"])
    assert (mine.user.username, mine.state) == ("alice-ssp", "enrolled")
    assert (theirs.user.username, theirs.state) == ("bob-ssp", "failed")
    assert "No license was free" in theirs.failure_reason
    assert _counts() == (used + 1, reserved)
    assert figures().remaining == 0


def test_devices_not_made_by_our_qr_codes_are_left_alone(db, client, amapi_connected,
                                                          make_qr_code):
    amapi = amapi_connected
    service = amapi.build_service()
    foreign = service.enterprises().enrollmentTokens().create(
        parent="enterprises/LC0abc", body={"policyName": "kiosk",
                                           "additionalData": "made by another console"}).execute()
    phone = amapi.enroll(foreign["value"], serial="FOREIGN1")
    companion_qr = make_qr_code("auto")  # a Companion QR code's id in the data: not ours either
    lookalike = {**phone, "name": phone["name"] + "x",
                 "enrollmentTokenData": json.dumps({"qr": companion_qr.public_id})}
    used, reserved = _counts()

    assert push(client, amapi, phone).status_code == 204
    assert record_device(lookalike, source="sync").outcome == NOT_OURS
    assert devices() == [] and _counts() == (used, reserved) and amapi.wipes == []


def test_the_token_name_matches_when_the_additional_data_is_missing(db, amapi_connected,
                                                                   make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="BYNAME1")
    phone.pop("enrollmentTokenData")

    assert record_device(phone, source="sync").outcome == NEW
    assert device_named(phone["name"]).qr_code_id == qr.id


def test_google_deleting_a_device_retires_it_and_gives_its_license_back_once(
        db, client, amapi_connected, make_qr_code, make_admin):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="GONE01")
    assert push(client, amapi, phone).status_code == 204
    used, reserved = _counts()

    gone = {**phone, "state": "DELETED"}
    body = amapi.pubsub_push_body(gone, "STATUS_REPORT")
    assert push(client, amapi, gone, body=body).status_code == 204
    assert push(client, amapi, gone, body=body).status_code == 204

    device = device_named(phone["name"])
    assert device.state == "retired" and device.retired_at is not None
    assert _counts() == (used - 1, reserved)
    retire = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "device.retire"))
    assert retire.actor == "Android Device Policy" and retire.details["gone_at_google"]
    assert record_device(gone, source="sync").outcome == KNOWN
    assert amapi.wipes == []  # Google deleted it: nothing owed


def test_a_phone_factory_reset_and_enrolled_again_stays_one_device(db, client, amapi_connected,
                                                                    make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=3)
    first = enroll(amapi, qr, serial="AGAIN01")
    assert push(client, amapi, first).status_code == 204
    used, reserved = _counts()

    again = enroll(amapi, qr, serial="AGAIN01")  # Google makes a new device for it
    assert push(client, amapi, again).status_code == 204

    [device] = devices()
    assert device.amapi_name == again["name"] and device.state == "enrolled"
    assert _counts() == (used, reserved)
    assert [wipe["device"] for wipe in amapi.wipes] == [first["name"]]  # the old one at Google
    assert record_device(first, source="sync").outcome == NOT_OURS      # never counted again


def test_enrollment_events_reach_webhooks_as_companion_enrollments_do(
        db, client, amapi_connected, make_qr_code, make_user):
    amapi = amapi_connected
    create_endpoint("https://hooks.example.com/portal", "Fleet", ["device.enrolled",
                                                                  "device.failed",
                                                                  "qr_code.exhausted"],
                    actor="tester", audit=audit_as())
    qr = adp_qr_code(make_qr_code, usage_count=1, user=make_user(username="hooked"))
    phone = enroll(amapi, qr, serial="HOOK01", model="Pixel 9")
    assert push(client, amapi, phone).status_code == 204

    kinds = {row.event_type: json.loads(row.body)["data"] for row in deliveries()}
    assert set(kinds) == {"device.enrolled", "qr_code.exhausted"}
    enrolled = kinds["device.enrolled"]
    assert enrolled["device"]["serial_number"] == "HOOK01"
    assert enrolled["device"]["model"] == "Pixel 9" and enrolled["device"]["state"] == "enrolled"
    assert enrolled["user"]["username"] == "hooked"
    assert enrolled["qr_code"]["id"] == qr.public_id


def test_the_companion_api_refuses_an_android_device_policy_qr_code_as_an_unknown_one(
        db, client, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=1)
    token = amapi.tokens[qr.enrollment_token_name]["value"]  # its "OTP": View OTP shows it
    used, reserved = _counts()

    adp = client.post(ENROLLMENTS, json={"qr_id": qr.public_id, "otp": token,
                                         "device": companion_device()})
    unknown = client.post(ENROLLMENTS, json={"qr_id": "NoSuchQrCode1", "otp": token,
                                             "device": companion_device()})

    assert adp.status_code == unknown.status_code == 401
    assert adp.get_json() == unknown.get_json()
    assert adp.get_json()["error"]["code"] == "invalid_credentials"
    assert _counts() == (used, reserved) and devices() == []
    ssp = adp_qr_code(make_qr_code, option="ssp")
    answer = client.post(ENROLLMENTS, json={"qr_id": ssp.public_id, "ticket": "x" * 43,
                                            "device": companion_device()})
    assert answer.status_code == 401 and answer.get_json() == unknown.get_json()


def test_an_expired_qr_code_counts_a_device_by_when_it_enrolled(db, amapi_connected,
                                                                make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=2, otp_validity=1)
    early = enroll(amapi, qr, serial="EARLY01")
    late = enroll(amapi, qr, serial="LATE01")
    late["enrollmentTime"] = (qr.otp_expires_at + timedelta(seconds=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f123Z")  # Google writes nanoseconds

    assert record_device(early, source="sync").outcome == NEW   # heard of late, still counted
    result = record_device(late, source="sync")
    assert result.outcome == FAILED and "expired" in result.reason
    assert utcnow() < qr.otp_expires_at  # by when it enrolled, not by when we heard


def test_the_self_service_sign_in_flow_ends_with_the_device_on_devices_for_that_user(
        db, client, amapi_connected, make_qr_code, make_user):
    from tests.selfservice.test_device_policy import PASSWORD, signed_in_and_started
    amapi = amapi_connected
    qr = make_qr_code("ssp", management="adp", licenses=10)
    make_user("ann", password=PASSWORD, display_name="Ann Example")
    used, reserved = _counts()

    started = signed_in_and_started(client, amapi, qr, serial="SSPFLOW1", model="SM-A536B")
    phone = amapi.enroll_from_url(started.location, serial="SSPFLOW1", model="SM-A536B")
    assert push(client, amapi, phone).status_code == 204

    device = device_named(phone["name"])
    assert (device.user.username, device.serial_number, device.model, device.state) == \
        ("ann", "SSPFLOW1", "SM-A536B", "enrolled")
    assert _counts() == (used + 1, reserved)


def test_a_name_two_sources_share_is_counted_for_the_user_who_signed_in(
        db, client, amapi_connected, make_qr_code, make_user):
    from portal.accounts.models import PortalUser
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, option="ssp")
    local = make_user(username="sam")
    directory = PortalUser(source="ldap", username="sam", active=True, directory_id="cn=sam")
    db.session.add(directory)
    db.session.commit()
    assert local.id < directory.id  # the name alone would pick the local user

    phone = amapi.enroll(_one_time_token(qr, directory)["value"], serial="SAM001")
    assert push(client, amapi, phone).status_code == 204

    assert device_named(phone["name"]).user_id == directory.id
