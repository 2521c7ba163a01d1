"""The outbox under faults: a server that is down, refuses a recipient, never answers, or has
an untrusted certificate. Mail is delayed and retried with back-off, never lost, never sent
twice, and a message that finally fails says why and can be sent again."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.database import utcnow
from portal.enrollment.models import QrCode
from portal.enrollment.pending import revoke_qr_code
from portal.mail import server
from portal.mail.delivery import MailNotConfigured, deliver_due
from portal.mail.models import OutboxMessage, SmtpSettings
from portal.mail.outbox import OutboxError, resend
from portal.mail.server import MailValues, save_mail_settings
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER, outbox_rows
from tests.support.qr import decode_qr
from tests.support.smtp_sink import SilentServer, SmtpSink, free_port


def _statuses():
    return sorted((row.recipient, row.status) for row in outbox_rows())


def test_server_down_while_qr_codes_are_created_delays_the_mail_until_it_is_back(
        db, app, smtp_server, deliver, mail_admins, make_qr_code):
    smtp_server.stop()
    first, second = make_qr_code("auto"), make_qr_code("ssp", alternative_email="it@example.com")

    counts = deliver()

    assert db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)) == 2
    assert (counts.sent, counts.retrying, counts.failed) == (0, 3, 0)
    rows = outbox_rows()
    assert {row.status for row in rows} == {"queued"} and {row.attempts for row in rows} == {1}
    assert all("Connect: connection refused by localhost" in row.last_error for row in rows)
    assert all(timedelta(seconds=55) < row.next_attempt_at - utcnow() <= timedelta(seconds=60)
               for row in rows)

    assert deliver(minutes=0.5).total == 0          # back-off: not due yet
    smtp_server.start()                            # the server is back
    counts = deliver(minutes=1.1)

    assert (counts.sent, counts.retrying, counts.failed) == (3, 0, 0)
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == [
        "boss@example.com", "deputy@example.com", "it@example.com"]
    assert {(row.status, row.attempts) for row in outbox_rows()} == {("sent", 2)}
    assert deliver(minutes=60).total == 0           # nothing is sent twice
    assert len(smtp_server.messages) == 3
    assert {first.id, second.id} == {row.qr_code_id for row in outbox_rows()}


def test_back_off_doubles_up_to_the_cap_and_gives_up_after_the_maximum(
        db, app, smtp_server, deliver, make_qr_code):
    app.config.update(OUTBOX_MAX_ATTEMPTS=4, OUTBOX_RETRY_SECONDS=60,
                      OUTBOX_RETRY_MAX_SECONDS=150)
    smtp_server.stop()
    make_qr_code("ssp", alternative_email="it@example.com")
    waits, clock = [], utcnow()
    for _ in range(3):
        assert deliver_due(now=clock).retrying == 1
        (row,) = outbox_rows()
        waits.append((row.next_attempt_at - clock).total_seconds())
        clock = row.next_attempt_at

    counts = deliver_due(now=clock)

    assert waits == [60, 120, 150]
    assert (counts.retrying, counts.failed) == (0, 1)
    (row,) = outbox_rows()
    assert (row.status, row.attempts) == ("failed", 4)
    assert row.last_error.startswith("Connect: connection refused")
    assert row.last_error.endswith("(gave up after 4 attempts)")
    assert deliver_due(now=clock + timedelta(days=1)).total == 0


def test_a_refused_recipient_fails_at_once_with_the_servers_answer_and_the_others_go_out(
        db, smtp_server, deliver, mail_admins, make_user, make_qr_code):
    smtp_server.refuse["deputy@example.com"] = ("550 5.1.1 <deputy@example.com>: Recipient "
                                                "address rejected: User unknown")
    make_qr_code("auto", user=make_user(email="bob@example.com"), send_to_user=True)

    counts = deliver()

    assert (counts.sent, counts.retrying, counts.failed) == (2, 0, 1)
    assert _statuses() == [("bob@example.com", "sent"), ("boss@example.com", "sent"),
                           ("deputy@example.com", "failed")]
    failed = outbox_rows(status="failed")[0]
    assert failed.attempts == 1
    assert failed.last_error == ("Recipient: refused: 550 5.1.1 <deputy@example.com>: "
                                 "Recipient address rejected: User unknown")
    assert sorted(e.rcpt_tos[0] for e in smtp_server.envelopes) == ["bob@example.com",
                                                                     "boss@example.com"]


def test_a_temporarily_refused_recipient_is_retried(db, smtp_server, deliver, make_qr_code):
    smtp_server.refuse["it@example.com"] = "450 4.2.1 Mailbox busy, try again later"
    make_qr_code("ssp", alternative_email="it@example.com")

    assert deliver().retrying == 1
    assert outbox_rows()[0].last_error == "Recipient: refused: 450 4.2.1 Mailbox busy, try " \
                                          "again later"
    del smtp_server.refuse["it@example.com"]
    assert deliver(minutes=2).sent == 1


def test_a_server_that_never_answers_times_out_and_is_retried_later(
        db, app, smtp_server, deliver, make_qr_code):
    silent = SilentServer()
    app.config.update(SMTP_PORT=silent.port, SMTP_TIMEOUT=0.3)
    make_qr_code("ssp", alternative_email="it@example.com")
    try:
        counts = deliver()
    finally:
        silent.close()

    assert counts.retrying == 1
    (row,) = outbox_rows()
    assert row.status == "queued" and row.attempts == 1
    assert row.last_error == f"Connect: no answer from localhost:{silent.port} within 0.3 s"
    app.config.update(SMTP_PORT=smtp_server.port, SMTP_TIMEOUT=2.0)
    assert deliver(minutes=2).sent == 1


def test_an_untrusted_certificate_is_refused_and_retried(db, app, deliver, make_qr_code):
    app.config["SMTP_CA_FILE"] = None
    make_qr_code("ssp", alternative_email="it@example.com")

    assert deliver().retrying == 1
    assert outbox_rows()[0].last_error.startswith(
        "TLS: the server's certificate is not trusted (unable to get local issuer certificate)")


def test_the_password_never_reaches_the_recorded_error(db, app, smtp_server, deliver,
                                                       make_qr_code):
    smtp_server.refuse["it@example.com"] = f"550 unknown user, you said {SMTP_PASSWORD}"
    app.config["SMTP_USERNAME"] = "someone-else"
    make_qr_code("ssp", alternative_email="it@example.com")

    deliver()

    (row,) = outbox_rows()
    assert row.last_error.startswith("Sign in: the server refused the user name or password "
                                     "(535 5.7.8 Authentication credentials invalid)")
    app.config["SMTP_USERNAME"] = SMTP_USER
    deliver(minutes=2)
    (row,) = outbox_rows()
    assert row.status == "failed" and SMTP_PASSWORD not in row.last_error
    assert "you said ••••" in row.last_error


def test_implicit_tls_with_authentication(db, app, tls_files, deliver, make_qr_code):
    _ca, crt, key = tls_files
    sink = SmtpSink(tls_cert=(crt, key), auth={SMTP_USER: SMTP_PASSWORD}).start()
    app.config.update(SMTP_PORT=sink.port, SMTP_TLS=True, SMTP_STARTTLS=False)
    try:
        qr = make_qr_code("ssp", alternative_email="it@example.com")
        assert deliver().sent == 1
        (msg,) = sink.wait_for(1)
    finally:
        sink.stop()
    assert decode_qr(list(msg.iter_attachments())[0].get_content()) == \
        qr.payload_text()


def test_settings_saved_in_the_console_win_over_the_environment(
        db, app, smtp_server, deliver, make_qr_code):
    app.config["SMTP_PORT"] = free_port()  # the environment points nowhere
    save_mail_settings(MailValues(host="127.0.0.1", port=smtp_server.port, security="starttls",
                                  username=SMTP_USER, password=SMTP_PASSWORD,
                                  sender="Saved <saved@example.org>", timeout=5), actor="test")
    make_qr_code("ssp", alternative_email="it@example.com")

    assert deliver().sent == 1
    assert smtp_server.envelopes[0].mail_from == "saved@example.org"
    assert server.current().source == "saved"


def test_without_a_mail_server_nothing_is_claimed_and_the_mail_waits(db, app, deliver,
                                                                     make_qr_code):
    app.config["SMTP_HOST"] = None
    make_qr_code("ssp", alternative_email="it@example.com")

    with pytest.raises(MailNotConfigured, match="No mail server is set"):
        deliver()
    assert [(row.status, row.attempts) for row in outbox_rows()] == [("queued", 0)]


def test_a_failed_message_can_be_sent_again_once(db, smtp_server, deliver, make_qr_code):
    smtp_server.refuse["it@example.com"] = "550 5.1.1 User unknown"
    make_qr_code("ssp", alternative_email="it@example.com")
    deliver()
    (row,) = outbox_rows()
    del smtp_server.refuse["it@example.com"]

    resend(row.id, actor="admin1")
    with pytest.raises(OutboxError, match="only a failed message can be sent again"):
        resend(row.id, actor="admin2")

    (row,) = outbox_rows()
    assert (row.status, row.attempts) == ("queued", 0)
    assert deliver().sent == 1
    assert len(smtp_server.messages) == 1
    with pytest.raises(OutboxError, match="is sent"):
        resend(row.id, actor="admin1")
    with pytest.raises(OutboxError, match="no message 999999"):
        resend(999999, actor="admin1")


def test_mail_of_a_revoked_qr_code_is_not_sent(db, smtp_server, deliver, make_qr_code):
    qr = make_qr_code("ssp", alternative_email="it@example.com")
    revoke_qr_code(qr, revoked_by=None)

    assert deliver().failed == 1
    assert outbox_rows()[0].last_error == ("Not sent: the QR code was revoked before the mail "
                                           "went out.")
    assert smtp_server.messages == []


def test_a_message_left_sending_by_a_dead_worker_is_taken_over_after_its_lease(
        db, smtp_server, deliver, make_qr_code):
    make_qr_code("ssp", alternative_email="a@example.com")
    make_qr_code("ssp", alternative_email="b@example.com")
    dead, alive = outbox_rows()
    now = utcnow()
    for row, lease_end in ((dead, now - timedelta(seconds=1)),
                           (alive, now + timedelta(minutes=5))):
        db.session.execute(sa.update(OutboxMessage).where(OutboxMessage.id == row.id).values(
            status="sending", attempts=1, locked_until=lease_end, claim_token="x" * 32))
    db.session.commit()

    counts = deliver()

    assert counts.sent == 1
    assert [e.rcpt_tos for e in smtp_server.envelopes] == [["a@example.com"]]
    assert _statuses() == [("a@example.com", "sent"), ("b@example.com", "sending")]
    assert outbox_rows(recipient="a@example.com")[0].attempts == 2


def test_the_same_message_id_is_used_on_every_attempt(db, smtp_server, deliver, make_qr_code):
    make_qr_code("ssp", alternative_email="it@example.com")
    deliver()
    (row,) = outbox_rows()
    resend_id = row.id
    db.session.execute(sa.update(OutboxMessage).values(status="failed"))
    db.session.commit()
    resend(resend_id, actor="admin")
    deliver()

    first, second = smtp_server.wait_for(2)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].startswith(f"<outbox-{resend_id}-")


def test_a_stored_password_that_cannot_be_decrypted_stops_delivery_with_the_reason(
        db, smtp_server, deliver, make_qr_code):
    db.session.add(SmtpSettings(id=1, host="localhost", port=smtp_server.port,
                                security="starttls", username=SMTP_USER,
                                password_enc="encrypted-with-another-key", sender="a@b.example"))
    db.session.commit()
    make_qr_code("ssp", alternative_email="it@example.com")

    with pytest.raises(MailNotConfigured, match="cannot be decrypted with this SECRET_KEY"):
        deliver()
    assert outbox_rows()[0].status == "queued"
