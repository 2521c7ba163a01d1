"""Redeeming a QR code: each device takes exactly one pending enrollment or one license.

The database guarantees it, not Python: a pending enrollment is claimed with a conditional
UPDATE (and FOR UPDATE SKIP LOCKED on PostgreSQL), a license with a conditional UPDATE of the
pool, a ticket with `used_at IS NULL`, and one active device per QR code and serial number is a
partial unique index. SQLite serialises writers with BEGIN IMMEDIATE.

Redemption is the API's busiest write, so its statements are built once per process, with bound
parameters, and read and write columns rather than ORM objects (docs/benchmarks.md): building
a statement costs more than running it, and there is nothing to flush.
"""
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from portal import otp as otps
from portal.accounts.models import PortalUser
from portal.audit.log import write
from portal.database import db, utcnow
from portal.enrollment import errors, webhook_events
from portal.enrollment.models import Device, EnrollmentTicket, PendingEnrollment, QrCode
from portal.enrollment.tickets import ticket_hash
from portal.enrollment.zero_touch import LISTED, identifiers
from portal.licensing.models import LicensePool
from portal.vocabulary import DeviceState, EnrollmentOption, Management, PendingState
from portal.webhooks.events import subscribed

MIN_API_LEVEL = 24
ACTIVE_STATES = (DeviceState.PROVISIONING, DeviceState.ENROLLED)
_DUMMY_HASH = "0" * 64


@dataclass(frozen=True)
class DeviceInfo:
    serial_number: str
    manufacturer: str
    model: str
    android_api_level: int
    imei: str | None = None


@dataclass(frozen=True)
class Enrolled:
    """What the Companion is told."""
    device_id: str
    token: str
    created: bool
    state: str
    user: dict
    lang: str


@dataclass(frozen=True)
class _Device:
    """The device a redemption created or renewed, with its new bearer token."""
    id: int
    public_id: str
    state: str
    user_id: int
    token: str
    created: bool


# The statements, built once, from Core tables rather than ORM classes: an ORM statement is
# copied on every call (and its cache key computed again), and costs twice as much to run.
_QR_CODES, _USERS, _DEVICES = QrCode.__table__, PortalUser.__table__, Device.__table__
_TICKETS, _PENDING = EnrollmentTicket.__table__, PendingEnrollment.__table__
_POOL = LicensePool.__table__
_USER = (_USERS.c.username, _USERS.c.display_name, _USERS.c.email)
# The first query answers everything the checks need: the QR code, its user (auto), whether
# the device is on the Zero-Touch list, and the device's active row on this QR code if there is
# one, and whether a webhook may want qr_code.exhausted. The checks still look at them in the
# contract's order.
_ACTIVE_DEVICE = (sa.select(_DEVICES.c.id)
                  .where(_DEVICES.c.qr_code_id == _QR_CODES.c.id,
                         _DEVICES.c.serial_number == sa.bindparam("serial_number"),
                         _DEVICES.c.state.in_(ACTIVE_STATES))
                  .correlate(_QR_CODES).scalar_subquery())
_FIND_QR_CODE = (
    sa.select(_QR_CODES.c.id, _QR_CODES.c.option, _QR_CODES.c.management, _QR_CODES.c.otp_hash,
              _QR_CODES.c.otp_expires_at, _QR_CODES.c.revoked_at, _QR_CODES.c.lang,
              _QR_CODES.c.user_id, *_USER, _USERS.c.active.label("user_active"),
              LISTED.label("listed"), _ACTIVE_DEVICE.label("active_device_id"),
              subscribed("qr_code.exhausted").label("exhausted_webhook"))
    .outerjoin(_USERS, _USERS.c.id == _QR_CODES.c.user_id)
    .where(_QR_CODES.c.public_id == sa.bindparam("qr_id")))
_FIND_TICKET = (
    sa.select(_TICKETS.c.id, _TICKETS.c.user_id, _TICKETS.c.expires_at, _TICKETS.c.used_at,
              _TICKETS.c.device_id, _DEVICES.c.serial_number.label("device_serial_number"),
              *_USER, _USERS.c.active.label("user_active"))
    .join(_USERS, _USERS.c.id == _TICKETS.c.user_id)
    .outerjoin(_DEVICES, _DEVICES.c.id == _TICKETS.c.device_id)
    .where(_TICKETS.c.ticket_hash == sa.bindparam("ticket_hash"),
           _TICKETS.c.qr_code_id == sa.bindparam("qr_code_id")))
_FIND_USER = sa.select(*_USER).where(_USERS.c.id == sa.bindparam("user_id"))
_INSERT_DEVICE = sa.insert(_DEVICES).returning(_DEVICES.c.id, _DEVICES.c.public_id)
_RENEW_TOKEN = (sa.update(_DEVICES).where(_DEVICES.c.id == sa.bindparam("device_id"))
                .values(token_hash=sa.bindparam("new_token_hash"),
                        last_contact_at=sa.bindparam("now"))
                .returning(_DEVICES.c.public_id, _DEVICES.c.state, _DEVICES.c.user_id))
