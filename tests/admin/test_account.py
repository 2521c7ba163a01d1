"""My account: every admin, Helpdesk too, changes their own password (the current one first)."""
import re

import pytest

from tests.conftest import ADMIN_PASSWORD, post_form, sign_in
from tests.support.pages import events, field_error, html_of

ACCOUNT = "/admin/account/password"


def test_the_top_bar_names_the_admin_and_links_to_my_account(helpdesk_client):
    html = html_of(helpdesk_client.get("/admin/devices/pending"))
    assert re.search(rf'<a class="who" href="{ACCOUNT}"[^>]*>{helpdesk_client.admin.username}'
                     r'</a>', html)
    assert "Change your password" in html_of(helpdesk_client.get(ACCOUNT))


def test_a_helpdesk_admin_changes_their_password_and_other_browsers_are_signed_out(
        app, helpdesk_client, db):
    me = helpdesk_client.admin
    other_browser = app.test_client()
    assert sign_in(other_browser, me.username).status_code == 303

    response = post_form(helpdesk_client, ACCOUNT, current_password=ADMIN_PASSWORD,
                         password="my-new-password-1")

    assert response.status_code == 303
    assert helpdesk_client.get("/admin/devices/pending").status_code == 200  # still here
    assert other_browser.get("/admin/devices/pending").status_code == 302
    assert sign_in(app.test_client(), me.username).status_code == 422
    assert sign_in(app.test_client(), me.username, password="my-new-password-1") \
        .status_code == 303
    [event] = events(db, "admin.password_change")
    assert (event.actor, event.outcome) == (me.username, "success")
    assert ADMIN_PASSWORD not in repr(event.details) and "my-new" not in repr(event.details)


@pytest.mark.parametrize("current, new, field, message", [
    ("", "my-new-password-1", "current_password", "The current password is wrong."),
    ("wrong-password", "my-new-password-1", "current_password", "The current password is wrong."),
    (ADMIN_PASSWORD, "", "password", "A password is required."),
    (ADMIN_PASSWORD, "short", "password", "at least 8 characters"),
    (ADMIN_PASSWORD, "p" * 1025, "password", "at most 1024 characters"),
    (ADMIN_PASSWORD, ADMIN_PASSWORD, "password", "the same as the current one"),
])
def test_bad_input_is_shown_beside_the_field_and_changes_nothing(app, admin_client, current,
                                                                 new, field, message):
    response = post_form(admin_client, ACCOUNT, current_password=current, password=new)

    assert response.status_code == 422
    assert message in field_error(html_of(response), field)
    assert sign_in(app.test_client(), admin_client.admin.username).status_code == 303


def test_a_wrong_current_password_is_audited_as_refused(admin_client, db):
    post_form(admin_client, ACCOUNT, current_password="guess-1", password="my-new-password-1")
    [event] = events(db, "admin.password_change")
    assert (event.outcome, event.code) == ("refused", "invalid_credentials")
    assert "guess-1" not in repr(event.details)


def test_my_account_needs_a_signed_in_admin(client):
    response = client.get(ACCOUNT)
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_wrong_current_passwords_are_throttled(admin_client):
    for _ in range(3):
        response = post_form(admin_client, ACCOUNT, current_password="guess",
                             password="my-new-password-1")
        assert response.status_code == 422
    response = post_form(admin_client, ACCOUNT, current_password=ADMIN_PASSWORD,
                         password="my-new-password-1")
    assert response.status_code == 429


def test_my_account_links_to_two_step_sign_in_for_every_role(helpdesk_client):
    html = helpdesk_client.get("/admin/account/password").get_data(as_text=True)

    assert "Two-step sign-in: off" in html
    assert 'href="/admin/account/two-step">Turn on two-step sign-in</a>' in html
    assert helpdesk_client.get("/admin/account/two-step").status_code == 200
