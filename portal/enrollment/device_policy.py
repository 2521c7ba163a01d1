"""Devices enrolled through Google's Android Device Policy (issue 17): counted exactly.

Google tells the portal of a device in two ways: a Pub/Sub notification (ENROLLMENT,
STATUS_REPORT) pushed to /api/amapi/notifications, and `flask --app wsgi amapi sync`
(enterprises.devices.list) for what the notifications missed. Both hand the Device resource to
record_device(), which matches it to a QR code through the enrollment token's additionalData
(fallback: the token's name) and counts it as a Companion enrollment is counted: Automatic
Provisioning claims one pending enrollment (its reserved license becomes used), Self Service
takes a free license. The same conditional UPDATEs as redeem.py decide, and Device.amapi_name is
unique, so a device seen twice (a push and the sync, Pub/Sub's redelivery, two processes at once)
is recorded once and holds one license.

A device that enrolled with one of our QR codes but is not ours to count (no pending enrollment
left, QR code revoked, OTP expired, no free license) is listed as failed with the reason, holds
no license, and is deleted at Google (wiped): an admin expects a QR code's usage count and the
license pool to bound what is managed, and a phone managed without a license is one nobody
accounts for. Devices that no QR code of ours made are left alone ("not from this portal").
"""
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone

import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.amapi import calls, tasks
from portal.amapi.client import connect, current, is_configured
from portal.amapi.models import AmapiTask
from portal.audit.log import record
from portal.database import db, end_transaction, utcnow
from portal.enrollment import errors, retirement, webhook_events
from portal.enrollment.models import Device, PendingEnrollment, QrCode, is_public_id
from portal.enrollment.redeem import _CLAIM_PENDING, _USE_FREE_LICENSE, _USE_RESERVED_LICENSE
from portal.enrollment.zero_touch import is_listed
from portal.errors import DomainError
from portal.vocabulary import (AmapiTaskKind, DeviceState, EnrollmentOption, Management,
                               PendingState)

log = logging.getLogger(__name__)

# What record_device did with a Device resource.
NEW = "new"                # recorded, enrolled, holds a license
FAILED = "failed"          # recorded as failed (not ours to count), deleted at Google
KNOWN = "known"            # seen before (or a re-enrollment of a device we have): nothing spent
RETIRED = "retired"        # Google deleted a device that held a license: retired, license back
NOT_OURS = "not_ours"      # no QR code of this portal made it (or it is gone already)

HOLDS_LICENSE = retirement.HOLDS_LICENSE
GONE = "DELETED"           # Device.state at Google once deleted
WIPED = " It is deleted at Google (wiped)."
REASONS = {
    errors.UsageExhausted.code: "Enrolled beyond the QR code's usage count: no pending "
                                "enrollment was left." + WIPED,
    errors.QrRevoked.code: "Enrolled with a QR code that was revoked." + WIPED,
    errors.Expired.code: "Enrolled after the QR code's one-time password expired." + WIPED,
    errors.NoLicense.code: "No license was free when the device enrolled." + WIPED,
}


class NotADevice(DomainError):
    """The notification's data is not a Device resource."""


@dataclass(frozen=True)
class Recorded:
    outcome: str
    device_id: str | None = None   # our public id
    reason: str | None = None
    used_pending_of: int | None = field(default=None, repr=False)  # the QR code's id


@dataclass(frozen=True)
class SyncResult:
    listed: int
    new: int
    retired: int
    not_ours: int


@dataclass(frozen=True)
class _Hardware:
    serial_number: str
    manufacturer: str
    model: str
    android_api_level: int
    imei: str | None


