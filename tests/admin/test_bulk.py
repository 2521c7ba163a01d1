"""Devices → Pending → Bulk provisioning: upload, preview, confirm; the batch page; Revoke batch."""
import io
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import Batch, QrCode
from portal.licensing.seats import figures, set_total
from portal.mail.models import OutboxMessage
from portal.provisioning import bulk
from portal.provisioning.models import StagedBatch
from portal.settings import network_profiles
from portal.settings.companion import seed_example_companion
from tests.conftest import csrf_token

PAGE = "/admin/devices/pending/bulk"


def count(db, model, *where):
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


@pytest.fixture
def profile(db):
    seed_example_companion()
    return network_profiles.save(network_profiles.ProfileValues(
        name="School Wi-Fi", network="wifi", wifi_ssid="School", wifi_security="WPA",
        wifi_password="correct-horse"), actor="test")


def upload(client, data: bytes, profile=None, filename="class-4b.csv", **fields):
    token = csrf_token(client, PAGE)
    form = {"csrf_token": token, "file": (io.BytesIO(data), filename),
            "network_profile": str(profile.id) if profile else "", **fields}
    return client.post(PAGE, data=form, content_type="multipart/form-data")


def text(response) -> str:
    return response.get_data(as_text=True)


def test_pending_links_bulk_provisioning_and_the_batches(admin_client):
    html = text(admin_client.get("/admin/devices/pending"))
    assert 'href="/admin/devices/pending/bulk"' in html and 'href="/admin/batches"' in html


def test_the_template_is_the_header_row(admin_client):
    response = admin_client.get(PAGE + "/template.csv")
    assert response.mimetype == "text/csv"
    assert text(response) == "username,usage_count,localization,send_to_user," \
                             "alternative_address,management\r\n"


def test_no_profile_says_where_to_add_one(admin_client, db):
    assert "No network profile is saved yet" in text(admin_client.get(PAGE))


def test_preview_names_every_problem_and_saves_nothing_confirm_disabled(admin_client, db,
                                                                        profile, make_user):
    set_total(3)
    make_user("pupil1")
    response = upload(admin_client, b"username;usage_count\npupil1;2\nghost;1\npupil1;1\n",
                      profile)
    html = text(response)
    assert response.status_code == 422
    assert "Row 3, username: Unknown user &#39;ghost&#39;" in html
    assert "Row 4, username: Duplicate row: user &#39;pupil1&#39; is already in row 2." in html
    assert re.search(r'<button type="button" class="primary" disabled[^>]*>Confirm</button>',
                     html)
    assert "/confirm" not in html
    assert count(db, StagedBatch) == 0 and count(db, QrCode) == 0


def test_a_file_level_problem_goes_beside_the_file_field(admin_client, db, profile):
    response = upload(admin_client, "username\nJürg\n".encode("latin-1"), profile)
    assert response.status_code == 422
    assert "is not valid UTF-8" in text(response) and 'id="file-error"' in text(response)


def test_missing_file_and_profile_are_named(admin_client, db):
    token = csrf_token(admin_client, PAGE)
    response = admin_client.post(PAGE, data={"csrf_token": token, "network_profile": ""},
                                 content_type="multipart/form-data")
    assert response.status_code == 422
    assert "Choose the CSV file to upload." in text(response)
    assert "Choose one of the saved network profiles." in text(response)


@pytest.mark.parametrize("config_overrides", [{"MAX_CONTENT_LENGTH": 1024}], indirect=True)
def test_a_file_over_10_mb_is_refused_before_it_is_read(admin_client, db, profile):
    response = upload(admin_client, b"username\n" + b"x" * (bulk.MAX_BYTES + 100_000), profile)
    assert response.status_code == 422
    assert "larger than 10 MB" in text(response)


