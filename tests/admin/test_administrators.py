"""Admin → Administrators: add, role, Mail recipient, disable, new password, unlock; no admin
disables or demotes themselves, and the last active Administrator stays one."""
import os
import re

import pytest
import sqlalchemy as sa

from portal.accounts.admins import set_admin_active, update_admin
from portal.accounts.errors import AccountError
from portal.accounts.models import AdminUser
from tests.conftest import ADMIN_PASSWORD, csrf_token, post_form, sign_in
from tests.support.pages import events, field_error, html_of

ADMINS = "/admin/people/administrators"
NEW = ADMINS + "/new"


def admin_count(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AdminUser))


def signed_in(app, admin):
    browser = app.test_client()
    assert sign_in(browser, admin.username).status_code == 303
    return browser


def test_the_list_shows_role_mail_recipient_and_you(admin_client, make_admin):
    make_admin("helen", role="helpdesk", mail_recipient=True)
    html = html_of(admin_client.get(ADMINS))
    row = re.search(r'<tr id="admin-\d+">\s*<td><a[^>]*>helen</a>.*?</tr>', html, re.S).group(0)
    assert "Helpdesk" in row and "Yes" in row and "Disable" in row
    mine = re.search(r'<tr id="admin-%d">.*?</tr>' % admin_client.admin.id, html, re.S).group(0)
    assert "(you)" in mine and "Disable" not in mine


def test_add_a_helpdesk_admin_who_receives_mail(admin_client, db):
    response = post_form(admin_client, NEW, username="hugo", email="hugo@example.com",
                         password="hugo-password-1", role="helpdesk", mail_recipient="y")

    assert response.status_code == 303 and response.headers["Location"].endswith(ADMINS)
    hugo = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == "hugo"))
    assert (hugo.role, hugo.mail_recipient, hugo.active) == ("helpdesk", True, True)
    [event] = events(db, "admin.create")[-1:]
    assert (event.actor_type, event.actor, event.target) == ("admin", admin_client.admin.username,
                                                             "hugo")
    assert "hugo-password-1" not in repr(event.details)


GOOD = dict(username="ivan", email="ivan@example.com", password="ivan-password-1",
            role="administrator")


@pytest.mark.parametrize("field, value, message", [
    ("username", "", "A user name is required."),
    ("username", "i" * 65, "at most 64 characters"),
    ("username", "ivan!", "letters, digits"),
    ("username", "TAKEN", "already exists"),
    ("email", "", "An email address is required."),
    ("email", "ivan@", "is not a valid email address"),
    ("password", "", "A password is required."),
    ("password", "1234567", "at least 8 characters"),
    ("role", "", "Choose the role"),
    ("role", "superuser", "Choose the role"),
])
def test_add_bad_input_is_shown_beside_the_field_and_saves_nothing(admin_client, db,
                                                                   make_admin, field, value,
                                                                   message):
    make_admin("taken")
    before = admin_count(db)

    response = post_form(admin_client, NEW, **{**GOOD, field: value})

    assert response.status_code == 422
    assert message in field_error(html_of(response), field)
    assert admin_count(db) == before


def test_edit_role_mail_recipient_and_email_is_audited_with_before_and_after(
        admin_client, db, make_admin):
    other = make_admin("jan")

    response = post_form(admin_client, f"{ADMINS}/{other.id}", email="jan@corp.example",
                         role="helpdesk", mail_recipient="y")

    assert response.status_code == 303
    db.session.refresh(other)
    assert (other.email, other.role, other.mail_recipient) == ("jan@corp.example", "helpdesk",
                                                               True)
    [event] = events(db, "admin.update")
    assert event.details == {
        "before": {"email": "jan@example.com", "mail_recipient": False,
                   "role": "administrator"},
        "after": {"email": "jan@corp.example", "mail_recipient": True, "role": "helpdesk"}}


