"""Queueing mail in the outbox, inside the transaction that creates the QR code."""
import sqlalchemy as sa

from portal.accounts.models import AdminUser, PortalUser
from portal.database import db
from portal.mail.models import OutboxMessage
from portal.provisioning.models import QrCode

SUBJECT = "An Administrator has provisioned a device on your behalf"


def recipients_for(qr_code: QrCode, user: PortalUser | None) -> list[tuple[str, str]]:
    """(kind, address) pairs, PRODUCT.md §2: Automatic Provisioning mails every admin marked
    Mail recipient, the user when asked; both options mail the alternative address."""
    recipients = []
    if qr_code.option == "auto":
        admins = db.session.scalars(sa.select(AdminUser.email).where(
            AdminUser.mail_recipient.is_(True), AdminUser.active.is_(True)))
        recipients += [("qr_to_admin", email) for email in admins]
        if qr_code.send_to_user and user is not None and user.email:
            recipients.append(("qr_to_user", user.email))
    if qr_code.alternative_email:
        recipients.append(("notification", qr_code.alternative_email))
    seen, unique = set(), []
    for kind, address in recipients:  # one message per address, the first reason wins
        if address.lower() not in seen:
            seen.add(address.lower())
            unique.append((kind, address))
    return unique


def queue_for_qr_code(qr_code: QrCode, user: PortalUser | None) -> list[OutboxMessage]:
    """Add the QR code's messages to the session; the caller's commit makes them durable."""
    messages = [OutboxMessage(qr_code_id=qr_code.id, kind=kind, recipient=address,
                              lang=qr_code.lang, subject=SUBJECT)
                for kind, address in recipients_for(qr_code, user)]
    db.session.add_all(messages)
    return messages
