"""Every field that takes a mail address takes exactly one, on one line (issue 14, point 4):
the Mail sender, Send test mail's recipient, the wizard's alternative address, and the email
of users and administrators, added and edited. A list or a line break would send a mail to
people nobody chose (or break every mail after it); each is refused beside its field and
nothing is saved or sent. The operator commands are walked in tests/test_cli.py."""
import pytest

from portal.licensing.seats import set_total
from portal.settings.companion import seed_example_companion
from tests.conftest import post_form
from tests.security.conftest import changed_tables, snapshot
from tests.support.addresses import LISTS_AND_LINES, NAMED
from tests.support.pages import field_error, html_of
from tests.support.smtp_sink import SmtpSink

GOOD_WIZARD = {"option": "auto", "user_type": "local", "username": "alice", "lang": "en",
               "usage_count": "1", "network": "wifi", "wifi_ssid": "Corp-WLAN",
               "wifi_security": "WPA", "wifi_password": "correct-horse",
               "send_alternative": "y", "alternative_email": "it@example.com"}


@pytest.fixture
def sink():
    server = SmtpSink().start()
    yield server
    server.stop()


def _mail_form(sink, **values):
    return {"host": "127.0.0.1", "port": str(sink.port), "security": "none", "username": "",
            "password": "", "sender": "Portal <portal@example.org>", "timeout": "5",
            "test_recipient": "", **values}


def _wizard(db, make_user):
    seed_example_companion()
    set_total(5)
    make_user("alice")
    db.session.commit()
    return "/admin/devices/pending", "/admin/devices/pending/new", GOOD_WIZARD


# name: (field, the (url, page, good values) of a form made ready by make_user / make_admin)
FIELDS = {
    "mail sender": ("sender", lambda db, sink, make_user, make_admin: (
        "/admin/settings/mail", None, _mail_form(sink))),
    "wizard alternative address": ("alternative_email", lambda db, sink, make_user, make_admin:
                                   _wizard(db, make_user)),
    "add user": ("email", lambda db, sink, make_user, make_admin: (
        "/admin/people/users/new", None,
        {"username": "erin", "email": "erin@example.com", "password": "erin-password-1"})),
    "edit user": ("email", lambda db, sink, make_user, make_admin: (
        f"/admin/people/users/{make_user('fay', email='fay@example.com').id}", None,
        {"display_name": "Fay", "email": "fay@example.com"})),
    "add administrator": ("email", lambda db, sink, make_user, make_admin: (
        "/admin/people/administrators/new", None,
        {"username": "ivan", "email": "ivan@example.com", "password": "ivan-password-1",
         "role": "administrator"})),
    "edit administrator": ("email", lambda db, sink, make_user, make_admin: (
        f"/admin/people/administrators/{make_admin('jan').id}", None,
        {"email": "jan@example.com", "role": "helpdesk"})),
}


def _bad_values(name):
    return LISTS_AND_LINES + ([] if name == "mail sender" else NAMED)


@pytest.mark.parametrize("name, value, message", [
    (name, value, message) for name in FIELDS for value, message in _bad_values(name)])
def test_every_address_field_takes_one_address_on_one_line(
        admin_client, db, sink, make_user, make_admin, name, value, message):
    field, form = FIELDS[name]
    url, page, good = form(db, sink, make_user, make_admin)
    before = snapshot(db)

    response = post_form(admin_client, url, page=page, **{**good, field: value})

    assert response.status_code == 422, name
    assert message in field_error(html_of(response), field), html_of(response)
    assert changed_tables(before, snapshot(db)) == []
    assert sink.messages == []


@pytest.mark.parametrize("value, message", LISTS_AND_LINES + NAMED)
def test_a_test_mail_goes_to_one_address_and_says_why_not(admin_client, db, sink, value,
                                                          message):
    before = snapshot(db)

    response = post_form(admin_client, "/admin/settings/mail/test",
                         page="/admin/settings/mail", **_mail_form(sink, test_recipient=value))

    html = html_of(response)
    assert 'class="connection-test failed"' in html and message in html
    assert changed_tables(before, snapshot(db)) == []
    assert sink.messages == []


@pytest.mark.parametrize("sender", ["Portal <portal@example.org>", "<portal@example.org>",
                                    '"Provisioning, IT" <it@example.org>',
                                    "portal@example.org"])
def test_the_sender_may_carry_a_name(admin_client, db, sink, sender):
    from portal.mail.models import SmtpSettings

    response = post_form(admin_client, "/admin/settings/mail", **_mail_form(sink, sender=sender))

    assert response.status_code == 303, field_error(html_of(response), "sender")
    assert db.session.get(SmtpSettings, 1).sender == sender
