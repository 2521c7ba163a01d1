"""The Self Service Portal with local accounts: the whole flow, refusals, methods, throttling."""
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import EnrollmentTicket
from portal.enrollment.tickets import ticket_hash
from tests.conftest import post_form
from tests.selfservice.conftest import get, post_sign_in, press_start

WRONG = "The user name or the password is wrong."


def test_sign_in_start_and_link_with_a_ticket_bound_to_user_and_qr(client, db, ssp_qr,
                                                                    make_user):
    user = make_user("ann", password="ann-password-1", display_name="Ann Example")
    page = get(client, f"/ssp/?qr_id={ssp_qr.public_id}")
    assert page.status == 200 and 'id="ssp-sign-in"' in page.html
    assert "htmx" not in page.html  # no script on the phone's pages
    signed_in = post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    assert signed_in.status == 303 and "/ssp/start" in signed_in.location
    assert "Hello, Ann Example" in get(client, signed_in.location).html
    ticket = press_start(client, ssp_qr.public_id)
    row = db.session.scalar(sa.select(EnrollmentTicket).where(
        EnrollmentTicket.ticket_hash == ticket_hash(ticket)))
    assert row.user_id == user.id and row.qr_code_id == ssp_qr.id
    assert (row.expires_at - row.created_at).total_seconds() == pytest.approx(900, abs=5)


def test_unknown_user_and_wrong_password_get_the_same_message(client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    unknown = post_sign_in(client, ssp_qr.public_id, "nobody", "ann-password-1")
    wrong = post_sign_in(client, ssp_qr.public_id, "ann", "not-her-password")
    assert unknown.status == wrong.status == 422
    for page in (unknown, wrong):
        assert WRONG in page.html
    def strip(html):
        # The typed name is kept; a CSRF token is signed with the second it was made in, so
        # the two pages' tokens differ when the requests straddle a second.
        html = html.replace("nobody", "ann")
        return re.sub(r'("X-CSRFToken": "|name="csrf_token" type="hidden" value=")[^"]+', r"\1",
                      html)
    assert strip(unknown.html) == strip(wrong.html)


def test_empty_fields_are_explained_next_to_them(client, ssp_qr):
    page = post_sign_in(client, ssp_qr.public_id, "", "")
    assert page.status == 422
    assert "Enter your user name." in page.html and "Enter your password." in page.html


def test_every_attempt_is_audited_without_the_password(client, db, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    post_sign_in(client, ssp_qr.public_id, "ann", "wrong-secret-typed")
    post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "user.sign_in").order_by(AuditEvent.id)).all()
    assert [(e.outcome, e.code) for e in events] == [("refused", "invalid_credentials"),
                                                     ("success", "local")]
    assert all(e.client_address for e in events)
    assert "wrong-secret-typed" not in repr([(e.details, e.actor) for e in events])


def test_unknown_qr_is_404_and_revoked_qr_is_403_in_the_qr_language(client, db,
                                                                     make_qr_code):
    from portal.enrollment.pending import revoke_qr_code
    missing = get(client, "/ssp/?qr_id=does-not-exist")
    assert missing.status == 404 and "QR code not found" in missing.html
    qr = make_qr_code("ssp", lang="de-CH")
    revoke_qr_code(qr, revoked_by=None)
    revoked = get(client, f"/ssp/?qr_id={qr.public_id}")
    assert revoked.status == 403 and "QR-Code nicht mehr gültig" in revoked.html
    assert 'lang="de"' in revoked.html
    auto = make_qr_code("auto")  # an Automatic Provisioning QR has no portal
    assert get(client, f"/ssp/?qr_id={auto.public_id}").status == 404


@pytest.mark.parametrize("lang,accept,expected", [
    ("de-CH", "en", "Dieses Gerät einrichten"),
    ("it", "de", "Configura questo dispositivo"),
    ("en", "de", "Set up this device"),
    ("fr-CA", "it-IT,it;q=0.9", "Configura questo dispositivo"),  # custom: the browser's
    ("fr-CA", "fr-CA,fr;q=0.9", "Set up this device"),            # then English
])
def test_language_comes_from_the_qr_then_the_browser(client, make_qr_code, lang, accept,
                                                     expected):
    from portal.settings.localizations import add_localization, is_known
    if not is_known(lang):
        add_localization(lang, "Français (Canada)", actor="test")
    qr = make_qr_code("ssp", lang=lang)
    page = get(client, f"/ssp/?qr_id={qr.public_id}", headers={"Accept-Language": accept})
    assert expected in page.html


