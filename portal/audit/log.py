"""Recording audit events inside the caller's transaction."""
from portal.audit.models import AuditEvent
from portal.database import db

# Keys that must never reach the audit log, whatever a caller passes in details.
_SECRET_KEYS = {"otp", "password", "token", "ticket", "device_token", "secret", "client_secret"}


def record(action: str, *, actor_type: str, actor: str | None = None, outcome: str = "success",
           code: str | None = None, target: str | None = None, client_address: str | None = None,
           serial_number: str | None = None, **details) -> AuditEvent:
    """Add an audit event to the current session; the caller's commit makes it durable."""
    clean = {k: v for k, v in details.items() if k.lower() not in _SECRET_KEYS}
    event = AuditEvent(action=action, actor_type=actor_type, actor=actor, outcome=outcome,
                       code=code, target=target, client_address=client_address,
                       serial_number=serial_number, details=clean or None)
    db.session.add(event)
    return event