# The subquery picks a pending row and on PostgreSQL locks it (SKIP LOCKED: concurrent
# redemptions take different rows instead of queueing on one). A row it returns is still
# pending once locked, so the UPDATE cannot lose it to another process; no row means none is
# left, or all are being claimed at this moment. Any pending row of the QR code will do: ORDER
# BY id would make PostgreSQL sort all of them on every claim (SQLite's index yields the
# oldest anyway).
_A_PENDING = (sa.select(_PENDING.c.id)
              .where(_PENDING.c.qr_code_id == sa.bindparam("pending_qr_code_id"),
                     _PENDING.c.state == PendingState.PENDING)
              .limit(1).with_for_update(skip_locked=True).scalar_subquery())
_CLAIM_PENDING = (sa.update(_PENDING)
                  .where(_PENDING.c.id == _A_PENDING, _PENDING.c.state == PendingState.PENDING)
                  .values(state=PendingState.USED, device_id=sa.bindparam("claiming_device_id"),
                          used_at=sa.bindparam("now")))
_SPEND_TICKET = (sa.update(_TICKETS)
                 .where(_TICKETS.c.id == sa.bindparam("ticket_id"), _TICKETS.c.used_at.is_(None))
                 .values(used_at=sa.bindparam("now"),
                         device_id=sa.bindparam("spending_device_id")))
_USE_RESERVED_LICENSE = (sa.update(_POOL).where(_POOL.c.id == 1)
                         .values(reserved=_POOL.c.reserved - 1, used=_POOL.c.used + 1))
_USE_FREE_LICENSE = (sa.update(_POOL)
                     .where(_POOL.c.id == 1,
                            _POOL.c.total - _POOL.c.used - _POOL.c.reserved >= 1)
                     .values(used=_POOL.c.used + 1))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def redeem(qr_id: str, *, otp: str | None, ticket: str | None, device: DeviceInfo,
           client_address: str, throttled: bool = False) -> Enrolled:
    """Enroll the device with the QR's OTP (auto) or a ticket (ssp); a retry by the same
    device returns the same device with a fresh token. Raises an EnrollmentError; every
    attempt is in the audit log — except a wrong credential from a client already past its
    limit (`throttled`), which the log counts in one row per window instead (audit/attempts.py),
    so that a flood of guesses cannot grow it without bound."""
    try:
        try:
            enrolled, check_exhausted = _redeem(qr_id, otp, ticket, device, client_address)
        except sa.exc.IntegrityError:
            # The same device enrolled in a concurrent request that committed first (the
            # partial unique index): start again, and this request becomes its retry.
            db.session.rollback()
            enrolled, check_exhausted = _redeem(qr_id, otp, ticket, device, client_address)
    except errors.EnrollmentError as exc:
        db.session.rollback()  # the success's audit row too, when the license was missing
        if not (throttled and isinstance(exc, errors.InvalidCredentials)):
            _audit(qr_id, device, client_address, outcome="refused", code=exc.code)
            db.session.commit()
        raise
    db.session.commit()
    if check_exhausted is not None:
        # After the commit, without locking: a pending row locked in the transaction would be
        # skipped by a concurrent claim (SKIP LOCKED) and that device refused as exhausted.
        webhook_events.qr_code_exhausted_if_used_up(check_exhausted)
        db.session.commit()
    return enrolled


def _audit(qr_id, device, client_address, **fields):
    write("enrollment.redeem", actor_type="device", target=(qr_id or "")[:64],
          client_address=client_address, serial_number=device.serial_number[:64], **fields)


def _redeem(qr_id: str, otp: str | None, ticket: str | None, info: DeviceInfo,
            client_address: str) -> tuple[Enrolled, int | None]:
    """The answer, and the QR code whose qr_code.exhausted to look for after the commit."""
    check_exhausted = None
    qr_code = db.session.execute(_FIND_QR_CODE, {
        "qr_id": qr_id, "serial_number": info.serial_number,
        "zero_touch_identifiers": identifiers(info.serial_number, info.imei)}).first()
    if qr_code is not None and qr_code.management != Management.COMPANION:
        # Android Device Policy's QR code: its "OTP" is Google's token, which the Companion
        # has no business with; refused exactly as a QR code that does not exist.
        qr_code = None
    if otp is not None:
        if qr_code is None or qr_code.option != EnrollmentOption.AUTO \
                or not otps.matches(otp, qr_code.otp_hash) or not qr_code.user_active:
            raise errors.InvalidCredentials()  # a disabled user's QR too, until enabled
        device, owner = _redeem_automatic(qr_code, info), qr_code
        if device.created and qr_code.exhausted_webhook:  # an endpoint may want it
            check_exhausted = qr_code.id
        use_license = _USE_RESERVED_LICENSE
    else:
        row = None
        if qr_code is not None and qr_code.option == EnrollmentOption.SSP:
            row = db.session.execute(_FIND_TICKET, {"ticket_hash": ticket_hash(ticket),
                                                    "qr_code_id": qr_code.id}).first()
        if row is None:
            hmac.compare_digest(ticket_hash(ticket), _DUMMY_HASH)  # same work as a found ticket
            raise errors.InvalidCredentials()
        device, owner = _redeem_self_service(qr_code, row, info), row
        use_license = _USE_FREE_LICENSE
    enrolled = _told(device, qr_code, owner=owner)
    _audit(qr_id, info, client_address, outcome="success",
           code="created" if device.created else "retried", device_id=device.public_id)
    # The license pool's single row is the one every redemption writes: updated last, right
    # before COMMIT, so that its row lock (PostgreSQL) is held as briefly as possible. No
    # license (self service) raises, and the rollback takes the audit row above with it.
    if device.created and db.session.execute(use_license).rowcount != 1:
        raise errors.NoLicense()
    return enrolled, check_exhausted


