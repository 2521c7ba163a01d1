"""Demo data at scale: `flask --app wsgi demo-data`, to try the console and measure it.

The rows are what the portal itself would have written: QR codes of both options with real
frozen (encrypted) payloads and OTPs, pending enrollments in every state, devices that used
them, an audit trail, and license figures that agree with the rows (used = devices holding a
license, reserved = live pending enrollments). They go in with Core executemany, a few
thousand rows and one transaction per batch, never an ORM object per row.
"""
import random
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from portal import otp as otps
from portal import vault
from portal.accounts.models import AdminUser, PortalUser
from portal.accounts.passwords import hash_password
from portal.android.payload import PayloadSettings, build_payload, encode_payload
from portal.android.qr import version_for_size
from portal.audit.log import record
from portal.audit.models import AuditEvent
from portal.database import db, utcnow
from portal.enrollment.models import Device, PendingEnrollment, QrCode
from portal.errors import DomainError
from portal.licensing.models import LicensePool
from portal.provisioning.qr_codes import MAX_USAGE_COUNT
from portal.settings import companion, localizations, otp_policy
from portal.vocabulary import (DeviceState, EnrollmentOption, NetworkType, PendingState,
                               SecurityType, UserSource)

BATCH = 5_000
DAYS = 180                        # the demo history reaches this far back
LOCAL_USER_PASSWORD = "demo user password"
_SSIDS = [("Corp-WLAN", SecurityType.WPA, "corp-wlan-2024!"),
          ("Warehouse", SecurityType.WPA, "forklift-42-go"),
          ("Store-Devices", SecurityType.WPA, "store devices 7"), ("Guest", SecurityType.NONE, None),
          ("Lab-Legacy", SecurityType.WEP, "0123456789"),
          ("Field-Service", SecurityType.WPA, "field-svc-pass")]
_MODELS = [("samsung", "SM-G991B", "R5CR"), ("samsung", "SM-T505", "R9WT"),
           ("Google", "Pixel 7", "2A1"), ("Zebra Technologies", "TC52", "2110"),
           ("HONEYWELL", "CT40", "21K"), ("motorola", "moto g54", "ZY2")]
_FIRST = ["Anna", "Luca", "Sara", "Marco", "Lea", "Noah", "Mia", "Elias", "Julia", "David",
          "Laura", "Nico", "Elena", "Jonas", "Chiara", "Tim", "Nina", "Fabio", "Lena", "Reto"]
_LAST = ["Müller", "Meier", "Rossi", "Keller", "Weber", "Bianchi", "Huber", "Schmid",
         "Fischer", "Brunner", "Gerber", "Ferrari", "Baumann", "Frei", "Colombo", "Moser"]
_REFUSALS = [("invalid_credentials", 50), ("usage_exhausted", 12), ("expired", 12),
             ("qr_revoked", 8), ("no_license", 6), ("unsupported_android_version", 6),
             ("zero_touch_conflict", 6)]


class DemoDataError(DomainError):
    """The sizes asked for cannot go together; the message says why."""


@dataclass(frozen=True)
class Sizes:
    devices: int = 100_000
    qr_codes: int = 10_000
    pending: int = 100_000
    audit: int = 100_000

    @property
    def users(self) -> int:
        return max(10, self.devices // 20)


@dataclass
class _Plan:
    """What is being generated, shared by the steps; ids are assigned before the inserts."""
    sizes: Sizes
    rng: random.Random
    now: datetime
    admins: list[tuple[int | None, str]]
    payloads: "_PayloadContext | None" = None
    users: list[dict] = field(default_factory=list)
    qr_codes: list[dict] = field(default_factory=list)
    devices: list[dict] = field(default_factory=list)
    pending: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)


def has_data() -> bool:
    """True when the database holds users, QR codes, devices or pending enrollments."""
    return any(db.session.scalar(sa.select(sa.literal(1)).select_from(model).limit(1))
               for model in (PortalUser, QrCode, Device, PendingEnrollment))


