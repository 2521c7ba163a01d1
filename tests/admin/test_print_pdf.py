"""Print batch and Download PDF in the console: the PDFs as the admin downloads them, read back
page by page (pdftoppm at 300 dpi, zxing-cpp, pdftotext); edited URLs, roles, no writes."""
import secrets

import pytest

from portal.enrollment.models import Batch
from portal.enrollment.pending import revoke_qr_code
from tests.security.conftest import changed_tables, snapshot
from tests.support.pdf import page_images, page_texts, printed_qr


def make_batch(db, codes, name="pupils.csv") -> Batch:
    batch = Batch(public_id=secrets.token_urlsafe(12), name=name, state="created",
                  row_count=len(codes), done=len(codes))
    db.session.add(batch)
    db.session.flush()
    for qr in codes:
        qr.batch_id = batch.id
    db.session.commit()
    return batch


@pytest.fixture
def pupils(make_qr_code, make_user):
    def make(count, **overrides):
        return [make_qr_code(user=make_user(f"pupil{n}", display_name=f"Pupil Nr {n}"),
                             **overrides) for n in range(count)]
    return make


def test_print_batch_downloads_one_page_per_qr_code_that_decodes_to_its_payload(
        admin_client, db, pupils, tmp_path):
    codes = pupils(10)
    batch = make_batch(db, codes)
    before = snapshot(db)
    response = admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf")
    assert changed_tables(before, snapshot(db)) == []  # a GET writes nothing
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="qr-codes-batch-{batch.public_id}.pdf"'
    assert response.headers["Cache-Control"] == "no-store"
    texts = page_texts(response.data, tmp_path)
    assert len(texts) == 10
    for n, text in enumerate(texts):  # in the batch's (CSV row) order
        assert f"Pupil Nr {n} (pupil{n})" in text and "six times" in " ".join(text.split())
    images = page_images(response.data, tmp_path)
    assert [printed_qr(image, qr.qr_version).text for qr, image in zip(codes, images)] == \
        [qr.payload_text() for qr in codes]


