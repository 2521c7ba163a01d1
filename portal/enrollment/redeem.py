"""Redeeming a QR code: each device takes exactly one pending enrollment or one license.

The database guarantees it, not Python: a pending enrollment is claimed with a conditional
UPDATE (and FOR UPDATE SKIP LOCKED on PostgreSQL), a license with a conditional UPDATE of the
pool, a ticket with `used_at IS NULL`, and one active device per QR code and serial number is a
partial unique index. SQLite serialises writers with BEGIN IMMEDIATE.
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment import errors, otp as otps
from portal.enrollment.models import Device, EnrollmentTicket, PendingEnrollment
from portal.enrollment.tickets import ticket_hash
from portal.enrollment.zero_touch import is_listed
from portal.licensing.models import LicensePool
from portal.provisioning.models import QrCode

MIN_API_LEVEL = 24
ACTIVE_STATES = ("provisioning", "enrolled")
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True)
class DeviceInfo:
    serial_number: str
    manufacturer: str
    model: str
    android_api_level: int
    imei: str | None = None


@dataclass(frozen=True)
class Redemption:
    device: Device
    token: str
    created: bool


@dataclass(frozen=True)
class Enrolled:
    """What the Companion is told, read before the commit expires the ORM objects."""
    device_id: str
    token: str
    created: bool
    state: str
    user: dict
    lang: str


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def redeem(qr_id: str, *, otp: str | None, ticket: str | None, device: DeviceInfo,
           client_address: str) -> Enrolled:
    """Enroll the device with the QR's OTP (auto) or a ticket (ssp); a retry by the same
    device returns the same device with a fresh token. Raises an EnrollmentError; every
    attempt is in the audit log."""
    try:
        try:
            result = _redeem(qr_id, otp, ticket, device)
        except sa.exc.IntegrityError:
            # The same device enrolled in a concurrent request that committed first (the
            # partial unique index): start again, and this request becomes its retry.
            db.session.rollback()
            result = _redeem(qr_id, otp, ticket, device)
    except errors.EnrollmentError as exc:
        db.session.rollback()
        _audit(qr_id, device, client_address, outcome="refused", code=exc.code)
        db.session.commit()
        raise
    _audit(qr_id, device, client_address, outcome="success",
           code="created" if result.created else "retried", device_id=result.device.public_id)
    enrolled = _told(result)
    db.session.commit()
    return enrolled


def _told(result: Redemption) -> Enrolled:
    device, user = result.device, result.device.user
    return Enrolled(device.public_id, result.token, result.created, device.state,
                    {"username": user.username, "display_name": user.display_name or user.username,
                     "email": user.email}, device.qr_code.lang)


def _audit(qr_id, device, client_address, **fields):
    record("enrollment.redeem", actor_type="device", target=(qr_id or "")[:64],
           client_address=client_address, serial_number=device.serial_number[:64], **fields)


def _redeem(qr_id: str, otp: str | None, ticket: str | None, device: DeviceInfo) -> Redemption:
    qr_code = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == qr_id))
    if otp is not None:
        if qr_code is None or qr_code.option != "auto" or not otps.matches(otp, qr_code.otp_hash):
            raise errors.InvalidCredentials()
        return _redeem_automatic(qr_code, device)
    row = None
    if qr_code is not None and qr_code.option == "ssp":
        row = db.session.scalar(sa.select(EnrollmentTicket).where(
            EnrollmentTicket.ticket_hash == ticket_hash(ticket),
            EnrollmentTicket.qr_code_id == qr_code.id))
    if row is None:
        hmac.compare_digest(ticket_hash(ticket), _DUMMY_HASH)  # same work as a found ticket
        raise errors.InvalidCredentials()
    return _redeem_self_service(qr_code, row, device)


def _check(qr_code: QrCode, device: DeviceInfo) -> None:
    if qr_code.revoked_at is not None:
        raise errors.QrRevoked()
    if device.android_api_level < MIN_API_LEVEL:
        raise errors.UnsupportedAndroidVersion()
    if is_listed(device.serial_number, device.imei):
        raise errors.ZeroTouchConflict()


def _active_device(qr_code: QrCode, serial_number: str) -> Device | None:
    return db.session.scalar(sa.select(Device).where(
        Device.qr_code_id == qr_code.id, Device.serial_number == serial_number,
        Device.state.in_(ACTIVE_STATES)))


def _retry(device: Device) -> Redemption:
    """The same device again: a fresh token (the old one stops working), nothing spent."""
    token = secrets.token_urlsafe(32)
    device.token_hash = token_hash(token)
    return Redemption(device, token, created=False)


def _redeem_automatic(qr_code: QrCode, info: DeviceInfo) -> Redemption:
    _check(qr_code, info)
    existing = _active_device(qr_code, info.serial_number)
    if existing is not None:
        return _retry(existing)
    if qr_code.otp_expires_at is not None and qr_code.otp_expires_at <= utcnow():
        raise errors.Expired()
    device, token = _new_device(qr_code, qr_code.user_id, info)
    if not _claim_pending(qr_code, device):
        raise errors.UsageExhausted()
    db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1).values(
        reserved=LicensePool.reserved - 1, used=LicensePool.used + 1))
    return Redemption(device, token, created=True)


def _claim_pending(qr_code: QrCode, device: Device) -> bool:
    for _ in range(5):  # lost a race for a row: another process claimed it first, try the next
        candidate = db.session.scalar(
            sa.select(PendingEnrollment.id)
            .where(PendingEnrollment.qr_code_id == qr_code.id,
                   PendingEnrollment.state == "pending")
            .order_by(PendingEnrollment.id).limit(1).with_for_update(skip_locked=True))
        if candidate is None:
            return False
        claimed = db.session.execute(
            sa.update(PendingEnrollment)
            .where(PendingEnrollment.id == candidate, PendingEnrollment.state == "pending")
            .values(state="used", device_id=device.id, used_at=utcnow())
            .execution_options(synchronize_session=False))
        if claimed.rowcount == 1:
            return True
    return False


def _redeem_self_service(qr_code: QrCode, ticket: EnrollmentTicket,
                         info: DeviceInfo) -> Redemption:
    if ticket.used_at is not None:
        used_by = db.session.get(Device, ticket.device_id) if ticket.device_id else None
        if used_by is None or used_by.serial_number != info.serial_number:
            raise errors.InvalidCredentials()
        _check(qr_code, info)
        return _retry(used_by)
    _check(qr_code, info)
    if ticket.expires_at <= utcnow():
        raise errors.Expired()
    existing = _active_device(qr_code, info.serial_number)
    if existing is not None:
        # The same device with a second ticket holds its license already. The ticket is not
        # spent: its device_id is unique and the first ticket already names this device.
        return _retry(existing)
    device, token = _new_device(qr_code, ticket.user_id, info)
    _spend_ticket(ticket, device)
    used = db.session.execute(
        sa.update(LicensePool)
        .where(LicensePool.id == 1,
               LicensePool.total - LicensePool.used - LicensePool.reserved >= 1)
        .values(used=LicensePool.used + 1))
    if used.rowcount != 1:
        raise errors.NoLicense()
    return Redemption(device, token, created=True)


def _spend_ticket(ticket: EnrollmentTicket, device: Device) -> None:
    spent = db.session.execute(
        sa.update(EnrollmentTicket)
        .where(EnrollmentTicket.id == ticket.id, EnrollmentTicket.used_at.is_(None))
        .values(used_at=utcnow(), device_id=device.id)
        .execution_options(synchronize_session=False))
    if spent.rowcount != 1:
        raise errors.InvalidCredentials()


def _new_device(qr_code: QrCode, user_id: int, info: DeviceInfo) -> tuple[Device, str]:
    token = secrets.token_urlsafe(32)
    device = Device(public_id=secrets.token_urlsafe(12), qr_code_id=qr_code.id, user_id=user_id,
                    serial_number=info.serial_number, imei=info.imei,
                    manufacturer=info.manufacturer, model=info.model,
                    android_api_level=info.android_api_level, token_hash=token_hash(token))
    db.session.add(device)
    db.session.flush()  # IntegrityError when the same device won a concurrent request
    return device, token