def generate(sizes: Sizes, *, seed: int = 7, echo=lambda message: None) -> dict[str, int]:
    """Add the demo rows of `sizes` to the current database, batch by batch (each committed),
    and set the license figures from the rows. Returns the rows added per table.

    Raises DemoDataError (nothing written) when the sizes cannot go together."""
    _check(sizes)
    echo(f"Adding {sizes.users:,} users, {sizes.qr_codes:,} QR codes, {sizes.pending:,} "
         f"pending enrollments, {sizes.devices:,} devices and {sizes.audit:,} audit events.")
    if companion.current() is None:  # the payloads need one; the quick start's example
        companion.seed_example_companion()
    started = time.perf_counter()
    plan = _Plan(sizes, random.Random(seed), utcnow(), _admins())
    added = {}
    for build, model in [(_users, PortalUser), (_qr_codes, QrCode), (_pending_slots, None),
                         (_devices, Device), (_used_pending, PendingEnrollment),
                         (_audit_events, AuditEvent)]:
        step_started = time.perf_counter()
        rows = build(plan)
        if model is None:
            continue  # planned only: inserted after the devices they point to
        _insert(model, rows)
        added[model.__tablename__] = len(rows)
        echo(f"{model.__tablename__.replace('_', ' ').replace('qr', 'QR')}: {len(rows):,} rows "
             f"in {time.perf_counter() - step_started:.1f} s")
    figures = set_license_figures()
    record("demo_data.generate", actor_type="operator", actor="operator", **asdict(sizes))
    db.session.commit()
    echo(f"licenses: total {figures[0]:,}, used {figures[1]:,}, reserved {figures[2]:,}")
    echo(f"done in {time.perf_counter() - started:.1f} s")
    return added


def _check(sizes: Sizes) -> None:
    if min(asdict(sizes).values()) < 0:
        raise DemoDataError("Sizes cannot be negative.")
    if sizes.qr_codes == 0 and (sizes.devices or sizes.pending):
        raise DemoDataError("Devices and pending enrollments need at least one QR code.")
    if sizes.pending > MAX_USAGE_COUNT * sizes.qr_codes:
        raise DemoDataError(f"A QR code has at most {MAX_USAGE_COUNT:,} pending enrollments: "
                            "ask for more QR codes or fewer pending enrollments.")


def _admins() -> list[tuple[int | None, str]]:
    rows = db.session.execute(sa.select(AdminUser.id, AdminUser.username).order_by(AdminUser.id))
    return [tuple(row) for row in rows] or [(None, "operator")]


def _next_id(model) -> int:
    return (db.session.scalar(sa.select(sa.func.max(model.id))) or 0) + 1


def _insert(model, rows: list[dict]) -> None:
    table = model.__table__
    for start in range(0, len(rows), BATCH):
        # Keys starting with "_" are the plan's own notes, not columns.
        batch = [{key: value for key, value in row.items() if key[0] != "_"}
                 for row in rows[start:start + BATCH]]
        db.session.execute(sa.insert(table), batch)
        db.session.commit()
    _advance_sequence(table)


def _advance_sequence(table: sa.Table) -> None:
    # The ids were given explicitly; PostgreSQL's sequence must continue after them.
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.text(
            f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
            f"(SELECT max(id) FROM {table.name}))"))
        db.session.commit()


def _moment(plan: _Plan, start: datetime | None = None, end: datetime | None = None):
    start = start or plan.now - timedelta(days=DAYS)
    end = min(end or plan.now, plan.now)
    return start + (end - start) * plan.rng.random()


# Users

def _users(plan: _Plan) -> list[dict]:
    first_id, rng = _next_id(PortalUser), plan.rng
    local_hash = hash_password(LOCAL_USER_PASSWORD)  # one Argon2 hash for all local users
    for n in range(plan.sizes.users):
        uid, first, last = first_id + n, rng.choice(_FIRST), rng.choice(_LAST)
        username = f"{first.lower()}.{_ascii(last)}{uid}"
        local = n % 5 == 0
        created = _moment(plan)
        plan.users.append({
            "id": uid, "source": UserSource.LOCAL if local else UserSource.LDAP,
            "username": username,
            "email": f"{username}@corp.example", "display_name": f"{first} {last}",
            "password_hash": local_hash if local else None,
            "directory_id": None if local else f"uid={username},ou=people,dc=corp,dc=example",
            "tenant_id": None, "active": rng.random() > 0.02, "created_at": created,
            "updated_at": created, "last_sign_in_at": None})
    return plan.users


