"""`flask outbox send | retry | list`: counts, exit codes, and one clear line on bad input."""
import pytest

from tests.mail.conftest import outbox_rows


@pytest.fixture
def run(app, db):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=["outbox", *map(str, args)])
    return invoke


def test_send_delivers_and_prints_the_counts(run, smtp_server, make_qr_code):
    smtp_server.refuse["bad@example.com"] = "550 5.1.1 User unknown"
    make_qr_code("ssp", alternative_email="it@example.com")
    make_qr_code("ssp", alternative_email="bad@example.com")

    result = run("send")

    assert result.exit_code == 0, result.output
    assert result.stdout == "Sent 1, retrying 0, failed 1.\n"
    assert len(smtp_server.messages) == 1


def test_send_with_a_limit_leaves_the_rest_for_the_next_pass(run, smtp_server, make_qr_code):
    for n in range(3):
        make_qr_code("ssp", alternative_email=f"it{n}@example.com")

    assert run("send", "--limit", 2).stdout == "Sent 2, retrying 0, failed 0.\n"
    assert run("send").stdout == "Sent 1, retrying 0, failed 0.\n"
    assert run("send").stdout == "Sent 0, retrying 0, failed 0.\n"


def test_send_without_a_mail_server_exits_non_zero_and_claims_nothing(run, app, make_qr_code):
    app.config["SMTP_HOST"] = None
    make_qr_code("ssp", alternative_email="it@example.com")

    result = run("send")

    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Mail is not sent: No mail server is set")
    assert [(row.status, row.attempts) for row in outbox_rows()] == [("queued", 0)]


def test_retry_queues_a_failed_message_again(run, smtp_server, make_qr_code):
    smtp_server.refuse["it@example.com"] = "550 5.1.1 User unknown"
    make_qr_code("ssp", alternative_email="it@example.com")
    run("send")
    (row,) = outbox_rows()
    del smtp_server.refuse["it@example.com"]

    result = run("retry", row.id)

    assert result.exit_code == 0
    assert result.stdout == f"Message {row.id} to it@example.com is queued again.\n"
    assert run("send").stdout == "Sent 1, retrying 0, failed 0.\n"
    refused = run("retry", row.id)
    assert refused.exit_code == 1
    assert refused.stderr == (f"Error: Message {row.id} to it@example.com is sent; only a "
                              "failed message can be sent again.\n")
    assert run("retry", 424242).stderr == "Error: There is no message 424242 in the outbox.\n"
    assert run("retry", "abc").exit_code == 2


def test_list_prints_the_messages_of_a_status(run, smtp_server, make_qr_code):
    smtp_server.refuse["bad@example.com"] = "550 5.1.1 User unknown"
    qr = make_qr_code("ssp", alternative_email="bad@example.com")
    make_qr_code("ssp", alternative_email="it@example.com")
    run("send")

    result = run("list", "--status", "failed")

    (line,) = result.stdout.splitlines()
    fields = line.split("\t")
    assert fields[1:6] == ["failed", "1", "notification", "bad@example.com", qr.public_id]
    assert fields[7] == "Recipient: refused: 550 5.1.1 User unknown"
    assert result.stderr == "1 message.\n"
    assert run("list", "--status", "lost").exit_code == 2
