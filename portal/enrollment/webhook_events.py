"""The webhook events of enrollment (portal.webhooks.events.EVENT_TYPES), each queued in the
caller's transaction where its audit event is recorded. Each looks up the subscribers first:
with none, nothing else is read or written.

The data names things by their public ids, serial number, model and user name, never a
secret: no OTP, password, token, ticket nor payload (tests/webhooks/test_events.py)."""
import sqlalchemy as sa

from portal.database import db
from portal.enrollment.models import Device, PendingEnrollment, QrCode
from portal.vocabulary import PendingState
from portal.webhooks.events import emit, subscribers


def _qr_code(qr_code: QrCode) -> dict:
    return {"id": qr_code.public_id, "name": qr_code.name, "option": str(qr_code.option),
            "usage_count": qr_code.usage_count}


def _user(user) -> dict | None:
    if user is None:
        return None
    return {"username": user.username, "display_name": user.display_name or user.username}


def _device(device: Device) -> dict:
    return {"device": {"id": device.public_id, "serial_number": device.serial_number,
                       "imei": device.imei, "manufacturer": device.manufacturer,
                       "model": device.model, "android_api_level": device.android_api_level,
                       "state": str(device.state)},
            "user": _user(device.user), "qr_code": _qr_code(device.qr_code)}


def device_finished(device: Device, state: str, reason: str | None = None) -> None:
    """device.enrolled or device.failed (with the reason the device sent)."""
    event = "device.enrolled" if state == "enrolled" else "device.failed"
    if targets := subscribers(event):
        data = _device(device) | ({"reason": reason} if event == "device.failed" else {})
        data["device"]["state"] = str(state)  # the ORM object may not show the UPDATE yet
        emit(event, data, endpoints=targets)


def device_retired(device: Device, *, retired_by: str, license_released: bool) -> None:
    if targets := subscribers("device.retired"):
        data = _device(device) | {"retired_by": retired_by, "license_released": license_released}
        data["device"]["state"] = "retired"  # the ORM object may not show the UPDATE yet
        emit("device.retired", data, endpoints=targets)


def qr_code_revoked(qr_code: QrCode, *, revoked_by: str, released: int,
                    regenerated_as: str | None = None) -> None:
    """Revoked by an admin, an operator or a batch, or replaced by Regenerate (regenerated_as:
    the new QR code's id; its pending enrollments moved there instead of ending)."""
    if targets := subscribers("qr_code.revoked"):
        data = {"qr_code": _qr_code(qr_code), "user": _user(qr_code.user),
                "revoked_by": revoked_by, "pending_ended": released}
        emit("qr_code.revoked", data | ({"regenerated_as": regenerated_as} if regenerated_as
                                        else {}), endpoints=targets)


def qr_code_exhausted_if_used_up(qr_code_id: int) -> None:
    """After the commit of a device that took a pending enrollment: qr_code.exhausted when
    none is left (the caller commits). Read without locking: a locked pending row would be
    skipped by a concurrent claim (SKIP LOCKED), refusing that device as exhausted. Of the
    last two devices committing at once the later sees both used, so the event is never
    lost; both may see it: at-least-once."""
    if not (targets := subscribers("qr_code.exhausted")):
        return
    left = db.session.scalar(
        sa.select(PendingEnrollment.id)
        .where(PendingEnrollment.qr_code_id == qr_code_id,
               PendingEnrollment.state == PendingState.PENDING)
        .limit(1))
    if left is None:
        qr_code = db.session.get(QrCode, qr_code_id)
        emit("qr_code.exhausted", {"qr_code": _qr_code(qr_code), "user": _user(qr_code.user)},
             endpoints=targets)


def wants_pending_expired() -> list[int]:
    return subscribers("pending.expired")


def pending_expired(ended_qr_code_ids: list[int], targets: list[int]) -> None:
    """One pending.expired per QR code, with how many of its pending enrollments expired."""
    counts: dict[int, int] = {}
    for qr_code_id in ended_qr_code_ids:
        counts[qr_code_id] = counts.get(qr_code_id, 0) + 1
    for qr_code_id, count in counts.items():
        qr_code = db.session.get(QrCode, qr_code_id)
        emit("pending.expired", {"qr_code": _qr_code(qr_code), "user": _user(qr_code.user),
                                 "expired": count}, endpoints=targets)
