"""Devices → Devices: every device, newest first, searched, filtered, exported; one device.

A page is read in two steps whose cost does not grow with the list: the keys (created_at, id)
of the page's devices, from ix_devices_created_at_id (or ix_devices_state_created_at_id for a
state), then those devices with their users and QR codes. The search matches by prefix,
case-insensitively: serial number, model (lower-case indexes), IMEI, user name, or the QR ID.
"""
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from portal.accounts.models import AdminUser, PortalUser
from portal.amapi.models import AmapiTask
from portal.amapi.tasks import owed_for_device
from portal.audit.models import AuditEvent
from portal.database import db, utcnow
from portal.enrollment.models import Device, QrCode, is_public_id
from portal.vocabulary import MANAGEMENT_LABELS, DeviceState

ORDER = (Device.created_at, Device.id)  # newest first; the keyset of the list
STUCK = "stuck"
FILTERS = (*(state.value for state in DeviceState), STUCK)
FEW = 500          # more matches than this: scanning in list order finds a page sooner
EXPORT_BATCH = 1000
# API level → Android version (https://developer.android.com/tools/releases/platforms).
ANDROID_VERSIONS = {24: "7.0", 25: "7.1", 26: "8.0", 27: "8.1", 28: "9", 29: "10", 30: "11",
                    31: "12", 32: "12L", 33: "13", 34: "14", 35: "15", 36: "16"}
_ROW = (Device.id, Device.public_id, Device.serial_number, Device.imei, Device.manufacturer,
        Device.model, Device.android_api_level, Device.state, Device.created_at,
        Device.enrolled_at, Device.last_contact_at, Device.retired_at,
        PortalUser.username, PortalUser.display_name,
        QrCode.public_id.label("qr_id"), QrCode.name.label("qr_name"), QrCode.management)
CSV_HEADER = ("Serial number", "IMEI", "Manufacturer", "Model", "Android version", "API level",
              "User", "QR ID", "State", "Created", "Enrolled at", "Last contact", "Retired at",
              "Management")


def android_version(api_level: int | None) -> str:
    """"13" for API level 33; a level newer than this table knows reads "API 37"."""
    if api_level is None:
        return ""
    return ANDROID_VERSIONS.get(api_level, f"API {api_level}")


def stuck_since(now: datetime | None = None) -> datetime:
    minutes = current_app.config.get("DEVICE_STUCK_AFTER_MINUTES", 120)
    return (now or utcnow()) - timedelta(minutes=minutes)


def device_keys(query: str = "", state: str = "", now: datetime | None = None) -> sa.Select:
    """(created_at, id) of the devices matching the search and the filter, to be paged by ORDER."""
    return sa.select(Device.created_at, Device.id).where(*_filters(query, state, now))


def _filters(query: str, state: str, now: datetime | None = None) -> list:
    conditions = []
    if state == STUCK:
        conditions += [Device.state == DeviceState.PROVISIONING,
                       Device.created_at < stuck_since(now)]
    elif state in FILTERS:
        conditions.append(Device.state == state)
    if query:
        conditions.append(_matches(query))
    return conditions


# The search ------------------------------------------------------------------------------

def _sqlite() -> bool:
    return db.session.get_bind().dialect.name == "sqlite"


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _prefix(expression, text: str):
    """`expression` starts with `text`, read as a range of the index on `expression`.

    SQLite compares bytes: every string with the prefix sorts below prefix + U+10FFFF.
    PostgreSQL: LIKE 'text%', answered by a text_pattern_ops index whatever the collation."""
    if _sqlite():
        return sa.and_(expression >= text, expression < text + "\U0010ffff")
    return expression.like(_escaped(text) + "%", escape="\\")


def _user_ids(text: str) -> sa.Select:
    if _sqlite():
        # Two ranges of the user name index: as typed, and in lower case (as most are).
        return sa.select(PortalUser.id).where(sa.or_(*(
            _prefix(PortalUser.username, variant) for variant in {text, text.lower()})))
    # search_key starts with the lower-case user name; its trigram index answers the LIKE.
    return sa.select(PortalUser.id).where(
        PortalUser.search_key.like(_escaped(text.lower()) + "%", escape="\\"))


def _conditions(query: str, *, indexed: bool = True) -> list:
    """Each way a device matches the search; each one is answered by an index. indexed=False:
    the same tests on expressions no index answers (`x || ''`, `x + 0`), so that the database
    reads the list in its order and tests each row, rather than collecting every match
    through the indexes and sorting them (what SQLite's planner may choose for an OR)."""
    lower = query.lower()

    def text(column):
        return column if indexed else column.concat("")

    def number(column):
        return column if indexed else column + 0
    conditions = [_prefix(text(Device.serial_key), lower), _prefix(text(Device.model_key), lower),
                  number(Device.user_id).in_(_user_ids(query)),
                  number(Device.qr_code_id).in_(
                      sa.select(QrCode.id).where(QrCode.public_id == query))]
    if query.isdigit():
        # IMEIs are digits only: a range up to the same digits followed by a letter.
        imei = text(Device.imei)
        conditions.append(sa.and_(imei >= query, imei < query + "A"))
    return conditions


