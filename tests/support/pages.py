"""What console tests read from a response: its HTML, a field's error message, and the audit
events an action recorded (oldest first)."""
import re

import sqlalchemy as sa

from portal.audit.models import AuditEvent


def html_of(response) -> str:
    return response.get_data(as_text=True)


def field_error(html: str, field: str) -> str:
    """The message beside a form field (render_field's error region, in place or sent out of
    band), or ""."""
    match = re.search(rf'<span class="error" id="{field}-error"[^>]*>([^<]*)</span>', html)
    return match.group(1) if match else ""


def events(db, action: str) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                                   .order_by(AuditEvent.id)))
