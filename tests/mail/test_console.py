"""Admin → Mail and Admin → Outbox, and the Mail section of a QR code's review page: through
the client, without JavaScript (303/422 pages) and with htmx (fragments, out-of-band flash)."""
import re

import pytest
import sqlalchemy as sa

from portal import vault
from portal.audit.models import AuditEvent
from portal.mail.models import OutboxMessage, SmtpSettings
from tests.conftest import csrf_token_from
from tests.mail.conftest import SMTP_PASSWORD, SMTP_USER, outbox_rows
from tests.support.smtp_sink import free_port

MAIL = "/admin/settings/mail"
TEST = "/admin/settings/mail/test"
OUTBOX = "/admin/outbox"
HX = {"HX-Request": "true"}


def _html(response) -> str:
    return response.get_data(as_text=True)


def _post(client, url, data, *, htmx=False, page=MAIL):
    token = csrf_token_from(_html(client.get(page)))
    if htmx:
        return client.post(url, data=data, headers={**HX, "X-CSRFToken": token})
    return client.post(url, data={"csrf_token": token, **data})


def _form(server_port, **overrides):
    data = {"host": "localhost", "port": str(server_port), "security": "starttls",
            "username": SMTP_USER, "password": "", "sender": "Portal <portal@example.org>",
            "timeout": "5", "test_recipient": ""}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _events(db, action):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)).all()


def _check_lines(html):
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item)).strip()
            for item in re.findall(r'<li class="(?:ok|failed)">(.*?)</li>', html, re.S)]


