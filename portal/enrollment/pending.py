"""Pending enrollments: expiry and revocation, which return their licenses to the pool.

An Android Device Policy QR code's token (or sign-in details) at Google is released in the same
transaction (owe_google_release: a deletion owed, amapi.tasks) and tried right after the
commit; a Google failure never undoes the revocation or the expiry: the worker retries."""
import logging
from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm  # noqa: F401  (joinedload)

from portal.amapi import tasks as amapi_tasks
from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment import webhook_events
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.errors import DomainError
from portal.licensing import seats
from portal.vocabulary import AmapiTaskKind, EnrollmentOption, Management, PendingState

log = logging.getLogger(__name__)


class AlreadyRevoked(DomainError):
    """The QR code was revoked before (by another admin, or a second click)."""


def owe_google_release(qr_code: QrCode) -> bool:
    """In the caller's transaction: what Google made for an Android Device Policy QR code is
    no longer needed (revoked, all used or expired): its enrollment token's deletion, or the
    removal of its sign-in details, is owed (amapi.tasks). False for a Companion QR code."""
    if qr_code.management != Management.ADP:
        return False
    if qr_code.enrollment_token_name:
        amapi_tasks.owe(AmapiTaskKind.DELETE_TOKEN, qr_code.enrollment_token_name,
                        qr_code_id=qr_code.id)
    elif qr_code.option == EnrollmentOption.SSP:
        amapi_tasks.owe(AmapiTaskKind.REMOVE_SIGNIN, qr_code.public_id, qr_code_id=qr_code.id)
    else:
        return False
    return True


def pay_google_soon(qr_code_ids) -> None:
    """After the commit that owed them: try what is owed to Google for these QR codes now. A
    failure (Google down, the API not set up) is only recorded on the task: the worker
    (amapi.tasks.run_due) retries, and the QR code's page shows it meanwhile."""
    ids = [task.id for task in amapi_tasks.owed_for_qr_codes(qr_code_ids)]
    if not ids:
        return
    try:
        amapi_tasks.try_now(ids)
    except Exception:  # never fail what was committed; the task stays owed and is retried
        db.session.rollback()
        log.exception("Android Management API: trying owed tasks %s failed; the worker retries",
                      ids)


def _release_expired(now: datetime) -> list[int]:
    """The Android Device Policy QR codes (Automatic Provisioning, not revoked) whose last
    waiting pending enrollments this transaction expired (ended_at == now): owe the deletion
    of their tokens. One query, whatever the number of rows expired."""
    def pending(*conditions):
        return sa.exists().where(PendingEnrollment.qr_code_id == QrCode.id, *conditions)
    released = []
    for qr_code in db.session.scalars(sa.select(QrCode).where(
            QrCode.management == Management.ADP, QrCode.enrollment_token_name.is_not(None),
            QrCode.revoked_at.is_(None),
            pending(PendingEnrollment.state == PendingState.EXPIRED,
                    PendingEnrollment.ended_at == now),
            ~pending(PendingEnrollment.state == PendingState.PENDING))):
        if owe_google_release(qr_code):
            released.append(qr_code.id)
    return released


def _end_pending(where, state: PendingState, now: datetime, *,
                 qr_code_ids: list[int] | None = None) -> int:
    # The state='pending' condition makes each row end exactly once, even when two processes
    # expire or revoke at the same moment; rowcount is what this transaction really ended.
    # qr_code_ids: filled with the QR code of each row ended (RETURNING), for the webhooks.
    statement = (sa.update(PendingEnrollment)
                 .where(PendingEnrollment.state == PendingState.PENDING, where)
                 .values(state=state, ended_at=now)
                 .execution_options(synchronize_session=False))
    if qr_code_ids is None:
        ended = db.session.execute(statement).rowcount
    else:
        qr_code_ids += db.session.execute(
            statement.returning(PendingEnrollment.qr_code_id)).scalars().all()
        ended = len(qr_code_ids)
    if ended:
        seats.release_reserved(ended)
    return ended


def end_one_pending(qr_code_id: int, pending_id: int) -> bool:
    """End one pending enrollment of the QR code (Delete) and release its license; False when
    it is not pending any more (used by a device, expired or ended a moment ago)."""
    where = sa.and_(PendingEnrollment.id == pending_id, PendingEnrollment.qr_code_id == qr_code_id)
    return _end_pending(where, PendingState.REVOKED, utcnow()) == 1


def _due(now: datetime) -> tuple:
    """The conditions of a reservation whose OTP has expired by `now` (an unlimited one never)."""
    return PendingEnrollment.state == PendingState.PENDING, PendingEnrollment.expires_at < now


