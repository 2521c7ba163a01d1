"""The Companion's report that device-owner provisioning finished, and device look-ups."""
import hmac

import sqlalchemy as sa

from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment import errors, webhook_events
from portal.enrollment.models import Device, PendingEnrollment, QrCode, is_public_id
from portal.enrollment.redeem import token_hash
from portal.licensing.models import LicensePool
from portal.vocabulary import DeviceState, EnrollmentOption, PendingState

_DUMMY_HASH = "0" * 64


def authenticate(device_id: str, token: str | None) -> Device:
    """The device whose bearer token this is; InvalidToken whether or not the device exists."""
    device_id = device_id or ""
    # Public ids are URL-safe; anything else names no device (and a NUL breaks PostgreSQL).
    device = db.session.scalar(sa.select(Device).where(Device.public_id == device_id)) \
        if is_public_id(device_id) else None
    expected = device.token_hash if device is not None else _DUMMY_HASH
    presented = token_hash(token or "")
    if not hmac.compare_digest(presented, expected) or device is None or not token:
        raise errors.InvalidToken()
    return device


def complete(device: Device, result: str, reason: str | None, *, client_address: str) -> Device:
    """Record success (enrolled) or failure (failed, releasing what the device held).

    Repeating the same result changes nothing; anything else from a finished device raises
    InvalidState."""
    target = DeviceState.ENROLLED if result == "success" else DeviceState.FAILED
    if device.state == target:
        return touch(device)
    values = {"state": target, "last_contact_at": utcnow()}
    if target == DeviceState.ENROLLED:
        values["enrolled_at"] = utcnow()
    else:
        values["failure_reason"] = reason or None
    changed = db.session.execute(
        sa.update(Device).where(Device.id == device.id, Device.state == DeviceState.PROVISIONING)
        .values(**values).execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        db.session.rollback()
        db.session.refresh(device)
        if device.state == target:  # a concurrent identical report won
            return touch(device)
        raise errors.InvalidState()
    if target == DeviceState.FAILED:
        _release(device)
    _audit(device, target, reason, client_address)
    webhook_events.device_finished(device, target, reason)
    db.session.commit()
    db.session.refresh(device)
    return device


def _audit(device: Device, state: str, reason: str | None, client_address: str) -> None:
    """A reported failure is an error in the audit log, with the reason the device sent."""
    details = {"reason": reason} if state == DeviceState.FAILED and reason else {}
    record("enrollment.complete", actor_type="device", actor=device.public_id,
           outcome="success" if state == DeviceState.ENROLLED else "error", code=state,
           target=device.public_id, client_address=client_address,
           serial_number=device.serial_number, **details)


def touch(device: Device) -> Device:
    """Note that the device called (Devices → Last contact); commits."""
    db.session.execute(sa.update(Device).where(Device.id == device.id)
                       .values(last_contact_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(device)
    return device


def _release(device: Device) -> None:
    """Give back what a failed device held: its pending enrollment (auto) or its license."""
    # FOR UPDATE: a revocation committing between this read and the UPDATE below would leave
    # the enrollment "pending" on a revoked QR, holding a license for good. With the row
    # locked, revoke_qr_code() either came first (revoked_at is seen) or waits for this commit
    # and then ends the enrollment with the others.
    qr_code = db.session.get(QrCode, device.qr_code_id, with_for_update=True,
                             populate_existing=True)
    if qr_code.option == EnrollmentOption.SSP:
        _pool(used=-1)
        return
    now = utcnow()
    # The pending enrollment becomes available again, unless its QR was revoked or its OTP
    # expired meanwhile: then it ends, and the license goes back to the pool entirely.
    expired = qr_code.otp_expires_at is not None and qr_code.otp_expires_at <= now
    state = PendingState.REVOKED if qr_code.revoked_at else \
        PendingState.EXPIRED if expired else PendingState.PENDING
    db.session.execute(
        sa.update(PendingEnrollment)
        .where(PendingEnrollment.device_id == device.id,
               PendingEnrollment.state == PendingState.USED)
        .values(state=state, device_id=None, used_at=None,
                ended_at=None if state == PendingState.PENDING else now)
        .execution_options(synchronize_session=False))
    _pool(used=-1, reserved=1 if state == PendingState.PENDING else 0)


def _pool(used: int = 0, reserved: int = 0) -> None:
    db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1).values(
        used=LicensePool.used + used, reserved=LicensePool.reserved + reserved))
