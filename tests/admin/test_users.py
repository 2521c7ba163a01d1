"""Admin → Users: local users listed, searched, paged, added, edited, given a new password,
disabled and enabled; directory users read-only; Unlock after real failed sign-ins."""
import re

import pytest
import sqlalchemy as sa

from portal.accounts.directory import record_directory_user
from portal.accounts.models import PortalUser
from portal.database import db as _db
from portal.database import utcnow
from portal.provisioning.qr_codes import ProvisioningError, QrCodeRequest, create_qr_code
from tests.api.conftest import auto_body, error_of, redeem, ssp_body
from tests.conftest import csrf_token, post_form
from tests.selfservice.conftest import post_sign_in
from tests.support.pages import events, field_error, html_of

USERS = "/admin/people/users"
NEW = USERS + "/new"


def user_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(PortalUser))


# The list

def test_the_list_shows_local_and_directory_users_with_source_and_last_sign_in(
        admin_client, db, make_user):
    make_user("ann", display_name="Ann Example")
    bob = record_directory_user("ldap", "cn=bob,dc=example", None, "bob", "Bob D", None)
    bob.last_sign_in_at = utcnow()
    record_directory_user("azure", "oid-1", "tenant-1", "cara@example.com", "Cara", None)
    db.session.commit()

    html = html_of(admin_client.get(USERS))

    assert "Ann Example" in html and "Local" in html
    row = re.search(r'<tr id="user-%d">.*?</tr>' % bob.id, html, re.S).group(0)
    assert "Active Directory" in row and "UTC" in row and "Changed in the directory" in row
    assert "Disable" not in row and "Azure AD" in html


def test_search_and_source_filter(admin_client, db, make_user):
    make_user("ann", email="ann@corp.example")
    make_user("bob", display_name="Robert")
    record_directory_user("ldap", "cn=anna,dc=example", None, "anna", None, None)
    db.session.commit()

    found = html_of(admin_client.get(USERS + "?q=ANN"))
    local = html_of(admin_client.get(USERS + "?q=ann&source=local"))
    by_name = html_of(admin_client.get(USERS + "?q=robert"))

    assert ">ann<" in found and "anna" in found and ">bob<" not in found
    assert ">ann<" in local and "anna" not in local
    assert ">bob<" in by_name
    assert "No user" in html_of(admin_client.get(USERS + "?q=zzz"))


def test_the_list_is_keyset_paginated_by_user_name(admin_client, db, make_user):
    for number in range(30):
        make_user(f"user{number:02d}")

    first = html_of(admin_client.get(USERS + "?source=local"))
    next_url = re.search(r'<a href="([^"]+)"[^>]*rel="next"', first).group(1)
    second = html_of(admin_client.get(next_url.replace("&amp;", "&")))

    assert "user00" in first and "user24" in first and "user25" not in first
    assert "user25" in second and "user29" in second and "user24" not in second
    assert "Page 2 of 2" in second


def test_an_htmx_search_answers_the_table_only(admin_client, make_user):
    make_user("ann")
    html = html_of(admin_client.get(USERS + "?q=ann", headers={"HX-Request": "true"}))
    assert html.startswith('<div id="users-table"') and "<html" not in html


# Add user

def test_add_user_creates_an_audited_local_user_who_can_sign_in(admin_client, client, db,
                                                                 make_qr_code):
    response = post_form(admin_client, NEW, username="dora", display_name="Dora Example",
                         email="dora@example.com", password="dora-password-1")

    assert response.status_code == 303 and "q=dora" in response.headers["Location"]
    user = db.session.scalar(sa.select(PortalUser).where(PortalUser.username == "dora"))
    assert (user.source, user.display_name, user.email) == ("local", "Dora Example",
                                                            "dora@example.com")
    [event] = events(db, "user.create")
    assert (event.actor, event.target) == (admin_client.admin.username, "dora")
    assert "dora-password-1" not in repr(event.details)
    qr = make_qr_code("ssp")
    assert post_sign_in(admin_client.application.test_client(), qr.public_id, "dora",
                        "dora-password-1").status == 303


GOOD_USER = dict(username="erin", display_name="Erin", email="erin@example.com",
                 password="erin-password-1")