def _first_due(now: datetime) -> sa.Select:
    # Ordered by expires_at so that PostgreSQL walks the (state, expires_at) index: without
    # it, its estimate of many due rows makes it scan the whole table to find none.
    return (sa.select(PendingEnrollment.id).where(*_due(now))
            .order_by(PendingEnrollment.expires_at).limit(1))


def expire_due(now: datetime | None = None) -> int:
    """End every pending enrollment whose OTP has expired and release its license.

    Commits, whether anything was due or not: what the caller added to the session before is
    written with it, never thrown away (a rollback when nothing was due used to discard it)."""
    now = now or utcnow()
    if db.session.scalar(_first_due(now)) is None:
        db.session.commit()  # ends the transaction (SQLite: frees the write lock) at once
        return 0
    webhooks = webhook_events.wants_pending_expired()
    qr_code_ids = [] if webhooks else None
    ended = _end_pending(PendingEnrollment.expires_at < now, PendingState.EXPIRED, now,
                         qr_code_ids=qr_code_ids)
    released = []
    if ended:
        record("pending.expire", actor_type="system", count=ended)
        if webhooks:
            webhook_events.pending_expired(qr_code_ids, webhooks)
        released = _release_expired(now)
    db.session.commit()
    pay_google_soon(released)
    return ended


def current_figures(now: datetime | None = None) -> seats.Figures:
    """The license figures with every reservation whose OTP has expired counted as released,
    as the next expiry will write it. A pure read: nothing is written or committed."""
    now = now or utcnow()
    # Counted only when the index probe finds a due row (the usual answer is none, since the
    # worker expires them): a bare count can be planned as a scan of every pending row.
    count = sa.select(sa.func.count()).select_from(PendingEnrollment).where(*_due(now))
    released = sa.case((_first_due(now).scalar_subquery().is_not(None),
                        count.scalar_subquery()), else_=0)
    return seats.figures(released)


def revoke_qr_code(qr_code: QrCode, *, revoked_by, commit: bool = True,
                   actor: tuple[str, str] | None = None) -> int:
    """Revoke a QR from now on; its unused pending enrollments end and free their licenses.

    Returns how many pending enrollments ended; raises AlreadyRevoked (nothing changed).
    commit=False: in the caller's transaction (a batch revokes all its QR codes in one); what
    is owed to Google then is tried by the caller (pay_google_soon) or the worker.
    actor: (actor_type, name) for the audit log when no admin revokes it (an Admin API token).
    """
    now = utcnow()
    marked = db.session.execute(
        sa.update(QrCode).where(QrCode.id == qr_code.id, QrCode.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by_id=revoked_by.id if revoked_by else None)
        .execution_options(synchronize_session=False))
    if marked.rowcount != 1:
        if commit:
            db.session.rollback()
        raise AlreadyRevoked("This QR code was already revoked.")
    ended = _end_pending(PendingEnrollment.qr_code_id == qr_code.id, PendingState.REVOKED, now)
    actor_type, actor_name = actor or (("admin", revoked_by.username) if revoked_by
                                       else ("operator", "operator"))
    record("qr_code.revoke", actor_type=actor_type, actor=actor_name, target=qr_code.public_id,
           released=ended)
    webhook_events.qr_code_revoked(qr_code, released=ended, revoked_by=revoked_by.username
                                   if revoked_by else "operator")
    owed = owe_google_release(qr_code)
    if commit:
        db.session.commit()
        if owed:
            pay_google_soon([qr_code.id])
    db.session.refresh(qr_code)
    return ended


LIST_ORDER = (PendingEnrollment.id,)  # oldest first; the keyset of View OTP's list


def pending_enrollments(qr_code: QrCode) -> sa.Select:
    """The QR's pending enrollments, oldest first (LIST_ORDER, read from the (qr_code_id, id)
    index), with the device that used each (one query)."""
    return (sa.select(PendingEnrollment).where(PendingEnrollment.qr_code_id == qr_code.id)
            .options(sa.orm.joinedload(PendingEnrollment.device))
            .order_by(PendingEnrollment.id))


def pending_counts(qr_code: QrCode) -> dict[str, int]:
    """How many of the QR's pending enrollments are in each state, as of now."""
    state = PendingEnrollment.current_state_at(utcnow())
    rows = db.session.execute(
        sa.select(state, sa.func.count())
        .where(PendingEnrollment.qr_code_id == qr_code.id).group_by(state))
    counts = {state.value: 0 for state in PendingState}
    counts.update({state: count for state, count in rows})
    return counts
