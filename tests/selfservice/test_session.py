"""An end user's Self Service Portal session ends everywhere at sign-out, after 15 idle minutes,
and when an admin sets the user's password: a copy of the cookie taken before mints no ticket."""
import time

import pytest
import sqlalchemy as sa

from portal.accounts.users import set_user_password
from portal.audit.models import AuditEvent
from portal.enrollment.models import EnrollmentTicket
from tests.conftest import csrf_token_from
from tests.selfservice.conftest import get, post_sign_in, press_start


def _tickets(db) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(EnrollmentTicket))


def _copy_of(client, app):
    """A second browser holding a copy of `client`'s session cookie (stolen, or a backup)."""
    thief = app.test_client()
    thief.set_cookie(app.config.get("SESSION_COOKIE_NAME", "session"),
                     client.get_cookie(app.config.get("SESSION_COOKIE_NAME", "session")).value)
    return thief


def _start_page(client, qr_id):
    return get(client, f"/ssp/start?qr_id={qr_id}")


def _press_start_with(client, qr_id, token):
    return client.post(f"/ssp/start?qr_id={qr_id}", data={"csrf_token": token})


def test_a_copied_cookie_stops_working_when_the_user_signs_out(app, client, db, ssp_qr,
                                                                make_user):
    make_user("ann", password="ann-password-1")
    qr_id = ssp_qr.public_id
    assert post_sign_in(client, qr_id, "ann", "ann-password-1").status == 303
    copy = _copy_of(client, app)
    start = _start_page(copy, qr_id)
    assert 'id="ssp-start"' in start.html  # the copy works while the user is signed in
    token = csrf_token_from(start.html)

    page = _start_page(client, qr_id)
    signed_out = client.post(f"/ssp/sign-out?qr_id={qr_id}",
                             data={"csrf_token": csrf_token_from(page.html)})
    assert signed_out.status_code == 303

    before = _tickets(db)
    refused = _press_start_with(copy, qr_id, token)
    assert refused.status_code == 302 and "/ssp/?qr_id=" in refused.headers["Location"]
    assert 'id="enrollment-link"' not in refused.get_data(as_text=True)
    assert _tickets(db) == before
    assert _start_page(copy, qr_id).status == 302
    [event] = db.session.scalars(sa.select(AuditEvent)
                                 .where(AuditEvent.action == "user.sign_out")).all()
    assert (event.actor_type, event.actor, event.client_address) == ("user", "ann", "127.0.0.1")
    # Signing in again works, and only the new session does.
    assert post_sign_in(client, qr_id, "ann", "ann-password-1").status == 303
    assert press_start(client, qr_id)
    assert _start_page(copy, qr_id).status == 302


def _idle_for(client, seconds: int) -> None:
    with client.session_transaction() as session:
        session["ssp_seen"] = int(time.time()) - seconds


def test_a_session_idle_for_longer_than_15_minutes_has_ended(client, db, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    qr_id = ssp_qr.public_id
    post_sign_in(client, qr_id, "ann", "ann-password-1")
    token = csrf_token_from(_start_page(client, qr_id).html)

    _idle_for(client, 14 * 60)
    assert 'id="ssp-start"' in _start_page(client, qr_id).html  # and counts as activity
    _idle_for(client, 14 * 60)
    assert 'id="ssp-start"' in _start_page(client, qr_id).html

    _idle_for(client, 15 * 60 + 2)
    before = _tickets(db)
    refused = _press_start_with(client, qr_id, token)
    assert refused.status_code == 302 and _tickets(db) == before
    page = get(client, refused.headers["Location"])
    assert "You were signed out after 15 minutes without activity" in page.html
    assert 'id="ssp-sign-in"' in page.html
    # Said once: the next visit is a plain sign-in page.
    assert "without activity" not in get(client, f"/ssp/?qr_id={qr_id}").html


@pytest.mark.parametrize("config_overrides", [{"SSP_SESSION_IDLE_MINUTES": 2}], indirect=True)
def test_the_idle_lifetime_is_configurable(client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    _idle_for(client, 110)
    assert _start_page(client, ssp_qr.public_id).status == 200
    _idle_for(client, 125)
    assert _start_page(client, ssp_qr.public_id).status == 302


def test_a_session_from_before_epochs_existed_has_ended(client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    with client.session_transaction() as session:
        del session["ssp_epoch"]
    assert _start_page(client, ssp_qr.public_id).status == 302


def test_setting_a_users_password_ends_their_sessions(client, db, ssp_qr, make_user):
    user = make_user("ann", password="ann-password-1")
    post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    assert _start_page(client, ssp_qr.public_id).status == 200

    set_user_password(user.id, "a-new-password-2", actor="helpdesk")

    assert _start_page(client, ssp_qr.public_id).status == 302