def _ascii(text: str) -> str:
    return text.lower().replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")


# QR codes

def _qr_codes(plan: _Plan) -> list[dict]:
    sizes, rng = plan.sizes, plan.rng
    automatic = max(min(round(sizes.qr_codes * 0.6), sizes.pending),
                    -(-sizes.pending // MAX_USAGE_COUNT))
    options = ([EnrollmentOption.AUTO] * automatic
               + [EnrollmentOption.SSP] * (sizes.qr_codes - automatic))
    rng.shuffle(options)
    times = sorted(_moment(plan) for _ in options)
    first_id, tags = _next_id(QrCode), _tags()
    plan.payloads = _PayloadContext(companion.current(),
                                    current_app.config["PORTAL_PUBLIC_URL"], otp_policy.current())
    for n, (option, created) in enumerate(zip(options, times)):
        qr = _qr_code(plan, first_id + n, option, created, rng.choice(tags))
        plan.qr_codes.append(qr)
    _usage_counts(plan)
    for qr in plan.qr_codes:
        qr["payload_enc"], qr["qr_version"] = plan.payloads.freeze(qr, plan)
    return plan.qr_codes


def _tags() -> list[str]:
    tags = [loc.tag for loc in localizations.all_localizations()] or ["en"]
    return [tags[0]] * 3 + tags  # mostly the first (English), some of each


@dataclass
class _PayloadContext:
    companion: object
    server_url: str
    policy: object
    passwords: dict = field(default_factory=dict)

    def freeze(self, qr: dict, plan: _Plan) -> tuple[str, int]:
        """The payload as create_qr_code() freezes it: encrypted, with its QR version."""
        user = plan.users[qr["user_id"] - plan.users[0]["id"]]["username"] \
            if qr["user_id"] else None
        if qr["option"] == EnrollmentOption.AUTO:
            otp = otps.for_qr_code()
            qr["otp_enc"], qr["otp_hash"] = vault.encrypt(otp), otps.keyed_hash(otp)
        else:
            otp = None
        text = encode_payload(build_payload(PayloadSettings(
            companion=self.companion, server_url=self.server_url, option=qr["option"],
            qr_id=qr["public_id"], lang=qr["lang"], network=qr["network"],
            wifi_ssid=qr["wifi_ssid"], wifi_security_type=qr["wifi_security"],
            wifi_password=qr["_password"], wifi_hidden=qr["wifi_hidden"], user=user,
            otp=otp)))
        qr.update(QrCode.companion_values(self.companion))
        return vault.encrypt(text), version_for_size(len(text.encode()))

    def password_enc(self, password: str) -> str:
        if password not in self.passwords:  # one ciphertext per network, as one password
            self.passwords[password] = vault.encrypt(password)
        return self.passwords[password]


def _qr_code(plan: _Plan, qr_id: int, option: str, created: datetime, lang: str) -> dict:
    rng = plan.rng
    admin_id, _ = rng.choice(plan.admins)
    wifi = rng.random() < 0.8
    ssid, security, password = rng.choice(_SSIDS) if wifi else (None, None, None)
    status = rng.choices(["active", "expired", "revoked"],
                         [75, 15, 10] if option == EnrollmentOption.AUTO else [90, 0, 10])[0]
    qr = {"id": qr_id, "public_id": secrets.token_urlsafe(9), "option": option, "lang": lang,
          "network": NetworkType.WIFI if wifi else NetworkType.MOBILE, "wifi_ssid": ssid,
          "wifi_security": security,
          "wifi_password_enc": None, "wifi_hidden": wifi and rng.random() < 0.1,
          "user_id": None, "usage_count": None, "otp_enc": None, "otp_hash": None,
          "otp_expires_at": None, "send_to_user": False,
          "alternative_email": "it-desk@corp.example" if rng.random() < 0.2 else None,
          "created_by_id": admin_id, "created_at": created, "revoked_at": None,
          "revoked_by_id": None, "_password": password, "_status": status}
    if password:
        qr["wifi_password_enc"] = plan.payloads.password_enc(password)
    if option == EnrollmentOption.AUTO:
        qr["user_id"] = rng.choice(plan.users)["id"]
        qr["send_to_user"] = rng.random() < 0.3
        qr["otp_expires_at"] = _otp_expiry(plan, created, status)
    if status == "revoked":
        qr["revoked_at"] = _moment(plan, created)
        qr["revoked_by_id"] = admin_id
    return qr


def _otp_expiry(plan: _Plan, created: datetime, status: str) -> datetime | None:
    policy_end = created + timedelta(hours=72)
    if status == "expired":
        return policy_end if policy_end < plan.now else _moment(plan, created)
    if status == "active":  # live: unlimited, or a validity that ends in the future
        return None if plan.rng.random() < 0.5 else \
            plan.now + timedelta(hours=plan.rng.randint(1, 24 * 30))
    return policy_end if plan.rng.random() < 0.5 else None


def _usage_counts(plan: _Plan) -> None:
    """Usage Counts that add up to the pending enrollments: one large bulk QR code (active,
    unlimited), the rest of the counts skewed as real batches are (many small, a few big)."""
    autos = [qr for qr in plan.qr_codes if qr["option"] == EnrollmentOption.AUTO]
    if not autos:
        return
    rng, counts = plan.rng, [1] * len(autos)
    rest = plan.sizes.pending - len(autos)
    bulk = rng.randrange(len(autos))
    autos[bulk].update(_status="active", otp_expires_at=None, revoked_at=None,
                       revoked_by_id=None)
    counts[bulk] += min(MAX_USAGE_COUNT - 1, rest // 50)
    rest -= counts[bulk] - 1
    weights = [rng.expovariate(1) ** 2 for _ in autos]
    weights[bulk] = 0 if len(autos) > 1 else 1
    for index, extra in Counter(rng.choices(range(len(autos)), weights, k=rest)).items():
        counts[index] += extra
    overflow = sum(max(0, count - MAX_USAGE_COUNT) for count in counts)
    counts = [min(count, MAX_USAGE_COUNT) for count in counts]
    for index in range(len(counts)):  # only for extreme sizes: spread what did not fit
        moved = min(overflow, MAX_USAGE_COUNT - counts[index])
        counts[index], overflow = counts[index] + moved, overflow - moved
    for qr, count in zip(autos, counts):
        qr["usage_count"] = count


def _end(qr: dict, now: datetime) -> datetime:
    """Until when devices could use the QR code."""
    ends = [moment for moment in (qr["revoked_at"], qr["otp_expires_at"]) if moment]
    return min(ends + [now])


# Pending enrollments and devices

def _pending_slots(plan: _Plan) -> list[dict]:
    """One row per Usage Count; some are used by devices (linked once the devices have ids),
    the others pending, expired or revoked as their QR code is."""
    next_id, rng = _next_id(PendingEnrollment), plan.rng
    for qr in plan.qr_codes:
        for _ in range(qr["usage_count"] or 0):
            plan.pending.append({
                "id": next_id, "qr_code_id": qr["id"], "state": None,
                "expires_at": qr["otp_expires_at"], "device_id": None,
                "created_at": qr["created_at"], "used_at": None, "ended_at": None, "_qr": qr})
            next_id += 1
    has_ssp = any(qr["option"] == EnrollmentOption.SSP for qr in plan.qr_codes)
    used = min(len(plan.pending), round(plan.sizes.devices * 0.4) if has_ssp
               else plan.sizes.devices)
    for index in rng.sample(range(len(plan.pending)), used):
        plan.pending[index]["state"] = PendingState.USED
    for slot in plan.pending:
        if slot["state"] is None:
            status = slot["_qr"]["_status"]
            slot["state"] = {"active": PendingState.PENDING, "expired": PendingState.EXPIRED}.get(
                status, PendingState.REVOKED)
            if status != "active":
                slot["ended_at"] = _end(slot["_qr"], plan.now)
    return plan.pending


def _devices(plan: _Plan) -> list[dict]:
    rng = plan.rng
    specs = [(slot["_qr"], slot) for slot in plan.pending if slot["state"] == PendingState.USED]
    ssp = [qr for qr in plan.qr_codes if qr["option"] == EnrollmentOption.SSP]
    others = ssp or [qr for qr in plan.qr_codes if qr["option"] == EnrollmentOption.AUTO]
    if others and plan.sizes.devices > len(specs):
        weights = [rng.expovariate(1) ** 2 for _ in others]
        specs += [(qr, None) for qr in rng.choices(others, weights,
                                                   k=plan.sizes.devices - len(specs))]
    timed = sorted(((_moment(plan, qr["created_at"], _end(qr, plan.now)), qr, slot)
                    for qr, slot in specs), key=lambda item: item[0])
    first_id = _next_id(Device)
    for n, (created, qr, slot) in enumerate(timed):
        device = _device(plan, first_id + n, qr, slot, created)
        if slot is not None:
            slot["device_id"], slot["used_at"] = device["id"], created
        plan.devices.append(device)
    return plan.devices


def _device(plan: _Plan, device_id: int, qr: dict, slot, created: datetime) -> dict:
    rng = plan.rng
    if slot is not None:
        state = rng.choices([DeviceState.ENROLLED, DeviceState.PROVISIONING, DeviceState.RETIRED],
                            [85, 5, 10])[0]
    elif qr["option"] == EnrollmentOption.SSP:
        state = rng.choices([DeviceState.ENROLLED, DeviceState.PROVISIONING,
                             DeviceState.FAILED, DeviceState.RETIRED], [80, 4, 8, 8])[0]
    else:
        # an automatic QR's failed device gave its pending enrollment back
        state = DeviceState.FAILED
    manufacturer, model, prefix = rng.choice(_MODELS)
    enrolled = created + timedelta(seconds=rng.randint(60, 900))
    return {
        "id": device_id, "public_id": secrets.token_urlsafe(12), "qr_code_id": qr["id"],
        "user_id": qr["user_id"] or rng.choice(plan.users)["id"],
        "serial_number": f"{prefix}{device_id:08d}",
        "imei": f"35{device_id:013d}" if rng.random() < 0.6 else None,
        "manufacturer": manufacturer, "model": model,
        "android_api_level": rng.choice([29, 30, 31, 33, 33, 34, 34, 35]), "state": state,
        "token_hash": secrets.token_hex(32),
        "failure_reason": ("Provisioning was cancelled on the device."
                           if state == DeviceState.FAILED else None),
        "created_at": created, "updated_at": created if state == DeviceState.PROVISIONING else enrolled,
        "enrolled_at": enrolled if state in (DeviceState.ENROLLED, DeviceState.RETIRED) else None,
        **_contact(plan, state, created, enrolled)}


def _contact(plan: _Plan, state: str, created: datetime, enrolled: datetime) -> dict:
    """Last contact, and for a retired device when and by whom."""
    if state == DeviceState.PROVISIONING:
        return {"last_contact_at": created, "retired_at": None, "retired_by_id": None}
    last = min(enrolled + timedelta(minutes=plan.rng.randint(0, 60 * 24 * 30)), plan.now)
    if state != DeviceState.RETIRED:
        return {"last_contact_at": last, "retired_at": None, "retired_by_id": None}
    return {"last_contact_at": last, "retired_at": _moment(plan, last),
            "retired_by_id": plan.rng.choice(plan.admins)[0]}


def _used_pending(plan: _Plan) -> list[dict]:
    """The pending enrollments, now that the devices that used some of them have ids."""
    return plan.pending


# Audit events

def _audit_events(plan: _Plan) -> list[dict]:
    """About what the portal writes: QR codes created and revoked, redemptions (successful
    and refused, with the reason), completions, OTP views, sign-ins; sorted by time so that
    ids grow with it, as they do when the portal writes them (whole seconds: some share one)."""
    wanted, events = _audit_mix(plan), []
    for kind, count in wanted.items():
        events += [_EVENTS[kind](plan, item) for item in _pick(plan, kind, count)]
    events.sort(key=lambda event: event["occurred_at"])
    first_id = _next_id(AuditEvent)
    for n, event in enumerate(events):
        event["id"] = first_id + n
    plan.events = events
    return events


def _audit_mix(plan: _Plan) -> dict[str, int]:
    n, qrs, devices = plan.sizes.audit, plan.qr_codes, plan.devices
    autos = [qr for qr in qrs if qr["option"] == EnrollmentOption.AUTO]
    wanted = {
        "create": min(len(qrs), round(n * 0.08)),
        "revoke": min(sum(1 for qr in qrs if qr["revoked_at"]), round(n * 0.01)),
        "redeem": min(len(devices), round(n * 0.40)),
        "complete": min(sum(1 for d in devices if d["state"] != DeviceState.PROVISIONING),
                        round(n * 0.28)),
        "view_otp": round(n * 0.04) if autos else 0,
        "admin": round(n * 0.04), "user": round(n * 0.02)}
    while sum(wanted.values()) > n:
        largest = max(wanted, key=wanted.get)
        wanted[largest] -= 1
    wanted["refused"] = n - sum(wanted.values())
    return wanted


def _pick(plan: _Plan, kind: str, count: int) -> list:
    rng = plan.rng
    pools = {"create": plan.qr_codes,
             "revoke": [qr for qr in plan.qr_codes if qr["revoked_at"]],
             "redeem": plan.devices,
             "complete": [d for d in plan.devices if d["state"] != DeviceState.PROVISIONING],
             "view_otp": [qr for qr in plan.qr_codes if qr["option"] == EnrollmentOption.AUTO]}
    pool = pools.get(kind)
    if pool is None:
        return [None] * count
    return rng.sample(pool, count) if count <= len(pool) else rng.choices(pool, k=count)


def _event(moment: datetime, action: str, actor_type: str, actor=None, outcome="success",
           code=None, target=None, client_address=None, serial_number=None, details=None):
    return {"occurred_at": moment.replace(microsecond=0), "actor_type": actor_type,
            "actor": actor, "action": action, "outcome": outcome, "code": code,
            "target": target, "client_address": client_address,
            "serial_number": serial_number, "details": details}


def _address(plan: _Plan) -> str:
    rng = plan.rng
    return f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _admin_name(plan: _Plan, admin_id) -> tuple[str, str]:
    names = dict(plan.admins)
    return ("admin", names[admin_id]) if admin_id else ("operator", "operator")


def _create_event(plan, qr):
    actor_type, actor = _admin_name(plan, qr["created_by_id"])
    return _event(qr["created_at"], "qr_code.create", actor_type, actor, target=qr["public_id"],
                  details={"option": qr["option"], "usage_count": qr["usage_count"],
                           "network": qr["network"], "lang": qr["lang"]})


def _revoke_event(plan, qr):
    actor_type, actor = _admin_name(plan, qr["revoked_by_id"])
    return _event(qr["revoked_at"], "qr_code.revoke", actor_type, actor,
                  target=qr["public_id"])


def _redeem_event(plan, device):
    qr = plan.qr_codes[device["qr_code_id"] - plan.qr_codes[0]["id"]]
    return _event(device["created_at"], "enrollment.redeem", "device", code="created",
                  target=qr["public_id"], client_address=_address(plan),
                  serial_number=device["serial_number"], details={"device_id": device["id"]})


def _complete_event(plan, device):
    failed = device["state"] == DeviceState.FAILED
    return _event(device["updated_at"], "enrollment.complete", "device", device["public_id"],
                  outcome="error" if failed else "success",
                  code=DeviceState.FAILED if failed else DeviceState.ENROLLED,
                  target=device["public_id"], client_address=_address(plan),
                  serial_number=device["serial_number"],
                  details={"reason": device["failure_reason"]} if failed else None)


def _refused_event(plan, _):
    rng = plan.rng
    code = rng.choices([code for code, _ in _REFUSALS], [w for _, w in _REFUSALS])[0]
    target = rng.choice(plan.qr_codes)["public_id"] if plan.qr_codes else None
    _, _, prefix = rng.choice(_MODELS)
    return _event(_moment(plan), "enrollment.redeem", "device", outcome="refused", code=code,
                  target=target, client_address=_address(plan),
                  serial_number=f"{prefix}{rng.randrange(10 ** 8):08d}")


def _view_otp_event(plan, qr):
    actor_type, actor = _admin_name(plan, qr["created_by_id"])
    return _event(_moment(plan, qr["created_at"]), "qr_code.view_otp", actor_type, actor,
                  target=qr["public_id"])


def _admin_sign_in_event(plan, _):
    rng = plan.rng
    _, actor = _admin_name(plan, rng.choice(plan.admins)[0])
    refused = rng.random() < 0.1
    return _event(_moment(plan), "admin.sign_in", "admin", actor,
                  outcome="refused" if refused else "success",
                  code="wrong_password" if refused else None, client_address=_address(plan))


def _user_sign_in_event(plan, _):
    rng = plan.rng
    user = rng.choice(plan.users) if plan.users else {"username": "nobody",
                                                      "source": UserSource.LOCAL}
    refused = rng.random() < 0.15
    return _event(_moment(plan), "user.sign_in", "user", user["username"],
                  outcome="refused" if refused else "success",
                  code="wrong_password" if refused else user["source"],
                  client_address=_address(plan))


_EVENTS = {"create": _create_event, "revoke": _revoke_event, "redeem": _redeem_event,
           "complete": _complete_event, "refused": _refused_event, "view_otp": _view_otp_event,
           "admin": _admin_sign_in_event, "user": _user_sign_in_event}


# Licenses and statistics

def set_license_figures() -> tuple[int, int, int]:
    """Set used and reserved from the rows (the portal's own definitions), and a total with
    room to spare; in the caller's transaction. Returns (total, used, reserved)."""
    used = db.session.scalar(sa.select(sa.func.count()).select_from(Device).where(
        Device.state.in_((DeviceState.PROVISIONING, DeviceState.ENROLLED))))
    reserved = db.session.scalar(sa.select(sa.func.count()).select_from(PendingEnrollment)
                                 .where(PendingEnrollment.state == PendingState.PENDING))
    current = db.session.scalar(sa.select(LicensePool.total).where(LicensePool.id == 1))
    total = max(current or 0, used + reserved + max(100, (used + reserved) // 10))
    if current is None:
        db.session.execute(sa.insert(LicensePool).values(id=1, total=total, used=used,
                                                         reserved=reserved))
    else:
        db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1)
                           .values(total=total, used=used, reserved=reserved))
    return total, used, reserved


def analyze() -> None:
    """Refresh the planner's statistics after a bulk load; on PostgreSQL also VACUUM, which
    lets index-only scans skip the table (they need the visibility map)."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(
                "VACUUM (ANALYZE) portal_users, qr_codes, devices, pending_enrollments, "
                "audit_events")
    else:
        db.session.execute(sa.text("PRAGMA analysis_limit=1000"))
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()


# The command

@click.command("demo-data")
@click.option("--devices", type=click.IntRange(min=0), default=Sizes.devices, show_default=True)
@click.option("--qr-codes", type=click.IntRange(min=0), default=Sizes.qr_codes,
              show_default=True)
@click.option("--pending", type=click.IntRange(min=0), default=Sizes.pending, show_default=True,
              help="Pending enrollments (the automatic QR codes' Usage Counts add up to it).")
@click.option("--audit", type=click.IntRange(min=0), default=Sizes.audit, show_default=True,
              help="Audit events.")
@click.option("--seed", type=int, default=7, show_default=True,
              help="Random seed: the same seed gives the same shape of data.")
@click.option("--yes", is_flag=True, help="Add to a database that already holds data.")
@with_appcontext
def demo_data_command(devices, qr_codes, pending, audit, seed, yes):
    """Fill the database with demo data at scale (users, QR codes, pending enrollments,
    devices, audit events), with license figures that match it."""
    sizes = Sizes(devices=devices, qr_codes=qr_codes, pending=pending, audit=audit)
    try:
        if has_data() and not yes:
            raise click.ClickException(
                "The database already holds users, QR codes or devices; add --yes to add the "
                "demo data to them anyway.")
        generate(sizes, seed=seed, echo=click.echo)
        analyze()
    except DemoDataError as exc:
        raise click.ClickException(str(exc)) from None
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise click.ClickException(f"The database is not ready ({reason}); check DATABASE_URL "
                                   "and run 'flask --app wsgi db upgrade'.") from None
    click.echo(f"Local demo users sign in with the password '{LOCAL_USER_PASSWORD}'.")