def _matches(query: str):
    """The devices matching: by their ids when few do (each condition read from its index),
    else the conditions themselves, tested while the list is read in order (a page fills
    after a few rows since many match)."""
    ids: set[int] = set()
    for condition in _conditions(query):
        found = db.session.scalars(sa.select(Device.id).where(condition).limit(FEW + 1)).all()
        ids.update(found)
        if len(ids) > FEW:
            return sa.or_(*_conditions(query, indexed=False))
    return Device.id.in_(sorted(ids)) if ids else sa.false()


# Rows ------------------------------------------------------------------------------------

def _joined(statement: sa.Select) -> sa.Select:
    return (statement.join(PortalUser, PortalUser.id == Device.user_id)
            .join(QrCode, QrCode.id == Device.qr_code_id))


def device_rows(keys) -> list[sa.Row]:
    """The keys' devices with their user and QR code, in the keys' order; one query."""
    ids = [key.id for key in keys]
    if not ids:
        return []
    found = {row.id: row for row in db.session.execute(
        _joined(sa.select(*_ROW)).where(Device.id.in_(ids)))}
    return [found[id_] for id_ in ids if id_ in found]


# The export's columns in the CSV's order (the API level twice: the version is made from the
# first), the QR code's management (written as its label) last, then the id for the keyset; rows
# are read by position, the cheapest way.
# The times as the database's plain (naive, UTC) datetimes: the CSV writes them with "UTC"
# anyway, and making each one aware again would cost more than reading the row.
_CSV_COLUMNS = (Device.serial_number, Device.imei, Device.manufacturer, Device.model,
                Device.android_api_level, Device.android_api_level, PortalUser.username,
                QrCode.public_id, Device.state,
                *(sa.type_coerce(column, sa.DateTime).label(column.key) for column in (
                    Device.created_at, Device.enrolled_at, Device.last_contact_at,
                    Device.retired_at)),
                QrCode.management, Device.id)
_CREATED, _MANAGEMENT, _ID = 9, 13, 14


def export_rows(query: str = "", state: str = "") -> Iterator[tuple]:
    """The CSV's rows of the filtered list, newest first, read EXPORT_BATCH at a time by
    keyset (each batch one query, one index range), so memory stays flat whatever the list's
    length."""
    statement = (_joined(sa.select(*_CSV_COLUMNS)).where(*_filters(query, state))
                 .order_by(Device.created_at.desc(), Device.id.desc()))
    last = None
    while True:
        # `a <= x AND (a < x OR ...)`, as the pager writes it: a range of the index on a.
        batch = statement if last is None else statement.where(
            Device.created_at <= last[0],
            sa.or_(Device.created_at < last[0], Device.id < last[1]))
        # The session's connection, as Core: the rows need nothing of the ORM's.
        rows = db.session.connection().execute(batch.limit(EXPORT_BATCH)).all()
        for row in rows:
            yield (*row[:4], android_version(row[4]), *row[5:_MANAGEMENT],
                   MANAGEMENT_LABELS.get(row[_MANAGEMENT], row[_MANAGEMENT]))
        if len(rows) < EXPORT_BATCH:
            return
        last = (rows[-1][_CREATED].replace(tzinfo=timezone.utc), rows[-1][_ID])


# One device ------------------------------------------------------------------------------

@dataclass(frozen=True)
class DeviceView:
    device: Device
    qr_code: QrCode
    user: PortalUser
    retired_by: AdminUser | None
    owed: list[AmapiTask]   # Android Device Policy: what the portal still owes Google


def find_device(public_id: str) -> DeviceView | None:
    """The device and what its page shows; None for an id that names none (a NUL or other
    character no public id has never reaches the database: PostgreSQL refuses it)."""
    if not is_public_id(public_id):
        return None
    device = db.session.scalar(sa.select(Device).where(Device.public_id == public_id))
    if device is None:
        return None
    retired_by = db.session.get(AdminUser, device.retired_by_id) if device.retired_by_id \
        else None
    owed = owed_for_device(device.id) if device.amapi_name else []
    return DeviceView(device, device.qr_code, device.user, retired_by, owed)


TIMELINE_ORDER = (AuditEvent.occurred_at, AuditEvent.id)


def timeline(device: Device, qr_public_id: str) -> sa.Select:
    """The audit events about the device, oldest first: its redemption attempts (its serial
    number on its QR code, refusals included), its reports, its retirement.

    Each branch of the OR has its own index (serial_number, actor, target). The same serial
    number may enroll again on the same QR code once retired, as a new device: redemption
    attempts after this device's retirement, or before the previous one's, are not its own."""
    redemptions = [AuditEvent.serial_number == device.serial_number,
                   AuditEvent.target == qr_public_id, AuditEvent.action == "enrollment.redeem"]
    if device.retired_at is not None:
        redemptions.append(AuditEvent.occurred_at <= device.retired_at)
    previous = db.session.scalar(
        sa.select(sa.func.max(Device.retired_at))
        .where(Device.qr_code_id == device.qr_code_id,
               Device.serial_number == device.serial_number,
               Device.id != device.id, Device.created_at <= device.created_at))
    if previous is not None:
        redemptions.append(AuditEvent.occurred_at > previous)
    return (sa.select(AuditEvent).where(sa.or_(
        sa.and_(*redemptions),
        AuditEvent.actor == device.public_id,
        AuditEvent.target == device.public_id))
        .order_by(*TIMELINE_ORDER))
