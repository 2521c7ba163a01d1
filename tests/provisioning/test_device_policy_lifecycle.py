"""An Android Device Policy QR code's token after it is made: revoked, expired, its last pending
enrollment deleted, Reset OTP, Extend and Regenerate; Google's failures owed, shown on the QR
code's page and retried by the worker. Against the Android Management API stand-in."""
import json
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.amapi.models import AmapiTask
from portal.amapi.tasks import owed_for_qr_code, run_due
from portal.database import utcnow
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.enrollment.pending import expire_due, revoke_qr_code
from portal.licensing.seats import figures
from portal.provisioning import device_policy
from portal.provisioning.pending_actions import (NO_EXTEND_AT_GOOGLE, Extension,
                                                 PendingActionError, delete_pending, extend_otp,
                                                 reset_otp)
from portal.provisioning.regenerate import NOT_FOR_GOOGLE, RegenerateError, regenerate_qr_code
from tests.conftest import csrf_token
from tests.support.amapi_standin import TOKEN_EXTRA

EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"


@pytest.fixture
def adp_auto(make_qr_code, amapi_connected):
    def make(**overrides):
        return make_qr_code("auto", management="adp", **overrides)
    return make


def page(client, qr) -> str:
    return client.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)


def owed_text(html: str) -> str | None:
    found = re.search(r'<dd id="qr-owed">(.*?)</dd>', html, re.S)
    return found and re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1)))


def post(client, url, page_url):
    return client.post(url, data={"csrf_token": csrf_token(client, page_url)})


# ---- Revoke ----

def test_revoking_deletes_the_token_at_google_and_returns_the_licenses(
        adp_auto, amapi_connected, admin_client, db):
    qr = adp_auto(usage_count=3)
    name = qr.enrollment_token_name
    assert name in amapi_connected.tokens
    reserved = figures().reserved
    response = post(admin_client, f"/admin/qr-codes/{qr.public_id}/revoke",
                    f"/admin/qr-codes/{qr.public_id}")
    assert response.status_code == 303
    assert name not in amapi_connected.tokens
    assert [call.path for call in amapi_connected.calls("DELETE")] == [f"/v1/{name}"]
    assert figures().reserved == reserved - 3
    task = db.session.scalar(sa.select(AmapiTask).where(AmapiTask.qr_code_id == qr.id))
    assert task.kind == "delete_token" and task.done_at is not None and task.attempts == 1
    assert owed_text(page(admin_client, qr)) is None


def test_a_google_failure_does_not_fail_the_revoke_it_is_shown_and_the_worker_retries(
        adp_auto, amapi_connected, admin_client, db):
    qr = adp_auto(usage_count=2)
    name = qr.enrollment_token_name
    amapi_connected.fail(r"/enrollmentTokens/", 500, times=3, method="DELETE")  # 3 tries
    response = post(admin_client, f"/admin/qr-codes/{qr.public_id}/revoke",
                    f"/admin/qr-codes/{qr.public_id}")
    assert response.status_code == 303
    assert qr.is_revoked and name in amapi_connected.tokens
    shown = owed_text(page(admin_client, qr))
    assert shown.startswith("Deleting the enrollment token at Google: attempt 1 failed: Google")
    assert "retried automatically" in shown
    (task,) = owed_for_qr_code(qr.id)
    assert task.attempts == 1 and task.next_attempt_at > utcnow()
    # Not due yet: the worker leaves it alone; once due (and Google well again) it is done.
    assert run_due() == (0, 0)
    assert run_due(utcnow() + timedelta(hours=2)) == (1, 0)
    assert name not in amapi_connected.tokens and owed_for_qr_code(qr.id) == []
    assert owed_text(page(admin_client, qr)) is None


def test_revoking_a_self_service_qr_code_removes_its_sign_in_details(
        make_qr_code, amapi_connected, db):
    qr = make_qr_code("ssp", management="adp")
    enterprise = amapi_connected.enterprises["enterprises/LC0abc"]
    assert [d["tokenTag"] for d in enterprise["signinDetails"]] == [qr.public_id]
    revoke_qr_code(qr, revoked_by=None)
    assert enterprise.get("signinDetails", []) == []


def test_revoking_a_companion_qr_code_asks_google_nothing(make_qr_code, amapi_connected, db):
    qr = make_qr_code("auto")
    revoke_qr_code(qr, revoked_by=None)
    assert amapi_connected.requests == [] and owed_for_qr_code(qr.id) == []