@pytest.mark.parametrize("field, value, message", [
    ("email", "", "An email address is required."),
    ("email", "e" * 250 + "@example.com", "at most 254 characters"),
    ("role", "root", "Choose the role"),
])
def test_edit_bad_input_saves_nothing(admin_client, db, make_admin, field, value, message):
    other = make_admin("jan")
    data = {"email": "jan@example.com", "role": "helpdesk", "mail_recipient": "y",
            field: value}

    response = post_form(admin_client, f"{ADMINS}/{other.id}", **data)

    assert response.status_code == 422 and message in field_error(html_of(response), field)
    db.session.refresh(other)
    assert (other.role, other.mail_recipient) == ("administrator", False)
    assert not events(db, "admin.update")


def test_unknown_admin_ids_are_404(admin_client):
    for url in (f"{ADMINS}/999999", f"{ADMINS}/999999/password", f"{ADMINS}/999999/disable"):
        assert admin_client.get(url).status_code == 404, url


def test_no_admin_demotes_themselves(admin_client, db, make_admin):
    make_admin("kai")  # another Administrator: the refusal is about oneself
    me = admin_client.admin

    response = post_form(admin_client, f"{ADMINS}/{me.id}", email=me.email, role="helpdesk")

    assert response.status_code == 422
    assert "your own role" in field_error(html_of(response), "role")
    db.session.refresh(me)
    assert me.role == "administrator"


def test_no_admin_disables_themselves(admin_client, db, make_admin):
    make_admin("kai")
    me = admin_client.admin

    response = post_form(admin_client, f"{ADMINS}/{me.id}/disable", page=ADMINS)

    assert response.status_code == 303
    assert "cannot disable yourself" in html_of(admin_client.get(response.headers["Location"]))
    db.session.refresh(me)
    assert me.active and not events(db, "admin.disable")


def test_the_last_active_administrator_is_never_demoted_or_disabled(db, make_admin):
    # Two Administrators demote each other at the same moment: each request read the other as
    # an Administrator; the second UPDATE finds none left besides its target and is refused.
    ann, bea = make_admin("ann"), make_admin("bea")
    update_admin(bea.id, email=bea.email, role="helpdesk", mail_recipient=False, actor=ann)

    with pytest.raises(AccountError) as demoted:
        update_admin(ann.id, email=ann.email, role="helpdesk", mail_recipient=False, actor=bea)
    with pytest.raises(AccountError) as disabled:
        set_admin_active(ann.id, False, actor=bea)

    assert "last active Administrator" in demoted.value.errors["role"]
    assert "last active Administrator" in disabled.value.errors[""]
    db.session.expire_all()
    assert (ann.role, ann.active) == ("administrator", True)


def test_a_disabled_administrator_does_not_count(db, make_admin):
    ann, bea, cy = make_admin("ann"), make_admin("bea"), make_admin("cy", role="helpdesk")
    set_admin_active(bea.id, False, actor=ann)

    with pytest.raises(AccountError):
        update_admin(ann.id, email=ann.email, role="helpdesk", mail_recipient=False, actor=cy)
    set_admin_active(cy.id, False, actor=ann)  # a Helpdesk admin may always be disabled


def test_disabling_an_admin_ends_their_sessions_and_sign_in(app, admin_client, db, make_admin):
    other = make_admin("lou")
    browser = signed_in(app, other)
    assert browser.get("/admin/devices/pending").status_code == 200

    page = html_of(admin_client.get(f"{ADMINS}/{other.id}/disable"))
    assert "Disable the admin lou?" in page
    response = post_form(admin_client, f"{ADMINS}/{other.id}/disable", page=ADMINS)

    assert response.status_code == 303
    assert browser.get("/admin/devices/pending").status_code == 302  # to the sign-in
    assert sign_in(app.test_client(), "lou").status_code == 422
    assert [e.target for e in events(db, "admin.disable")] == ["lou"]
    post_form(admin_client, f"{ADMINS}/{other.id}/enable", page=ADMINS)
    assert sign_in(app.test_client(), "lou").status_code == 303