def record_device(resource: dict, *, source: str, client_address: str | None = None) -> Recorded:
    """Record (or update) the device Google describes; commits, then tries at once what it
    owes Google (a used-up token, a device not ours to count). source: "push" or "sync"."""
    name = resource.get("name") if isinstance(resource, dict) else None
    if not isinstance(name, str) or not name or len(name) > 255:
        raise NotADevice("The notification's data is not a Device: it has no name.")
    try:
        try:
            result, owed = _record(resource, name, source, client_address)
        except sa.exc.IntegrityError:
            # The same device was recorded by a concurrent push or sync that committed first
            # (amapi_name is unique), or that one owed the same deletion: start again, and
            # this becomes the second sighting.
            db.session.rollback()
            result, owed = _record(resource, name, source, client_address)
    except BaseException:
        db.session.rollback()
        raise
    db.session.commit()
    if result.used_pending_of is not None:
        owed += _used_up(result.used_pending_of)
    if owed:
        tasks.try_now(owed)
    return result


def _record(resource: dict, name: str, source: str,
            client_address: str | None) -> tuple[Recorded, list[int]]:
    # Looked at before the device: on PostgreSQL each statement sees what was committed when
    # it began, and a concurrent sighting commits the device with its deletion owed.
    deleting = _being_deleted(name)
    known = db.session.scalar(sa.select(Device).where(Device.amapi_name == name))
    if known is not None:
        return _seen_again(known, resource, source), []
    settings = current()
    if settings is None or not name.startswith(f"{settings.enterprise_name}/devices/") \
            or resource.get("state") == GONE or deleting:
        return Recorded(NOT_OURS), []
    qr_code = _qr_code(resource)
    if qr_code is None:
        return Recorded(NOT_OURS), []
    hardware = _hardware(resource, name)
    enrolled_at = _timestamp(resource.get("enrollmentTime")) or utcnow()
    again = db.session.scalar(sa.select(Device).where(
        Device.qr_code_id == qr_code.id, Device.serial_number == hardware.serial_number,
        Device.state.in_(HOLDS_LICENSE)).with_for_update())
    if again is not None:
        return _re_enrolled(again, name, qr_code, hardware, source, client_address)
    if qr_code.option == EnrollmentOption.AUTO:
        user_id = qr_code.user_id
    else:
        user_id, username = _signed_in_user(resource)
        if user_id is None:
            log.warning("Android Device Policy device %s enrolled on QR code %s for a user "
                        "the portal does not know (%r): not recorded", name,
                        qr_code.public_id, username)
            return Recorded(NOT_OURS), []
    device = Device(public_id=secrets.token_urlsafe(12), qr_code_id=qr_code.id, user_id=user_id,
                    amapi_name=name, serial_number=hardware.serial_number, imei=hardware.imei,
                    manufacturer=hardware.manufacturer, model=hardware.model,
                    android_api_level=hardware.android_api_level, state=DeviceState.ENROLLED,
                    token_hash=hashlib.sha256(secrets.token_bytes(32)).hexdigest(),
                    enrolled_at=enrolled_at, last_contact_at=_last_contact(resource))
    db.session.add(device)
    db.session.flush()  # IntegrityError here when a concurrent sighting committed first
    refusal = _count(device, qr_code, enrolled_at)
    if refusal is None:
        _audit_enrolled(device, qr_code, source, client_address, hardware)
        webhook_events.device_finished(device, DeviceState.ENROLLED)
        used_pending_of = qr_code.id if qr_code.option == EnrollmentOption.AUTO else None
        return Recorded(NEW, device.public_id, used_pending_of=used_pending_of), []
    reason = REASONS[refusal]
    device.state, device.failure_reason = DeviceState.FAILED, reason
    owed = _owe(AmapiTaskKind.DELETE_DEVICE, name, qr_code_id=qr_code.id, device_id=device.id)
    _audit_redeem(device, qr_code, source, client_address, outcome="refused", code=refusal)
    record("enrollment.complete", actor_type="device", actor=device.public_id, outcome="error",
           code=DeviceState.FAILED, target=device.public_id, client_address=client_address,
           serial_number=device.serial_number, reason=reason, source=source,
           management=Management.ADP.value)
    webhook_events.device_finished(device, DeviceState.FAILED, reason)
    return Recorded(FAILED, device.public_id, reason), owed