def test_a_batch_revoke_owes_the_deletion_in_the_callers_transaction(adp_auto, amapi_connected,
                                                                      db):
    qr = adp_auto()
    revoke_qr_code(qr, revoked_by=None, commit=False)
    (task,) = owed_for_qr_code(qr.id)
    assert task.resource == qr.enrollment_token_name and amapi_connected.calls("DELETE") == []
    db.session.commit()
    assert run_due() == (1, 0) and amapi_connected.tokens == {}


# ---- Expiry ----

def test_when_all_pending_enrollments_expire_the_token_is_deleted_at_google(
        adp_auto, amapi_connected, db):
    expiring = adp_auto(usage_count=2, otp_validity=1)
    lasting = adp_auto(usage_count=1, otp_validity=48)
    reserved = figures().reserved
    assert expire_due(utcnow() + timedelta(hours=2)) == 2
    assert expiring.enrollment_token_name not in amapi_connected.tokens
    assert lasting.enrollment_token_name in amapi_connected.tokens
    assert figures().reserved == reserved - 2
    assert owed_for_qr_code(expiring.id) == [] and db.session.scalar(
        sa.select(AmapiTask.done_at).where(AmapiTask.qr_code_id == expiring.id)) is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AmapiTask).where(
        AmapiTask.qr_code_id == lasting.id)) == 0


def test_an_expiry_whose_deletion_fails_is_owed_and_retried(adp_auto, amapi_connected, db):
    qr = adp_auto(usage_count=1, otp_validity=1)
    amapi_connected.fail(r"/enrollmentTokens/", 503, times=5, method="DELETE")
    later = utcnow() + timedelta(hours=2)
    assert expire_due(later) == 1
    (task,) = owed_for_qr_code(qr.id)
    assert task.attempts == 1 and "Google" in task.last_error
    assert run_due(later + timedelta(hours=3)) == (1, 0)
    assert qr.enrollment_token_name not in amapi_connected.tokens


# ---- The last pending enrollment deleted ----

def test_deleting_the_last_waiting_pending_enrollment_deletes_the_token(
        adp_auto, amapi_connected, make_admin, db):
    admin = make_admin()
    qr = adp_auto(usage_count=2)
    first, second = db.session.scalars(sa.select(PendingEnrollment.id).where(
        PendingEnrollment.qr_code_id == qr.id).order_by(PendingEnrollment.id))
    delete_pending(qr, first, deleted_by=admin)
    assert qr.enrollment_token_name in amapi_connected.tokens  # one still waits
    delete_pending(qr, second, deleted_by=admin)
    assert qr.enrollment_token_name not in amapi_connected.tokens


# ---- Reset OTP, Extend, Regenerate ----

def test_reset_otp_gets_a_new_token_from_google_and_deletes_the_old_one(
        adp_auto, amapi_connected, admin_client, db):
    qr = adp_auto(usage_count=1)
    old_name = qr.enrollment_token_name
    reserved = figures().reserved
    response = post(admin_client, f"/admin/qr-codes/{qr.public_id}/otp/reset",
                    f"/admin/qr-codes/{qr.public_id}/otp/reset")
    assert response.status_code == 200
    db.session.refresh(qr)
    assert qr.enrollment_token_name != old_name and old_name not in amapi_connected.tokens
    new = amapi_connected.tokens[qr.enrollment_token_name]
    assert json.loads(qr.payload_text())[EXTRAS] == {TOKEN_EXTRA: new["value"]}
    assert f'<code id="otp-value">{new["value"]}</code>' in response.get_data(as_text=True)
    body = amapi_connected.calls("POST", r"/enrollmentTokens$")[-1].json
    assert body["oneTimeOnly"] is True and body["duration"] == "259200s"
    assert json.loads(body["additionalData"]) == {"qr": qr.public_id}
    assert figures().reserved == reserved


def test_reset_otp_refused_by_google_changes_nothing(adp_auto, amapi_connected, make_admin, db):
    qr = adp_auto(usage_count=1)
    before = (qr.enrollment_token_name, qr.payload_enc, qr.otp_hash)
    amapi_connected.fail(r"/enrollmentTokens$", 403, times=None, method="POST")
    with pytest.raises(PendingActionError) as refused:
        reset_otp(qr, reset_by=make_admin())
    assert "Google refused permission" in refused.value.message
    db.session.refresh(qr)
    assert (qr.enrollment_token_name, qr.payload_enc, qr.otp_hash) == before
    assert owed_for_qr_code(qr.id) == [] and len(amapi_connected.tokens) == 1


