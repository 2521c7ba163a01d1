"""Bulk provisioning: parsing a CSV, the preview's row checks, the one all-or-nothing insert."""
import codecs

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import Batch, PendingEnrollment, QrCode
from portal.licensing.seats import figures, set_total
from portal.mail.models import OutboxMessage
from portal.provisioning import bulk
from portal.provisioning.models import StagedBatch

URL = "https://portal.test"


def count(db, model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def saved(db):
    return (count(db, QrCode), count(db, PendingEnrollment), count(db, OutboxMessage),
            figures().reserved)


@pytest.fixture
def users(make_user):
    return [make_user(f"pupil{index}") for index in range(1, 6)]


def preview(rows, profile, admin=None, otp_validity=None):
    return bulk.preview_rows(rows, network_profile_id=profile.id, otp_validity=otp_validity,
                             created_by=admin, server_url=URL)


def create(rows, profile, **options):
    return bulk.create_batch(rows, network_profile_id=profile.id,
                             otp_validity=options.pop("otp_validity", None),
                             created_by=options.pop("created_by", None), server_url=URL,
                             **options)


# Parsing

@pytest.mark.parametrize("data", [
    b"username,usage_count\r\npupil1,2\r\npupil2,\r\n",
    codecs.BOM_UTF8 + b"username,usage_count\npupil1,2\npupil2,\n",
    b"username;usage_count\npupil1;2\npupil2;\n",
    codecs.BOM_UTF8 + b"Username ; usage_count\npupil1;2\n\npupil2;\n",
])
def test_comma_semicolon_and_bom_read_alike(data):
    rows = bulk.parse_csv(data)
    assert [(row["username"].strip(), row["usage_count"]) for row in rows] == \
        [("pupil1", "2"), ("pupil2", "")]


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(bulk.BulkError) as error:
        bulk.parse_csv(data)
    return [str(problem) for problem in error.value.problems]


def test_wrong_encoding_names_the_byte_and_row():
    found = problems_of("username\npupil1\nJürg\n".encode("latin-1"))
    assert len(found) == 1 and "byte 17" in found[0] and "row 3" in found[0]


def test_a_file_over_10_mb_is_refused():
    assert "larger than 10 MB" in problems_of(b"username\n" + b"x" * bulk.MAX_BYTES)[0]


def test_empty_file_no_rows_and_too_many_rows_are_refused():
    assert "empty" in problems_of(b"")[0]
    assert "empty" in problems_of(codecs.BOM_UTF8 + b"  \n")[0]
    assert "no QR code rows" in problems_of(b"username\n\n")[0]
    many = b"username\n" + b"".join(b"u%d\n" % index for index in range(bulk.MAX_ROWS + 1))
    assert "more than 5,000 rows" in problems_of(many)[0]


def test_header_is_required_and_unknown_columns_are_named():
    found = problems_of(b"user,usage_count,colour\npupil1,1,red\n")
    assert "Row 1, user: Unknown column" in found[0]
    assert "Row 1, colour: Unknown column" in found[1]
    assert "needs the column username" in found[2]


# Preview

def test_every_kind_of_broken_row_is_named_and_nothing_is_saved(db, profile, users, make_admin):
    set_total(5)
    data = codecs.BOM_UTF8 + ("username;usage_count;localization;send_to_user;"
            "alternative_address\n"
            "pupil1;2;;yes;\n"                # 2 fine
            "nobody;1;;;\n"                   # 3 unknown user
            "PUPIL1;1;;;\n"                   # 4 duplicate of row 2
            "pupil2;0;;;\n"                   # 5 usage 0
            "pupil3;two;;;\n"                 # 6 not a number
            "pupil4;20000;;;\n"               # 7 over the limit per QR code
            "pupil5;1;;perhaps;not-an-address\n"  # 8 send_to_user, bad address
            "=HYPERLINK(\"x\");1;;;\n"         # 9 formula
            "pupil6;1;xx-unknown;;\n"          # 10 unknown localization (and unknown user)
            ).encode()
    rows, admin = bulk.parse_csv(data), make_admin()
    before = saved(db), count(db, StagedBatch), count(db, AuditEvent)
    result = preview(rows, profile, admin)
    found = {(problem.row, problem.column) for problem in result.problems}
    messages = "\n".join(str(problem) for problem in result.problems)
    assert (3, "username") in found and "Unknown user 'nobody'" in messages
    assert "Administrative LDAP credentials" in messages  # the hint without credentials
    assert (4, "username") in found and "already in row 2" in messages
    assert (5, "usage_count") in found and "1 or more" in messages
    assert (6, "usage_count") in found and "'two' is not a whole number" in messages
    assert (7, "usage_count") in found and "At most 10,000 per QR code" in messages
    assert (8, "send_to_user") in found and (8, "alternative_address") in found
    assert (9, "username") in found and "formulas are refused" in messages
    assert (10, "username") in found
    assert "File, usage_count: The batch reserves 6 licenses; 5 remain." in messages
    assert not result.ok and result.bad_rows == 8 and result.total == 6
    assert (saved(db), count(db, StagedBatch), count(db, AuditEvent)) == before
    with pytest.raises(bulk.BulkError):
        bulk.stage(result, name="x", network_profile_id=profile.id, otp_validity=None,
                   created_by=None)
    assert count(db, StagedBatch) == before[1]


def test_unknown_localization_is_named(db, profile, users):
    set_total(5)
    result = preview([{"username": "pupil1", "localization": "xx-unknown"}], profile)
    assert [(p.row, p.column) for p in result.problems] == [(1, "localization")]


def test_too_many_licenses_for_the_batch_says_total_and_remaining(db, profile, users):
    set_total(5)
    result = preview([{"username": f"pupil{n}", "usage_count": 2} for n in (1, 2, 3)], profile)
    assert result.total == 6 and result.remaining == 5
    messages = [str(problem) for problem in result.problems]
    assert "File, usage_count: The batch reserves 6 licenses; 5 remain." in messages
    assert "Row 3, usage_count: Too many licenses: the batch reaches 6 here, 5 remain." \
        in messages


def test_unknown_profile_and_unlimited_for_helpdesk_are_batch_problems(db, profile, users,
                                                                       make_admin):
    set_total(5)
    result = bulk.preview_rows([{"username": "pupil1"}], network_profile_id=999_999,
                               otp_validity="unlimited", created_by=make_admin(role="helpdesk"),
                               server_url=URL)
    columns = {problem.column for problem in result.problems if problem.row == 0}
    assert columns == {"network_profile", "otp_validity"}


# Creating

def test_a_batch_creates_every_qr_code_pending_enrollment_and_mail_at_once(db, profile, users,
                                                                          make_admin):
    set_total(20)
    admin = make_admin()
    rows = [{"username": "pupil1", "usage_count": "3", "send_to_user": "yes"},
            {"username": "pupil2", "alternative_address": "parent@example.com"},
            {"username": "pupil3", "localization": "de-CH", "send_to_user": "1"}]
    seen = []
    batch = create(rows, profile, created_by=admin, otp_validity=48, name="Class 4b",
                   progress=lambda done, total: seen.append((done, total)))
    assert batch.state == "created" and batch.done == batch.row_count == 3
    assert seen[-1] == (3, 3)
    qrs = db.session.scalars(sa.select(QrCode).where(QrCode.batch_id == batch.id)
                             .order_by(QrCode.id)).all()
    assert [qr.usage_count for qr in qrs] == [3, 1, 1]
    assert [qr.lang for qr in qrs] == ["en", "en", "de-CH"]
    assert all(qr.network_profile_id == profile.id and qr.wifi_ssid == "School" for qr in qrs)
    assert figures().reserved == 5
    assert count(db, PendingEnrollment) == 5
    recipients = sorted(db.session.scalars(sa.select(OutboxMessage.recipient)))
    assert recipients == ["parent@example.com", "pupil1@example.com", "pupil3@example.com"]
    assert count(db, AuditEvent, AuditEvent.action == "batch.create") == 1
    assert count(db, AuditEvent, AuditEvent.action == "qr_code.create") == 3
    assert count(db, StagedBatch) == 0


def test_licenses_taken_between_preview_and_insert_leave_nothing(db, profile, users,
                                                                  make_qr_code):
    set_total(6)
    result = preview([{"username": f"pupil{n}", "usage_count": 2} for n in (1, 2, 3)], profile)
    assert result.ok
    staged = bulk.stage(result, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=None)
    batch = bulk.start_batch(staged, created_by=None)
    make_qr_code("auto", usage_count=1, user=users[4])  # another admin takes one license
    before = saved(db)
    batch = bulk.run_batch(batch.id, server_url=URL)
    assert batch.state == "failed"
    assert "reserves 6 licenses and only 5 remain" in batch.error
    assert saved(db) == before
    assert count(db, QrCode, QrCode.batch_id == batch.id) == 0
    assert count(db, StagedBatch) == 0


def test_a_row_that_changed_since_the_preview_fails_the_whole_batch(db, profile, users):
    set_total(10)
    result = preview([{"username": "pupil1"}, {"username": "pupil2"}], profile)
    staged = bulk.stage(result, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=None)
    batch = bulk.start_batch(staged, created_by=None)
    users[1].active = False
    db.session.commit()
    batch = bulk.run_batch(batch.id, server_url=URL)
    assert batch.state == "failed" and "row 2" in batch.error and "disabled" in batch.error
    assert saved(db) == (0, 0, 0, 0)


def test_a_preview_is_confirmed_once(db, profile, users):
    set_total(10)
    staged = bulk.stage(preview([{"username": "pupil1"}], profile), name=None,
                        network_profile_id=profile.id, otp_validity=None, created_by=None)
    bulk.start_batch(staged, created_by=None)
    with pytest.raises(bulk.BulkError, match="confirmed already"):
        bulk.start_batch(staged, created_by=None)
    assert count(db, Batch) == 1


def test_two_hundred_rows_commit_progress_and_one_batch(db, profile, make_user):
    set_total(200)
    for index in range(200):
        make_user(f"kid{index:03}")
    seen = []
    batch = create([{"username": f"kid{index:03}"} for index in range(200)], profile,
                   progress=lambda done, total: seen.append(done))
    assert seen == [50, 100, 150, 200]
    assert batch.state == "created" and count(db, QrCode, QrCode.batch_id == batch.id) == 200
    assert figures().remaining == 0


def test_revoke_batch_revokes_every_active_qr_code_and_frees_their_licenses(db, profile, users,
                                                                           make_admin):
    set_total(10)
    admin = make_admin()
    batch = create([{"username": "pupil1", "usage_count": 2}, {"username": "pupil2"}], profile)
    first = db.session.scalars(bulk.batch_qr_codes(batch)).first()
    from portal.enrollment.pending import revoke_qr_code
    revoke_qr_code(first, revoked_by=admin)
    assert bulk.revoke_batch(batch, revoked_by=admin) == (1, 1)
    assert figures().reserved == 0
    assert count(db, QrCode, QrCode.batch_id == batch.id, QrCode.revoked_at.is_(None)) == 0
    assert count(db, AuditEvent, AuditEvent.action == "batch.revoke") == 1
    assert count(db, AuditEvent, AuditEvent.action == "qr_code.revoke") == 2


def test_an_interrupted_batch_can_run_again(db, profile, users):
    set_total(10)
    staged = bulk.stage(preview([{"username": "pupil1"}], profile), name=None,
                        network_profile_id=profile.id, otp_validity=None, created_by=None)
    batch = bulk.start_batch(staged, created_by=None)
    assert bulk.display_state(batch) == "preparing" and not bulk.restart(batch)
    batch.updated_at = batch.updated_at - bulk.STALE_AFTER - bulk.STALE_AFTER
    db.session.commit()
    assert bulk.display_state(batch) == "interrupted"
    assert bulk.restart(batch)
    assert bulk.run_batch(batch.id, server_url=URL).state == "created"


# Directory users: looked up with the Administrative LDAP credentials typed on the form

@pytest.fixture
def directory(db, ldap_server):
    from portal.settings import sign_in
    from tests.selfservice.conftest import save_directory_without_sign_in
    save_directory_without_sign_in(ldap_server)
    return sign_in.current().ldap


def test_a_directory_user_is_found_with_the_typed_credentials_and_recorded_on_insert(
        db, profile, directory, ldap_server):
    from portal.accounts.models import PortalUser
    set_total(5)
    rows = [{"username": "alice", "usage_count": "2"}]
    without = preview(rows, profile)
    assert "Administrative LDAP credentials" in str(without.problems[0])
    typed = bulk.Directory(directory, ldap_server.admin_dn, ldap_server.admin_password)
    found = bulk.preview_rows(rows, network_profile_id=profile.id, otp_validity=None,
                              created_by=None, server_url=URL, directory=typed)
    assert found.ok and found.rows[0].ldap_user
    assert ldap_server.admin_password not in str(bulk._staged_values(found.rows[0]))
    assert count(db, PortalUser, PortalUser.source == "ldap") == 0  # a preview writes nothing
    staged = bulk.stage(found, name=None, network_profile_id=profile.id, otp_validity=None,
                        created_by=None)
    assert ldap_server.admin_password not in staged.rows_json
    batch = bulk.run_batch(bulk.start_batch(staged, created_by=None).id, server_url=URL)
    assert batch.state == "created", batch.error
    qr = db.session.scalar(bulk.batch_qr_codes(batch))
    assert qr.user.username == "alice" and qr.user.source == "ldap"
    assert figures().reserved == 2
    wrong = bulk.Directory(directory, ldap_server.admin_dn, "wrong password")
    refused = bulk.preview_rows([{"username": "alice"}], network_profile_id=profile.id,
                                otp_validity=None, created_by=None, server_url=URL,
                                directory=wrong)
    assert any(problem.column == "ldap_bind" for problem in refused.problems)
