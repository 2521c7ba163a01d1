"""A retired device as the Companion sees it, and last contact kept by every device call."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.database import utcnow
from portal.enrollment.models import Device
from portal.enrollment.retirement import AlreadyRetired, retire_device
from portal.licensing.seats import figures
from tests.api.conftest import auto_body, bearer, error_of, redeem, ssp_body


def complete(client, device, body):
    return client.post(f"/api/v1/devices/{device['device_id']}/provisioning-complete",
                       json=body, headers=bearer(device["device_token"]))


def status(client, device):
    return client.get(f"/api/v1/devices/{device['device_id']}",
                      headers=bearer(device["device_token"]))


def row(db, device) -> Device:
    db.session.expire_all()
    return db.session.scalar(sa.select(Device).where(Device.public_id == device["device_id"]))


@pytest.fixture
def enrolled(client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2, licenses=5)
    response = redeem(client, auto_body(qr))
    assert response.status_code == 201
    return qr, response.get_json()


def test_status_answers_retired_after_retirement(db, client, enrolled):
    _, device = enrolled
    retire_device(row(db, device), retired_by=None)

    response = status(client, device)

    assert response.status_code == 200
    assert response.get_json()["state"] == "retired"


@pytest.mark.parametrize("body", [{"result": "success"},
                                  {"result": "failure", "reason": "too late"}])
def test_provisioning_complete_on_a_retired_device_is_invalid_state(db, client, enrolled, body):
    _, device = enrolled
    retire_device(row(db, device), retired_by=None)
    used = figures().used

    error_of(complete(client, device, body), 409, "invalid_state")

    assert row(db, device).state == "retired" and figures().used == used


def test_an_enrolled_then_retired_device_reporting_again_is_invalid_state(db, client, enrolled):
    _, device = enrolled
    assert complete(client, device, {"result": "success"}).status_code == 200
    retire_device(row(db, device), retired_by=None)
    error_of(complete(client, device, {"result": "success"}), 409, "invalid_state")


def test_the_same_serial_enrolls_again_as_a_new_device(db, client, enrolled):
    qr, first = enrolled
    retire_device(row(db, first), retired_by=None)
    used = figures().used

    response = redeem(client, auto_body(qr))

    assert response.status_code == 201
    second = response.get_json()
    assert second["device_id"] != first["device_id"] and second["state"] == "provisioning"
    assert figures().used == used + 1
    assert status(client, first).get_json()["state"] == "retired"
    assert status(client, second).get_json()["state"] == "provisioning"


def test_a_self_service_device_enrolls_again_with_a_new_ticket(db, client, make_qr_code,
                                                             make_user, issue):
    qr = make_qr_code("ssp", licenses=2)
    user = make_user()
    first = redeem(client, ssp_body(qr, issue(qr, user))).get_json()
    retire_device(row(db, first), retired_by=None)

    response = redeem(client, ssp_body(qr, issue(qr, user)))

    assert response.status_code == 201
    assert response.get_json()["device_id"] != first["device_id"]


def test_retiring_twice_raises_and_releases_once(db, client, enrolled):
    _, device = enrolled
    used = figures().used
    assert retire_device(row(db, device), retired_by=None) is True
    with pytest.raises(AlreadyRetired):
        retire_device(row(db, device), retired_by=None)
    assert figures().used == used - 1


def test_every_device_call_keeps_last_contact(db, client, enrolled):
    qr, device = enrolled
    assert row(db, device).last_contact_at is not None
    for call in (lambda: status(client, device),
                 lambda: complete(client, device, {"result": "success"}),
                 lambda: complete(client, device, {"result": "success"}),  # a repeat
                 lambda: redeem(client, auto_body(qr))):                  # a retry
        long_ago = utcnow() - timedelta(days=3)
        db.session.execute(sa.update(Device).where(Device.public_id == device["device_id"])
                           .values(last_contact_at=long_ago))
        db.session.commit()
        assert call().status_code in (200, 201)
        assert row(db, device).last_contact_at > long_ago + timedelta(days=2)


def test_the_openapi_document_says_retired(client):
    document = client.get("/api/v1/openapi.json").get_json()
    assert "retired" in document["components"]["schemas"]["DeviceStatus"]["properties"][
        "state"]["enum"]
    assert "retired" in document["paths"]["/devices/{device_id}/provisioning-complete"][
        "post"]["responses"]["409"]["description"]
