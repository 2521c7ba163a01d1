"""Emitting events: one delivery per enabled endpoint that subscribed to the event's type,
added to the caller's transaction, so the event and its deliveries commit (or roll back)
together."""
import json
import secrets
from datetime import datetime

import sqlalchemy as sa

from portal.database import db, utcnow
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

# The events, in the order Admin → Webhooks offers them, with what each means.
EVENT_TYPES = {
    "device.enrolled": "A device finished provisioning (the Companion reported success).",
    "device.failed": "A device reported that provisioning failed.",
    "device.retired": "An admin or operator retired a device.",
    "qr_code.exhausted": "A device used the last pending enrollment of an automatic QR code.",
    "qr_code.revoked": "A QR code was revoked.",
    "pending.expired": "Pending enrollments of a QR code expired (their OTP ran out).",
}
# Keys that never go out, whatever a caller puts in data (checked recursively).
FORBIDDEN_KEYS = {"otp", "password", "secret", "token", "ticket", "payload", "device_token",
                  "client_secret", "otp_enc", "payload_enc", "token_hash", "otp_hash"}

_ENDPOINTS = WebhookEndpoint.__table__
_INSERT = sa.insert(WebhookDelivery.__table__)


def new_event_id() -> str:
    return "msg_" + secrets.token_urlsafe(18)


def subscribers(event_type: str) -> list[int]:
    """The ids of the enabled endpoints that want this event (one query on a small table)."""
    rows = db.session.execute(sa.select(_ENDPOINTS.c.id, _ENDPOINTS.c.events)
                              .where(_ENDPOINTS.c.enabled.is_(True)))
    return [row.id for row in rows if event_type in (row.events or [])]


def subscribed(event_type: str) -> sa.ColumnElement[bool]:
    """Whether an enabled endpoint may want this event, as SQL: a column for a statement the
    caller sends anyway (the redemption's first query), so that without webhooks the busiest
    path costs no statement more. subscribers() answers exactly."""
    return sa.exists().where(_ENDPOINTS.c.enabled.is_(True),
                             sa.cast(_ENDPOINTS.c.events, sa.Text).like(f'%"{event_type}"%'))


def body(event_type: str, data: dict, timestamp: datetime) -> str:
    """The JSON sent: {"type", "timestamp", "data"}; refuses a key that names a secret."""
    _check_clean(data)
    return json.dumps({"type": event_type,
                       "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
                       "data": data}, separators=(",", ":"), ensure_ascii=False, default=str)


def _check_clean(value) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in FORBIDDEN_KEYS:
                raise ValueError(f"A webhook event must not carry {key!r}.")
            _check_clean(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_clean(item)


def emit(event_type: str, data: dict, *, endpoints: list[int] | None = None) -> str | None:
    """Queue the event for every subscribed endpoint in the current transaction (sent now, as
    one INSERT, so it takes no flush at the caller's commit). Returns the event id, or None
    when nobody subscribed. endpoints: the subscribers, when the caller looked them up."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event {event_type!r}.")
    targets = subscribers(event_type) if endpoints is None else endpoints
    if not targets:
        return None
    now = utcnow()
    event_id, text = new_event_id(), body(event_type, data, now)
    db.session.execute(_INSERT, [
        {"event_id": event_id, "event_type": event_type, "body": text, "endpoint_id": endpoint_id,
         "status": "queued", "attempts": 0, "next_attempt_at": now, "created_at": now,
         "updated_at": now} for endpoint_id in targets])
    return event_id
