"""Pending enrollments one by one: Reset OTP, Delete, Extend, Mail again, and Unlimited for
Administrators only (issue 13 point 4)."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment import errors
from portal.enrollment.models import PendingEnrollment
from portal.enrollment.pending import revoke_qr_code
from portal.enrollment.redeem import DeviceInfo, redeem
from portal.licensing.seats import figures
from portal.mail.models import OutboxMessage
from portal.provisioning.pending_actions import (Extension, PendingActionError,
                                                 delete_pending, extend_otp, reset_otp)
from tests.api.conftest import assert_figures_exact, otp_of
from tests.conftest import post_form


def tablet(serial="R58N123ABC") -> DeviceInfo:
    return DeviceInfo(serial_number=serial, manufacturer="samsung", model="SM-X200",
                      android_api_level=33)


def enroll(qr, otp, serial="R58N123ABC"):
    return redeem(qr.public_id, otp=otp, ticket=None, device=tablet(serial),
                  client_address="192.0.2.1")


def pending_ids(db, qr, state="pending") -> list[int]:
    return list(db.session.scalars(sa.select(PendingEnrollment.id).where(
        PendingEnrollment.qr_code_id == qr.id, PendingEnrollment.state == state)
        .order_by(PendingEnrollment.id)))


def audited(db, action) -> list[AuditEvent]:
    return list(db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)))


@pytest.fixture
def qr(make_qr_code, make_admin, db):
    admin = make_admin(mail_recipient=True)
    return make_qr_code("auto", licenses=10, usage_count=3, created_by=admin)


def page_of(client, url) -> str:
    return client.get(url).get_data(as_text=True)


# Reset OTP ---------------------------------------------------------------------------------

def test_reset_otp_stops_the_old_otp_at_once_and_rebuilds_the_qr_code(qr, db, helpdesk_client):
    old_otp, old_payload = otp_of(qr), qr.payload_enc
    confirm = page_of(helpdesk_client, f"/admin/qr-codes/{qr.public_id}/otp/reset")
    assert "stops working" in confirm and "download it again or mail it again" in confirm
    response = post_form(helpdesk_client, f"/admin/qr-codes/{qr.public_id}/otp/reset")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    db.session.refresh(qr)
    new_otp = otp_of(qr)
    assert new_otp != old_otp and qr.payload_enc != old_payload
    assert f'<code id="otp-value">{new_otp}</code>' in html
    assert "The OTP was reset" in html and "no longer works" in html and "Mail again" in html
    with pytest.raises(errors.InvalidCredentials):
        enroll(qr, old_otp)
    enroll(qr, new_otp)
    assert_figures_exact(db)


def test_reset_otp_gives_the_policy_expiry_to_the_waiting_enrollments_and_is_audited(qr, db,
                                                                                  admin_client):
    db.session.execute(sa.update(PendingEnrollment)
                       .values(expires_at=utcnow() + timedelta(hours=1)))
    db.session.commit()
    otp = reset_otp(qr, reset_by=admin_client.admin)
    expiry = qr.otp_expires_at
    assert expiry > utcnow() + timedelta(hours=71)
    assert {p.expires_at for p in db.session.scalars(sa.select(PendingEnrollment))} == {expiry}
    event, = audited(db, "qr_code.reset_otp")
    assert event.actor == admin_client.admin.username and otp not in str(event.details)
    assert event.details["pending"] == 3


def test_reset_otp_does_not_revive_expired_enrollments(qr, db, admin_client):
    db.session.execute(sa.update(PendingEnrollment)
                       .values(expires_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    reset_otp(qr, reset_by=admin_client.admin)
    assert len(pending_ids(db, qr, "expired")) == 3 and figures().reserved == 0
    assert_figures_exact(db)


def test_reset_otp_is_refused_for_a_revoked_qr_code(qr, db, admin_client):
    revoke_qr_code(qr, revoked_by=admin_client.admin)
    old = qr.otp_hash
    response = post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/otp/reset",
                         page=f"/admin/qr-codes/{qr.public_id}")
    assert response.status_code == 303
    assert "is revoked" in page_of(admin_client, response.headers["Location"])
    db.session.refresh(qr)
    assert qr.otp_hash == old


def test_a_reset_that_loses_to_another_shows_the_winners_otp(qr, db, admin_client, make_admin,
                                                            monkeypatch):
    """Another admin's Reset OTP commits after this one read the QR code: this one's OTP would
    never work, so it is not saved; the page says so and shows the OTP in force."""
    from portal.enrollment.models import QrCode
    from portal import otp as otps
    other, make_otp, theirs = make_admin("other"), otps.for_qr_code, []

    def another_reset_first():
        if not theirs:
            monkeypatch.setattr(otps, "for_qr_code", make_otp)
            theirs.append(reset_otp(db.session.get(QrCode, qr.id), reset_by=other))
        return make_otp()
    monkeypatch.setattr(otps, "for_qr_code", another_reset_first)

    response = post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/otp/reset")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "The OTP was just reset by someone else; showing the new one." in html
    assert f'<code id="otp-value">{theirs[0]}</code>' in html
    db.session.refresh(qr)
    assert otp_of(qr) == theirs[0] and theirs[0] in qr.payload_text()
    assert len(audited(db, "qr_code.reset_otp")) == 1       # only the winner's reset
    assert len(audited(db, "qr_code.view_otp")) == 1        # the loser was shown it
    enroll(qr, theirs[0])
    assert_figures_exact(db)


def test_mail_again_queues_the_same_mail_as_creation(qr, db, helpdesk_client):
    before = db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage))
    assert before == 1  # the Mail recipient
    response = post_form(helpdesk_client, f"/admin/qr-codes/{qr.public_id}/mail",
                         page=f"/admin/qr-codes/{qr.public_id}")
    assert response.status_code == 303
    assert "1 message queued" in page_of(helpdesk_client, response.headers["Location"])
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) == 2
    assert len(audited(db, "qr_code.mail_again")) == 1


# Delete -------------------------------------------------------------------------------------

def test_delete_asks_first_names_the_qr_and_returns_the_license(qr, db, admin_client):
    first = pending_ids(db, qr)[0]
    url = f"/admin/qr-codes/{qr.public_id}/pending/{first}/delete"
    confirm = page_of(admin_client, url)
    assert f"QR code {qr.public_id}" in confirm and "returns to the pool" in confirm
    assert figures().reserved == 3
    response = post_form(admin_client, url)
    assert response.status_code == 303
    page = page_of(admin_client, response.headers["Location"])
    assert "1 license returned to the pool" in page
    assert pending_ids(db, qr, "revoked") == [first] and figures().reserved == 2
    event, = audited(db, "pending.delete")
    assert event.details["pending_id"] == first
    assert_figures_exact(db)


def test_delete_twice_is_refused_and_returns_only_one_license(qr, db, admin_client):
    first = pending_ids(db, qr)[0]
    url = f"/admin/qr-codes/{qr.public_id}/pending/{first}/delete"
    post_form(admin_client, url)
    response = post_form(admin_client, url)
    assert "revoked already" in page_of(admin_client, response.headers["Location"])
    assert figures().reserved == 2
    assert_figures_exact(db)


def test_delete_of_another_qr_codes_enrollment_is_not_found(qr, make_qr_code, db, admin_client):
    other = make_qr_code("auto", usage_count=1)
    theirs = pending_ids(db, other)[0]
    response = post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/pending/{theirs}/delete",
                         page=f"/admin/qr-codes/{qr.public_id}")
    assert response.status_code == 404
    assert pending_ids(db, other) == [theirs] and figures().reserved == 4


def test_a_redeemed_enrollment_cannot_be_deleted_and_a_deleted_one_cannot_be_redeemed(qr, db,
                                                                                   admin_client):
    """The sequential race: whichever of a redemption and a Delete comes first wins the row."""
    otp = otp_of(qr)
    enroll(qr, otp, "SERIAL0001")
    used = pending_ids(db, qr, "used")[0]
    with pytest.raises(PendingActionError, match="used already"):
        delete_pending(qr, used, deleted_by=admin_client.admin)
    for pending_id in pending_ids(db, qr):
        delete_pending(qr, pending_id, deleted_by=admin_client.admin)
    with pytest.raises(errors.UsageExhausted):
        enroll(qr, otp, "SERIAL0002")
    assert (figures().used, figures().reserved) == (1, 0)
    assert_figures_exact(db)


def test_helpdesk_may_not_delete_or_extend(qr, db, helpdesk_client):
    first = pending_ids(db, qr)[0]
    for url in (f"/admin/qr-codes/{qr.public_id}/pending/{first}/delete",
                f"/admin/qr-codes/{qr.public_id}/extend"):
        assert helpdesk_client.get(url).status_code == 403
    otp_panel = post_form(helpdesk_client, f"/admin/qr-codes/{qr.public_id}/otp",
                          page=f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert "Reset OTP" in otp_panel and ">Delete<" not in otp_panel and ">Extend<" not in otp_panel
    with pytest.raises(PendingActionError):
        delete_pending(qr, first, deleted_by=helpdesk_client.admin)
    assert figures().reserved == 3


# Extend -------------------------------------------------------------------------------------

def test_extend_by_days_moves_the_waiting_enrollments_and_is_audited(qr, db, admin_client):
    url = f"/admin/qr-codes/{qr.public_id}/extend"
    assert "Extend by" in page_of(admin_client, url)
    response = post_form(admin_client, url, amount="10", unit="days")
    assert response.status_code == 303
    assert "expiry changed for 3 pending enrollments" in page_of(
        admin_client, response.headers["Location"])
    db.session.refresh(qr)
    assert utcnow() + timedelta(days=9) < qr.otp_expires_at <= utcnow() + timedelta(days=10)
    assert {p.expires_at for p in db.session.scalars(sa.select(PendingEnrollment))} == {
        qr.otp_expires_at}
    event, = audited(db, "qr_code.extend_otp")
    assert event.details["expires_after"] == qr.otp_expires_at.isoformat()


def test_extend_unlimited_then_the_otp_never_expires(qr, db, admin_client):
    post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/extend", unlimited="y")
    db.session.refresh(qr)
    assert qr.otp_expires_at is None
    assert {p.expires_at for p in db.session.scalars(sa.select(PendingEnrollment))} == {None}


@pytest.mark.parametrize("data, field, message", [
    ({}, "amount", "or tick Unlimited"),
    ({"amount": "abc", "unit": "days"}, "amount", "Not a valid integer"),
    ({"amount": "0", "unit": "hours"}, "amount", "1 or more"),
    ({"amount": "3651", "unit": "days"}, "amount", "1 to 3,650 days"),
    ({"amount": "87601", "unit": "hours"}, "amount", "1 to 87,600 hours"),
    ({"amount": "2", "unit": "weeks"}, "unit", "Not a valid choice"),
])
def test_bad_extend_input_is_shown_beside_its_field_and_nothing_changes(qr, db, admin_client,
                                                                       data, field, message):
    before = qr.otp_expires_at
    response = post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/extend", **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    slot = html.split(f'id="{field}-error">')[1].split("</span>")[0]
    assert message in slot
    db.session.refresh(qr)
    assert qr.otp_expires_at == before and not audited(db, "qr_code.extend_otp")


def test_extend_is_refused_for_a_revoked_qr_code(qr, db, admin_client):
    revoke_qr_code(qr, revoked_by=admin_client.admin)
    response = post_form(admin_client, f"/admin/qr-codes/{qr.public_id}/extend",
                         amount="2", unit="days")
    assert response.status_code == 422
    assert "is revoked" in response.get_data(as_text=True)


def test_extend_leaves_expired_enrollments_expired(qr, db, admin_client):
    ids = pending_ids(db, qr)
    db.session.execute(sa.update(PendingEnrollment).where(PendingEnrollment.id == ids[0])
                       .values(expires_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    moved = extend_otp(qr, Extension(amount=5, unit="hours"), extended_by=admin_client.admin)
    assert moved == 2 and pending_ids(db, qr, "expired") == [ids[0]]
    assert figures().reserved == 2
    assert_figures_exact(db)


def test_extend_with_nothing_waiting_says_so(qr, db, admin_client):
    for pending_id in pending_ids(db, qr):
        delete_pending(qr, pending_id, deleted_by=admin_client.admin)
    with pytest.raises(PendingActionError, match="No pending enrollment"):
        extend_otp(qr, Extension(amount=5), extended_by=admin_client.admin)


# Define OTP Unlimited: Administrators only ---------------------------------------------------

def _wizard_data(**overrides):
    data = {"option": "auto", "user_type": "local", "lang": "en", "usage_count": "1",
            "network": "mobile", "define_otp": "y", "otp_unlimited": "y"}
    data.update(overrides)
    return data


def test_helpdesk_choosing_unlimited_in_the_wizard_gets_a_message_beside_it(
        helpdesk_client, make_qr_code, make_user, db):
    make_qr_code("ssp")  # the Companion and licenses
    make_user("alice")
    html = page_of(helpdesk_client, "/admin/devices/pending/new")
    assert "Only an Administrator may define an Unlimited OTP." in html  # the hint
    response = post_form(helpdesk_client, "/admin/devices/pending",
                         page="/admin/devices/pending/new", **_wizard_data(username="alice"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    slot = html.split('id="otp_unlimited-error">')[1].split("</span>")[0]
    assert "Only an Administrator may define an Unlimited OTP." in slot
    assert figures().reserved == 0


def test_helpdesk_may_choose_hours_and_an_administrator_unlimited(
        helpdesk_client, admin_client, make_qr_code, make_user, db):
    make_qr_code("ssp")
    make_user("alice")
    limited = _wizard_data(username="alice", otp_validity="5")
    del limited["otp_unlimited"]
    assert post_form(helpdesk_client, "/admin/devices/pending",
                     page="/admin/devices/pending/new", **limited).status_code == 303
    assert post_form(admin_client, "/admin/devices/pending", page="/admin/devices/pending/new",
                     **_wizard_data(username="alice")).status_code == 303
    assert figures().reserved == 2


def test_the_domain_refuses_unlimited_for_helpdesk(make_qr_code, make_admin, db):
    from portal.provisioning.qr_codes import ProvisioningError
    helpdesk = make_admin(role="helpdesk")
    with pytest.raises(ProvisioningError, match="Only an Administrator"):
        make_qr_code("auto", otp_validity="unlimited", created_by=helpdesk)


def test_the_qr_codes_page_shows_exhausted_once_every_enrollment_is_deleted(qr, db,
                                                                            admin_client):
    url = f"/admin/qr-codes/{qr.public_id}"
    assert 'class="badge badge-active"' in page_of(admin_client, url)
    for pending_id in pending_ids(db, qr):
        delete_pending(qr, pending_id, deleted_by=admin_client.admin)
    html = page_of(admin_client, url)
    assert 'class="badge badge-exhausted">Exhausted' in html
    assert "Reset OTP" in html  # still possible, though no enrollment waits


def test_the_qr_code_page_shows_its_history_and_links_to_the_log_for_administrators_only(
        qr, db, admin_client, helpdesk_client):
    post_form(helpdesk_client, f"/admin/qr-codes/{qr.public_id}/otp/reset")

    for client, links in ((admin_client, True), (helpdesk_client, False)):
        html = page_of(client, f"/admin/qr-codes/{qr.public_id}")
        history = html[html.index('id="history"'):]
        assert "<code>qr_code.reset_otp</code>" in history
        assert helpdesk_client.admin.username in history
        assert "<code>qr_code.create</code>" in history
        assert ("All events for" in history) is links