def _told(device: _Device, qr_code: sa.Row, *, owner: sa.Row) -> Enrolled:
    """The answer; `owner` is the row that holds the new device's user (QR code or ticket)."""
    user = owner if device.user_id == owner.user_id else \
        db.session.execute(_FIND_USER, {"user_id": device.user_id}).one()
    return Enrolled(device.public_id, device.token, device.created, device.state,
                    {"username": user.username, "display_name": user.display_name or user.username,
                     "email": user.email}, qr_code.lang)


def _check(qr_code: sa.Row, device: DeviceInfo) -> None:
    if qr_code.revoked_at is not None:
        raise errors.QrRevoked()
    if device.android_api_level < MIN_API_LEVEL:
        raise errors.UnsupportedAndroidVersion()
    if qr_code.listed:
        raise errors.ZeroTouchConflict()


def _redeem_automatic(qr_code: sa.Row, info: DeviceInfo) -> _Device:
    _check(qr_code, info)
    if qr_code.active_device_id is not None:
        return _renew(qr_code.active_device_id)
    if qr_code.otp_expires_at is not None and qr_code.otp_expires_at <= utcnow():
        raise errors.Expired()
    device = _insert_device(qr_code.id, qr_code.user_id, info)
    claimed = db.session.execute(_CLAIM_PENDING, {
        "pending_qr_code_id": qr_code.id, "claiming_device_id": device.id, "now": utcnow()})
    if claimed.rowcount != 1:
        raise errors.UsageExhausted()
    return device  # its reserved license is used last (_redeem)


def _redeem_self_service(qr_code: sa.Row, ticket: sa.Row, info: DeviceInfo) -> _Device:
    if ticket.used_at is not None:
        if ticket.device_serial_number != info.serial_number:
            raise errors.InvalidCredentials()
        _check(qr_code, info)
        return _renew(ticket.device_id)
    _check(qr_code, info)
    if not ticket.user_active:  # disabled after signing in: the unspent ticket dies with it
        raise errors.InvalidCredentials()
    if ticket.expires_at <= utcnow():
        raise errors.Expired()
    if qr_code.active_device_id is not None:
        # The same device with a second ticket holds its license already. The ticket is not
        # spent: its device_id is unique and the first ticket already names this device.
        return _renew(qr_code.active_device_id)
    device = _insert_device(qr_code.id, ticket.user_id, info)
    spent = db.session.execute(_SPEND_TICKET, {
        "ticket_id": ticket.id, "spending_device_id": device.id, "now": utcnow()})
    if spent.rowcount != 1:
        raise errors.InvalidCredentials()
    return device  # a free license is taken last (_redeem)


def _renew(device_id: int) -> _Device:
    """The same device again: a fresh token (the old one stops working), nothing spent."""
    token = secrets.token_urlsafe(32)
    row = db.session.execute(_RENEW_TOKEN, {"device_id": device_id, "now": utcnow(),
                                            "new_token_hash": token_hash(token)}).one()
    return _Device(device_id, row.public_id, row.state, row.user_id, token, created=False)


def _insert_device(qr_code_id: int, user_id: int, info: DeviceInfo) -> _Device:
    """IntegrityError when the same device won a concurrent request (uq_devices_active_serial)."""
    token = secrets.token_urlsafe(32)
    row = db.session.execute(_INSERT_DEVICE, {
        "public_id": secrets.token_urlsafe(12), "qr_code_id": qr_code_id, "user_id": user_id,
        "serial_number": info.serial_number, "imei": info.imei,
        "manufacturer": info.manufacturer, "model": info.model,
        "android_api_level": info.android_api_level, "token_hash": token_hash(token),
        "last_contact_at": utcnow()}).one()
    return _Device(row.id, row.public_id, DeviceState.PROVISIONING, user_id, token, created=True)
