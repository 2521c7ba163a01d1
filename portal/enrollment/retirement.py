"""Retiring a device: it stops being managed here, and its license returns to the pool at once.

Exact under concurrency: the state changes by a conditional UPDATE, so of two admins retiring
the same device at once (or a retirement racing the device's failure report) only one changes
it, and only a device that held a license (provisioning or enrolled) gives one back.

A device managed by Android Device Policy is also deleted at Google (and wiped): owed in the
retirement's transaction, tried right after it commits, retried by the worker when Google fails
(the device's page shows the attempts); Google failing never undoes the retirement.
"""
import sqlalchemy as sa

from portal.amapi import tasks
from portal.amapi.models import AmapiTask

from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment import webhook_events
from portal.enrollment.models import Device
from portal.errors import DomainError
from portal.licensing.models import LicensePool
from portal.vocabulary import AmapiTaskKind, DeviceState

HOLDS_LICENSE = (DeviceState.PROVISIONING, DeviceState.ENROLLED)


class AlreadyRetired(DomainError):
    """The device was retired before (by another admin, or a second click)."""


def _mark_retired(device: Device, states: tuple, retired_by) -> bool:
    changed = db.session.execute(
        sa.update(Device).where(Device.id == device.id, Device.state.in_(states))
        .values(state=DeviceState.RETIRED, retired_at=utcnow(),
                retired_by_id=retired_by.id if retired_by else None)
        .execution_options(synchronize_session=False))
    return changed.rowcount == 1


def retire_device(device: Device, *, retired_by, actor: tuple[str, str] | None = None) -> bool:
    """Retire the device; True when a license returned to the pool (a failed device gave its
    license back when it failed). Raises AlreadyRetired. actor: (actor_type, name) for the
    audit log when no admin retires it (an Admin API token)."""
    before = device.state
    released = _mark_retired(device, HOLDS_LICENSE, retired_by)
    if released:
        db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1)
                           .values(used=LicensePool.used - 1))
    elif _mark_retired(device, (DeviceState.FAILED,), retired_by):
        before = DeviceState.FAILED
    else:
        db.session.rollback()
        db.session.refresh(device)
        raise AlreadyRetired(f"Device {device.serial_number} was already retired.")
    actor_type, actor_name = actor or (("admin", retired_by.username) if retired_by
                                       else ("operator", "operator"))
    record("device.retire", actor_type=actor_type, actor=actor_name, target=device.public_id,
           serial_number=device.serial_number, before=str(before),
           license_released=released)
    webhook_events.device_retired(device, retired_by=retired_by.username if retired_by else
                                  "operator", license_released=released)
    owed = _owe_deletion(device)
    db.session.commit()
    if owed is not None:
        tasks.try_now([owed])
    db.session.refresh(device)
    return released


def _owe_deletion(device: Device) -> int | None:
    """An Android Device Policy device: its deletion (wipe) at Google, in this transaction."""
    if not device.amapi_name:
        return None
    tasks.owe(AmapiTaskKind.DELETE_DEVICE, device.amapi_name, qr_code_id=device.qr_code_id,
              device_id=device.id)
    db.session.flush()
    return db.session.scalar(sa.select(AmapiTask.id).where(
        AmapiTask.kind == AmapiTaskKind.DELETE_DEVICE, AmapiTask.resource == device.amapi_name))


def gone_at_google(device: Device, *, source: str) -> bool:
    """Google no longer manages the device (deleted there, or no longer listed): retired here,
    its license back, once (False when it held none any more). No commit."""
    if not _mark_retired(device, HOLDS_LICENSE, None):
        return False
    db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1)
                       .values(used=LicensePool.used - 1))
    record("device.retire", actor_type="system", actor="Android Device Policy",
           target=device.public_id, serial_number=device.serial_number, before=str(device.state),
           license_released=True, gone_at_google=True, source=source)
    webhook_events.device_retired(device, retired_by="Android Device Policy",
                                  license_released=True)
    return True
