"""The console's side of stale QR codes, Regenerate and Export (issue 15, points 2 and 6):
the badge and explanation on the Pending list and the review page, the confirmation pages,
the downloads' headers, and the audit of the export with secrets."""
import html as html_lib
import json
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import PendingEnrollment, QrCode
from portal.licensing.seats import figures
from portal.mail.models import OutboxMessage
from portal.provisioning.export import REDACTED
from tests.conftest import post_form
from tests.provisioning.test_regenerate import EXTRAS, P, change_companion, checksum_of

PENDING = "/admin/devices/pending"
EXPLANATION = "Made with the Companion's old checksum; devices will refuse it."


def page_of(qr) -> str:
    return f"/admin/qr-codes/{qr.public_id}"


def text(response) -> str:
    return html_lib.unescape(response.get_data(as_text=True))


def row_of(html: str, qr) -> str:
    return html.split(f'id="qr-code-{qr.id}"')[1].split("</tr>")[0]


def audit_count(db, action) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)
                             .where(AuditEvent.action == action))


@pytest.fixture
def stale(make_qr_code, db):
    """An automatic QR code (3 pending) made before the Companion's checksum changed."""
    qr = make_qr_code("auto", licenses=10, usage_count=3, name="Warehouse scanners")
    change_companion(checksum=checksum_of("the new signing certificate"))
    return qr


# Stale on the Pending list and the review page

def test_the_pending_list_marks_a_stale_row_with_badge_explanation_and_regenerate(
        admin_client, stale, make_qr_code):
    fresh = make_qr_code("auto")
    html = text(admin_client.get(PENDING))
    row = row_of(html, stale)
    assert "badge-stale" in row and "Stale" in row and EXPLANATION in row
    assert f'href="/admin/qr-codes/{stale.public_id}/regenerate"' in row
    assert "badge-stale" not in row_of(html, fresh) and "Regenerate" not in row_of(html, fresh)


def test_the_pending_list_filter_stale_shows_only_stale_rows(admin_client, stale, make_qr_code):
    fresh = make_qr_code("auto")
    html = text(admin_client.get(PENDING + "?state=stale"))
    assert f'id="qr-code-{stale.id}"' in html and f'id="qr-code-{fresh.id}"' not in html
    assert '<option value="stale" selected>' in html


def test_the_review_page_explains_stale_and_offers_regenerate(admin_client, stale):
    html = text(admin_client.get(page_of(stale)))
    note = html.split('id="qr-stale-note"')[1].split("</div>")[0]
    assert "made with the Companion's old checksum; devices will refuse it" in note
    assert f'href="/admin/qr-codes/{stale.public_id}/regenerate"' in note
    assert "badge-stale" in html.split("</h1>")[0]


def test_a_fresh_qr_code_shows_no_stale_note(admin_client, make_qr_code):
    html = text(admin_client.get(page_of(make_qr_code("auto"))))
    assert "qr-stale-note" not in html and "badge-stale" not in html


# Regenerate

def test_the_confirmation_page_says_what_happens_and_leaves_mail_off(admin_client, stale, db):
    before = audit_count(db, "qr_code.regenerate")
    html = text(admin_client.get(page_of(stale) + "/regenerate"))
    assert "Regenerate QR code Warehouse scanners?" in html
    assert "old checksum" in html and "3 waiting pending enrollments move" in html
    assert re.search(r'<input id="mail" name="mail" type="checkbox" value="y">', html)
    assert f'action="/admin/qr-codes/{stale.public_id}/regenerate"' in html
    assert audit_count(db, "qr_code.regenerate") == before


@pytest.mark.parametrize("who", ["admin_client", "helpdesk_client"])
def test_administrators_and_helpdesk_regenerate_and_land_on_the_new_qr_code(request, stale, db,
                                                                          who):
    client = request.getfixturevalue(who)
    reserved = figures().reserved
    response = post_form(client, page_of(stale) + "/regenerate")
    new = db.session.scalar(sa.select(QrCode).where(QrCode.id != stale.id))
    assert response.status_code == 303 and response.headers["Location"] == page_of(new)
    db.session.refresh(stale)
    assert stale.is_revoked and new.usage_count == 3 and figures().reserved == reserved == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.qr_code_id == new.id)) == 0
    html = text(client.get(page_of(new)))
    assert f"QR code {stale.public_id} was revoked; this new QR code replaces it" in html
    assert "3 waiting pending enrollments (licenses carried over)" in html
    assert "qr-stale-note" not in html


def test_regenerate_with_mail_ticked_queues_the_mail(admin_client, make_admin, stale, db):
    make_admin(mail_recipient=True)
    post_form(admin_client, page_of(stale) + "/regenerate", mail="y")
    new = db.session.scalar(sa.select(QrCode).where(QrCode.id != stale.id))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.qr_code_id == new.id)) == 1


def test_regenerate_from_htmx_redirects_the_whole_page(admin_htmx_client, stale, db):
    response = post_form(admin_htmx_client, page_of(stale) + "/regenerate")
    new = db.session.scalar(sa.select(QrCode).where(QrCode.id != stale.id))
    assert response.status_code == 204 and response.headers["HX-Redirect"] == page_of(new)