def test_disable_over_htmx_answers_the_row(admin_htmx_client, make_admin):
    other = make_admin("lou")
    response = post_form(admin_htmx_client, f"{ADMINS}/{other.id}/disable", page=ADMINS)
    html = html_of(response)
    assert html.lstrip().startswith(f'<tr id="admin-{other.id}"') and "Disabled" in html


def test_set_new_password_for_another_admin_ends_their_sessions(app, admin_client, db,
                                                                make_admin):
    other = make_admin("max")
    browser = signed_in(app, other)

    response = post_form(admin_client, f"{ADMINS}/{other.id}/password",
                         password="max-new-password", page=f"{ADMINS}/{other.id}")

    assert response.status_code == 303
    assert browser.get("/admin/devices/pending").status_code == 302
    assert sign_in(app.test_client(), "max").status_code == 422
    assert sign_in(app.test_client(), "max", password="max-new-password").status_code == 303
    [event] = events(db, "admin.password_set")
    assert event.target == "max" and "max-new-password" not in repr(event.details)


@pytest.mark.parametrize("value, message", [("", "A password is required."),
                                            ("short", "at least 8 characters")])
def test_set_new_password_bad_input_keeps_the_old_one(app, admin_client, make_admin, value,
                                                      message):
    other = make_admin("max")
    response = post_form(admin_client, f"{ADMINS}/{other.id}/password", password=value,
                         page=f"{ADMINS}/{other.id}")
    assert response.status_code == 422
    assert message in field_error(html_of(response), "password")
    assert sign_in(app.test_client(), "max", password=ADMIN_PASSWORD).status_code == 303


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_a_locked_out_admin_is_shown_and_unlock_lets_them_sign_in(app, admin_client, db,
                                                                  make_admin):
    other = make_admin("ned")
    browser = app.test_client()
    for _ in range(3):
        assert sign_in(browser, "Ned", password="wrong-password").status_code == 422
    assert sign_in(browser, "ned").status_code == 429

    row = re.search(r'<tr id="admin-%d">.*?</tr>' % other.id,
                    html_of(admin_client.get(ADMINS)), re.S).group(0)
    assert "Locked out" in row and "Unlock" in row

    response = post_form(admin_client, f"{ADMINS}/{other.id}/unlock", page=ADMINS)

    assert response.status_code == 303
    assert [e.target for e in events(db, "admin.unlock")] == ["ned"]
    assert "Locked out" not in html_of(admin_client.get(ADMINS))
    assert sign_in(browser, "ned").status_code == 303


def test_helpdesk_gets_403_on_administrators(helpdesk_client, db, make_admin):
    other = make_admin("olga")
    for url in (ADMINS, NEW, f"{ADMINS}/{other.id}", f"{ADMINS}/{other.id}/disable"):
        assert helpdesk_client.get(url).status_code == 403, url
    token = csrf_token(helpdesk_client, "/admin/devices/pending")
    response = helpdesk_client.post(f"{ADMINS}/{other.id}/disable",
                                    data={"csrf_token": token})
    assert response.status_code == 403
    db.session.refresh(other)
    assert other.active


