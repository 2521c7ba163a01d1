"""Real processes on a committed database (SQLite file, or PostgreSQL with TEST_DATABASE_URL):
two `outbox send` workers at once, the worker loop riding out a server that is down, and the
delivery right after the admin's request."""
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from portal.database import db
from portal.mail.models import OutboxMessage
from tests.conftest import csrf_token, sign_in
from tests.mail.conftest import smtp_environment
from tests.support.smtp_sink import SilentServer

ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "flask", "--app", "wsgi", "outbox", "send"]


def _rows(database):
    return database.run(lambda: [
        (row.recipient, row.status, row.attempts, row.last_error)
        for row in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))])


def _wait(predicate, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _create_qr_codes(count, recipients):
    """`count` automatic QR codes, each mailed to `recipients` admins, the user and an
    alternative address: count × (recipients + 2) messages."""
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    for n in range(recipients):
        create_admin(f"boss{n}", f"boss{n}@example.com", "admin-password-1",
                     mail_recipient=True)
    for n in range(count):
        user = add_local_user(f"user{n}", f"user{n}@example.com", "user-password-1")
        create_qr_code(QrCodeRequest(option="auto", lang="de-CH", network="mobile", user=user,
                                     usage_count=1, send_to_user=True,
                                     alternative_email=f"it{n}@example.com"),
                       created_by=None, server_url="https://portal.test")


def test_two_workers_send_each_of_40_messages_exactly_once(committed_db, smtp_server,
                                                           tls_files):
    # The first DATA waits until both workers are in a conversation, so they really overlap.
    # On a loaded machine the second may start seconds after the first: the hold lasts until
    # it comes, and the client waits longer than the hold (a held message that timed out at
    # the client was retried later: 39 of 40 sent).
    smtp_server.hold_until_peers, smtp_server.hold_timeout = 2, 60
    settings = smtp_environment(smtp_server, tls_files,
                                SMTP_TIMEOUT=smtp_server.hold_timeout + 10)
    database = committed_db(**settings)
    database.run(_create_qr_codes, 4, 8)
    env = database.environment(**settings)

    workers = [subprocess.Popen(WORKER, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=smtp_server.hold_timeout + 90)
               for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    counts = [tuple(map(int, re.search(r"Sent (\d+), retrying (\d+), failed (\d+)\.",
                                       out).groups())) for out, _err in outputs]
    assert sum(sent for sent, _, _ in counts) == 40 and all(sent > 0 for sent, _, _ in counts)
    assert all(retrying == failed == 0 for _, retrying, failed in counts)
    assert len(smtp_server.messages) == 40
    assert len({msg["Message-ID"] for msg in smtp_server.messages}) == 40
    assert len({env.rcpt_tos[0] for env in smtp_server.envelopes}) == 40 - 3 * 8
    rows = _rows(database)
    assert len(rows) == 40 and {(status, attempts) for _, status, attempts, _ in rows} == {
        ("sent", 1)}


def test_the_worker_loop_waits_out_a_server_that_is_down_and_stops_on_sigterm(
        committed_db, smtp_server, tls_files):
    settings = smtp_environment(smtp_server, tls_files)
    database = committed_db(**settings)
    smtp_server.stop()
    database.run(_create_qr_codes, 1, 0)
    env = dict(database.environment(**settings), OUTBOX_RETRY_SECONDS="1")

    worker = subprocess.Popen(WORKER + ["--loop", "--interval", "0.2"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Its first pass follows this line at once; starting Python and the app can take
        # longer than any wait below on a loaded machine, so that time is not counted.
        started = worker.stdout.readline()
        assert "Outbox worker started" in started, (started, worker.poll())
        # The claim counts the attempt before the conversation; its outcome is recorded after.
        _wait(lambda: all(attempts >= 1 and error for _, _, attempts, error in _rows(database)),
              what="the first attempt's outcome")
        assert all("connection refused" in error for *_, error in _rows(database))
        smtp_server.start()
        _wait(lambda: {status for _, status, _, _ in _rows(database)} == {"sent"},
              what="delivery once the server is back")
    finally:
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=20)

    assert worker.returncode == 0, err
    assert "Outbox worker stopped." in out
    # A line per pass that did something: each message is retried a second after its own
    # failure, so the two may well be sent by two passes.
    passes = [tuple(map(int, found)) for found in
              re.findall(r"Sent (\d+), retrying (\d+), failed (\d+)\.", out)]
    assert passes[0] == (0, 2, 0), out
    assert sum(sent for sent, _, _ in passes) == 2 and all(
        failed == 0 for *_, failed in passes), out
    assert sorted(env.rcpt_tos[0] for env in smtp_server.envelopes) == [
        "it0@example.com", "user0@example.com"]


def _create_through_the_console(database, smtp_server):
    def prepare():
        from portal.accounts.admins import create_admin
        from portal.accounts.users import add_local_user
        create_admin("boss", "boss@example.com", "admin-password-1", mail_recipient=True)
        add_local_user("alice", "alice@example.com", "user-password-1")
    database.run(prepare)
    client = database.app.test_client()
    assert sign_in(client, "boss", "admin-password-1").status_code == 303
    token = csrf_token(client, "/admin/devices/pending/new")
    started = time.monotonic()
    response = client.post("/admin/devices/pending", data={
        "csrf_token": token, "option": "auto", "user_type": "local", "username": "alice",
        "lang": "it", "usage_count": "1", "network": "mobile", "send_to_user": "y"})
    response.close()  # what the WSGI server does once the response is sent
    return response, time.monotonic() - started


def test_mail_goes_out_right_after_the_request_without_a_worker(committed_db, smtp_server,
                                                                tls_files):
    database = committed_db(**smtp_environment(smtp_server, tls_files),
                            MAIL_SEND_AFTER_COMMIT=True)

    response, _ = _create_through_the_console(database, smtp_server)

    assert response.status_code == 303
    # Recorded after the server accepted each message: no separate wait for the server.
    _wait(lambda: {status for _, status, _, _ in _rows(database)} == {"sent"},
          what="the outcome recorded")
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == ["alice@example.com",
                                                                     "boss@example.com"]


def test_a_slow_server_never_delays_the_request_and_the_mail_stays_queued(
        committed_db, smtp_server, tls_files):
    silent, timeout = SilentServer(), 6
    database = committed_db(**smtp_environment(smtp_server, tls_files, SMTP_PORT=silent.port,
                                               SMTP_TIMEOUT=timeout),
                            MAIL_SEND_AFTER_COMMIT=True)
    try:
        response, elapsed = _create_through_the_console(database, smtp_server)
        # Had the request waited for the server, it would have taken the SMTP timeout and the
        # attempt's error would already be recorded; a margin of seconds, not a timing.
        assert response.status_code == 303 and elapsed < timeout
        assert all(error is None for *_, error in _rows(database))
        # Two messages, one after the other, each waiting the whole timeout for a greeting.
        _wait(lambda: all(attempts == 1 and status == "queued"
                          for _, status, attempts, _ in _rows(database)),
              timeout=2 * timeout + 20, what="the attempt after the request")
    finally:
        silent.close()
    assert all(error.startswith("Connect: no answer from") for *_, error in _rows(database))