@pytest.mark.parametrize("url", [MAIL, OUTBOX, OUTBOX + "/1/resend"])
def test_the_pages_need_an_admin(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize("url", [MAIL, TEST, OUTBOX + "/1/resend"])
def test_posts_need_the_csrf_token(admin_client, url):
    assert admin_client.post(url, data={"host": "x"}).status_code == 400


def test_both_pages_are_in_the_admin_navigation(admin_client):
    html = _html(admin_client.get(MAIL))
    assert f'<a href="{MAIL}" aria-current="page">Mail</a>' in html
    assert f'<a href="{OUTBOX}">Outbox</a>' in html


def test_the_settings_page_shows_the_environment_and_never_the_password(admin_client,
                                                                        smtp_server):
    html = _html(admin_client.get(MAIL))
    assert "come from the SMTP_* and MAIL_FROM environment variables" in html
    assert 'value="localhost"' in html and f'value="{smtp_server.port}"' in html
    assert re.search(r'<input[^>]*id="timeout"[^>]*value="2"', html)
    assert "A password is stored (encrypted)" in html
    assert SMTP_PASSWORD not in html


def test_saving_stores_the_password_encrypted_and_the_page_never_shows_it(
        admin_client, db, smtp_server):
    response = _post(admin_client, MAIL, _form(smtp_server.port, password="N3w-Secret!"))

    assert response.status_code == 303 and response.headers["Location"] == MAIL
    row = db.session.get(SmtpSettings, 1)
    assert row.password_enc != "N3w-Secret!" and "N3w-Secret!" not in row.password_enc
    assert vault.decrypt(row.password_enc) == "N3w-Secret!"
    assert (row.host, row.port, row.security, row.sender) == (
        "localhost", smtp_server.port, "starttls", "Portal <portal@example.org>")
    html = _html(admin_client.get(MAIL))
    assert "The mail settings are saved." in html
    assert "N3w-Secret!" not in html and "come from the SMTP_*" not in html
    (event,) = _events(db, "settings.mail")
    assert event.actor == admin_client.admin.username
    assert "N3w-Secret!" not in str(event.details) and event.details["password_changed"]


def test_a_blank_password_keeps_the_stored_one_and_the_checkbox_removes_it(
        admin_client, db, smtp_server):
    _post(admin_client, MAIL, _form(smtp_server.port, password="first-pw"))
    _post(admin_client, MAIL, _form(smtp_server.port, timeout="7"))
    row = db.session.get(SmtpSettings, 1)
    assert vault.decrypt(row.password_enc) == "first-pw" and row.timeout == 7

    _post(admin_client, MAIL, _form(smtp_server.port, clear_password="y"))
    db.session.refresh(row)
    assert row.password_enc is None


def test_the_first_save_keeps_the_environments_password(admin_client, db, smtp_server):
    _post(admin_client, MAIL, _form(smtp_server.port))
    assert vault.decrypt(db.session.get(SmtpSettings, 1).password_enc) == SMTP_PASSWORD


def test_bad_values_are_refused_next_to_their_fields_and_nothing_is_saved(
        admin_client, db, smtp_server):
    response = _post(admin_client, MAIL, _form(smtp_server.port, host="smtp://mail:25",
                                                port="70000", sender="not an address"))

    assert response.status_code == 422
    html = _html(response)
    assert 'id="host-error"' in html and 'id="port-error"' in html and 'id="sender-error"' in html
    assert db.session.get(SmtpSettings, 1) is None


@pytest.mark.parametrize("sender, message", [
    ("portal@example.org\r\nBcc: everyone@example.org", "on one line"),
    ("Portal\n<portal@example.org>", "on one line"),
    ("portal@example.org, it@example.org", "one address only"),
    ("Portal <portal@example.org>, IT <it@example.org>", "one address only"),
])
def test_the_sender_is_one_address_on_one_line(admin_client, db, smtp_server, sender, message):
    response = _post(admin_client, MAIL, _form(smtp_server.port, sender=sender))

    assert response.status_code == 422
    assert message in _html(response)
    assert db.session.get(SmtpSettings, 1) is None


def test_a_quoted_display_name_with_a_comma_is_still_one_sender(admin_client, db, smtp_server):
    _post(admin_client, MAIL, _form(smtp_server.port, sender='"Provisioning, IT" <it@example.org>'))
    assert db.session.get(SmtpSettings, 1).sender == '"Provisioning, IT" <it@example.org>'


@pytest.mark.parametrize("recipient", ["me@example.com\r\nBcc: you@example.com",
                                       "me@example.com, you@example.com"])
def test_a_test_mail_goes_to_one_address_only(admin_client, db, smtp_server, recipient):
    response = _post(admin_client, TEST, _form(smtp_server.port, test_recipient=recipient),
                     htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert 'class="connection-test failed"' in html and "Enter the address to send" in html
    assert smtp_server.to("you@example.com") == []  # nothing was sent to anyone


def test_htmx_save_answers_the_form_and_the_flash_out_of_band(admin_client, db, smtp_server):
    response = _post(admin_client, MAIL, _form(smtp_server.port), htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<form id="mail-form"')
    assert 'hx-swap-oob="true"' in html and "The mail settings are saved." in html
    assert "HX-Request" in response.headers["Vary"]


def test_send_test_mail_reports_every_step_and_the_mail_arrives(admin_client, db,
                                                                smtp_server):
    response = _post(admin_client, TEST, _form(smtp_server.port, test_recipient="me@example.com"),
                     htmx=True)

    html = _html(response)
    assert html.startswith('<div class="connection-test ok" id="mail-test-result"')
    steps = _check_lines(html)
    assert [line.split(":")[0].lstrip("✓ ") for line in steps] == [
        "Connect", "EHLO", "TLS", "Sign in", "Sender", "Recipient", "Message"]
    assert "signed in as mailer" in html and "certificate verified" in html
    (msg,) = smtp_server.wait_for(1)
    assert msg["To"] == "me@example.com"
    assert msg["Subject"] == "Test mail from the QR-Code Provisioning portal"
    assert db.session.get(SmtpSettings, 1) is None  # testing saves nothing
    (event,) = _events(db, "mail.test")
    assert event.outcome == "success" and event.target == "me@example.com"


def test_send_test_mail_reports_a_refused_password_at_the_sign_in_step(admin_client, db,
                                                                      smtp_server):
    response = _post(admin_client, TEST, _form(smtp_server.port, password="wrong-password",
                                               test_recipient="me@example.com"), htmx=True)

    html = _html(response)
    assert 'class="connection-test failed"' in html
    assert _check_lines(html)[-1] == ("✗ Sign in: the server refused the user name or password "
                                      "(535 5.7.8 Authentication credentials invalid)")
    assert "wrong-password" not in html
    assert smtp_server.messages == []
    (event,) = _events(db, "mail.test")
    assert event.outcome == "error" and event.details["failed"].startswith("Sign in:")


def test_send_test_mail_reports_a_refused_connection(admin_client, smtp_server):
    port = free_port()
    html = _html(_post(admin_client, TEST, _form(port, test_recipient="me@example.com"),
                       htmx=True))

    assert _check_lines(html) == [f"✗ Connect: connection refused by localhost:{port}: no mail "
                                  "server listens there"]


def test_send_test_mail_reports_a_refused_recipient(admin_client, smtp_server):
    smtp_server.refuse["nobody@example.com"] = "550 5.1.1 User unknown"
    html = _html(_post(admin_client, TEST,
                       _form(smtp_server.port, test_recipient="nobody@example.com"), htmx=True))

    assert _check_lines(html)[-1] == "✗ Recipient: refused: 550 5.1.1 User unknown"


def test_send_test_mail_without_javascript_shows_the_page_with_the_result(admin_client,
                                                                          smtp_server):
    response = _post(admin_client, TEST, _form(smtp_server.port, test_recipient=""))

    html = _html(response)
    assert response.status_code == 200 and "<h1>Mail</h1>" in html
    assert "Settings</strong>: Enter the address to send the test mail to." in html


# Outbox

def _messages(db, count, status="queued", **values):
    rows = [OutboxMessage(kind="test", recipient=f"r{n}@example.com", subject="s",
                          status=status, **values) for n in range(count)]
    db.session.add_all(rows)
    db.session.commit()
    return rows


def test_the_outbox_lists_messages_newest_first_with_their_error(admin_client, db,
                                                                smtp_server, make_qr_code):
    smtp_server.refuse["it@example.com"] = "550 5.1.1 User unknown"
    qr = make_qr_code("ssp", alternative_email="it@example.com")
    from portal.mail.delivery import deliver_due
    deliver_due()
    _messages(db, 1, status="sent")

    html = _html(admin_client.get(OUTBOX))

    assert html.index("r0@example.com") < html.index("it@example.com")
    assert f'href="/admin/qr-codes/{qr.public_id}"' in html
    assert "Recipient: refused: 550 5.1.1 User unknown" in html
    assert "Notification to the alternative address" in html
    assert 'hx-confirm="Send this message to it@example.com again?"' in html


def test_the_outbox_filters_by_status_and_paginates(admin_client, db):
    _messages(db, 55, status="queued")
    _messages(db, 2, status="failed", last_error="boom")

    page1 = _html(admin_client.get(OUTBOX))
    failed = admin_client.get(OUTBOX + "?status=failed", headers=HX)
    page2 = _html(admin_client.get(OUTBOX + "?page=2", headers=HX))

    assert "Page 1 of 2 (57 messages)" in page1 and page1.count('<tr id="outbox-message-') == 50
    assert _html(failed).startswith('<div id="outbox-table"')
    assert _html(failed).count('<tr id="outbox-message-') == 2
    assert page2.count('<tr id="outbox-message-') == 7
    assert 'hx-get="/admin/outbox?page=1"' in page2


def test_send_again_queues_a_failed_message_and_swaps_its_row(admin_client, db):
    (message,) = _messages(db, 1, status="failed", attempts=8, last_error="gave up")

    response = _post(admin_client, f"{OUTBOX}/{message.id}/resend", {}, htmx=True, page=OUTBOX)

    html = _html(response)
    assert response.status_code == 200
    assert html.startswith(f'<tr id="outbox-message-{message.id}">')
    assert "is queued again" in html and 'hx-swap-oob="true"' in html
    (row,) = outbox_rows()
    assert (row.status, row.attempts) == ("queued", 0)
    (event,) = _events(db, "outbox.resend")
    assert event.target == str(message.id) and event.actor == admin_client.admin.username


def test_send_again_of_a_message_that_did_not_fail_is_refused(admin_client, db):
    (message,) = _messages(db, 1, status="sent")

    htmx = _post(admin_client, f"{OUTBOX}/{message.id}/resend", {}, htmx=True, page=OUTBOX)
    plain = _post(admin_client, f"{OUTBOX}/{message.id}/resend", {}, page=OUTBOX)

    assert htmx.status_code == 422 and htmx.headers["HX-Reswap"] == "none"
    assert "only a failed message can be sent again" in _html(htmx)
    assert plain.status_code == 303
    assert outbox_rows()[0].status == "sent"


def test_send_again_works_without_javascript_through_a_confirmation_page(admin_client, db):
    (message,) = _messages(db, 1, status="failed")

    page = _html(admin_client.get(f"{OUTBOX}/{message.id}/resend"))
    response = _post(admin_client, f"{OUTBOX}/{message.id}/resend", {},
                     page=f"{OUTBOX}/{message.id}/resend")

    assert f"Send message {message.id} again?" in page
    assert response.status_code == 303 and response.headers["Location"] == OUTBOX
    assert outbox_rows()[0].status == "queued"


def test_the_qr_review_page_shows_which_messages_went_where(admin_client, db, smtp_server,
                                                            make_admin, make_qr_code):
    make_admin(email="boss@example.com", mail_recipient=True)
    smtp_server.refuse["it@example.com"] = "550 5.1.1 User unknown"
    qr = make_qr_code("auto", alternative_email="it@example.com")
    from portal.mail.delivery import deliver_due
    deliver_due()

    html = _html(admin_client.get(f"/admin/qr-codes/{qr.public_id}"))

    section = html[html.index('<section class="card contents" id="qr-mail">'):]
    section = section[:section.index("</section>")]
    assert "boss@example.com" in section and "QR code to a mail recipient" in section
    assert '<span class="badge badge-active">Sent</span>' in section
    assert "it@example.com" in section and "Recipient: refused: 550 5.1.1 User unknown" in section
    assert '<span class="badge badge-revoked">Failed</span>' in section
    assert " UTC" in section
