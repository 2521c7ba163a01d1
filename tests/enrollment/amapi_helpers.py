"""Shared steps of the Android Device Policy device tests: a QR code whose token Google (the
stand-in) made, a phone enrolling with it, and Pub/Sub pushing the notification."""
import sqlalchemy as sa

from portal.amapi.client import current
from portal.database import db
from portal.enrollment.models import Device

PUSH_PATH = "/api/amapi/notifications"
AUDIENCE = "https://portal.test" + PUSH_PATH  # TestConfig's PORTAL_PUBLIC_URL


def adp_qr_code(make_qr_code, option="auto", **overrides):
    if option == "auto":
        overrides.setdefault("usage_count", 2)
    return make_qr_code(option, management="adp", **overrides)


def token_value(amapi, qr_code) -> str:
    return amapi.tokens[qr_code.enrollment_token_name]["value"]


def enroll(amapi, qr_code, serial="R58N00000A", **device) -> dict:
    """A phone enrolls at Google with the QR code's token; Google's Device resource."""
    device.setdefault("model", "Pixel 8")
    device.setdefault("manufacturer", "Google")
    device.setdefault("brand", "google")
    return amapi.enroll(token_value(amapi, qr_code), serial=serial, **device)


def push(client, amapi, device, notification_type="ENROLLMENT", *, token=None, body=None,
         headers=None):
    if token is None:
        token = amapi.push_id_token(AUDIENCE, email=current().push_email)
    if headers is None:
        headers = {"Authorization": f"Bearer {token}"}
    if body is None:
        body = amapi.pubsub_push_body(device, notification_type)
    return client.post(PUSH_PATH, json=body, headers=headers)


def device_named(name: str) -> Device | None:
    db.session.expire_all()
    return db.session.scalar(sa.select(Device).where(Device.amapi_name == name))


def devices() -> list[Device]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Device).where(Device.amapi_name.is_not(None))
                                   .order_by(Device.id)))
