"""Delivering the outbox: claim a message, send it, record the outcome.

Each message goes through three short transactions, and none is open while we talk to the
mail server (on SQLite an open transaction holds the write lock for everybody):

1. claim: a conditional UPDATE (queued and due, or sending with an expired lease → sending,
   with a new lease and claim token) that exactly one worker wins; on PostgreSQL the candidate
   is picked with FOR UPDATE SKIP LOCKED so that workers do not queue behind each other.
   The MIME message is composed in the same transaction, then it commits.
2. send, with no transaction open.
3. record sent / retry later / failed, only if our claim token still holds.

Two workers never send the same row at the same time. Delivery is still at-least-once: a
worker that dies after the server accepted the message but before step 3 leaves the row
"sending"; once its lease expires another worker sends it again. The Message-ID stays the
same, so the receiving side can recognise the duplicate.
"""
import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.policy import SMTP
from typing import Callable

import sqlalchemy as sa
from flask import after_this_request, current_app

from portal.audit.log import record
from portal.database import db, utcnow
from portal.mail import server
from portal.mail.compose import NotSendable, compose_qr_mail, compose_test_mail
from portal.mail.models import OutboxMessage
from portal.mail.smtp import STEP_NAMES, Check, DeliveryError, SmtpConfig, deliver

log = logging.getLogger(__name__)
M = OutboxMessage


class MailNotConfigured(RuntimeError):
    """No usable mail server: nothing is sent, every message stays queued."""


@dataclass
class Counts:
    sent: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.sent + self.retrying + self.failed


@dataclass(frozen=True)
class _Job:
    id: int
    token: str
    attempts: int
    recipient: str
    body: bytes | None           # None: composing failed, see problem
    problem: str | None = None


def usable_config() -> SmtpConfig:
    """The mail server to use now; raises MailNotConfigured with the reason."""
    mail_server = server.current()
    if mail_server.config is None:
        raise MailNotConfigured(mail_server.problem)
    return mail_server.config