def test_two_administrators_demoting_each_other_at_once_leave_one(tmp_path):
    """A real race on a database of its own (committed rows, one connection per thread; a
    fresh PostgreSQL database when TEST_DATABASE_URL is set): in every round exactly one of
    the two demotions wins and one Administrator remains."""
    import threading

    from flask_migrate import upgrade

    from config import TestConfig, database_url
    from portal import create_app
    from portal.accounts.admins import create_admin
    from portal.database import db as database
    from tests.conftest import _fresh_postgres_database

    base = os.environ.get("TEST_DATABASE_URL")
    uri = _fresh_postgres_database(database_url(base), "portal_admin_race") if base else \
        f"sqlite:///{tmp_path / 'race.db'}"
    app = create_app(type("RaceConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": uri, "INSTANCE_PATH": str(tmp_path)}))
    with app.app_context():
        upgrade()
        ids = [create_admin(name, f"{name}@example.com", "race-password-1").id
               for name in ("ann", "bea")]

    def demote(target_id, actor_id, barrier, outcomes):
        with app.app_context():
            actor = database.session.get(AdminUser, actor_id)
            email = database.session.get(AdminUser, target_id).email
            database.session.commit()  # SQLite: BEGIN IMMEDIATE holds the write lock till here
            barrier.wait(10)
            try:
                update_admin(target_id, email=email, role="helpdesk",
                             mail_recipient=False, actor=actor)
                outcomes.append("demoted")
            except AccountError:
                outcomes.append("refused")
            finally:
                database.session.remove()

    for _ in range(10):
        with app.app_context():
            database.session.execute(sa.update(AdminUser).values(role="administrator"))
            database.session.commit()
        barrier, outcomes = threading.Barrier(2, timeout=10), []
        threads = [threading.Thread(target=demote, args=(ids[0], ids[1], barrier, outcomes)),
                   threading.Thread(target=demote, args=(ids[1], ids[0], barrier, outcomes))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sorted(outcomes) == ["demoted", "refused"]
        with app.app_context():
            assert database.session.scalar(sa.select(sa.func.count()).where(
                AdminUser.role == "administrator", AdminUser.active.is_(True))) == 1
    with app.app_context():
        database.engine.dispose()


def test_the_admin_page_shows_its_history(admin_client, make_admin):
    other = make_admin("quinn")
    post_form(admin_client, f"{ADMINS}/{other.id}", email=other.email, role="helpdesk")
    html = html_of(admin_client.get(f"{ADMINS}/{other.id}"))
    assert "admin.update" in html and "helpdesk" in html.split('id="history"')[1]


def test_the_edit_page_shows_the_current_role_and_mail_recipient(admin_client, make_admin):
    other = make_admin("zed", role="helpdesk", mail_recipient=True)
    html = html_of(admin_client.get(f"{ADMINS}/{other.id}"))
    assert re.search(r'<input checked id="role-1" name="role" type="radio" value="helpdesk">',
                     html)
    assert re.search(r'<input [^>]*checked id="mail_recipient"', html)


def test_an_administrator_turns_off_two_step_for_an_admin_who_lost_the_phone(
        admin_client, db, make_admin):
    import pyotp

    from portal.accounts import two_step
    other = make_admin(username="lost-phone")
    secret = two_step.new_secret()
    two_step.turn_on(other, secret, pyotp.TOTP(secret).now())
    page = html_of(admin_client.get(f"/admin/people/administrators/{other.id}"))
    assert "On since" in page and "Turn off (lost phone)" in page
    confirm = html_of(admin_client.get(f"/admin/people/administrators/{other.id}/two-step/reset"))
    assert "Turn off two-step sign-in for lost-phone?" in confirm

    response = post_form(admin_client, f"/admin/people/administrators/{other.id}/two-step/reset",
                         page=f"/admin/people/administrators/{other.id}")

    assert response.status_code == 303
    db.session.expire_all()
    assert db.session.get(AdminUser, other.id).totp_enabled_at is None
    event = events(db, "admin.totp_off")[-1]
    assert (event.actor, event.target) == (admin_client.admin.username, "lost-phone")
    again = post_form(admin_client, f"/admin/people/administrators/{other.id}/two-step/reset",
                      page=f"/admin/people/administrators/{other.id}")
    assert "has no two-step sign-in to turn off" in html_of(admin_client.get(again.location))


def test_an_admin_page_title_is_only_its_title(admin_client, make_admin):
    other = make_admin(username="titled")
    html = html_of(admin_client.get(f"/admin/people/administrators/{other.id}"))
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert title.strip() == "titled · Administrators · QR-Code Provisioning"
