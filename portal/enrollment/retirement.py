"""Retiring a device: it stops being managed here, and its license returns to the pool at once.

Exact under concurrency: the state changes by a conditional UPDATE, so of two admins retiring
the same device at once (or a retirement racing the device's failure report) only one changes
it, and only a device that held a license (provisioning or enrolled) gives one back.
"""
import sqlalchemy as sa

from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment import webhook_events
from portal.enrollment.models import Device
from portal.errors import DomainError
from portal.licensing.models import LicensePool
from portal.vocabulary import DeviceState

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
    db.session.commit()
    db.session.refresh(device)
    return released