def lease(config: SmtpConfig) -> timedelta:
    # Longer than any conversation can take (every answer is bounded by the timeout), so a
    # live worker never loses its claim; a dead worker's message waits this long.
    return timedelta(seconds=10 * config.timeout + 60)


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off: 1 min, 2, 4, … capped (OUTBOX_RETRY_* settings)."""
    cfg = current_app.config
    base, cap = cfg["OUTBOX_RETRY_SECONDS"], cfg["OUTBOX_RETRY_MAX_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def deliver_due(*, now: datetime | None = None, limit: int | None = None,
                qr_code_id: int | None = None, message_id: int | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> Counts:
    """Send every message that is due (or only a QR code's, or one), one after the other.

    `now` moves the clock (tests). Raises MailNotConfigured before claiming anything.
    """
    config = usable_config()
    clock = (lambda: now) if now is not None else utcnow
    max_attempts = current_app.config["OUTBOX_MAX_ATTEMPTS"]
    _fail_abandoned(clock(), max_attempts)
    counts = Counts()
    only = [M.qr_code_id == qr_code_id] if qr_code_id else []
    only += [M.id == message_id] if message_id else []
    while (limit is None or counts.total < limit) and not should_stop():
        job = _claim(clock(), config, max_attempts, only)
        if job is None:
            break
        error = _send(job, config)
        outcome = _record(job, error, clock(), max_attempts)
        setattr(counts, outcome, getattr(counts, outcome) + 1)
    return counts


def _due(now: datetime, max_attempts: int):
    return sa.or_(sa.and_(M.status == "queued", M.next_attempt_at <= now),
                  sa.and_(M.status == "sending", M.locked_until < now,
                          M.attempts < max_attempts))


def _claim(now: datetime, config: SmtpConfig, max_attempts: int, only: list) -> _Job | None:
    due = _due(now, max_attempts)
    while True:
        # SKIP LOCKED (PostgreSQL; SQLite omits it and serialises with BEGIN IMMEDIATE).
        candidate = db.session.scalar(
            sa.select(M.id).where(due, *only).order_by(M.next_attempt_at, M.id).limit(1)
            .with_for_update(skip_locked=True))
        if candidate is None:
            db.session.rollback()
            return None
        token = secrets.token_hex(16)
        won = db.session.execute(
            sa.update(M).where(M.id == candidate, due)
            .values(status="sending", locked_until=now + lease(config), claim_token=token,
                    attempts=M.attempts + 1)
            .execution_options(synchronize_session=False)).rowcount == 1
        if won:
            job = _compose(candidate, token, config, now)
            db.session.commit()
            return job
        db.session.rollback()  # another worker won this one: look for the next


def _compose(message_id: int, token: str, config: SmtpConfig, now: datetime) -> _Job:
    message = db.session.get(M, message_id, populate_existing=True)
    base = {"id": message.id, "token": token, "attempts": message.attempts,
            "recipient": message.recipient}
    try:
        mail = compose_qr_mail(message, message.qr_code, config.sender, now)
    except NotSendable as reason:
        return _Job(**base, body=None, problem=str(reason))
    except Exception:  # a bug or an unreadable payload: fail this message, keep the worker
        log.exception("Cannot compose outbox message %s", message_id)
        return _Job(**base, body=None,
                    problem="Not sent: the message could not be composed (see the server log).")
    return _Job(**base, body=mail.as_bytes(policy=SMTP))


def _send(job: _Job, config: SmtpConfig) -> DeliveryError | None:
    if job.body is None:
        return DeliveryError("data", job.problem, permanent=True)
    try:
        deliver(config, job.recipient, job.body, server.envelope_address(config.sender))
    except DeliveryError as error:
        return error
    return None


def _record(job: _Job, error: DeliveryError | None, now: datetime, max_attempts: int) -> str:
    if error is None:
        outcome, values = "sent", {"status": "sent", "sent_at": now, "last_error": None}
    elif error.permanent or job.attempts >= max_attempts:
        text = error.detail if job.body is None else str(error)
        if not error.permanent:
            text += f" (gave up after {job.attempts} attempts)"
        outcome, values = "failed", {"status": "failed", "last_error": text}
    else:
        outcome = "retrying"
        values = {"status": "queued", "last_error": str(error),
                  "next_attempt_at": now + retry_delay(job.attempts)}
    result = db.session.execute(
        sa.update(M).where(M.id == job.id, M.status == "sending", M.claim_token == job.token)
        .values(locked_until=None, claim_token=None, **values)
        .execution_options(synchronize_session=False))
    db.session.commit()
    if result.rowcount != 1:
        log.warning("Outbox message %s: the claim expired before the outcome (%s) was "
                    "recorded", job.id, outcome)
    return outcome


def _fail_abandoned(now: datetime, max_attempts: int) -> None:
    """Messages whose worker died on the last allowed attempt: failed, not retried forever."""
    db.session.execute(
        sa.update(M).where(M.status == "sending", M.locked_until < now,
                           M.attempts >= max_attempts)
        .values(status="failed", locked_until=None, claim_token=None,
                last_error="The worker stopped while sending the last allowed attempt.")
        .execution_options(synchronize_session=False))
    db.session.commit()


# Right after the request: a short-lived thread, so the admin never waits for the mail server.

def send_soon(*, qr_code_id: int | None = None, message_id: int | None = None) -> bool:
    """After this request's response is sent, try to deliver these messages in a thread.

    Only when MAIL_SEND_AFTER_COMMIT is on and a mail server is set; whatever fails simply
    stays queued for the worker. Returns True when a delivery was scheduled.
    """
    app = current_app._get_current_object()
    if not app.config.get("MAIL_SEND_AFTER_COMMIT") or server.current().config is None:
        return False

    @after_this_request
    def _schedule(response):
        response.call_on_close(lambda: _start(app, qr_code_id, message_id))
        return response
    return True


def _start(app, qr_code_id, message_id) -> threading.Thread:
    thread = threading.Thread(target=_deliver_in_background, args=(app, qr_code_id, message_id),
                              name="outbox-after-commit", daemon=True)
    thread.start()
    return thread


def _deliver_in_background(app, qr_code_id, message_id) -> None:
    with app.app_context():
        try:
            deliver_due(qr_code_id=qr_code_id, message_id=message_id)
        except MailNotConfigured:
            pass  # switched off since the request: the mail waits in the outbox
        except Exception:  # the worker will deliver it; the request is long answered
            log.exception("Delivery right after the request failed; the worker will retry")
        finally:
            db.session.remove()


# The console's "Send test mail": synchronous, every step reported.

def send_test_mail(config: SmtpConfig, to: str, *, actor: str) -> list[Check]:
    """Send a test mail with these settings (saved or not) and report each step; records the
    attempt in the audit log and commits."""
    checks: list[Check] = []
    mail = compose_test_mail(config.sender, to, f"{config.host}:{config.port}")
    try:
        deliver(config, to, mail.as_bytes(policy=SMTP), server.envelope_address(config.sender),
                report=lambda step, detail: checks.append(Check(STEP_NAMES[step], True, detail)))
    except DeliveryError as error:
        checks.append(Check(STEP_NAMES[error.step], False, error.detail))
    failed = next((check for check in checks if not check.ok), None)
    record("mail.test", actor_type="admin", actor=actor, target=to,
           outcome="error" if failed else "success",
           server=f"{config.host}:{config.port}",
           failed=f"{failed.name}: {failed.detail}" if failed else None)
    db.session.commit()
    return checks


def try_mail_settings(values: server.MailValues, to: str, *, actor: str) -> list[Check]:
    """Send a test mail with values not (necessarily) saved: the typed password, else the
    stored one. Reports each step; a value that cannot work is the one failed step."""
    errors = server.mail_test_errors(values, to)
    if errors:
        return [Check("Settings", False, " ".join(errors.values()))]
    config = server.config_for(values, server.effective_password(values))
    return send_test_mail(config, to, actor=actor)
