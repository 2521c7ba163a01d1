"""What was done to a user or an admin, from the audit log: shown on their page."""
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import db

RECENT = 10


def recent_changes(kind: str, name: str, limit: int = RECENT) -> list[AuditEvent]:
    """The newest audit events of `kind` ("user" or "admin") aimed at this name (the index on
    target and time answers it)."""
    return list(db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.target == name, AuditEvent.action.startswith(kind + "."))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)))