@pytest.mark.parametrize("field, value, message", [
    ("username", "", "A user name is required."),
    ("username", "x" * 65, "at most 64 characters"),
    ("username", "erin smith", "letters, digits"),
    ("username", "taken", "already exists"),
    ("username", "TAKEN", "already exists"),
    ("display_name", "d" * 257, "at most 256 characters"),
    ("display_name", "Erin\r\nBcc: everyone@example.com", "must be one line"),
    ("email", "", "An email address is required."),
    ("email", "erin@example.com, eve@example.com", "one address only"),
    ("email", "erin@example.com\r\nBcc: eve@example.com", "on one line"),
    ("email", "not-an-email", "is not a valid email address"),
    ("email", "a" * 250 + "@example.com", "at most 254 characters"),
    ("password", "", "A password is required."),
    ("password", "short", "at least 8 characters"),
    ("password", "p" * 1025, "at most 1024 characters"),
])
def test_add_user_bad_input_is_shown_beside_the_field_and_saves_nothing(
        admin_client, db, make_user, field, value, message):
    make_user("taken")
    before = user_count(db)

    response = post_form(admin_client, NEW, **dict(GOOD_USER, **{field: value}))

    assert response.status_code == 422
    assert message in field_error(html_of(response), field)
    assert user_count(db) == before and not events(db, "user.create")[1:]


def test_add_user_over_htmx_answers_the_form_with_its_errors(admin_htmx_client, db):
    response = post_form(admin_htmx_client, NEW, **dict(GOOD_USER, email="nope"))
    html = html_of(response)
    assert response.status_code == 422 and html.lstrip().startswith('<form id="add-user-form"')
    assert 'value="erin"' in html and "erin-password-1" not in html  # never sent back


# Edit, password

def test_edit_display_name_and_email_is_audited_with_before_and_after(admin_client, db,
                                                                      make_user):
    user = make_user("fay", display_name="Fay", email="fay@example.com")
    url = f"{USERS}/{user.id}"

    response = post_form(admin_client, url, display_name="Fay Example",
                         email="fay@corp.example")

    assert response.status_code == 303
    db.session.refresh(user)
    assert (user.display_name, user.email) == ("Fay Example", "fay@corp.example")
    [event] = events(db, "user.update")
    assert event.details == {"before": {"display_name": "Fay", "email": "fay@example.com"},
                             "after": {"display_name": "Fay Example",
                                       "email": "fay@corp.example"}}


@pytest.mark.parametrize("field, value, message", [
    ("email", "", "An email address is required."),
    ("email", "fay@", "is not a valid email address"),
    ("display_name", "d" * 257, "at most 256 characters"),
])
def test_edit_bad_input_saves_nothing(admin_client, db, make_user, field, value, message):
    user = make_user("fay", display_name="Fay", email="fay@example.com")
    data = {"display_name": "Fay", "email": "fay@example.com", field: value}

    response = post_form(admin_client, f"{USERS}/{user.id}", **data)

    assert response.status_code == 422 and message in field_error(html_of(response), field)
    db.session.expire_all()
    assert (user.display_name, user.email) == ("Fay", "fay@example.com")
    assert not events(db, "user.update")


def test_directory_users_and_unknown_ids_cannot_be_edited(admin_client, db):
    ldap_user = record_directory_user("ldap", "cn=gus,dc=example", None, "gus", None, None)
    db.session.commit()
    for url in (f"{USERS}/{ldap_user.id}", f"{USERS}/{ldap_user.id}/password",
                f"{USERS}/{ldap_user.id}/disable", f"{USERS}/999999", f"{USERS}/abc"):
        assert admin_client.get(url).status_code == 404, url
    token = csrf_token(admin_client, USERS)
    response = admin_client.post(f"{USERS}/{ldap_user.id}/disable",
                                 data={"csrf_token": token})
    assert response.status_code == 404
    assert db.session.get(PortalUser, ldap_user.id).active


