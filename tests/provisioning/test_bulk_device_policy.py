"""Bulk batches with Android Device Policy rows (issue 17): the CSV's management column, the
batch's choice and the profile's; each ADP row's enrollment token made at Google (the loopback
stand-in, through Google's real client libraries) before the batch's one transaction, and every
token given back when the batch is not saved."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal import vault
from portal.amapi.models import AmapiTask
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment.models import Batch, PendingEnrollment, QrCode
from portal.licensing.seats import figures, set_total
from portal.mail.models import OutboxMessage
from portal.provisioning import bulk
from portal.provisioning.device_policy import NOT_CONFIGURED
from portal.provisioning.models import StagedBatch
from portal.settings import network_profiles
from tests.provisioning.test_bulk import directory  # noqa: F401 — the fixture
from tests.support.amapi_standin import TOKEN_EXTRA

URL = "https://portal.test"
TOKENS = r"/v1/enterprises/LC0abc/enrollmentTokens$"
MIXED_CSV = (b"username,usage_count,management\r\n"
             b"pupil1,2,Android Device Policy\r\n"
             b"pupil2,1,companion\r\n"
             b"pupil3,3,\r\n")


def count(db, model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def saved(db):
    return (count(db, QrCode), count(db, PendingEnrollment), count(db, OutboxMessage),
            figures().reserved, figures().remaining)


@pytest.fixture
def users(db, make_user):
    set_total(10)
    return [make_user(f"pupil{index}") for index in range(1, 5)]


def preview(rows, profile, management=None):
    return bulk.preview_rows(rows, network_profile_id=profile.id, otp_validity=None,
                             created_by=None, server_url=URL, management=management)


def create(rows, profile, management=None, **options):
    return bulk.create_batch(rows, network_profile_id=profile.id,
                             otp_validity=options.pop("otp_validity", None), created_by=None,
                             server_url=URL, management=management, **options)


def batch_qr_codes(db, batch):
    return db.session.scalars(sa.select(QrCode).where(QrCode.batch_id == batch.id)
                              .order_by(QrCode.id)).all()


def payload(qr):
    return json.loads(vault.decrypt(qr.payload_enc))


# The management column and the batch's choice

@pytest.mark.parametrize("cell, expected", [
    ("companion", "companion"), ("COMPANION", "companion"), ("adp", "adp"), (" ADP ", "adp"),
    ("android device policy", "adp"), ("Android Device Policy", "adp"),
    ("android_device_policy", "adp"), ("Android-Device-Policy", "adp"), ("", None)])
def test_a_management_cell_is_read_without_regard_to_case(db, users, cell, expected):
    row = bulk._read_row({"username": "pupil1", "management": cell}, 1, {})
    assert row.management == expected and row.ok


def test_an_unknown_management_is_named_in_its_row(db, profile, users):
    result = preview([{"username": "pupil1", "management": "intune"},
                      {"username": "pupil2"}], profile)
    assert not result.ok
    assert [(p.row, p.column) for p in result.problems] == [(1, "management")]
    assert "'intune' is not a Management" in result.problems[0].message
    assert result.rows[1].ok


def test_adp_rows_without_the_api_set_up_are_refused_row_by_row(db, profile, users):
    result = preview([{"username": "pupil1", "management": "adp"},
                      {"username": "pupil2", "management": "companion"},
                      {"username": "pupil3"}], profile, management="adp")
    assert not result.ok
    assert [(p.row, p.column, p.message) for p in result.problems] == [
        (1, "management", NOT_CONFIGURED), (3, "management", NOT_CONFIGURED)]
    assert result.rows[1].ok and count(db, StagedBatch) == 0


def test_adp_rows_need_the_automatic_policy(db, profile, users, amapi_connected):
    from portal.amapi.client import current
    current().policy_auto = None
    db.session.commit()
    result = preview([{"username": "pupil1", "management": "adp"}], profile)
    assert [p.column for p in result.problems] == ["management"]
    assert "policy for Automatic Provisioning" in result.problems[0].message


def test_the_row_then_the_batch_then_the_profile_decide(db, profile, users, amapi_connected):
    network_profiles.save(network_profiles.ProfileValues(
        name="School Wi-Fi", network="wifi", wifi_ssid="School", wifi_security="WPA",
        management="adp"), actor="test", profile=profile)
    rows = [{"username": "pupil1", "management": "companion"}, {"username": "pupil2"}]
    by_profile, by_batch = preview(rows, profile), preview(rows, profile, "companion")
    assert by_profile.ok and by_batch.ok
    assert [bulk.management_label(row, profile) for row in by_profile.rows] == \
        ["Companion", "Android Device Policy"]
    assert [bulk.management_label(row, profile) for row in by_batch.rows] == \
        ["Companion", "Companion"]


# Creating a mixed batch

def test_a_mixed_batch_makes_each_adp_token_at_google_and_saves_all_at_once(
        db, profile, users, amapi_connected, monkeypatch):
    amapi = amapi_connected
    set_total(10)
    seen, held = [], []
    monkeypatch.setattr(bulk, "PROGRESS_SECONDS", 0)  # progress after each token

    def after_row(done, total):
        seen.append((done, total))
        # A token made is owed for deletion at once, due a day later: if this process died
        # now, the worker would delete it then.
        held.extend((task.resource, task.next_attempt_at - utcnow(), task.done_at)
                    for task in db.session.scalars(sa.select(AmapiTask)))

    batch = create(bulk.parse_csv(MIXED_CSV), profile, management="adp", otp_validity=72,
                   progress=after_row)
    assert batch.state == "created" and batch.done == batch.row_count == 3
    assert seen[-1] == (3, 3)
    qrs = batch_qr_codes(db, batch)
    assert [(qr.user.username, qr.management, qr.usage_count) for qr in qrs] == [
        ("pupil1", "adp", 2), ("pupil2", "companion", 1), ("pupil3", "adp", 3)]
    assert figures().reserved == 6 and count(db, PendingEnrollment) == 6
    created = amapi.calls("POST", TOKENS)
    assert len(created) == 2 and all(call.status == 200 for call in created)
    for qr, call in zip((qrs[0], qrs[2]), created):
        body = call.json
        assert json.loads(body["additionalData"]) == {"qr": qr.public_id}
        assert body["user"] == {"accountIdentifier": f"portal-user-{qr.user.id}"}
        assert body["policyName"] == "enterprises/LC0abc/policies/kiosk"
        assert body["duration"] == f"{72 * 3600}s"
        assert body["oneTimeOnly"] is False
        token = amapi.tokens[qr.enrollment_token_name]
        # The QR code carries Google's token (its OTP too: View OTP shows it) and our Wi-Fi.
        extras = payload(qr)["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
        assert extras[TOKEN_EXTRA] == token["value"] == vault.decrypt(qr.otp_enc)
        assert payload(qr)["android.app.extra.PROVISIONING_WIFI_SSID"] == "School"
    assert qrs[1].enrollment_token_name is None and qrs[1].companion_component
    assert "com.google.android.apps.work.clouddpc" not in json.dumps(payload(qrs[1]))
    assert held and {name for name, _, _ in held} == \
        {qrs[0].enrollment_token_name, qrs[2].enrollment_token_name}
    assert all(due > bulk.ORPHAN_AFTER - timedelta(minutes=5) and done is None
               for _, due, done in held)
    assert count(db, AmapiTask) == 0  # settled by the batch's insert
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "batch.create"))
    assert event.details["android_device_policy"] == 2 and event.details["qr_codes"] == 3


def test_a_google_failure_on_the_second_token_saves_nothing_and_gives_the_first_back(
        db, profile, users, amapi_connected, monkeypatch):
    amapi = amapi_connected
    set_total(10)
    before = saved(db)
    monkeypatch.setattr(bulk, "PROGRESS_SECONDS", 0)  # progress after each token

    def after_row(done, total):  # the second ADP token (row 3) fails at Google
        if done == 1:
            amapi.fail(TOKENS, 500, method="POST", message="Backend Error")

    batch = create(bulk.parse_csv(MIXED_CSV), profile, management="adp", progress=after_row)
    assert batch.state == "failed"
    assert batch.error == ("Google did not make the enrollment token of row 4: Google had an "
                           "internal error. Google said: \"Backend Error\" Nothing was saved.")
    assert "private_key" not in batch.error
    assert saved(db) == before and count(db, QrCode) == 0 and count(db, StagedBatch) == 0
    created = amapi.calls("POST", TOKENS)
    assert [call.status for call in created] == [200, 500]
    first = json.loads(created[0].json["additionalData"])["qr"]
    assert amapi.tokens == {}  # the first token was deleted at Google at once
    deleted = amapi.calls("DELETE", r"/enrollmentTokens/")
    assert len(deleted) == 1 and deleted[0].status == 200
    task = db.session.scalar(sa.select(AmapiTask))
    assert task.kind == "delete_token" and task.done_at is not None
    assert count(db, QrCode, QrCode.public_id == first) == 0
    assert db.session.get(Batch, batch.id).done == 1  # the progress it had made


def test_a_failed_give_back_is_owed_and_retried_by_the_worker(db, profile, users,
                                                             amapi_connected, monkeypatch):
    from portal.amapi import tasks
    amapi = amapi_connected
    set_total(10)
    monkeypatch.setattr(bulk, "PROGRESS_SECONDS", 0)

    def after_row(done, total):
        if done == 1:
            amapi.fail(TOKENS, 403, method="POST")
            amapi.fail(r"/enrollmentTokens/", 403, method="DELETE")

    batch = create([{"username": "pupil1", "management": "adp"},
                    {"username": "pupil2", "management": "adp"}], profile,
                   progress=after_row)
    assert batch.state == "failed" and "row 2: Google refused permission" in batch.error
    task = db.session.scalar(sa.select(AmapiTask))
    assert task.done_at is None and task.attempts == 1
    assert "Google refused permission" in task.last_error
    assert len(amapi.tokens) == 1 and figures().reserved == 0
    assert tasks.run_due(now=task.next_attempt_at) == (1, 0)
    assert amapi.tokens == {}


def test_licenses_taken_meanwhile_give_every_token_back(db, profile, users, amapi_connected,
                                                       make_qr_code):
    amapi = amapi_connected
    set_total(4)
    result = preview([{"username": "pupil1", "usage_count": 2, "management": "adp"},
                      {"username": "pupil2", "usage_count": 2, "management": "adp"}], profile)
    staged = bulk.stage(result, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=None)
    batch = bulk.start_batch(staged, created_by=None)
    make_qr_code("auto", usage_count=1, user=users[3])  # another admin takes one license
    batch = bulk.run_batch(batch.id, server_url=URL)
    assert batch.state == "failed" and "reserves 4 licenses and only 3 remain" in batch.error
    assert len(amapi.calls("POST", TOKENS)) == 2 and amapi.tokens == {}
    assert count(db, QrCode, QrCode.batch_id == batch.id) == 0 and figures().reserved == 1


def test_a_directory_user_is_recorded_before_the_token_names_them(db, profile, directory,
                                                                  ldap_server, amapi_connected):
    from portal.accounts.models import PortalUser
    set_total(5)
    typed = bulk.Directory(directory, ldap_server.admin_dn, ldap_server.admin_password)
    found = bulk.preview_rows([{"username": "alice", "management": "adp"}],
                              network_profile_id=profile.id, otp_validity=None,
                              created_by=None, server_url=URL, directory=typed)
    assert found.ok and found.rows[0].ldap_user
    staged = bulk.stage(found, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=None)
    batch = bulk.run_batch(bulk.start_batch(staged, created_by=None).id, server_url=URL)
    assert batch.state == "created", batch.error
    alice = db.session.scalar(sa.select(PortalUser).where(PortalUser.username == "alice"))
    (call,) = amapi_connected.calls("POST", TOKENS)
    assert call.json["user"] == {"accountIdentifier": f"portal-user-{alice.id}"}
    assert count(db, PortalUser, PortalUser.source == "ldap") == 1


def test_the_command_takes_the_batch_s_management(app, db, profile, users, amapi_connected,
                                                  tmp_path):
    csv = tmp_path / "class.csv"
    csv.write_bytes(b"username,management\npupil1,\npupil2,companion\n")
    result = app.test_cli_runner().invoke(args=["bulk-provision", str(csv), "--profile",
                                                "School Wi-Fi", "--management", "adp"])
    assert result.exit_code == 0, result.output
    batch = db.session.scalar(sa.select(Batch))
    assert [qr.management for qr in batch_qr_codes(db, batch)] == ["adp", "companion"]
    assert len(amapi_connected.tokens) == 1
    amapi_connected.fail(TOKENS, 403, method="POST")
    failed = app.test_cli_runner().invoke(args=["bulk-provision", str(csv), "--profile",
                                                "School Wi-Fi", "--management", "adp"])
    assert failed.exit_code != 0
    assert "Google did not make the enrollment token of row 2: Google refused permission" \
        in failed.output


# Revoke batch: Google's tokens deleted right after the commit, as one QR code's Revoke does

def test_revoke_batch_deletes_the_tokens_at_google_right_after_its_commit(
        db, profile, users, amapi_connected):
    batch = create(bulk.parse_csv(MIXED_CSV), profile, management="adp")
    names = {qr.enrollment_token_name for qr in batch_qr_codes(db, batch)} - {None}
    assert len(names) == 2 and names <= set(amapi_connected.tokens)

    assert bulk.revoke_batch(batch, revoked_by=None) == (3, 6)
    assert not names & set(amapi_connected.tokens)
    deleted = {call.path for call in amapi_connected.calls("DELETE")}
    assert deleted == {f"/v1/{name}" for name in names}
    tasks = db.session.scalars(sa.select(AmapiTask)).all()
    assert {task.resource for task in tasks} == names and all(task.done_at for task in tasks)


def test_google_failing_after_revoke_batch_leaves_the_tokens_owed_and_the_batch_revoked(
        db, profile, users, amapi_connected):
    batch = create(bulk.parse_csv(MIXED_CSV), profile, management="adp")
    names = {qr.enrollment_token_name for qr in batch_qr_codes(db, batch)} - {None}
    amapi_connected.fail(r"/enrollmentTokens/", 503, times=None, method="DELETE")

    assert bulk.revoke_batch(batch, revoked_by=None) == (3, 6)
    assert all(qr.is_revoked for qr in batch_qr_codes(db, batch))
    assert figures().reserved == 0
    tasks = db.session.scalars(sa.select(AmapiTask)).all()
    assert {task.resource for task in tasks} == names
    assert all(task.done_at is None and "unavailable" in task.last_error for task in tasks)
    assert names <= set(amapi_connected.tokens)  # still owed: the worker deletes them later
