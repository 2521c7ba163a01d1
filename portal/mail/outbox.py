"""The outbox: queueing mail inside the transaction that creates the QR code, listing it for
the console, and queueing a failed message again."""
import sqlalchemy as sa

from portal.accounts.models import AdminUser, PortalUser
from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment.models import QrCode
from portal.errors import DomainError
from portal.mail.models import STATUSES, OutboxMessage
from portal.vocabulary import EnrollmentOption


def N_(text: str) -> str:
    """Marks text for the "mail" catalog; it is translated when the message is sent."""
    return text


SUBJECT = N_("An Administrator has provisioned a device on your behalf")
KIND_NAMES = {"qr_to_admin": "QR code to a mail recipient", "qr_to_user": "QR code to the user",
              "notification": "Notification to the alternative address", "test": "Test mail"}


class OutboxError(DomainError):
    """The outbox refused an action on a message; the message says why."""


def recipients_for(qr_code: QrCode, user: PortalUser | None) -> list[tuple[str, str]]:
    """(kind, address) pairs, PRODUCT.md §2: Automatic Provisioning mails every admin marked
    Mail recipient, the user when asked; both options mail the alternative address."""
    recipients = []
    if qr_code.option == EnrollmentOption.AUTO:
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


def listing(status: str | None = None) -> sa.Select:
    """Messages with their QR code's public id, newest first, optionally of one status."""
    statement = (sa.select(OutboxMessage, QrCode.public_id)
                 .outerjoin(QrCode, QrCode.id == OutboxMessage.qr_code_id)
                 .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc()))
    if status in STATUSES:
        statement = statement.where(OutboxMessage.status == status)
    return statement


def messages_for_qr_code(qr_code: QrCode) -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage)
                                   .where(OutboxMessage.qr_code_id == qr_code.id)
                                   .order_by(OutboxMessage.id)))


def status_counts() -> dict[str, int]:
    rows = db.session.execute(sa.select(OutboxMessage.status, sa.func.count())
                              .group_by(OutboxMessage.status))
    return {status: 0 for status in STATUSES} | dict(rows.all())


def resend(message_id: int, *, actor: str, actor_type: str = "admin") -> OutboxMessage:
    """Queue a failed message again, due now, with its attempts reset, and commit.

    Raises OutboxError when the message does not exist or did not fail. The conditional
    UPDATE makes two admins pressing Send again at once queue it only once.
    """
    result = db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == "failed")
        .values(status="queued", attempts=0, next_attempt_at=utcnow(), locked_until=None,
                claim_token=None)
        .execution_options(synchronize_session=False))
    message = db.session.get(OutboxMessage, message_id, populate_existing=True)
    if result.rowcount != 1:
        db.session.rollback()
        if message is None:
            raise OutboxError(f"There is no message {message_id} in the outbox.")
        raise OutboxError(f"Message {message_id} to {message.recipient} is {message.status}; "
                          "only a failed message can be sent again.")
    record("outbox.resend", actor_type=actor_type, actor=actor, target=str(message_id),
           recipient=message.recipient, kind=message.kind)
    db.session.commit()
    return message