def test_set_new_password_lets_the_user_sign_in_with_it_only(admin_client, db, make_user,
                                                             make_qr_code):
    user = make_user("hal", password="old-password-1")
    qr = make_qr_code("ssp")

    response = post_form(admin_client, f"{USERS}/{user.id}/password",
                         password="new-password-1", page=f"{USERS}/{user.id}")

    assert response.status_code == 303
    [event] = events(db, "user.password_set")
    assert event.target == "hal" and "new-password-1" not in repr(event.details)
    browser = admin_client.application.test_client()
    assert post_sign_in(browser, qr.public_id, "hal", "old-password-1").status == 422
    assert post_sign_in(browser, qr.public_id, "hal", "new-password-1").status == 303


@pytest.mark.parametrize("value, message", [("", "A password is required."),
                                            ("short", "at least 8 characters"),
                                            ("p" * 1025, "at most 1024 characters")])
def test_set_new_password_bad_input_keeps_the_old_one(admin_client, db, make_user, value,
                                                      message):
    user = make_user("hal", password="old-password-1")
    old_hash = user.password_hash

    response = post_form(admin_client, f"{USERS}/{user.id}/password", password=value,
                         page=f"{USERS}/{user.id}")

    assert response.status_code == 422
    assert message in field_error(html_of(response), "password")
    db.session.refresh(user)
    assert user.password_hash == old_hash and not events(db, "user.password_set")


# Disable, enable

def test_disable_has_a_confirmation_page_naming_the_user(admin_client, make_user):
    user = make_user("ivy")
    html = html_of(admin_client.get(f"{USERS}/{user.id}/disable"))
    assert "Disable the user ivy?" in html and "Cancel" in html


def test_disable_and_enable_over_htmx_answer_the_row(admin_htmx_client, db, make_user):
    user = make_user("ivy")

    disabled = post_form(admin_htmx_client, f"{USERS}/{user.id}/disable", page=USERS)
    row = html_of(disabled)
    assert disabled.status_code == 200 and row.lstrip().startswith(f'<tr id="user-{user.id}"')
    assert "Disabled" in row and "Enable" in row and "The user ivy is disabled." in row
    enabled = post_form(admin_htmx_client, f"{USERS}/{user.id}/enable", page=USERS)
    assert "Active" in html_of(enabled)
    assert [e.target for e in events(db, "user.disable") + events(db, "user.enable")] == \
        ["ivy", "ivy"]


def test_disabling_twice_is_refused_with_a_message(admin_client, db, make_user):
    user = make_user("ivy")
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)
    again = post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)
    assert again.status_code == 303
    assert "already disabled" in html_of(admin_client.get(again.headers["Location"]))
    assert len(events(db, "user.disable")) == 1


def test_a_disabled_user_cannot_sign_in_to_the_self_service_portal(admin_client, db,
                                                                   make_user, make_qr_code):
    user = make_user("jo", password="jo-password-1")
    qr = make_qr_code("ssp")
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)
    browser = admin_client.application.test_client()

    right = post_sign_in(browser, qr.public_id, "jo", "jo-password-1")
    wrong = post_sign_in(browser, qr.public_id, "jo", "not-the-password")

    assert right.status == 422 and "This account is disabled" in right.html
    assert wrong.status == 422 and "The user name or the password is wrong." in wrong.html
    assert "disabled" not in wrong.html  # only the right password learns it
    post_form(admin_client, f"{USERS}/{user.id}/enable", page=USERS)
    assert post_sign_in(browser, qr.public_id, "jo", "jo-password-1").status == 303


def test_a_disabled_user_cannot_be_chosen_for_a_qr_code(admin_client, db, make_user,
                                                        make_qr_code):
    make_qr_code("ssp")  # the Companion and licenses
    user = make_user("kim")
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)

    found = html_of(admin_client.get("/admin/users/search?username=kim"))
    assert "No local user matches" in found and '<option value="kim">' not in found
    with pytest.raises(ProvisioningError) as refused:
        create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile",
                                     username="kim", usage_count=1),
                       created_by=None, server_url="https://portal.test")
    assert refused.value.errors == {"username": "The user 'kim' is disabled."}


def test_the_api_refuses_a_disabled_users_automatic_qr_until_enabled(admin_client, client, db,
                                                                     make_user, make_qr_code):
    user = make_user("lee")
    qr = make_qr_code("auto", user=user)
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)

    error_of(redeem(client, auto_body(qr)), 401, "invalid_credentials")

    post_form(admin_client, f"{USERS}/{user.id}/enable", page=USERS)
    assert redeem(client, auto_body(qr)).status_code == 201


