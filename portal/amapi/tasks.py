"""The calls the portal owes Google (a token, sign-in details or a device to delete): written
in the transaction that makes them necessary, tried right after it commits, and retried by the
worker (`flask --app wsgi amapi tasks --loop`, or the worker loop) with a doubling back-off
until Google answers. Until then the QR code's (or device's) page shows what is owed and why."""
import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from portal.amapi import calls
from portal.amapi.client import AmapiError, connect, is_configured, longest_call_seconds
from portal.amapi.models import AmapiTask
from portal.database import db, end_transaction, utcnow
from portal.vocabulary import AmapiTaskKind

log = logging.getLogger(__name__)
BATCH = 50


def owe(kind: AmapiTaskKind, resource: str, *, qr_code_id: int | None = None,
        device_id: int | None = None) -> None:
    """Add a task to the caller's transaction (no commit); asking twice adds nothing."""
    exists = db.session.scalar(sa.select(AmapiTask.id).where(
        AmapiTask.kind == kind, AmapiTask.resource == resource))
    if exists is None:
        db.session.add(AmapiTask(kind=kind, resource=resource, qr_code_id=qr_code_id,
                                 device_id=device_id, next_attempt_at=utcnow()))


def owed_for_qr_code(qr_code_id: int) -> list[AmapiTask]:
    """What the portal still owes Google for this QR code (for its page)."""
    return list(db.session.scalars(sa.select(AmapiTask).where(
        AmapiTask.qr_code_id == qr_code_id, AmapiTask.done_at.is_(None)).order_by(AmapiTask.id)))


def owed_for_qr_codes(qr_code_ids) -> list[AmapiTask]:
    """What the portal still owes Google for these QR codes (a batch's: one query a thousand)."""
    ids, owed = sorted(set(qr_code_ids)), []
    for start in range(0, len(ids), 1000):
        owed += db.session.scalars(sa.select(AmapiTask).where(
            AmapiTask.qr_code_id.in_(ids[start:start + 1000]), AmapiTask.done_at.is_(None))
            .order_by(AmapiTask.id))
    return owed


def owed_for_device(device_id: int) -> list[AmapiTask]:
    return list(db.session.scalars(sa.select(AmapiTask).where(
        AmapiTask.device_id == device_id, AmapiTask.done_at.is_(None)).order_by(AmapiTask.id)))


def run_due(now: datetime | None = None, *, limit: int = BATCH) -> tuple[int, int]:
    """Try every task that is due: (done, still owed). Each is committed on its own."""
    now = now or utcnow()
    ids = list(db.session.scalars(sa.select(AmapiTask.id).where(
        AmapiTask.done_at.is_(None), AmapiTask.next_attempt_at <= now)
        .order_by(AmapiTask.next_attempt_at, AmapiTask.id).limit(limit)))
    done = failed = 0
    if not ids:
        return 0, 0
    if not is_configured():
        return 0, len(ids)
    try:
        connection = connect()
    except AmapiError as error:
        for task in db.session.scalars(sa.select(AmapiTask).where(AmapiTask.id.in_(ids))):
            _failed(task, error.message, now)
        db.session.commit()
        return 0, len(ids)
    for task_id in ids:
        task = _claim(task_id, now)
        if task is None:
            continue
        if attempt(task, connection, now=now):
            done += 1
        else:
            failed += 1
        db.session.commit()
    return done, failed


def attempt(task: AmapiTask, connection, *, now: datetime | None = None) -> bool:
    """One try of one task: True when Google has done it. The transaction ends before Google
    is asked (what was pending is committed); the outcome is left uncommitted."""
    now = now or utcnow()
    task_id, kind, resource = task.id, task.kind, task.resource
    end_transaction()
    try:
        if kind == AmapiTaskKind.DELETE_TOKEN:
            calls.delete_enrollment_token(connection, resource)
        elif kind == AmapiTaskKind.REMOVE_SIGNIN:
            calls.remove_signin_detail(connection, resource)
        elif kind == AmapiTaskKind.DELETE_DEVICE:
            calls.delete_device(connection, resource, wipe=True)
        else:  # pragma: no cover — the check constraint admits no other kind
            raise AmapiError("task", f"Unknown task {kind}.")
    except AmapiError as error:
        _failed(db.session.get(AmapiTask, task_id), error.message, now)
        return False
    task = db.session.get(AmapiTask, task_id)
    task.attempts += 1
    task.done_at, task.last_error = now, None
    return True


def try_now(task_ids: list[int] | None = None) -> None:
    """After a commit that owed Google something: try at once (the worker retries)."""
    if task_ids is None:
        run_due()
        return
    try:
        connection = connect()
    except AmapiError:
        return
    now = utcnow()
    for task_id in task_ids:
        if (task := _claim(task_id, now)) is not None:
            attempt(task, connection, now=now)
            db.session.commit()


def _claim(task_id: int, now: datetime) -> AmapiTask | None:
    """The task, for this process alone, when it is due and not done: its next attempt moves
    past the longest a call may take, so another worker leaves it alone meanwhile (and takes
    it up again should this process die in the call). None when another worker has it."""
    claimed = db.session.execute(
        sa.update(AmapiTask).where(AmapiTask.id == task_id, AmapiTask.done_at.is_(None),
                                   AmapiTask.next_attempt_at <= now)
        .values(next_attempt_at=now + timedelta(seconds=longest_call_seconds()))
        .execution_options(synchronize_session=False)).rowcount == 1
    db.session.commit()
    return db.session.get(AmapiTask, task_id) if claimed else None


def _failed(task: AmapiTask, message: str, now: datetime) -> None:
    config = current_app.config
    first = config.get("AMAPI_TASK_RETRY_SECONDS", 60)
    most = config.get("AMAPI_TASK_RETRY_MAX_SECONDS", 3600)
    task.attempts += 1
    task.last_error = message[:1000]
    task.next_attempt_at = now + timedelta(seconds=min(most, first * 2 ** (task.attempts - 1)))
    log.warning("Android Management API task %s %s failed (attempt %d): %s",
                task.kind, task.resource, task.attempts, message)
