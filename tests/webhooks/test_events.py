"""The events, emitted where enrollment records them, in the same transaction: a rolled back
change queues nothing; an event carries ids, serial, model and user names and never a secret
(no OTP, password, token, ticket nor payload)."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import vault
from portal.database import utcnow
from portal.enrollment.completion import complete
from portal.enrollment.models import Device, PendingEnrollment
from portal.enrollment.pending import expire_due, revoke_qr_code
from portal.enrollment.redeem import DeviceInfo, redeem
from portal.enrollment.retirement import retire_device
from portal.webhooks.events import emit
from tests.api.conftest import otp_of
from tests.webhooks.conftest import deliveries


def _device(db, public_id):
    return db.session.scalar(sa.select(Device).where(Device.public_id == public_id))


def _events(kind=None):
    rows = deliveries(event_type=kind) if kind else deliveries()
    return [(row.event_type, json.loads(row.body)) for row in rows]


def test_each_domain_point_queues_its_event_with_names_and_ids(
        db, make_endpoint, make_qr_code, make_user, make_admin):
    make_endpoint()
    user = make_user(username="pupil1", display_name="Pupil One")
    qr = make_qr_code("auto", usage_count=2, user=user, name="Class 3b")

    first = redeem(qr.public_id, otp=otp_of(qr), ticket=None, client_address="192.0.2.1",
                   device=DeviceInfo("SN-A", "samsung", "SM-X200", 33))
    assert _events() == []                               # one of two pending used: not yet
    second = redeem(qr.public_id, otp=otp_of(qr), ticket=None, client_address="192.0.2.1",
                    device=DeviceInfo("SN-B", "samsung", "SM-X200", 33))
    [(kind, exhausted)] = _events()
    assert kind == "qr_code.exhausted"
    assert exhausted["data"]["qr_code"] == {"id": qr.public_id, "name": "Class 3b",
                                            "option": "auto", "usage_count": 2}
    assert exhausted["data"]["user"] == {"username": "pupil1", "display_name": "Pupil One"}

    complete(_device(db, first.device_id), "success", None, client_address="192.0.2.1")
    complete(_device(db, second.device_id), "failure", "Wi-Fi not found",
             client_address="192.0.2.1")
    [(_, enrolled)] = _events("device.enrolled")
    assert enrolled["data"]["device"]["id"] == first.device_id
    assert enrolled["data"]["device"]["serial_number"] == "SN-A"
    assert enrolled["data"]["device"]["model"] == "SM-X200"
    assert enrolled["data"]["device"]["state"] == "enrolled"
    assert enrolled["data"]["qr_code"]["id"] == qr.public_id
    assert enrolled["data"]["user"]["username"] == "pupil1"
    [(_, failed)] = _events("device.failed")
    assert failed["data"]["device"]["serial_number"] == "SN-B"
    assert failed["data"]["device"]["state"] == "failed"
    assert failed["data"]["reason"] == "Wi-Fi not found"

    admin = make_admin(username="boss")
    retire_device(_device(db, first.device_id), retired_by=admin)
    [(_, retired)] = _events("device.retired")
    assert retired["data"]["device"]["state"] == "retired"
    assert retired["data"]["retired_by"] == "boss" and retired["data"]["license_released"]

    revoke_qr_code(qr, revoked_by=admin)
    [(_, revoked)] = _events("qr_code.revoked")
    assert revoked["data"]["qr_code"]["id"] == qr.public_id
    assert revoked["data"]["revoked_by"] == "boss"
    assert revoked["data"]["pending_ended"] == 1       # the failed device's, given back

    other = make_qr_code("auto", usage_count=3, user=user)
    db.session.execute(sa.update(PendingEnrollment)
                       .where(PendingEnrollment.qr_code_id == other.id)
                       .values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert expire_due() == 3
    [(_, expired)] = _events("pending.expired")
    assert expired["data"]["qr_code"]["id"] == other.public_id
    assert expired["data"]["expired"] == 3
    assert {kind for kind, _ in _events()} == {
        "qr_code.exhausted", "device.enrolled", "device.failed", "device.retired",
        "qr_code.revoked", "pending.expired"}
    assert len({body["data"].get("device", {}).get("id") for _, body in _events()}) > 1


def test_no_secret_is_ever_in_an_event(db, make_endpoint, make_qr_code, make_admin):
    make_endpoint()
    qr = make_qr_code("auto", usage_count=1, wifi_password="Wifi-Secret-Pw-42")
    otp = otp_of(qr)
    enrolled = redeem(qr.public_id, otp=otp, ticket=None, client_address="192.0.2.1",
                      device=DeviceInfo("SN-S", "samsung", "SM-X200", 33))
    device = _device(db, enrolled.device_id)
    complete(device, "success", None, client_address="192.0.2.1")
    retire_device(device, retired_by=make_admin())
    revoke_qr_code(qr, revoked_by=None)
    payload = vault.decrypt(qr.payload_enc)
    bodies = [row.body for row in deliveries()]
    assert len(bodies) == 4
    for text in bodies:
        for secret in (otp, "Wifi-Secret-Pw-42", enrolled.token, payload, qr.otp_hash,
                       device.token_hash, "whsec_"):
            assert secret not in text
        assert not {"otp", "password", "token", "payload"} & set(_keys(json.loads(text)))


def _keys(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def test_emit_refuses_data_that_names_a_secret(db, make_endpoint):
    make_endpoint()
    with pytest.raises(ValueError):
        emit("device.enrolled", {"device": {"id": "x", "otp": "123456"}})
    with pytest.raises(ValueError):
        emit("device.unknown", {})


def test_a_rolled_back_change_queues_no_event(db, make_endpoint, make_qr_code):
    make_endpoint()
    qr = make_qr_code("auto", usage_count=1)
    from portal.enrollment import webhook_events
    webhook_events.qr_code_revoked(qr, revoked_by="someone", released=0)
    assert len(deliveries()) == 1                      # queued in the open transaction …
    db.session.rollback()
    assert deliveries() == []                          # … and gone with it


def test_without_a_subscriber_nothing_is_queued(db, make_endpoint, make_qr_code):
    make_endpoint(events=["device.retired"])
    qr = make_qr_code("auto", usage_count=1)
    redeem(qr.public_id, otp=otp_of(qr), ticket=None, client_address="192.0.2.1",
           device=DeviceInfo("SN-N", "samsung", "SM-X200", 33))
    revoke_qr_code(qr, revoked_by=None)
    assert deliveries() == []
