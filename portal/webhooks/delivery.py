"""Delivering webhooks: claim a delivery, POST it signed, record the outcome — the mail
outbox's worker (portal/mail/delivery.py) for HTTPS.

Each delivery goes through three short transactions, none open while we wait for the
receiver:

1. claim: a conditional UPDATE (queued and due, or sending with an expired lease → sending,
   with a new lease and claim token) that exactly one worker wins; on PostgreSQL the candidate
   is picked with FOR UPDATE SKIP LOCKED so that workers do not queue behind each other.
2. POST, with no transaction open: signed per Standard Webhooks (the `standardwebhooks`
   library), verified against the system's CAs or TRUSTED_CA_FILE, redirects not followed;
   sent to the very address whose check it passed (portal.webhooks.addresses).
3. record delivered (any 2xx) / retry later (exponential back-off) / failed (after the last
   attempt), only if our claim token still holds.

At-least-once: a worker that dies after the receiver answered but before step 3 leaves the row
"sending"; once its lease expires another worker sends it again, with the same webhook-id and
body, so the receiver can recognise the duplicate.
"""
import logging
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
import sqlalchemy as sa
from flask import after_this_request, current_app
from standardwebhooks.webhooks import Webhook

from portal import outbound, vault
from portal.database import db, utcnow
from portal.webhooks import addresses
from portal.webhooks.models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)
D = WebhookDelivery
ANSWER_LIMIT = 1000        # bytes of the receiver's answer kept for the console
USER_AGENT = "QR-Code-Provisioning-Webhooks/1"
PORTS = {"https": 443, "http": 80}


@dataclass
class Counts:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.delivered + self.retrying + self.failed


@dataclass(frozen=True)
class _Job:
    id: int
    token: str
    attempts: int
    event_id: str
    url: str
    signing_secrets: tuple[str, ...]   # the current secret, then a previous one still signing
    body: str


@dataclass(frozen=True)
class Outcome:
    status: int | None = None     # the HTTP status, None when there was no answer
    answer: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def lease() -> timedelta:
    # Longer than a POST can take (connect + read timeouts), so a live worker keeps its claim.
    return timedelta(seconds=3 * current_app.config["WEBHOOK_TIMEOUT"] + 60)


