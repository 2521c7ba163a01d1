"""Recording audit events inside the caller's transaction."""
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import db

# Keys that must never reach the audit log, whatever a caller passes in details.
_SECRET_KEYS = {"otp", "password", "token", "ticket", "device_token", "secret", "client_secret"}
_INSERT = sa.insert(AuditEvent.__table__)  # built once: building costs more than running it


def record(action: str, *, actor_type: str, actor: str | None = None, outcome: str = "success",
           code: str | None = None, target: str | None = None, client_address: str | None = None,
           serial_number: str | None = None, **details) -> AuditEvent:
    """Add an audit event to the current session; the caller's commit makes it durable."""
    event = AuditEvent(action=action, actor_type=actor_type, actor=actor, outcome=outcome,
                       code=code, target=target, client_address=client_address,
                       serial_number=serial_number, details=_clean(details))
    db.session.add(event)
    return event


def write(action: str, *, actor_type: str, actor: str | None = None, outcome: str = "success",
          code: str | None = None, target: str | None = None, client_address: str | None = None,
          serial_number: str | None = None, **details) -> None:
    """record() as one INSERT sent now, without the ORM's flush; for the busiest paths.

    The event is still part of the caller's transaction: its commit makes it durable."""
    db.session.execute(_INSERT, {
        "action": action, "actor_type": actor_type, "actor": actor, "outcome": outcome,
        "code": code, "target": target, "client_address": client_address,
        "serial_number": serial_number, "details": _clean(details)})


def _clean(details: dict) -> dict | None:
    return {k: v for k, v in details.items() if k.lower() not in _SECRET_KEYS} or None