def test_a_reset_that_loses_to_another_gives_its_token_back_and_shows_the_other(
        adp_auto, amapi_connected, admin_client, make_admin, monkeypatch, db):
    """The other admin's Reset OTP completes while Google makes this one's token (the race
    itself, in two processes: tests/concurrency/test_reset_otp_race.py)."""
    qr = adp_auto(usage_count=2)
    old_name, other = qr.enrollment_token_name, make_admin("other")
    obtain, shown = device_policy.obtain, []

    def obtain_while_another_resets(*args, **kwargs):
        made = obtain(*args, **kwargs)
        if not shown:
            monkeypatch.setattr(device_policy, "obtain", obtain)
            shown.append(reset_otp(db.session.get(QrCode, qr.id), reset_by=other))
        return made
    monkeypatch.setattr(device_policy, "obtain", obtain_while_another_resets)
    response = post(admin_client, f"/admin/qr-codes/{qr.public_id}/otp/reset",
                    f"/admin/qr-codes/{qr.public_id}/otp/reset")

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "The OTP was just reset by someone else; showing the new one." in html
    assert f'<code id="otp-value">{shown[0]}</code>' in html
    db.session.refresh(qr)
    assert list(amapi_connected.tokens) == [qr.enrollment_token_name]
    assert amapi_connected.tokens[qr.enrollment_token_name]["value"] == shown[0]
    assert len(amapi_connected.calls("DELETE", "/enrollmentTokens/")) == 2  # old + loser's
    assert old_name not in amapi_connected.tokens and owed_for_qr_code(qr.id) == []


def test_a_reset_that_loses_to_a_revoke_gives_its_token_back(
        adp_auto, amapi_connected, make_admin, monkeypatch, db):
    qr, admin = adp_auto(usage_count=1), make_admin()
    obtain = device_policy.obtain

    def obtain_while_revoked(*args, **kwargs):
        made = obtain(*args, **kwargs)
        revoke_qr_code(db.session.get(QrCode, qr.id), revoked_by=None)
        return made
    monkeypatch.setattr(device_policy, "obtain", obtain_while_revoked)
    with pytest.raises(PendingActionError) as refused:
        reset_otp(qr, reset_by=admin)
    assert "revoked a moment ago" in refused.value.message
    assert amapi_connected.tokens == {}  # the old token (revoked) and the new one: deleted
    assert len(amapi_connected.calls("POST", r"/enrollmentTokens$")) == 2


def test_extend_and_regenerate_are_refused_with_a_plain_sentence(
        adp_auto, amapi_connected, make_admin, admin_client, db):
    admin, qr = make_admin(), adp_auto()
    with pytest.raises(PendingActionError) as refused:
        extend_otp(qr, Extension(amount=2, unit="days"), extended_by=admin)
    assert refused.value.message == NO_EXTEND_AT_GOOGLE
    with pytest.raises(RegenerateError) as refused:
        regenerate_qr_code(qr, regenerated_by=admin, server_url="https://portal.test")
    assert refused.value.message == NOT_FOR_GOOGLE
    response = admin_client.post(f"/admin/qr-codes/{qr.public_id}/extend", data={
        "csrf_token": csrf_token(admin_client, f"/admin/qr-codes/{qr.public_id}/extend"),
        "amount": "2", "unit": "days"})
    assert response.status_code == 422 and "Google cannot extend" in response.get_data(
        as_text=True)
    assert len(amapi_connected.tokens) == 1 and owed_for_qr_code(qr.id) == []


# ---- The worker ----

def test_the_webhook_worker_also_pays_what_is_owed_to_google(adp_auto, amapi_connected, app, db):
    qr = adp_auto()
    amapi_connected.fail(r"/enrollmentTokens/", 500, times=3, method="DELETE")  # 3 tries
    revoke_qr_code(qr, revoked_by=None)
    (task,) = owed_for_qr_code(qr.id)
    task.next_attempt_at = utcnow() - timedelta(seconds=1)  # due now
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["webhooks", "send"])
    assert "Android Management API: done 1, still owed 0." in result.output, result.output
    assert qr.enrollment_token_name not in amapi_connected.tokens
