"""One-time enrollment tickets the Self Service Portal hands to the Companion (15 minutes)."""
import hashlib
import secrets
from datetime import timedelta

from portal.database import db, utcnow
from portal.enrollment.models import EnrollmentTicket

TICKET_LIFETIME = timedelta(minutes=15)


def ticket_hash(ticket: str) -> str:
    # Tickets carry 256 random bits, so a plain SHA-256 cannot be reversed or guessed.
    return hashlib.sha256(ticket.encode()).hexdigest()


def issue_ticket(qr_code, user) -> str:
    """A new ticket bound to this QR code and user; only its hash is stored. Commits."""
    ticket = secrets.token_urlsafe(32)
    db.session.add(EnrollmentTicket(ticket_hash=ticket_hash(ticket), qr_code_id=qr_code.id,
                                    user_id=user.id, expires_at=utcnow() + TICKET_LIFETIME))
    db.session.commit()
    return ticket