def test_regenerate_of_a_qr_code_revoked_meanwhile_says_so_and_changes_nothing(admin_client,
                                                                              stale, db):
    token_page = page_of(stale)   # the page the admin opened before the other one was faster
    post_form(admin_client, page_of(stale) + "/regenerate")
    before = (db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)),
              db.session.scalar(sa.select(sa.func.count()).select_from(PendingEnrollment)))
    response = post_form(admin_client, page_of(stale) + "/regenerate", page=token_page)
    assert response.status_code == 303 and response.headers["Location"] == page_of(stale)
    assert "revoked or regenerated a moment ago" in text(admin_client.get(page_of(stale)))
    assert before == (db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)),
                      db.session.scalar(sa.select(sa.func.count()).select_from(PendingEnrollment)))


def test_the_confirmation_page_of_a_revoked_qr_code_goes_back_and_says_why(admin_client, stale):
    post_form(admin_client, page_of(stale) + "/revoke")
    response = admin_client.get(page_of(stale) + "/regenerate")
    assert response.status_code == 302 and response.headers["Location"] == page_of(stale)
    assert "revoked: there is nothing to regenerate" in text(admin_client.get(page_of(stale)))


def test_regenerate_without_the_csrf_token_is_refused(admin_client, stale, db):
    response = admin_client.post(page_of(stale) + "/regenerate", data={"mail": "y"})
    assert response.status_code == 400
    db.session.refresh(stale)
    assert not stale.is_revoked


# Export

def test_export_without_confirmation_replaces_the_secrets_and_says_so(admin_client, stale, db):
    before = audit_count(db, "qr_code.export_payload")
    response = admin_client.get(page_of(stale) + "/payload.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="qr-code-{stale.public_id}-payload-secrets-redacted.json"')
    assert response.headers["Cache-Control"] == "no-store"
    exported, frozen = response.get_json(), json.loads(stale.payload_text())
    assert exported[P + "PROVISIONING_WIFI_PASSWORD"] == REDACTED
    assert exported[EXTRAS]["otp"] == REDACTED
    assert "correct-horse" not in response.get_data(as_text=True)
    assert frozen[EXTRAS]["otp"] not in response.get_data(as_text=True)
    for key in set(frozen) - {P + "PROVISIONING_WIFI_PASSWORD", EXTRAS}:
        assert exported[key] == frozen[key]
    assert audit_count(db, "qr_code.export_payload") == before  # a GET writes nothing


def test_export_with_secrets_asks_first_on_a_page_that_writes_nothing(admin_client, stale, db):
    html = text(admin_client.get(page_of(stale) + "/payload-with-secrets"))
    assert "with its secrets?" in html and "hold the Wi-Fi password and the OTP in clear text" in html
    assert "audit log records that you exported it" in html
    form = re.search(r'<form method="post" action="([^"]+)" class="actions"([^>]*)>', html)
    assert form.group(1) == page_of(stale) + "/payload-with-secrets"
    assert 'hx-boost="false"' in form.group(2)  # a download: not swapped into the page
    assert audit_count(db, "qr_code.export_payload") == 0


@pytest.mark.parametrize("who", ["admin_client", "helpdesk_client"])
def test_export_with_secrets_gives_the_full_payload_and_is_audited(request, stale, db, who):
    client = request.getfixturevalue(who)
    response = post_form(client, page_of(stale) + "/payload-with-secrets")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="qr-code-{stale.public_id}-payload-with-secrets.json"')
    assert response.headers["Cache-Control"] == "no-store"
    assert response.get_json() == json.loads(stale.payload_text())
    event = db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "qr_code.export_payload"))
    assert (event.actor, event.target) == (client.admin.username, stale.public_id)
    assert "correct-horse" not in json.dumps(event.details)


def test_export_with_secrets_without_the_csrf_token_is_refused_and_not_audited(admin_client,
                                                                              stale, db):
    response = admin_client.post(page_of(stale) + "/payload-with-secrets")
    assert response.status_code == 400 and audit_count(db, "qr_code.export_payload") == 0


def test_a_revoked_qr_code_exports_nothing(admin_client, stale, db):
    post_form(admin_client, page_of(stale) + "/revoke")
    assert admin_client.get(page_of(stale) + "/payload.json").status_code == 410
    assert admin_client.get(page_of(stale) + "/payload-with-secrets").status_code == 410
    response = post_form(admin_client, page_of(stale) + "/payload-with-secrets",
                         page=page_of(stale))
    assert response.status_code == 410 and audit_count(db, "qr_code.export_payload") == 0


def test_the_review_page_offers_both_exports(admin_client, stale):
    html = text(admin_client.get(page_of(stale)))
    export = html.split('id="qr-export"')[1].split("</div>")[0]
    assert f'href="/admin/qr-codes/{stale.public_id}/payload.json"' in export
    assert f'href="/admin/qr-codes/{stale.public_id}/payload-with-secrets"' in export
    assert "Zero-Touch" in export and "NFC" in export


@pytest.mark.parametrize("suffix", ["payload.json", "payload-with-secrets", "regenerate"])
def test_edited_ids_in_the_new_urls_answer_404(admin_client, suffix):
    for public_id in ("nosuchqrcode", "a%00b", "x" * 300):
        assert admin_client.get(f"/admin/qr-codes/{public_id}/{suffix}").status_code == 404
