"""What was done to one thing (a user, an admin, a QR code), from the audit log: the newest
events aimed at it, shown on its page."""
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import db

RECENT = 10


def recent_changes(target: str, *kinds: str, limit: int = RECENT) -> list[AuditEvent]:
    """The newest audit events whose action is of one of `kinds` ("user", "qr_code", …) aimed
    at this target (the index on target and time answers it)."""
    return list(db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.target == target,
               sa.or_(*(AuditEvent.action.startswith(kind + ".") for kind in kinds)))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)))