def _count(device: Device, qr_code: QrCode, enrolled_at: datetime) -> str | None:
    """Spend what the device takes (a pending enrollment's reserved license, or a free one):
    None when counted, else the refusal's code. The expiry is judged by when the device
    enrolled, not by when the portal heard of it."""
    if qr_code.revoked_at is not None:
        return errors.QrRevoked.code
    if qr_code.option == EnrollmentOption.SSP:
        return None if db.session.execute(_USE_FREE_LICENSE).rowcount == 1 \
            else errors.NoLicense.code
    if qr_code.otp_expires_at is not None and qr_code.otp_expires_at <= enrolled_at:
        return errors.Expired.code
    claimed = db.session.execute(_CLAIM_PENDING, {
        "pending_qr_code_id": qr_code.id, "claiming_device_id": device.id, "now": utcnow()})
    if claimed.rowcount != 1:
        return errors.UsageExhausted.code
    db.session.execute(_USE_RESERVED_LICENSE)
    return None


def _used_up(qr_code_id: int) -> list[int]:
    """After a device's commit took a pending enrollment: when none is left, qr_code.exhausted
    and the token's deletion at Google (owed, to try now). Looked at after the commit, without
    locking: a pending row locked meanwhile would be skipped by a concurrent claim (SKIP
    LOCKED) and that device refused. Of the last two devices committing at once, the later
    sees both used, so it is never missed (both may see it: owed once all the same)."""
    if _pending_left(qr_code_id):
        return []
    token_name = db.session.scalar(sa.select(QrCode.enrollment_token_name)
                                   .where(QrCode.id == qr_code_id))
    try:
        webhook_events.qr_code_exhausted_if_used_up(qr_code_id)
        owed = _owe(AmapiTaskKind.DELETE_TOKEN, token_name, qr_code_id=qr_code_id) \
            if token_name else []
        db.session.commit()
    except sa.exc.IntegrityError:  # a concurrent device owed it first
        db.session.rollback()
        return []
    return owed


def _pending_left(qr_code_id: int) -> bool:
    return db.session.scalar(
        sa.select(PendingEnrollment.id)
        .where(PendingEnrollment.qr_code_id == qr_code_id,
               PendingEnrollment.state == PendingState.PENDING).limit(1)) is not None


def _seen_again(device: Device, resource: dict, source: str) -> Recorded:
    """A device we have: Google deleted it (retired, its license back, once), or news."""
    if resource.get("state") == GONE:
        if retirement.gone_at_google(device, source=source):
            return Recorded(RETIRED, device.public_id)
        return Recorded(KNOWN, device.public_id)
    if device.state in HOLDS_LICENSE:
        contact = _last_contact(resource)
        db.session.execute(sa.update(Device).where(Device.id == device.id)
                           .values(last_contact_at=contact)
                           .execution_options(synchronize_session=False))
    return Recorded(KNOWN, device.public_id)


def _re_enrolled(device: Device, name: str, qr_code: QrCode, hardware: _Hardware, source: str,
                 client_address: str | None) -> tuple[Recorded, list[int]]:
    """The same phone (serial number) enrolled again with the same QR code (a factory reset):
    Google made a new device; ours follows it and spends nothing. Google's old device is
    deleted there, so that it is not seen again."""
    owed = []
    if device.amapi_name and device.amapi_name != name:
        owed += _owe(AmapiTaskKind.DELETE_DEVICE, device.amapi_name, qr_code_id=qr_code.id,
                     device_id=device.id)
    db.session.execute(sa.update(Device).where(Device.id == device.id)
                       .values(amapi_name=name, state=DeviceState.ENROLLED,
                               last_contact_at=utcnow())
                       .execution_options(synchronize_session=False))
    _audit_redeem(device, qr_code, source, client_address, outcome="success", code="retried")
    return Recorded(KNOWN, device.public_id), owed


