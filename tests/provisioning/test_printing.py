"""The printable sheets as one PDF: every page rendered at 300 dpi (pdftoppm) and its QR code
decoded back to the payload, measured on the image, and its text read (pdftotext)."""
import json
import unicodedata

import pytest

from portal.enrollment.pending import revoke_qr_code
from portal.provisioning.printing import (QR_SIZE_MM, PrintingError, print_sheets,
                                          sheets_pdf)
from portal.settings.localizations import add_localization
from tests.support.pdf import page_images, page_texts, printed_qr

ARABIC = "محمد العلي"


def otp_of(qr) -> str:
    return json.loads(qr.payload_text())[
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["otp"]


@pytest.fixture
def three(make_qr_code, make_user):
    """An English, a de-CH (German) and an Italian Self Service Portal QR code."""
    return [
        make_qr_code(user=make_user("zoe", display_name="Zoë Łukasiewicz"), name="Library"),
        make_qr_code(lang="de-CH", usage_count=3,
                     user=make_user("hans", display_name="Hans Müller")),
        make_qr_code("ssp", lang="it", network="mobile", wifi_ssid=None, wifi_security=None,
                     wifi_password=None),
    ]


def test_every_page_decodes_to_its_payload_at_the_fixed_size_with_a_white_quiet_zone(
        three, tmp_path):
    pdf = sheets_pdf(three)
    assert pdf.startswith(b"%PDF-")
    images = page_images(pdf, tmp_path)
    assert len(images) == 3
    for qr, image in zip(three, images):
        printed = printed_qr(image, qr.qr_version)
        assert printed.text == qr.payload_text()
        assert printed.size_mm >= 50
        assert printed.size_mm == pytest.approx(QR_SIZE_MM, abs=0.5)
        assert printed.quiet_zone_white


def test_each_page_is_in_its_qr_codes_language_with_its_user_and_no_secret(three, tmp_path):
    english, german, italian = page_texts(sheets_pdf(three), tmp_path)
    flat = [" ".join(text.split()) for text in (english, german, italian)]
    assert "Set up your company device" in flat[0] and "six times" in flat[0]
    assert "Zoë Łukasiewicz (zoe)" in flat[0] and "QR code: Library" in flat[0]
    assert "Corp-WLAN" in flat[0] and "does not" not in flat[0]
    assert three[0].otp_expires_at.strftime("%Y-%m-%d %H:%M UTC") in flat[0]
    assert three[0].public_id in flat[0]
    assert "sechsmal" in flat[1] and "Scannen Sie diesen QR-Code" in flat[1]
    assert "Für Hans Müller (hans)" in flat[1] and "bis zu 3" in flat[1]
    assert "six times" not in flat[1]
    assert "Tocca sei volte" in flat[2] and "Self Service Portal" in flat[2]
    assert "dati mobili" in flat[2] or "mobil" in flat[2]
    for qr, text in zip(three, flat):
        assert "correct-horse" not in text and "PROVISIONING" not in text
        if qr.option == "auto":
            assert otp_of(qr) not in text.replace(" ", "")


def test_a_custom_localization_prints_in_the_language_its_pages_fall_back_to(
        make_qr_code, tmp_path):
    add_localization("fr-CA", "Français (Canada)", actor="test")
    (text,) = page_texts(sheets_pdf([make_qr_code(lang="fr-CA")]), tmp_path)
    assert "six times" in " ".join(text.split()) and "fr-CA" in text


@pytest.mark.parametrize("display_name", ["李小龙", ARABIC, "Zoë Łukasiewicz", "Ἀριστοτέλης"])
def test_unicode_names_print(make_qr_code, make_user, display_name, tmp_path):
    qr = make_qr_code(user=make_user(display_name=display_name))
    pdf = sheets_pdf([qr])
    (text,) = page_texts(pdf, tmp_path)
    # pdftotext gives Arabic in its shaped (presentation) forms: NFKC maps them back.
    text = unicodedata.normalize("NFKC", text)
    assert display_name in text or display_name[::-1] in text or \
        all(word in text or word[::-1] in text for word in display_name.split())
    (image,) = page_images(pdf, tmp_path)
    assert printed_qr(image, qr.qr_version).text == qr.payload_text()


def test_revoked_qr_codes_are_left_out_and_counted(make_qr_code, make_user, tmp_path):
    codes = [make_qr_code(user=make_user(display_name=f"Pupil {n}")) for n in range(3)]
    revoke_qr_code(codes[1], revoked_by=None)
    sheets = print_sheets(codes)
    assert (sheets.pages, sheets.left_out) == (2, 1)
    texts = page_texts(sheets.pdf, tmp_path)
    assert ["Pupil 0" in texts[0], "Pupil 2" in texts[1]] == [True, True]
    assert not any("Pupil 1" in text for text in texts)
    revoke_qr_code(codes[0], revoked_by=None)
    revoke_qr_code(codes[2], revoked_by=None)
    with pytest.raises(PrintingError, match="every QR code is revoked"):
        print_sheets(codes)
    with pytest.raises(PrintingError):
        print_sheets([])


def test_ten_qr_codes_make_ten_pages_that_all_decode(make_qr_code, make_user, tmp_path):
    codes = [make_qr_code(user=make_user(display_name=f"Pupil {n}")) for n in range(10)]
    images = page_images(sheets_pdf(codes), tmp_path)
    assert len(images) == 10
    assert [printed_qr(image, qr.qr_version).text for qr, image in zip(codes, images)] == \
        [qr.payload_text() for qr in codes]


def test_the_measure_sees_a_mark_in_the_quiet_zone_and_the_size():
    """tests/support/pdf.printed_qr on an image of known size: 10 pixels a module, 300 dpi."""
    import io

    from PIL import Image, ImageDraw

    from portal.android.qr import qr_version, render_png
    text = "https://portal.test/quiet-zone"
    image = Image.open(io.BytesIO(render_png(text, box_size=10))).convert("L")
    clean = printed_qr(image, qr_version(text))
    modules = 17 + 4 * qr_version(text) + 8
    assert clean.text == text and clean.quiet_zone_white
    assert clean.size_mm == pytest.approx(modules * 10 / 300 * 25.4, abs=0.1)
    ImageDraw.Draw(image).rectangle((18, 60, 22, 64), fill=0)  # 2 modules left of the symbol
    assert not printed_qr(image, qr_version(text)).quiet_zone_white