def retry_delay(attempts: int) -> timedelta:
    """Exponential back-off: WEBHOOK_RETRY_SECONDS, doubled each attempt, capped."""
    cfg = current_app.config
    base, cap = cfg["WEBHOOK_RETRY_SECONDS"], cfg["WEBHOOK_RETRY_MAX_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), cap))


def signed_headers(signing_secrets: Sequence[str], event_id: str, body: str,
                   timestamp: datetime) -> dict:
    """The Standard Webhooks headers for this attempt (the signature covers the timestamp):
    one signature per secret, space-separated (a receiver accepts any one it can verify)."""
    return {"webhook-id": event_id,
            "webhook-timestamp": str(int(timestamp.timestamp())),
            "webhook-signature": " ".join(Webhook(secret).sign(event_id, timestamp, body)
                                          for secret in signing_secrets),
            "Content-Type": "application/json", "User-Agent": USER_AGENT}


def deliver_due(*, now: datetime | None = None, limit: int | None = None,
                delivery_id: int | None = None,
                should_stop: Callable[[], bool] = lambda: False) -> Counts:
    """Send every delivery that is due (or only one), one after the other. `now` moves the
    clock for the schedule (tests); the signature's timestamp is always the real time."""
    clock = (lambda: now) if now is not None else utcnow
    max_attempts = current_app.config["WEBHOOK_MAX_ATTEMPTS"]
    _fail_abandoned(clock(), max_attempts)
    counts = Counts()
    only = [D.id == delivery_id] if delivery_id else []
    while (limit is None or counts.total < limit) and not should_stop():
        job = _claim(clock(), max_attempts, only)
        if job is None:
            break
        outcome = post(job)
        result = _record(job, outcome, clock(), max_attempts)
        setattr(counts, result, getattr(counts, result) + 1)
    return counts


def _due(now: datetime, max_attempts: int):
    return sa.or_(sa.and_(D.status == "queued", D.next_attempt_at <= now),
                  sa.and_(D.status == "sending", D.locked_until < now,
                          D.attempts < max_attempts))


def _claim(now: datetime, max_attempts: int, only: list) -> _Job | None:
    due = _due(now, max_attempts)
    while True:
        candidate = db.session.scalar(
            sa.select(D.id).where(due, *only).order_by(D.next_attempt_at, D.id).limit(1)
            .with_for_update(skip_locked=True))
        if candidate is None:
            db.session.rollback()
            return None
        token = secrets.token_hex(16)
        won = db.session.execute(
            sa.update(D).where(D.id == candidate, due)
            .values(status="sending", locked_until=now + lease(), claim_token=token,
                    attempts=D.attempts + 1, updated_at=utcnow())
            .execution_options(synchronize_session=False)).rowcount == 1
        if won:
            row = db.session.execute(
                sa.select(D.attempts, D.event_id, D.body, WebhookEndpoint)
                .join(WebhookEndpoint, WebhookEndpoint.id == D.endpoint_id)
                .where(D.id == candidate)).one()
            endpoint = row.WebhookEndpoint
            signing = [endpoint.secret_enc]
            if endpoint.previous_secret_signs(utcnow()):
                signing.append(endpoint.previous_secret_enc)
            job = _Job(candidate, token, row.attempts, row.event_id, endpoint.url,
                       tuple(vault.decrypt(secret) for secret in signing), row.body)
            db.session.commit()   # read before: after it, the endpoint would be read again
            return job
        db.session.rollback()  # another worker won this one: look for the next


def post(job: _Job) -> Outcome:
    """POST the body once, to an address the host name resolved to and that was checked just
    now (never to what it resolves to a moment later); never raises for what the network or
    the receiver does."""
    verify = current_app.config.get("TRUSTED_CA_FILE") or True
    timeout = current_app.config["WEBHOOK_TIMEOUT"]
    headers = signed_headers(job.signing_secrets, job.event_id, job.body, utcnow())
    parts = urlsplit(job.url)
    try:
        resolved = addresses.resolve(parts.hostname, parts.port or PORTS[parts.scheme])
    except (OSError, UnicodeError) as error:
        return _unanswered(error, job.url, timeout)
    if problem := addresses.resolved_problem(parts.hostname, resolved):
        return Outcome(error=problem)
    for address in resolved:
        try:
            return _post_to(address, job, headers, verify, timeout)
        except requests.exceptions.RequestException as error:
            if address != resolved[-1] and outbound.not_connected(error):
                continue  # refused at once: the name's next address, as urllib3 itself would
            return _unanswered(error, job.url, timeout)
        except (OSError, ValueError) as error:
            return Outcome(error=f"The request failed ({type(error).__name__}).")
    return Outcome(error="The request failed (no address).")


def _post_to(address: str, job: _Job, headers: dict, verify, timeout) -> Outcome:
    with outbound.pinned_session(address) as session, session.post(
            job.url, data=job.body.encode(), headers=headers, timeout=timeout, verify=verify,
            allow_redirects=False, stream=True) as response:
        answer = response.raw.read(ANSWER_LIMIT, decode_content=True) or b""
        text = answer.decode("utf-8", "replace")
        if response.is_redirect or 300 <= response.status_code < 400:
            return Outcome(response.status_code, text,
                           f"HTTP {response.status_code}: redirects are not followed; "
                           "enter the final address.")
        if not 200 <= response.status_code < 300:
            return Outcome(response.status_code, text, f"HTTP {response.status_code}")
        return Outcome(response.status_code, text)


def _unanswered(error: BaseException, url: str, timeout) -> Outcome:
    # The portal's one wording of a failed https request (portal.outbound).
    problem = outbound.describe(error, url, timeout=timeout)
    return Outcome(error=f"The receiver: {problem.message}. {problem.fix}")


def _record(job: _Job, outcome: Outcome, now: datetime, max_attempts: int) -> str:
    values = {"last_status": outcome.status, "last_answer": outcome.answer,
              "locked_until": None, "claim_token": None, "updated_at": utcnow()}
    if outcome.ok:
        result = "delivered"
        values |= {"status": "delivered", "delivered_at": now, "last_error": None}
    elif job.attempts >= max_attempts:
        result = "failed"
        values |= {"status": "failed",
                   "last_error": f"{outcome.error} (gave up after {job.attempts} attempts)"}
    else:
        result = "retrying"
        values |= {"status": "queued", "last_error": outcome.error,
                   "next_attempt_at": now + retry_delay(job.attempts)}
    changed = db.session.execute(
        sa.update(D).where(D.id == job.id, D.status == "sending", D.claim_token == job.token)
        .values(**values).execution_options(synchronize_session=False))
    db.session.commit()
    if changed.rowcount != 1:
        log.warning("Webhook delivery %s: the claim expired before the outcome (%s) was "
                    "recorded", job.id, result)
    return result


def _fail_abandoned(now: datetime, max_attempts: int) -> None:
    """Deliveries whose worker died on the last allowed attempt: failed, not retried forever."""
    db.session.execute(
        sa.update(D).where(D.status == "sending", D.locked_until < now,
                           D.attempts >= max_attempts)
        .values(status="failed", locked_until=None, claim_token=None, updated_at=utcnow(),
                last_error="The worker stopped while sending the last allowed attempt.")
        .execution_options(synchronize_session=False))
    db.session.commit()


# Right after the request (WEBHOOK_SEND_AFTER_COMMIT): a short-lived thread, so the admin
# never waits for the receiver; whatever fails stays queued for the worker.

def send_soon(*, delivery_id: int | None = None) -> bool:
    app = current_app._get_current_object()
    if not app.config.get("WEBHOOK_SEND_AFTER_COMMIT"):
        return False

    @after_this_request
    def _schedule(response):
        response.call_on_close(lambda: _start(app, delivery_id))
        return response
    return True


def _start(app, delivery_id) -> threading.Thread:
    thread = threading.Thread(target=_deliver_in_background, args=(app, delivery_id),
                              name="webhooks-after-commit", daemon=True)
    thread.start()
    return thread


def _deliver_in_background(app, delivery_id) -> None:
    with app.app_context():
        try:
            deliver_due(delivery_id=delivery_id)
        except Exception:  # the worker will deliver it; the request is long answered
            log.exception("Webhook delivery right after the request failed; the worker retries")
        finally:
            db.session.remove()
