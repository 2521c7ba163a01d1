"""Issue 15 point 5 on the QR code's own pages: the review page's image says what it enrolls,
the printable sheet speaks the QR's language, and the wizard says where a localization without
translations falls back to."""
import re

import pytest

from tests.support.pages import html_of


def _image_alt(html: str, image_id: str) -> str:
    return re.search(rf'<img [^>]*id="{image_id}"[^>]*>', html).group(0).split('alt="')[1] \
        .split('"')[0]


def test_the_review_pages_qr_image_says_what_it_enrolls(admin_client, make_qr_code, make_user):
    qr = make_qr_code("auto", user=make_user(username="alice"), lang="de-CH")

    alt = _image_alt(html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}")), "qr-image")

    assert alt == "QR code: Automatic Provisioning for alice, Wi-Fi Corp-WLAN, " \
                  "German (Switzerland) (de-CH)"


def test_a_self_service_qr_on_mobile_data_is_described_too(admin_client, make_qr_code):
    qr = make_qr_code("ssp", network="mobile", wifi_ssid=None, wifi_security=None,
                      wifi_password=None, lang="it")

    alt = _image_alt(html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}")), "qr-image")

    assert alt == "QR code: Self Service Portal, mobile data, Italian (it)"


@pytest.mark.parametrize("lang,html_lang,heading,step", [
    ("de-CH", "de", "Richten Sie Ihr Firmengerät ein", "Scannen Sie diesen QR-Code."),
    ("it", "it", "Configura il tuo dispositivo aziendale", "Scansiona questo codice QR."),
    ("en", "en", "Set up your company device", "Scan this QR code."),
    # A custom localization without translations: English, and the page says so in its lang.
    ("fr-CA", "en", "Set up your company device", "Scan this QR code."),
])
def test_the_printable_sheet_is_in_the_qrs_language(admin_client, make_qr_code, lang, html_lang,
                                                    heading, step):
    from portal.settings.localizations import add_localization
    if lang == "fr-CA":
        add_localization("fr-CA", "Français (Canada)", actor="test")
    qr = make_qr_code("auto", lang=lang)

    html = html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}/print"))

    assert f'<html lang="{html_lang}">' in html
    assert f"<h1>{heading}</h1>" in html
    assert step in html


def test_an_admin_browsing_in_german_still_gets_an_italian_sheet(admin_client, make_qr_code):
    qr = make_qr_code("ssp", lang="it")

    html = html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}/print",
                                    headers={"Accept-Language": "de-CH,de"}))

    assert "Configura il tuo dispositivo aziendale" in html


def test_the_sheets_translated_sentences_escape_the_users_name(admin_client, make_qr_code,
                                                               make_user):
    user = make_user(username="eve", display_name="<b>Eve</b>")
    qr = make_qr_code("auto", user=user, lang="de-CH")

    html = html_of(admin_client.get(f"/admin/qr-codes/{qr.public_id}/print"))

    assert "&lt;b&gt;Eve&lt;/b&gt;" in html and "<b>Eve</b>" not in html
    assert "<strong>Folgen Sie der Companion-App</strong>" in html  # the catalog's own markup


def test_the_wizard_says_where_a_localization_without_translations_falls_back(admin_client,
                                                                             make_qr_code):
    from portal.settings.localizations import add_localization
    make_qr_code("ssp")  # the Companion and licenses, as for any wizard
    add_localization("fr-CA", "Français (Canada)", actor="test")
    add_localization("de-AT", "Deutsch (Österreich)", actor="test")

    html = html_of(admin_client.get("/admin/devices/pending/new"))

    options = dict(re.findall(r'<option ([^>]*value="[^"]+"[^>]*)>([^<]*)</option>',
                              re.search(r'<select[^>]*id="lang".*?</select>', html, re.S)
                              .group(0)))
    by_tag = {re.search(r'value="([^"]+)"', attrs).group(1): (attrs, label)
              for attrs, label in options.items()}
    assert 'data-fallback="English"' in by_tag["fr-CA"][0]
    assert by_tag["fr-CA"][1] == "Français (Canada) (fr-CA) · pages and mail in English"
    for translated in ("en", "de-CH", "it", "de-AT"):  # de-AT has the German pages
        assert "data-fallback" not in by_tag[translated][0], translated
    note = re.search(r'<p [^>]*id="lang-fallback-note"[^>]*>(.*?)</p>', html, re.S).group(1)
    assert "no translation" in note and "in English" in note
