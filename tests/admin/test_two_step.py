"""Two-step sign-in for admins: setting it up, the code after the password, replays, recovery
codes, turning it off, "required for every admin", throttling and the audit log."""
import re
import time

import pyotp
import pytest
import sqlalchemy as sa

from portal.accounts.models import AdminUser, RecoveryCode
from portal.admin import two_step as two_step_view
from portal.audit.models import AuditEvent
from tests.conftest import ADMIN_PASSWORD, post_form, sign_in
from tests.support.pages import events

PAGE = "/admin/account/two-step"
CODE = "/admin/login/code"
PENDING = "/admin/devices/pending"
SETTINGS = "/admin/settings/sign-in"


def secret_on(html: str) -> str:
    found = re.search(r'id="totp-secret">([A-Z2-7]+)<', html)
    assert found, html
    return found[1]


def recovery_codes_on(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", html)


def later(secret: str, steps: int = 1) -> str:
    """The code of a later time step: the one of now was spent when two-step was turned on."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps)


def turn_on(client) -> tuple[str, list[str]]:
    secret = secret_on(client.get(PAGE).get_data(as_text=True))
    response = post_form(client, PAGE, code=pyotp.TOTP(secret).now())
    assert response.status_code == 200, response.get_data(as_text=True)
    codes = recovery_codes_on(response.get_data(as_text=True))
    assert len(codes) == 10
    return secret, codes


@pytest.fixture
def on(app, db, make_admin):
    """An admin with two-step sign-in on, signed out; (client, admin, secret, codes)."""
    admin = make_admin()
    client = app.test_client()
    assert sign_in(client, admin.username).status_code == 303
    secret, codes = turn_on(client)
    post_form(client, "/admin/logout", page=PENDING)
    return client, admin, secret, codes


def enter_code(client, code: str):
    return post_form(client, CODE, code=code)


# Turning it on

def test_turning_on_shows_a_qr_code_and_the_key_then_ten_recovery_codes_once(admin_client, db):
    html = admin_client.get(PAGE).get_data(as_text=True)
    assert "<h1>Turn on two-step sign-in</h1>" in html and "<svg" in html
    secret = secret_on(html)
    assert admin_client.get(PAGE).get_data(as_text=True).count(secret) == 1  # the same key

    response = post_form(admin_client, PAGE, code=pyotp.TOTP(secret).now())

    codes = recovery_codes_on(response.get_data(as_text=True))
    assert len(set(codes)) == 10 and "shown only now" in response.get_data(as_text=True)
    admin = db.session.get(AdminUser, admin_client.admin.id)
    db.session.refresh(admin)
    assert admin.totp_enabled_at and admin.totp_secret_enc and secret not in admin.totp_secret_enc
    stored = db.session.scalars(sa.select(RecoveryCode.code_hash)
                                .where(RecoveryCode.admin_id == admin.id)).all()
    assert len(stored) == 10
    assert not {code.replace("-", "") for code in codes} & set(stored)
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "is <strong>on</strong>" in page and "10 of 10 recovery codes left" in page
    assert not any(code in page for code in codes)
    [event] = events(db, "admin.totp_on")
    assert event.actor == admin.username and secret not in repr(event.details)


def test_the_qr_code_holds_the_otpauth_address_with_the_issuer_and_the_admin(admin_client):
    from portal.accounts import two_step
    html = admin_client.get(PAGE).get_data(as_text=True)
    secret = secret_on(html)
    uri = two_step.authenticator_uri(secret, admin_client.admin.username)

    assert uri == pyotp.TOTP(secret).provisioning_uri(admin_client.admin.username,
                                                      issuer_name="QR-Code Provisioning")
    assert two_step.qr_svg(uri) in html


@pytest.mark.parametrize("code, message", [
    ("", "Type the 6-digit code"),
    ("123", "This is not the code your app shows now"),
    ("abcdef", "This is not the code your app shows now"),
    ("9" * 40, "A code has 6 digits"),
])
def test_a_wrong_code_when_turning_on_says_so_beside_the_field_and_saves_nothing(
        admin_client, db, code, message):
    admin_client.get(PAGE)

    response = post_form(admin_client, PAGE, code=code)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert re.search(r'id="code-error">[^<]*' + re.escape(message), html)
    admin = db.session.get(AdminUser, admin_client.admin.id)
    db.session.refresh(admin)
    assert admin.totp_secret_enc is None
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode))


def test_a_code_from_another_secret_is_refused(admin_client, db):
    admin_client.get(PAGE)

    response = post_form(admin_client, PAGE, code=pyotp.TOTP(pyotp.random_base32()).now())

    assert response.status_code == 422


def test_a_helpdesk_admin_can_set_up_their_own(helpdesk_client, db):
    turn_on(helpdesk_client)

    assert helpdesk_client.get(PAGE).status_code == 200
    admin = db.session.get(AdminUser, helpdesk_client.admin.id)
    db.session.refresh(admin)
    assert admin.totp_enabled_at is not None


# Signing in with it

def test_the_password_alone_does_not_sign_in_the_code_does(on, db):
    client, admin, secret, _ = on
    db.session.refresh(admin)
    last_sign_in = admin.last_login_at

    response = sign_in(client, admin.username)

    assert (response.status_code, response.headers["Location"]) == (303, CODE)
    assert client.get(PENDING).status_code == 302  # not signed in yet
    password_step = events(db, "admin.sign_in")[-1]  # says that a code must follow
    assert password_step.details == {"step": "password", "next_step": "two-step code"}
    db.session.refresh(admin)
    assert admin.last_login_at == last_sign_in
    page = client.get(CODE).get_data(as_text=True)
    assert "<h1>Two-step sign-in</h1>" in page
    response = enter_code(client, later(secret))
    assert (response.status_code, response.headers["Location"]) == (303, PENDING)
    assert client.get(PENDING).status_code == 200
    assert events(db, "admin.sign_in_code")[-1].outcome == "success"


def test_next_survives_the_second_step(on):
    client, admin, secret, _ = on
    sign_in(client, admin.username, next_url="/admin/audit")

    assert enter_code(client, later(secret)).headers["Location"] == "/admin/audit"


def test_a_wrong_code_is_refused_and_audited_as_invalid_totp(on, db):
    client, admin, secret, _ = on
    sign_in(client, admin.username)

    response = enter_code(client, "000000" if later(secret) != "000000" else "111111")

    assert response.status_code == 422
    assert "This code is wrong or was used already" in response.get_data(as_text=True)
    assert client.get(PENDING).status_code == 302
    event = events(db, "admin.sign_in_code")[-1]
    assert (event.outcome, event.code, event.actor) == ("refused", "invalid_totp",
                                                        admin.username)


def test_a_code_is_accepted_once(on):
    client, admin, secret, _ = on
    code = later(secret)
    sign_in(client, admin.username)
    assert enter_code(client, code).status_code == 303
    post_form(client, "/admin/logout", page=PENDING)

    sign_in(client, admin.username)

    assert enter_code(client, code).status_code == 422


def test_the_previous_step_is_accepted_but_not_older_ones(app, db, make_admin):
    admin = make_admin()
    client = app.test_client()
    sign_in(client, admin.username)
    secret = secret_on(client.get(PAGE).get_data(as_text=True))
    if time.time() % 30 > 27:  # a step ending between making the codes and checking them
        time.sleep(30 - time.time() % 30 + 0.05)
    # Turned on with a code three steps old is refused: outside the window of one step.
    assert post_form(client, PAGE, code=pyotp.TOTP(secret).at(time.time() - 90)).status_code \
        == 422
    assert post_form(client, PAGE, code=pyotp.TOTP(secret).at(time.time() - 30)).status_code \
        == 200


def test_the_code_page_without_a_password_first_sends_to_sign_in(client):
    response = client.get(CODE)
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/login")
    assert client.post(CODE, data={"code": "123456"}).status_code in (303, 400)


def test_the_half_signed_in_state_ends_after_five_minutes(on, monkeypatch):
    client, admin, secret, _ = on
    monkeypatch.setattr(two_step_view, "PENDING_SECONDS", -1)
    sign_in(client, admin.username)

    response = client.get(CODE)

    assert response.headers["Location"] == "/admin/login"
    assert client.get(PENDING).status_code == 302


def test_signing_out_everywhere_ends_a_half_signed_in_state(on, db):
    client, admin, secret, _ = on
    sign_in(client, admin.username)
    db.session.execute(sa.update(AdminUser).where(AdminUser.id == admin.id)
                       .values(session_epoch=AdminUser.session_epoch + 1))
    db.session.commit()

    assert client.get(CODE).headers["Location"] == "/admin/login"


def test_a_recovery_code_signs_in_once_and_is_audited_without_it(on, db):
    client, admin, _, codes = on
    sign_in(client, admin.username)

    assert enter_code(client, codes[3].upper().replace("-", " ")).status_code == 303
    post_form(client, "/admin/logout", page=PENDING)
    sign_in(client, admin.username)
    assert enter_code(client, codes[3]).status_code == 422

    [event] = events(db, "admin.recovery_code_used")
    assert event.details == {"remaining": 9}
    columns = [c.key for c in sa.inspect(AuditEvent).column_attrs]
    for stored in db.session.scalars(sa.select(AuditEvent)):
        text = " ".join(repr(getattr(stored, key)) for key in columns)
        assert codes[3] not in text and codes[3].replace("-", "") not in text


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_the_fourth_wrong_code_gets_429_even_with_the_right_one(on):
    client, admin, secret, _ = on
    sign_in(client, admin.username)
    assert [enter_code(client, "abcdef").status_code for _ in range(3)] == [422] * 3

    response = enter_code(client, later(secret))

    assert response.status_code == 429 and "Too many attempts" in response.get_data(as_text=True)
    assert client.get(PENDING).status_code == 302


# Turning it off, new recovery codes

def test_turning_off_needs_the_password_or_a_code(on, db):
    client, admin, secret, codes = on
    sign_in(client, admin.username)
    enter_code(client, later(secret))

    refused = post_form(client, PAGE + "/off", page=PAGE, confirmation="not my password")
    assert refused.status_code == 422
    assert re.search(r'id="confirmation-error">This is neither your password',
                     refused.get_data(as_text=True))
    assert post_form(client, PAGE + "/off", page=PAGE,
                     confirmation=ADMIN_PASSWORD).status_code == 303

    db.session.refresh(admin)
    assert admin.totp_secret_enc is None and admin.totp_enabled_at is None
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryCode))
    assert len(events(db, "admin.totp_off")) == 1
    post_form(client, "/admin/logout", page=PENDING)
    assert sign_in(client, admin.username).headers["Location"] == PENDING


def test_new_recovery_codes_replace_the_old_ones(on, db):
    client, admin, secret, old = on
    sign_in(client, admin.username)
    enter_code(client, later(secret))

    response = post_form(client, PAGE + "/recovery-codes", page=PAGE,
                         **{"renew-confirmation": ADMIN_PASSWORD})

    new = recovery_codes_on(response.get_data(as_text=True))
    assert response.status_code == 200 and len(new) == 10 and not set(new) & set(old)
    assert len(events(db, "admin.recovery_codes_new")) == 1
    post_form(client, "/admin/logout", page=PENDING)
    sign_in(client, admin.username)
    assert enter_code(client, old[0]).status_code == 422
    assert enter_code(client, new[0]).status_code == 303


def test_new_recovery_codes_with_a_wrong_password_change_nothing(on, db):
    client, admin, secret, old = on
    sign_in(client, admin.username)
    enter_code(client, later(secret))
    before = db.session.scalars(sa.select(RecoveryCode.code_hash)).all()

    response = post_form(client, PAGE + "/recovery-codes", page=PAGE,
                         **{"renew-confirmation": ""})

    assert response.status_code == 422
    assert re.search(r'id="renew-confirmation-error">Type your password',
                     response.get_data(as_text=True))
    assert db.session.scalars(sa.select(RecoveryCode.code_hash)).all() == before


# Required for every admin

def require(admin_client, required=True):
    data = {"admin_totp_required": "y"} if required else {}
    return post_form(admin_client, SETTINGS + "/two-step", page=SETTINGS, **data)


def test_an_administrator_requires_it_for_everyone_and_it_is_audited(admin_client, db):
    page = admin_client.get(SETTINGS).get_data(as_text=True)
    assert "Require two-step sign-in of every admin" in page and 'id="sign-in-form"' in page

    assert require(admin_client).status_code == 303

    assert 'name="admin_totp_required" value="y" checked' in \
        admin_client.get(SETTINGS).get_data(as_text=True)
    [event] = events(db, "settings.admin_totp_required")
    assert event.details == {"before": False, "after": True}
    assert require(admin_client, False).status_code == 303
    assert 'value="y" checked' not in admin_client.get(SETTINGS).get_data(as_text=True)


def test_a_helpdesk_admin_cannot_require_it(helpdesk_client):
    assert post_form(helpdesk_client, SETTINGS + "/two-step", page=PAGE,
                     admin_totp_required="y").status_code == 403


def test_required_for_everyone_makes_an_admin_set_it_up_before_the_console(
        admin_client, app, db, make_admin):
    require(admin_client)
    other = make_admin(role="helpdesk")
    client = app.test_client()

    assert sign_in(client, other.username).headers["Location"] == CODE
    html = client.get(CODE).get_data(as_text=True)
    assert "Every admin must sign in with two steps" in html
    assert client.get(PENDING).status_code == 302
    secret = secret_on(html)
    assert enter_code(client, "12345").status_code == 422
    response = enter_code(client, pyotp.TOTP(secret).now())

    assert response.status_code == 200 and len(recovery_codes_on(response.get_data(
        as_text=True))) == 10
    assert client.get(PENDING).status_code == 200


def test_required_for_everyone_cannot_be_turned_off(on, admin_client, db):
    client, admin, secret, _ = on
    require(admin_client)
    sign_in(client, admin.username)
    enter_code(client, later(secret))

    response = post_form(client, PAGE + "/off", page=PAGE, confirmation=ADMIN_PASSWORD)

    assert response.status_code == 422 and "cannot be turned off" in response.get_data(
        as_text=True)
    db.session.refresh(admin)
    assert admin.totp_secret_enc is not None


def test_requiring_it_keeps_the_sign_in_methods_from_the_environment(app, db, make_admin):
    app.config.update(LDAP_URL="ldaps://dc.example.org", LDAP_BASE_DN="dc=example,dc=org")
    client = app.test_client()
    sign_in(client, make_admin().username)

    require(client)

    from portal.settings import sign_in as settings
    methods = settings.current()
    assert methods.source == "saved" and methods.values.ldap_url == "ldaps://dc.example.org"


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_wrong_passwords_to_turn_off_or_renew_are_throttled_too(on):
    client, admin, secret, _ = on
    sign_in(client, admin.username)
    enter_code(client, later(secret))
    statuses = [post_form(client, PAGE + "/off", page=PAGE, confirmation="wrong").status_code
                for _ in range(2)]
    statuses.append(post_form(client, PAGE + "/recovery-codes", page=PAGE,
                              **{"renew-confirmation": "wrong"}).status_code)

    assert statuses == [422] * 3
    assert post_form(client, PAGE + "/off", page=PAGE,
                     confirmation=ADMIN_PASSWORD).status_code == 429


def test_a_too_long_confirmation_is_refused_beside_the_field(on, db):
    client, admin, secret, _ = on
    sign_in(client, admin.username)
    enter_code(client, later(secret))

    response = post_form(client, PAGE + "/off", page=PAGE, confirmation="x" * 2000)

    assert response.status_code == 422
    assert re.search(r'id="confirmation-error">This is not your password\.',
                     response.get_data(as_text=True))
    db.session.refresh(admin)
    assert admin.totp_secret_enc is not None


def test_recovery_codes_and_the_key_are_never_cached(admin_client):
    assert admin_client.get(PAGE).headers["Cache-Control"] == "no-store"
    secret = secret_on(admin_client.get(PAGE).get_data(as_text=True))
    response = post_form(admin_client, PAGE, code=pyotp.TOTP(secret).now())
    assert response.headers["Cache-Control"] == "no-store"


def test_reset_turns_it_off_for_an_admin_who_lost_the_phone_and_the_codes(on, db):
    from portal.accounts import two_step
    client, admin, _, _ = on

    two_step.reset(admin, actor="operator", actor_type="operator")

    assert sign_in(client, admin.username).headers["Location"] == PENDING
    event = events(db, "admin.totp_off")[-1]
    assert (event.actor_type, event.actor, event.target) == ("operator", "operator",
                                                             admin.username)


def test_check_code_accepts_a_step_once_and_never_an_earlier_one(on, db):
    from portal.accounts import two_step
    _, admin, secret, _ = on
    now = time.time() + 300  # after the step spent when it was turned on
    totp = pyotp.TOTP(secret)

    assert two_step.check_code(admin, totp.at(now), now=now)
    assert not two_step.check_code(admin, totp.at(now), now=now)
    assert not two_step.check_code(admin, totp.at(now - 30), now=now)  # in the window, older
    assert two_step.check_code(admin, totp.at(now + 30), now=now)
    assert not two_step.check_code(admin, "12 34 5", now=now)