def _qr_code(resource: dict) -> QrCode | None:
    """Our Android Device Policy QR code whose token enrolled the device, or None."""
    qr_id, _ = calls.read_token_data(resource.get("enrollmentTokenData"))
    qr_code = None
    if is_public_id(qr_id):
        qr_code = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == qr_id))
    token_name = resource.get("enrollmentTokenName")
    if qr_code is None and isinstance(token_name, str) and token_name:
        qr_code = db.session.scalar(sa.select(QrCode).where(
            QrCode.enrollment_token_name == token_name))
    if qr_code is None or qr_code.management != Management.ADP:
        return None
    return qr_code


def _signed_in_user(resource: dict) -> tuple[int | None, str | None]:
    """Self Service: the user whose sign-in made the token (its additionalData names them,
    by id and name). A token without the id (made before it was added) is matched by name; a
    name that two sources share (a local and a directory user) is then the first user's, and
    logged."""
    data = resource.get("enrollmentTokenData")
    _, username = calls.read_token_data(data)
    if not username:
        return None, None
    user_id = calls.token_user_id(data)
    if user_id is not None and db.session.scalar(sa.select(PortalUser.id).where(
            PortalUser.id == user_id, PortalUser.username == username)) is not None:
        return user_id, username
    ids = db.session.scalars(sa.select(PortalUser.id).where(PortalUser.username == username)
                             .order_by(PortalUser.id).limit(2)).all()
    if len(ids) > 1:
        log.warning("Android Device Policy device %s: the user name %r is not unique; "
                    "counted for the first such user", resource.get("name"), username)
    return (ids[0] if ids else None), username


def _being_deleted(name: str) -> bool:
    """A device whose deletion the portal owes (or did): not to be recorded again."""
    return db.session.scalar(sa.select(AmapiTask.id).where(
        AmapiTask.kind == AmapiTaskKind.DELETE_DEVICE, AmapiTask.resource == name)) is not None


def _owe(kind: AmapiTaskKind, resource: str, **ids) -> list[int]:
    """Owe Google a call in this transaction: [its id] to try after the commit, or [] when it
    was owed already (whoever owed it first tries it)."""
    def owed() -> int | None:
        return db.session.scalar(sa.select(AmapiTask.id).where(AmapiTask.kind == kind,
                                                              AmapiTask.resource == resource))
    if owed() is not None:
        return []
    tasks.owe(kind, resource, **ids)
    db.session.flush()  # IntegrityError when a concurrent transaction owed it first
    return [owed()]


def _text(value, limit: int = 64) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _hardware(resource: dict, name: str) -> _Hardware:
    hardware = resource.get("hardwareInfo") if isinstance(resource.get("hardwareInfo"),
                                                          dict) else {}
    network = resource.get("networkInfo") if isinstance(resource.get("networkInfo"),
                                                        dict) else {}
    # Google leaves hardwareInfo out when the policy does not report it: the device's id then.
    serial = _text(hardware.get("serialNumber")) or name.rsplit("/", 1)[-1][:64]
    imei = _text(network.get("imei"), 15)
    level = resource.get("apiLevel")
    return _Hardware(
        serial_number=serial,
        manufacturer=_text(hardware.get("manufacturer")) or _text(hardware.get("brand"))
        or "Unknown",
        model=_text(hardware.get("model")) or "Unknown",
        android_api_level=level if isinstance(level, int) and level >= 0 else 0,
        imei=imei if len(imei) == 15 and imei.isdigit() else None)


def _timestamp(text) -> datetime | None:
    """An RFC 3339 timestamp of Google's (…Z, up to 9 fractional digits), as UTC."""
    if not isinstance(text, str) or not text:
        return None
    main, _, rest = text.rstrip("Z").partition(".")
    try:
        moment = datetime.fromisoformat(main)
    except ValueError:
        return None
    digits = "".join(c for c in rest if c.isdigit())[:6]
    moment = moment.replace(microsecond=int(digits.ljust(6, "0")) if digits else 0)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _last_contact(resource: dict) -> datetime:
    return _timestamp(resource.get("lastStatusReportTime")) or utcnow()


