"""What a QR code's mail says and to whom: recipients per option, the language, both parts,
the PNG inline and attached (decoded back to the exact payload), and no secret in the text."""
import pytest

from portal.provisioning.qr_codes import view_otp
from portal import vault
from portal.settings.localizations import add_localization
from tests.mail.conftest import SENDER, outbox_rows
from tests.support.qr import decode_qr


def _by_recipient(sink) -> dict:
    return {address: msg for msg, envelope in zip(sink.messages, sink.envelopes)
            for address in envelope.rcpt_tos}


def test_automatic_qr_goes_to_mail_recipients_the_user_and_the_alternative_address(
        db, smtp_server, deliver, mail_admins, make_user, make_qr_code):
    user = make_user("bob", email="bob@example.com", display_name="Bob Builder")
    qr = make_qr_code("auto", user=user, send_to_user=True, alternative_email="it@example.com")

    counts = deliver()

    assert (counts.sent, counts.retrying, counts.failed) == (4, 0, 0), outbox_rows()[0].last_error
    received = _by_recipient(smtp_server)
    assert sorted(received) == ["bob@example.com", "boss@example.com", "deputy@example.com",
                                "it@example.com"]
    assert all(len(e.rcpt_tos) == 1 for e in smtp_server.envelopes)  # one message each
    assert {e.mail_from for e in smtp_server.envelopes} == {"portal@example.org"}
    for msg in received.values():
        assert msg["Subject"] == "An Administrator has provisioned a device on your behalf"
        assert msg["From"] == SENDER
    assert "Bob Builder" in received["boss@example.com"].get_body(("plain",)).get_content()
    assert "Hello Bob Builder," in received["bob@example.com"].get_body(("plain",)).get_content()
    rows = outbox_rows(qr_code_id=qr.id)
    assert {(r.status, r.attempts) for r in rows} == {("sent", 1)}
    assert all(r.sent_at is not None and r.last_error is None for r in rows)


def test_automatic_qr_without_options_goes_to_mail_recipients_only(
        db, smtp_server, deliver, mail_admins, make_qr_code):
    make_qr_code("auto")

    deliver()

    assert sorted(_by_recipient(smtp_server)) == ["boss@example.com", "deputy@example.com"]


def test_self_service_qr_goes_only_to_the_alternative_address(
        db, smtp_server, deliver, mail_admins, make_qr_code):
    make_qr_code("ssp")
    make_qr_code("ssp", alternative_email="helpdesk@example.com")

    deliver()

    assert list(_by_recipient(smtp_server)) == ["helpdesk@example.com"]
    text = smtp_server.messages[0].get_body(("plain",)).get_content()
    assert "sign in with your company account" in text
    assert "until an administrator revokes it" in text


def test_the_message_has_both_parts_steps_expiry_and_the_png_inline_and_attached(
        db, smtp_server, deliver, make_user, make_qr_code):
    qr = make_qr_code("auto", user=make_user(email="eve@example.com"), send_to_user=True,
                      usage_count=3, otp_validity=48)

    deliver()

    (msg,) = smtp_server.wait_for(1)
    assert msg.get_content_type() == "multipart/mixed"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    for part in (text, html):
        assert "six times" in part and "Companion" in part and "Corp-WLAN" in part
        assert "up to 3 devices" in part
        assert qr.otp_expires_at.strftime("%Y") in part and "UTC" in part
        assert qr.public_id in part
    inline = msg.get_body(("related",)).get_payload()[1]
    assert inline.get_content_type() == "image/png"
    cid = inline["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_filename() == f"qr-code-{qr.public_id}.png"
    payload = qr.payload_text()
    assert decode_qr(inline.get_content()) == payload
    assert decode_qr(attachment.get_content()) == payload


def test_neither_the_otp_nor_the_wifi_password_is_in_the_text(
        db, smtp_server, deliver, make_admin, make_user, make_qr_code):
    admin = make_admin(mail_recipient=True)
    qr = make_qr_code("auto", user=make_user(), wifi_password="Wifi-Secret-4711",
                      send_to_user=True, alternative_email="it@example.com")
    otp = view_otp(qr, viewed_by=admin)

    deliver()

    assert len(smtp_server.wait_for(3)) == 3
    for msg in smtp_server.messages:
        for part in (msg.get_body(("plain",)).get_content(),
                     msg.get_body(("html",)).get_content(), str(msg["Subject"])):
            assert otp not in part and "Wifi-Secret-4711" not in part
            assert vault.decrypt(qr.wifi_password_enc) not in part


@pytest.mark.parametrize("lang, subject, words", [
    ("de-CH", "Ein Administrator hat ein Gerät für Sie bereitgestellt",
     ["sechsmal", "Companion-App", "Geräte eingerichtet", "UTC"]),
    ("it", "Un amministratore ha predisposto un dispositivo per te",
     ["sei volte", "app Companion", "fino a 2 dispositivi", "UTC"]),
    ("en", "An Administrator has provisioned a device on your behalf",
     ["six times", "Companion app", "up to 2 devices"]),
])
def test_subject_and_text_are_in_the_qr_codes_language(
        db, smtp_server, deliver, make_user, make_qr_code, lang, subject, words):
    make_qr_code("auto", lang=lang, user=make_user(email="u@example.com"), send_to_user=True,
                 usage_count=2)

    deliver()

    (msg,) = smtp_server.wait_for(1)
    assert msg["Subject"] == subject
    assert msg["Content-Language"] == lang.split("-")[0]
    for part in (msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()):
        for word in words:
            assert word in part, (lang, word)
    assert f'<html lang="{lang.split("-")[0]}">' in msg.get_body(("html",)).get_content()


def test_a_custom_localization_falls_back_to_english(
        db, smtp_server, deliver, make_admin, make_qr_code):
    add_localization("fr-CA", "Français (Canada)", actor="test")
    make_qr_code("ssp", lang="fr-CA", alternative_email="it@example.com")

    deliver()

    (msg,) = smtp_server.wait_for(1)
    assert msg["Subject"] == "An Administrator has provisioned a device on your behalf"
    assert "six times" in msg.get_body(("plain",)).get_content()


def test_the_html_part_escapes_what_users_typed(db, smtp_server, deliver, make_user,
                                                make_qr_code):
    user = make_user(email="x@example.com", display_name='<b onmouseover="x">Mallory</b>')
    make_qr_code("auto", user=user, send_to_user=True)

    deliver()

    html = smtp_server.wait_for(1)[0].get_body(("html",)).get_content()
    assert "<b onmouseover" not in html and "&lt;b onmouseover" in html


@pytest.mark.parametrize("option, follow", [
    ("auto", "Follow Android Device Policy: it installs itself, enrolls the device for"),
    ("ssp", "Follow Android Device Policy: it installs itself, opens your company's sign-in "
            "page"),
])
def test_an_android_device_policy_qr_code_tells_to_follow_android_device_policy(
        db, smtp_server, deliver, make_user, make_qr_code, amapi_connected, option, follow):
    qr = make_qr_code(option, management="adp", alternative_email="it@example.com",
                      **({"user": make_user(email="eve@example.com"), "send_to_user": True}
                         if option == "auto" else {}))

    deliver()

    msg = _by_recipient(smtp_server)["it@example.com"] if smtp_server.wait_for(1) else None
    text = " ".join(msg.get_body(("plain",)).get_content().split())
    assert follow in text and "Companion" not in text
    (attachment,) = list(msg.iter_attachments())
    assert decode_qr(attachment.get_content()) == qr.payload_text()
