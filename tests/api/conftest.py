"""Helpers for the Companion contract tests: the JSON a device sends, and what it reads back."""
import json

import pytest
import sqlalchemy as sa

from portal.enrollment.models import Device, PendingEnrollment
from portal.licensing.seats import figures

ENROLLMENTS = "/api/v1/enrollments"
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
# A valid IMEI (Luhn check digit 9), as in the contract's example.
IMEI = "356938035643809"


def device(**overrides) -> dict:
    """The `device` object a Companion sends; a None override drops the field."""
    body = {"serial_number": "R58N123ABC", "imei": IMEI, "manufacturer": "samsung",
            "model": "SM-G991B", "android_api_level": 33}
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


def extras_of(qr) -> dict:
    return json.loads(qr.payload_text())[EXTRAS]


def otp_of(qr) -> str:
    """The OTP exactly as the device reads it from the QR."""
    return extras_of(qr)["otp"]


def altered(secret: str) -> str:
    """The secret with its last character changed: right length and alphabet, still wrong."""
    return secret[:-1] + ("2" if secret[-1] != "2" else "3")


def redeem(client, body, **kwargs):
    return client.post(ENROLLMENTS, json=body, **kwargs)


def auto_body(qr, **device_overrides) -> dict:
    return {"qr_id": qr.public_id, "otp": otp_of(qr), "device": device(**device_overrides)}


def ssp_body(qr, ticket, **device_overrides) -> dict:
    return {"qr_id": qr.public_id, "ticket": ticket, "device": device(**device_overrides)}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def error_of(response, status: int, code: str) -> str:
    """Assert a contract error (status, JSON shape, code, no HTML or trace); its message."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message
    text = response.get_data(as_text=True)
    assert "<html" not in text.lower() and "Traceback" not in text
    return message


def assert_figures_exact(db):
    """The license pool agrees with the rows: reserved = pending rows, used = active devices."""
    pending = db.session.scalar(sa.select(sa.func.count()).select_from(PendingEnrollment)
                                .where(PendingEnrollment.state == "pending"))
    active = db.session.scalar(sa.select(sa.func.count()).select_from(Device)
                               .where(Device.state.in_(("provisioning", "enrolled"))))
    current = figures()
    assert (current.reserved, current.used) == (pending, active)
    assert current.remaining >= 0


def pending_states(db, qr) -> list[str]:
    return sorted(db.session.scalars(sa.select(PendingEnrollment.state)
                                     .where(PendingEnrollment.qr_code_id == qr.id)))


@pytest.fixture(autouse=True)
def figures_stay_exact(db):
    """After every scenario the license pool still agrees with the rows it counts."""
    yield
    assert_figures_exact(db)


@pytest.fixture
def issue(db):
    """issue(qr, user) -> a ticket, as the Self Service Portal's Start button hands it out."""
    from portal.enrollment.tickets import issue_ticket
    return issue_ticket