def _audit_redeem(device: Device, qr_code: QrCode, source: str, client_address: str | None,
                  *, outcome: str, code: str) -> None:
    record("enrollment.redeem", actor_type="device", target=qr_code.public_id,
           client_address=client_address, serial_number=device.serial_number, outcome=outcome,
           code=code, device_id=device.public_id, source=source,
           management=Management.ADP.value)


def _audit_enrolled(device: Device, qr_code: QrCode, source: str, client_address: str | None,
                    hardware: _Hardware) -> None:
    """As a Companion enrollment: the redemption, then provisioning complete. A device on the
    Zero-Touch / Knox list is counted all the same (Google enrolled it with our QR code's
    token; nothing is left to refuse), and the audit notes it."""
    _audit_redeem(device, qr_code, source, client_address, outcome="success", code="created")
    listed = is_listed(hardware.serial_number, hardware.imei)
    record("enrollment.complete", actor_type="device", actor=device.public_id,
           outcome="success", code=DeviceState.ENROLLED, target=device.public_id,
           client_address=client_address, serial_number=device.serial_number, source=source,
           management=Management.ADP.value, **({"zero_touch_listed": True} if listed else {}))


# The reconciliation ----------------------------------------------------------------------

class NotConfigured(DomainError):
    pass


def sync() -> SyncResult:
    """enterprises.devices.list: record the devices the notifications missed, and retire ours
    that Google no longer lists (or lists as deleted), their licenses back. Raises AmapiError
    (nothing is retired then) or NotConfigured."""
    settings = current()
    if not is_configured(settings):
        raise NotConfigured("The Android Management API is not set up: an Administrator sets "
                            "it up under Admin → Android Management API.")
    started = utcnow()
    connection = connect(settings)
    prefix = f"{settings.enterprise_name}/devices/"
    listed = new = retired = not_ours = 0
    seen: set[str] = set()
    end_transaction()  # each page is fetched outside a transaction (SQLite's lock)
    for resource in calls.list_devices(connection):
        listed += 1
        try:
            result = record_device(resource, source="sync")
        except NotADevice:
            not_ours += 1
            continue
        finally:
            end_transaction()
        seen.add(resource["name"])
        new += result.outcome in (NEW, FAILED)
        retired += result.outcome == RETIRED
        not_ours += result.outcome == NOT_OURS
    # Ours that Google no longer lists; not those recorded after the listing began (a push
    # may have recorded a device that enrolled meanwhile).
    missing = db.session.scalars(sa.select(Device).where(
        Device.amapi_name.startswith(prefix, autoescape=True),
        Device.state.in_(HOLDS_LICENSE), Device.created_at < started))
    for device in missing.all():
        if device.amapi_name not in seen and retirement.gone_at_google(device, source="sync"):
            db.session.commit()
            retired += 1
    db.session.commit()
    _owe_spent_tokens()
    return SyncResult(listed, new, retired, not_ours)


def _owe_spent_tokens() -> None:
    """Tokens of Automatic Provisioning QR codes with no pending enrollment left whose deletion
    is not owed yet (a process that stopped between a device's commit and the next one, say):
    owed now and tried."""
    spent = db.session.execute(sa.select(QrCode.id, QrCode.enrollment_token_name).where(
        QrCode.management == Management.ADP, QrCode.enrollment_token_name.is_not(None),
        ~sa.exists().where(PendingEnrollment.qr_code_id == QrCode.id,
                           PendingEnrollment.state == PendingState.PENDING),
        ~sa.exists().where(AmapiTask.kind == AmapiTaskKind.DELETE_TOKEN,
                           AmapiTask.resource == QrCode.enrollment_token_name))).all()
    owed = []
    for qr_code_id, token_name in spent:
        owed += _owe(AmapiTaskKind.DELETE_TOKEN, token_name, qr_code_id=qr_code_id)
    db.session.commit()
    if owed:
        tasks.try_now(owed)