def test_upload_preview_confirm_creates_the_batch_and_its_page_shows_it(admin_client, db,
                                                                        profile, make_user):
    set_total(10)
    for name in ("pupil1", "pupil2"):
        make_user(name)
    response = upload(admin_client, b"username,usage_count,send_to_user\npupil1,2,yes\n"
                                    b"pupil2,,no\n", profile)
    html = text(response)
    assert response.status_code == 200
    assert "2 rows, 0 with problems." in html
    assert re.search(r'id="bulk-total">3<.*id="bulk-remaining">10<', html)
    assert count(db, QrCode) == 0 and figures().reserved == 0
    action = re.search(r'action="(/admin/devices/pending/bulk/[^"]+/confirm)"', html).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    response = admin_client.post(action, data={"csrf_token": token})
    assert response.status_code == 303
    batch = db.session.scalar(sa.select(Batch))
    assert response.headers["Location"].endswith(f"/admin/batches/{batch.public_id}")
    assert batch.state == "created" and batch.name == "class-4b.csv"
    assert count(db, QrCode, QrCode.batch_id == batch.id) == 2 and figures().reserved == 3
    assert count(db, OutboxMessage) == 1
    page = text(admin_client.get(f"/admin/batches/{batch.public_id}"))
    assert "2 (2 active, 0 revoked)" in page and "pupil1" in page and "1 queued" in page
    assert "Revoke batch" in page
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.batch_id == batch.id))
    assert f'href="/admin/batches/{batch.public_id}"' in \
        text(admin_client.get(f"/admin/qr-codes/{qr.public_id}"))
    assert batch.public_id in text(admin_client.get("/admin/batches"))
    # A preview is confirmed once.
    assert admin_client.post(action, data={"csrf_token": token}).status_code == 404


def test_revoke_batch_asks_first_then_revokes_every_qr_code(admin_client, db, profile,
                                                            make_user):
    set_total(10)
    make_user("pupil1")
    make_user("pupil2")
    batch = bulk.create_batch([{"username": "pupil1", "usage_count": 2},
                               {"username": "pupil2"}], network_profile_id=profile.id,
                              otp_validity=None, created_by=None,
                              server_url="https://portal.test")
    url = f"/admin/batches/{batch.public_id}/revoke"
    confirm = text(admin_client.get(url))
    assert "Its 2 active QR codes stop working" in confirm and "3 waiting" in confirm
    assert count(db, QrCode, QrCode.revoked_at.is_(None)) == 2
    response = admin_client.post(url, data={"csrf_token": csrf_token(admin_client, url)})
    assert response.status_code == 303
    assert count(db, QrCode, QrCode.revoked_at.is_(None)) == 0 and figures().reserved == 0
    assert count(db, AuditEvent, AuditEvent.action == "batch.revoke") == 1
    assert "Revoke batch" not in text(admin_client.get(f"/admin/batches/{batch.public_id}"))


def test_progress_fragment_polls_while_preparing_and_stops_after(admin_client, db, profile,
                                                                  make_user):
    set_total(10)
    make_user("pupil1")
    preview = bulk.preview_rows([{"username": "pupil1"}], network_profile_id=profile.id,
                                otp_validity=None, created_by=None,
                                server_url="https://portal.test")
    staged = bulk.stage(preview, name=None, network_profile_id=profile.id,
                        otp_validity=None, created_by=None)
    batch = bulk.start_batch(staged, created_by=None)
    url = f"/admin/batches/{batch.public_id}/progress"
    html = text(admin_client.get(url))
    assert 'hx-trigger="every 1s"' in html and "Preparing 0 of 1 QR codes" in html
    assert '<progress id="batch-progress-bar" max="1" value="0">' in html
    bulk.run_batch(batch.id, server_url="https://portal.test")
    html = text(admin_client.get(url))
    assert "every 1s" not in html and "Created 1 QR code." in html


def test_an_interrupted_batch_offers_try_again(admin_client, db, profile, make_user):
    set_total(10)
    make_user("pupil1")
    preview = bulk.preview_rows([{"username": "pupil1"}], network_profile_id=profile.id,
                                otp_validity=None, created_by=None,
                                server_url="https://portal.test")
    batch = bulk.start_batch(bulk.stage(preview, name=None, network_profile_id=profile.id,
                                        otp_validity=None, created_by=None), created_by=None)
    batch.updated_at = batch.updated_at - 3 * bulk.STALE_AFTER
    db.session.commit()
    page = f"/admin/batches/{batch.public_id}"
    assert "Interrupted" in text(admin_client.get(page))
    response = admin_client.post(page + "/restart",
                                 data={"csrf_token": csrf_token(admin_client, page)})
    assert response.status_code == 303
    db.session.refresh(batch)
    assert batch.state == "created"


def test_unlimited_otp_is_for_administrators_only(helpdesk_client, db, profile, make_user):
    set_total(10)
    make_user("pupil1")
    response = upload(helpdesk_client, b"username\npupil1\n", profile, otp_unlimited="y")
    assert response.status_code == 422
    assert "Only an Administrator may define an Unlimited OTP." in text(response)


def test_edited_batch_urls_answer_404(admin_client, db):
    for url in ("/admin/batches/nope", "/admin/batches/" + "x" * 40 + "/progress",
                "/admin/batches/%00abcdefgh/revoke"):
        assert admin_client.get(url).status_code == 404