def test_a_ticket_minted_before_the_user_was_disabled_is_refused_until_enabled(
        admin_client, client, db, make_user, make_qr_code):
    from portal.enrollment.tickets import issue_ticket
    user = make_user("mo")
    qr = make_qr_code("ssp")
    ticket = issue_ticket(qr, user)  # signed in on the phone, then the admin disables them
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)

    error_of(redeem(client, ssp_body(qr, ticket)), 401, "invalid_credentials")

    post_form(admin_client, f"{USERS}/{user.id}/enable", page=USERS)
    assert redeem(client, ssp_body(qr, ticket)).status_code == 201


# Unlock

LOCK = {"SSP_SIGN_IN_LIMIT": "3 per minute"}


@pytest.mark.parametrize("config_overrides", [LOCK], indirect=True)
def test_a_locked_out_user_is_shown_and_unlock_lets_them_sign_in(app, admin_client, db,
                                                                 make_user, make_qr_code):
    user = make_user("max", password="max-password-1")
    make_user("ned")
    qr = make_qr_code("ssp")
    phone = app.test_client()
    for _ in range(3):
        assert post_sign_in(phone, qr.public_id, "MAX", "wrong-password").status == 422
    assert post_sign_in(phone, qr.public_id, "max", "max-password-1").status == 429

    listed = html_of(admin_client.get(USERS))
    row = re.search(r'<tr id="user-%d">.*?</tr>' % user.id, listed, re.S).group(0)
    assert "Locked out" in row and "Unlock" in row
    assert listed.count("Locked out") == 1  # ned is not
    assert post_sign_in(phone, qr.public_id, "max", "max-password-1").status == 429  # GET: read

    response = post_form(admin_client, f"{USERS}/{user.id}/unlock", page=USERS)

    assert response.status_code == 303
    [event] = events(db, "user.unlock")
    assert (event.actor, event.target) == (admin_client.admin.username, "max")
    assert "Locked out" not in html_of(admin_client.get(USERS))
    assert post_sign_in(phone, qr.public_id, "max", "max-password-1").status == 303


def test_helpdesk_gets_403_on_users(helpdesk_client, make_user):
    user = make_user()
    for url in (USERS, NEW, f"{USERS}/{user.id}", f"{USERS}/{user.id}/disable"):
        response = helpdesk_client.get(url)
        assert response.status_code == 403, url


def test_the_user_page_shows_its_history_from_the_audit_log(admin_client, make_user):
    user = make_user("pia", display_name="Pia")
    post_form(admin_client, f"{USERS}/{user.id}", display_name="Pia Example",
              email=user.email)
    post_form(admin_client, f"{USERS}/{user.id}/disable", page=USERS)

    html = html_of(admin_client.get(f"{USERS}/{user.id}"))

    history = re.search(r'<section class="card" id="history">.*?</section>', html, re.S).group(0)
    assert history.index("user.disable") < history.index("user.update")  # newest first
    assert "Pia Example" in history and admin_client.admin.username in history
    assert "/admin/audit?target=pia" in history


@pytest.mark.parametrize("config_overrides", [LOCK], indirect=True)
def test_a_locked_out_directory_user_can_be_unlocked_too(app, admin_client, db, make_qr_code):
    # The Self Service Portal counts failures per user name, whatever the sign-in method.
    bob = record_directory_user("ldap", "cn=bob,dc=example", None, "bob", "Bob D", None)
    db.session.commit()
    qr = make_qr_code("ssp")
    phone = app.test_client()
    for _ in range(4):
        post_sign_in(phone, qr.public_id, "bob", "wrong-password")

    row = re.search(r'<tr id="user-%d">.*?</tr>' % bob.id, html_of(admin_client.get(USERS)),
                    re.S).group(0)
    assert "Locked out" in row and "Unlock" in row and "Disable" not in row

    assert post_form(admin_client, f"{USERS}/{bob.id}/unlock", page=USERS).status_code == 303
    assert "Locked out" not in html_of(admin_client.get(USERS))
    assert post_sign_in(phone, qr.public_id, "bob", "wrong-password").status == 422
