"""Devices → Pending → Bulk provisioning with Android Device Policy (issue 17): the upload
form's Management choice, the preview's Management column and per-row refusals, Confirm making
each ADP row's token at the loopback stand-in of Google's API, and Google's failure shown on the
batch's page as a plain sentence with nothing saved."""
import html as html_lib
import re

import sqlalchemy as sa

from portal.enrollment.models import Batch, QrCode
from portal.licensing.seats import figures, set_total
from portal.provisioning.models import StagedBatch
from tests.admin.test_bulk import PAGE, count, profile, upload  # noqa: F401 — the fixture

TOKENS = r"/v1/enterprises/LC0abc/enrollmentTokens$"
CSV = b"username,usage_count,management\npupil1,2,\npupil2,1,Companion\n"


def text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def cells(html: str) -> list[list[str]]:
    body = re.search(r'<table id="bulk-rows">.*?<tbody>(.*?)</tbody>', html, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", cell).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def confirm(client, html):
    action = re.search(r'action="(/admin/devices/pending/bulk/[^"]+/confirm)"', html).group(1)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
    return client.post(action, data={"csrf_token": token})


def test_the_form_offers_management_with_the_profile_s_as_default(admin_client, db, profile):
    html = text(admin_client.get(PAGE))
    select = re.search(r'<select[^>]*name="management".*?</select>', html, re.S).group(0)
    assert re.findall(r'<option[^>]*value="([^"]*)"', select) == ["", "companion", "adp"]
    assert re.search(r'<option selected value="">The network profile\'s</option>', select)
    assert "<code>management</code>" in html


def test_adp_rows_without_the_api_are_refused_in_their_row(admin_client, db, profile,
                                                           make_user):
    set_total(10)
    for name in ("pupil1", "pupil2"):
        make_user(name)
    response = upload(admin_client, CSV, profile, management="adp")
    html = text(response)
    assert response.status_code == 422
    assert "2 rows, 1 with problems." in html
    assert "Row 2, management: Android Device Policy needs the Android Management API" in html
    assert [row[6] for row in cells(html)] == ["Android Device Policy", "Companion"]
    assert 'aria-describedby="bulk-confirm-why">Confirm' in html
    assert count(db, StagedBatch) == 0


def test_confirm_makes_the_adp_tokens_at_google_and_the_batch(admin_client, db, profile,
                                                               make_user, amapi_connected):
    set_total(10)
    for name in ("pupil1", "pupil2"):
        make_user(name)
    response = upload(admin_client, CSV, profile, management="adp")
    html = text(response)
    assert response.status_code == 200, html
    assert [row[6] for row in cells(html)] == ["Android Device Policy", "Companion"]
    assert amapi_connected.calls("POST", TOKENS) == []  # a preview asks Google nothing
    assert confirm(admin_client, html).status_code == 303
    batch = db.session.scalar(sa.select(Batch))
    assert batch.state == "created"
    qrs = db.session.scalars(sa.select(QrCode).order_by(QrCode.id)).all()
    assert [qr.management for qr in qrs] == ["adp", "companion"]
    assert list(amapi_connected.tokens) == [qrs[0].enrollment_token_name]
    assert figures().reserved == 3


def test_google_s_failure_fails_the_batch_with_a_plain_sentence(admin_client, db, profile,
                                                                make_user, amapi_connected):
    set_total(10)
    for name in ("pupil1", "pupil2"):
        make_user(name)
    html = text(upload(admin_client, CSV, profile, management="adp"))
    amapi_connected.fail(TOKENS, 403, method="POST")
    assert confirm(admin_client, html).status_code == 303
    batch = db.session.scalar(sa.select(Batch))
    page = text(admin_client.get(f"/admin/batches/{batch.public_id}"))
    assert "The batch failed; nothing was saved." in page
    assert "Google did not make the enrollment token of row 2: Google refused permission: " \
           "the service account may not manage enterprises/LC0abc." in page
    assert "Traceback" not in page and "private_key" not in page
    assert count(db, QrCode) == 0 and figures().reserved == 0