def test_the_user_can_switch_the_language_for_the_rest_of_the_visit(client, make_qr_code,
                                                                     make_user):
    make_user("ann", password="ann-password-1")
    qr = make_qr_code("ssp", lang="de-CH")
    page = get(client, f"/ssp/?qr_id={qr.public_id}")
    assert f'href="/ssp/?qr_id={qr.public_id}&amp;lang=it"' in page.html
    assert "Configura questo dispositivo" in get(client, f"/ssp/?qr_id={qr.public_id}&lang=it").html
    assert "Il nome utente o la password non sono corretti." in \
        post_sign_in(client, qr.public_id, "ann", "wrong-password").html
    post_sign_in(client, qr.public_id, "ann", "ann-password-1")
    assert "Tocca Avvia" in get(client, f"/ssp/start?qr_id={qr.public_id}").html


def test_disabled_local_method_is_neither_offered_nor_accepted(client, ssp_qr, make_user,
                                                               methods):
    make_user("ann", password="ann-password-1")
    methods(local=False)
    page = get(client, f"/ssp/?qr_id={ssp_qr.public_id}")
    assert 'name="password"' not in page.html
    assert "Sign-in is switched off" in page.html
    refused = post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1", method="local")
    assert refused.status == 422 and "/ssp/start" not in (refused.location or "")
    assert 'id="ssp-start"' not in get(client, f"/ssp/start?qr_id={ssp_qr.public_id}",
                                       follow_redirects=True).html


def test_a_session_for_one_qr_does_not_open_another(client, make_qr_code, make_user):
    make_user("ann", password="ann-password-1")
    first, second = make_qr_code("ssp"), make_qr_code("ssp")
    post_sign_in(client, first.public_id, "ann", "ann-password-1")
    assert get(client, f"/ssp/start?qr_id={second.public_id}").status == 302


def test_sign_out_ends_the_session(client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    post_form(client, f"/ssp/sign-out?qr_id={ssp_qr.public_id}",
              page=f"/ssp/start?qr_id={ssp_qr.public_id}")
    assert get(client, f"/ssp/start?qr_id={ssp_qr.public_id}").status == 302


def test_start_without_csrf_token_gets_a_friendly_translated_page(client, make_qr_code,
                                                                  make_user):
    make_user("ann", password="ann-password-1")
    qr = make_qr_code("ssp", lang="it")
    post_sign_in(client, qr.public_id, "ann", "ann-password-1")
    response = client.post(f"/ssp/start?qr_id={qr.public_id}", data={})
    assert response.status_code == 400
    assert "Riprova" in response.get_data(as_text=True)


@pytest.mark.parametrize("config_overrides", [{"SSP_SIGN_IN_LIMIT": "3 per minute"}],
                         indirect=True)
def test_wrong_passwords_are_throttled_per_user_and_right_ones_are_not_counted(
        app, client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    make_user("bob", password="bob-password-1")
    for _ in range(3):
        assert post_sign_in(client, ssp_qr.public_id, "ann", "wrong").status == 422
    throttled = post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1")
    assert throttled.status == 429 and "Too many attempts" in throttled.html
    for _ in range(5):  # another user from the same address is not affected
        fresh = app.test_client()
        assert post_sign_in(fresh, ssp_qr.public_id, "bob", "bob-password-1").status == 303


@pytest.mark.parametrize("config_overrides", [{"SSP_SIGN_IN_IP_LIMIT": "4 per minute"}],
                         indirect=True)
def test_wrong_passwords_are_throttled_per_address(client, ssp_qr, make_user):
    make_user("ann", password="ann-password-1")
    for name in ("u1", "u2", "u3", "u4"):
        assert post_sign_in(client, ssp_qr.public_id, name, "wrong").status == 422
    assert post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1").status == 429
    other = post_sign_in(client, ssp_qr.public_id, "ann", "ann-password-1",
                         environ_base={"REMOTE_ADDR": "192.0.2.77"})
    assert other.status == 303