def test_each_page_of_a_batch_is_in_its_qr_codes_language(admin_client, db, make_qr_code,
                                                           make_user, tmp_path):
    codes = [make_qr_code(lang=lang, user=make_user(display_name=f"Kind {lang}"))
             for lang in ("de-CH", "it", "en")]
    batch = make_batch(db, codes)
    german, italian, english = (" ".join(text.split()) for text in page_texts(
        admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf").data, tmp_path))
    assert "sechsmal" in german and "Für Kind de-CH" in german
    assert "sei volte" in italian and "Per Kind it" in italian
    assert "six times" in english and "For Kind en" in english


def test_revoked_qr_codes_are_left_out_and_the_file_name_says_so(admin_client, db, pupils,
                                                                 tmp_path):
    codes = pupils(3)
    batch = make_batch(db, codes)
    revoke_qr_code(codes[1], revoked_by=None)
    response = admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="qr-codes-batch-{batch.public_id}-2-of-3-revoked-left-out.pdf"')
    texts = page_texts(response.data, tmp_path)
    assert len(texts) == 2 and "Pupil Nr 0" in texts[0] and "Pupil Nr 2" in texts[1]
    revoke_qr_code(codes[0], revoked_by=None)
    revoke_qr_code(codes[2], revoked_by=None)
    response = admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf")
    assert response.status_code == 410 and response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "nothing to print" in html and "every QR code is revoked" in html


def test_a_batch_without_qr_codes_has_nothing_to_print(admin_client, db):
    batch = make_batch(db, [])
    response = admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf")
    assert response.status_code == 409 and "nothing to print" in response.get_data(as_text=True)


def test_download_pdf_of_one_qr_code(admin_client, db, make_qr_code, make_user, tmp_path):
    qr = make_qr_code(lang="de-CH", user=make_user("li", display_name="李小龙"))
    page = admin_client.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert f'href="/admin/qr-codes/{qr.public_id}/print.pdf" download' in page
    assert "Download PDF" in page
    before = snapshot(db)
    response = admin_client.get(f"/admin/qr-codes/{qr.public_id}/print.pdf")
    assert changed_tables(before, snapshot(db)) == []
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="qr-code-{qr.public_id}.pdf"'
    (text,) = page_texts(response.data, tmp_path)
    assert "李小龙 (li)" in text and "Scannen Sie diesen QR-Code" in text
    (image,) = page_images(response.data, tmp_path)
    assert printed_qr(image, qr.qr_version).text == qr.payload_text()


def test_a_revoked_qr_codes_pdf_is_gone_and_its_page_offers_none(admin_client, make_qr_code):
    qr = make_qr_code()
    revoke_qr_code(qr, revoked_by=None)
    assert "print.pdf" not in admin_client.get(f"/admin/qr-codes/{qr.public_id}").get_data(
        as_text=True)
    response = admin_client.get(f"/admin/qr-codes/{qr.public_id}/print.pdf")
    assert response.status_code == 410 and "revoked" in response.get_data(as_text=True)


@pytest.mark.parametrize("edited", ["unknown-batch-id", "x" * 33, "a%20b", "%00", "..",
                                    "%E2%82%AC", "1' OR '1'='1"])
def test_edited_urls_answer_404(admin_client, make_qr_code, edited):
    make_qr_code()
    for url in (f"/admin/batches/{edited}/print.pdf", f"/admin/qr-codes/{edited}/print.pdf"):
        assert admin_client.get(url).status_code == 404, url


def test_a_qr_codes_id_names_no_batch(admin_client, make_qr_code):
    qr = make_qr_code()
    assert admin_client.get(f"/admin/batches/{qr.public_id}/print.pdf").status_code == 404


def test_helpdesk_prints_as_it_prints_the_sheet_and_a_visitor_must_sign_in(
        helpdesk_client, client, db, pupils):
    codes = pupils(1)
    batch = make_batch(db, codes)
    urls = (f"/admin/batches/{batch.public_id}/print.pdf",
            f"/admin/qr-codes/{codes[0].public_id}/print.pdf")
    for url in urls:
        assert helpdesk_client.get(url).status_code == 200, url
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login" in response.location, url


def test_a_large_batch_prints_in_parts_offered_on_its_page(admin_client, db, pupils, tmp_path,
                                                           monkeypatch):
    from portal.provisioning import printing
    monkeypatch.setattr(printing, "PART_PAGES", 2)
    codes = pupils(5)
    batch = make_batch(db, codes)
    revoke_qr_code(codes[0], revoked_by=None)  # 4 to print: parts of 2 and 2

    page = admin_client.get(f"/admin/batches/{batch.public_id}").get_data(as_text=True)
    assert "Print batch in parts:" in page
    assert f"/admin/batches/{batch.public_id}/print.pdf?part=2" in page
    assert "?part=3" not in page and 'Print batch, part 2: QR codes 3 to 4' in page

    second = admin_client.get(f"/admin/batches/{batch.public_id}/print.pdf?part=2")
    assert second.headers["Content-Disposition"] == (
        f'attachment; filename="qr-codes-batch-{batch.public_id}-part-2-of-2-'
        '4-of-5-revoked-left-out.pdf"')
    texts = page_texts(second.data, tmp_path)
    assert len(texts) == 2 and "Pupil Nr 3" in texts[0] and "Pupil Nr 4" in texts[1]
    for part in ("0", "3", "-1", "x", "99999999999999999999", ""):
        assert admin_client.get(
            f"/admin/batches/{batch.public_id}/print.pdf?part={part}").status_code == 404


def test_an_android_device_policy_sheet_says_to_follow_it_in_html_and_pdf(
        admin_client, db, make_qr_code, make_user, amapi_connected, tmp_path):
    qr = make_qr_code(lang="it", management="adp", user=make_user("eve", display_name="Eve"))
    follow = "Segui Android Device Policy"
    sheet = admin_client.get(f"/admin/qr-codes/{qr.public_id}/print").get_data(as_text=True)
    assert f"<strong>{follow}</strong>: si installa, registra il dispositivo per Eve" in sheet
    assert "Companion" not in sheet
    (text,) = page_texts(admin_client.get(f"/admin/qr-codes/{qr.public_id}/print.pdf").data,
                         tmp_path)
    assert follow in " ".join(text.split()) and "Companion" not in text
