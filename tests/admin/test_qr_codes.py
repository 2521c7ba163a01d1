"""The Advanced QR-Code Provisioning wizard, review page, downloads, View OTP and Revoke."""
import html as html_lib
import json
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import QrCode
from portal.licensing.seats import figures, set_total
from portal.settings.companion import seed_example_companion
from tests.conftest import csrf_token_from
from tests.support.qr import decode_qr

NEW = "/admin/devices/pending/new"
CREATE = "/admin/devices/pending"


@pytest.fixture
def wizard(admin_client, make_user, db):
    seed_example_companion()
    set_total(20)
    make_user("alice", email="alice@example.com", display_name="Alice Smith")
    page = admin_client.get(NEW)
    admin_client.token = csrf_token_from(page.get_data(as_text=True))
    return admin_client


def auto_form(client, **overrides):
    data = {"csrf_token": client.token, "option": "auto", "user_type": "local",
            "username": "alice", "lang": "de-CH", "usage_count": "3", "network": "wifi",
            "wifi_ssid": "Corp-WLAN", "wifi_security": "WPA", "wifi_password": "correct-horse"}
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def qr_count(db):
    return db.session.scalar(sa.select(sa.func.count()).select_from(QrCode))


def test_wizard_page_has_every_named_control_with_a_real_label(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    assert "<h1>Advanced QR-Code Provisioning</h1>" in html
    for name in ("Self Service Portal", "Automatic Provisioning", "Localization", "Wi-Fi",
                 "Mobile data", "SSID", "Security Type", "Password",
                 "Send Notification to Alternative Address", "Save"):
        assert name in html, name
    for control_id in re.findall(r'<(?:input|select)[^>]* id="([^"]+)"', html):
        if control_id != "csrf_token":
            assert f'for="{control_id}"' in html, control_id
    assert "Zero-Touch" in html and "Knox" in html
    assert "reusable" in html and "sends no mail" in html
    assert "out-of-box screens are not all localized" in html


def _field_block(html, field):
    """The markup of one field's wrapper (id="<field>-field") up to the next field's."""
    block = re.search(rf'<[a-z]+ [^>]*id="{field}-field".*?(?=id="[a-z_]+-field"|</form>)',
                      html, re.S)
    assert block, field
    return block.group(0)


def _when(html, field):
    return re.search(r'data-when="([^"]*)"', _field_block(html, field)).group(1).split()


def test_every_step_and_field_is_rendered_once_and_a_choice_needs_no_request(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    for name in ("User Type", "LDAP", "Local", "Usage Count", "Send QR-Code to User",
                 "Define OTP", "Unlimited", "OTP validity (hours)", "SSID", "Mobile data"):
        assert name in html, name
    for field in ("option", "user_type", "username", "usage_count", "wifi_ssid",
                  "wifi_password", "alternative_email", "define_otp", "otp_validity"):
        assert html.count(f'id="{field}-field"') == 1, field
    for step in ("option", "user", "localization", "usage", "network", "mail", "otp"):
        assert html.count(f'<section class="step" id="step-{step}"') == 1, step
    assert "hx-trigger=\"change\"" not in html and 'name="refresh"' not in html
    assert '<span class="error" id="wifi_ssid-error"></span>' in html  # empty until refused
    assert "error-summary" not in html  # nothing refused yet


def test_automatic_provisioning_fields_show_only_for_it(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    assert _when(html, "username") == ["auto", "local"]
    for step in ("user", "usage", "otp"):
        assert f'id="step-{step}" data-when="auto"' in html, step
    assert 'id="ssp-note" data-when="ssp"' in html and 'id="auto-note" data-when="auto"' in html


def test_wifi_fields_show_only_for_wifi_and_mobile_data_explains_the_requirements(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    for field in ("wifi_ssid", "wifi_security", "wifi_hidden"):
        assert _when(html, field) == ["wifi"], field
    assert _when(html, "wifi_password") == ["wifi", "secured", "no_tls"]
    note = re.search(r'<p [^>]*id="mobile-data-note"[^>]*>[^<]*', html).group(0)
    assert 'data-when="mobile"' in note and "SIM or eSIM" in note and "Android 13" in note


def test_define_otp_shows_unlimited_and_hours_and_unlimited_hides_the_hours(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    assert _when(html, "otp_unlimited") == ["auto", "define_otp"]
    assert _when(html, "otp_validity") == ["auto", "define_otp", "limited"]


def test_the_old_re_render_endpoint_is_gone(wizard):
    response = wizard.post("/admin/devices/pending/new/form",
                           data={"csrf_token": wizard.token, "option": "auto"})
    assert response.status_code in (404, 405)


def test_saving_an_automatic_qr_redirects_to_its_review_page(wizard, db):
    response = wizard.post(CREATE, data=auto_form(wizard))
    assert response.status_code == 303
    qr = db.session.scalar(sa.select(QrCode))
    assert response.headers["Location"].endswith(f"/admin/qr-codes/{qr.public_id}")
    assert (qr.option, qr.lang, qr.usage_count, qr.user.username) == ("auto", "de-CH", 3,
                                                                      "alice")
    assert figures().reserved == 3
    review = wizard.get(response.headers["Location"]).get_data(as_text=True)
    assert "The QR code was saved." in review and "QR version" in review


def test_htmx_save_answers_hx_redirect(wizard, db):
    response = wizard.post(CREATE, data=auto_form(wizard), headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response.headers["HX-Redirect"].startswith("/admin/qr-codes/")


BAD_INPUT = {
    "short WPA password": ({"wifi_password": "1234567"}, "wifi_password", "8–63"),
    "33-byte SSID": ({"wifi_ssid": "S" * 33}, "wifi_ssid", "32"),
    "WEP key of 6": ({"wifi_security": "WEP", "wifi_password": "abcdef"}, "wifi_password",
                     "WEP"),
    "password with None": ({"wifi_security": "NONE", "wifi_password": "x"}, None, None),
    "usage count above remaining": ({"usage_count": "21"}, "usage_count", "20 licenses"),
    "usage count zero": ({"usage_count": "0"}, "usage_count", "1 or more"),
    "usage count text": ({"usage_count": "many"}, "usage_count", "integer"),
    "unknown user": ({"username": "mallory"}, "username", "No local user is named"),
    "no user": ({"username": ""}, "username", "Choose the local user"),
    "LDAP without directory": ({"user_type": "ldap"}, "ldap_user", "No directory is configured"),
    "bad alternative address": ({"send_alternative": "y", "alternative_email": "it@"},
                                "alternative_email", "valid email"),
    "missing alternative address": ({"send_alternative": "y"}, "alternative_email",
                                    "Enter the alternative address"),
    "unknown localization": ({"lang": "xx"}, "lang", "Not a valid choice"),
    "OTP hours zero": ({"define_otp": "y", "otp_validity": "0"}, "otp_validity", "87,600"),
    "OTP hours missing": ({"define_otp": "y"}, "otp_validity", "Unlimited"),
}


def _error(html, field) -> str:
    """The text of a field's error region (a refused htmx Save sends it out of band)."""
    slot = re.search(rf'<span class="error" id="{field}-error"[^>]*>(.*?)</span>', html, re.S)
    assert slot, field
    return slot.group(1)


@pytest.mark.parametrize("overrides,field,fragment", BAD_INPUT.values(), ids=BAD_INPUT.keys())
def test_bad_input_is_shown_next_to_its_field_with_422_and_nothing_saved(
        wizard, db, overrides, field, fragment):
    response = wizard.post(CREATE, data=auto_form(wizard, **overrides),
                           headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    if field is None:  # a password typed for an open network is simply not used
        assert response.status_code == 204
        return
    assert response.status_code == 422, html
    assert html.lstrip().startswith('<div class="error-summary"')
    assert fragment in _error(html, field), html
    assert f'href="#{field}"' in html  # the summary links to the field
    # Every other field's region is emptied, out of band; no input is sent back to replace
    # what the admin may be typing meanwhile.
    assert html.count('hx-swap-oob="true"') == html.count('class="error" id=')
    assert "<input" not in html and "<select" not in html
    assert qr_count(db) == 0 and figures().reserved == 0


def test_a_save_with_five_bad_fields_shows_every_message_at_once(wizard, db):
    response = wizard.post(CREATE, headers={"HX-Request": "true"}, data=auto_form(
        wizard, username="mallory", usage_count="21", wifi_ssid="S" * 33,
        wifi_password="short", send_alternative="y", alternative_email="it@",
        define_otp="y", otp_validity="0"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "6 problems to fix before saving" in html
    for field, fragment in {"username": "No local user is named", "usage_count": "20 licenses",
                            "wifi_ssid": "32", "wifi_password": "8–63",
                            "alternative_email": "valid email", "otp_validity": "87,600"}.items():
        assert fragment in _error(html, field), field
        assert f'href="#{field}"' in html, field
    assert qr_count(db) == 0


def test_hidden_fields_are_not_read_or_checked(wizard, db):
    """Self Service Portal with Mobile data: whatever the hidden fields hold is ignored."""
    response = wizard.post(CREATE, data=auto_form(
        wizard, option="ssp", network="mobile", usage_count="many", username="mallory",
        wifi_ssid="S" * 33, define_otp="y", otp_validity="0"))
    assert response.status_code == 303, response.get_data(as_text=True)
    qr = db.session.scalar(sa.select(QrCode))
    assert (qr.option, qr.network, qr.wifi_ssid, qr.usage_count, qr.user_id) == (
        "ssp", "mobile", None, None, None)


def test_plain_post_with_errors_gets_the_whole_page_with_422_without_the_passwords(wizard, db):
    response = wizard.post(CREATE, data=auto_form(wizard, wifi_password="short"))
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "<html" in html and 'id="error-summary"' in html and "autofocus" in html
    assert "8–63" in _error(html, "wifi_password")
    assert 'value="Corp-WLAN"' in html  # typed values kept
    assert 'value="short"' not in html and "type it again" in html
    assert qr_count(db) == 0


def test_save_without_a_companion_links_to_its_settings_beside_the_message(admin_client, db):
    set_total(5)
    token = csrf_token_from(admin_client.get(NEW).get_data(as_text=True))
    response = admin_client.post(CREATE, headers={"HX-Request": "true"}, data={
        "csrf_token": token, "option": "ssp", "lang": "en", "network": "mobile"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="companion-error"[^>]*>The Companion is not configured yet\. '
                     r'<a href="/admin/settings/companion">', html), html
    assert "Admin →" not in html


def test_missing_csrf_token_is_refused(wizard, db):
    response = wizard.post(CREATE, data=auto_form(wizard, csrf_token=None))
    assert response.status_code == 400 and qr_count(db) == 0


def test_active_search_lists_matching_local_users(wizard):
    html = wizard.get("/admin/users/search?username=ali",
                      headers={"HX-Request": "true"}).get_data(as_text=True)
    assert html.lstrip().startswith('<div id="user-results"')
    assert '<option value="alice">' in html and "Alice Smith" in html
    html = wizard.get("/admin/users/search?username=zzz").get_data(as_text=True)
    assert "No local user matches" in html


@pytest.fixture
def saved(wizard, db):
    wizard.post(CREATE, data=auto_form(wizard, send_alternative="y",
                                       alternative_email="it@example.com"))
    return db.session.scalar(sa.select(QrCode))


def test_png_download_decodes_to_exactly_the_payload(wizard, saved):
    response = wizard.get(f"/admin/qr-codes/{saved.public_id}/qr-code.png?download=1")
    assert response.mimetype == "image/png"
    assert "attachment" in response.headers["Content-Disposition"]
    decoded = decode_qr(response.data)
    assert decoded == saved.payload_text()
    assert json.loads(decoded)["android.app.extra.PROVISIONING_LOCALE"] == "de_CH"


def test_svg_download_is_an_svg_attachment(wizard, saved):
    response = wizard.get(f"/admin/qr-codes/{saved.public_id}/qr-code.svg?download=1")
    assert response.mimetype == "image/svg+xml" and b"<svg" in response.data
    assert f"qr-code-{saved.public_id}.svg" in response.headers["Content-Disposition"]


def test_review_page_masks_the_wifi_password_and_the_otp(wizard, saved):
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}").get_data(as_text=True)
    otp = json.loads(saved.payload_text())["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"][
        "otp"]
    assert "correct-horse" not in html and otp not in html
    assert "PROVISIONING_WIFI_SSID" in html and "Corp-WLAN" in html
    assert "View OTP" in html and "Revoke" in html and "Download QR-Code" in html


def test_dense_codes_get_a_warning(wizard, saved, db):
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}").get_data(as_text=True)
    assert "hard to scan" not in html
    db.session.execute(sa.update(QrCode).where(QrCode.id == saved.id).values(qr_version=27))
    db.session.commit()
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}").get_data(as_text=True)
    assert "QR version 27" in html and "hard to scan" in html


def test_print_sheet_has_the_instructions_the_expiry_and_the_localization(wizard, saved):
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}/print").get_data(as_text=True)
    # In the QR's language, de-CH: German (tests/admin/test_qr_code_accessibility.py).
    assert "sechsmal" in html and "Scannen Sie diesen QR-Code" in html and "Companion" in html
    assert saved.otp_expires_at.strftime("%Y-%m-%d") in html
    assert 'lang="de"' in html and "<dd>de-CH</dd>" in html and "print.css" in html
    assert f"/admin/qr-codes/{saved.public_id}/qr-code.svg" in html


def test_view_otp_shows_the_otp_and_pending_enrollments_and_is_audited(wizard, saved, db):
    assert wizard.get(f"/admin/qr-codes/{saved.public_id}/otp").status_code == 405
    assert wizard.post(f"/admin/qr-codes/{saved.public_id}/otp").status_code == 400
    response = wizard.post(f"/admin/qr-codes/{saved.public_id}/otp",
                           data={"csrf_token": wizard.token}, headers={"HX-Request": "true"})
    html = response.get_data(as_text=True)
    otp = json.loads(saved.payload_text())["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"][
        "otp"]
    assert html.lstrip().startswith('<div id="otp-list"')
    assert f'<code id="otp-value">{otp}</code>' in html
    assert html.count("<td>pending</td>") == 3
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "qr_code.view_otp")) == 1


def test_revoke_asks_first_then_returns_the_licenses(wizard, saved):
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}").get_data(as_text=True)
    assert "hx-confirm=" in html
    confirm = wizard.get(f"/admin/qr-codes/{saved.public_id}/revoke").get_data(as_text=True)
    assert "3 unused pending enrollments" in confirm
    response = wizard.post(f"/admin/qr-codes/{saved.public_id}/revoke",
                           data={"csrf_token": wizard.token})
    assert response.status_code == 303
    page = wizard.get(response.headers["Location"]).get_data(as_text=True)
    assert "3 licenses returned" in page and "Revoked" in page
    assert figures().reserved == 0


def test_pending_page_lists_searches_and_pages_with_the_license_figures(wizard, db):
    for index in range(27):
        wizard.post(CREATE, data=auto_form(wizard, usage_count=None,
                                           option="ssp", wifi_ssid=f"Net-{index:02d}"))
    html = wizard.get("/admin/devices/pending").get_data(as_text=True)
    assert 'data-figure="remaining">20<' in html and "Page 1 of 2" in html
    older = html_lib.unescape(re.search(r'<a href="([^"]+)"[^>]*rel="next">Older', html)[1])
    html = wizard.get(older).get_data(as_text=True)
    assert "Net-00" in html and "Net-26" not in html and "Page 2 of 2" in html
    fragment = wizard.get("/admin/devices/pending?q=net-13",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    assert fragment.lstrip().startswith('<div id="qr-code-table"')
    assert "Net-13" in fragment and "Net-12" not in fragment
    # (not "zzz": a QR ID is random URL-safe base64 and holds it about once in a hundred runs)
    # (not "zzz": a QR ID is random URL-safe base64 and holds it about once in a hundred runs)
    nothing = wizard.get("/admin/devices/pending?q=no such network").get_data(as_text=True)
    assert "No QR code matches" in nothing


def test_without_a_companion_the_wizard_links_to_its_settings(admin_client, db):
    html = admin_client.get(NEW).get_data(as_text=True)
    assert "The Companion is not configured yet" in html
    assert "/admin/settings/companion" in html


# Issue 13: the Name, a revoked QR code's page, the review page's small things ----------------

def test_the_name_is_saved_and_shown_on_the_review_page(wizard, db):
    response = wizard.post(CREATE, data=auto_form(wizard, name="  Library tablets  "))
    assert response.status_code == 303
    qr = db.session.scalar(sa.select(QrCode))
    assert qr.name == "Library tablets"
    html = wizard.get(response.headers["Location"]).get_data(as_text=True)
    assert '<span id="qr-name">Library tablets</span>' in html
    assert '<dd id="qr-name-fact">Library tablets</dd>' in html


def test_the_name_is_optional(wizard, db):
    assert wizard.post(CREATE, data=auto_form(wizard, name="")).status_code == 303
    assert db.session.scalar(sa.select(QrCode.name)) is None


@pytest.mark.parametrize("name, message", [
    ("x" * 101, "at most 100 characters"),
    ("two\nlines", "one line"),
    ("tab\there", "one line"),
])
def test_a_bad_name_is_shown_beside_the_field_and_nothing_saved(wizard, db, name, message):
    response = wizard.post(CREATE, data=auto_form(wizard, name=name),
                           headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert message in _error(response.get_data(as_text=True), "name")
    assert qr_count(db) == 0


def test_the_name_field_comes_first_in_the_wizard(wizard):
    html = wizard.get(NEW).get_data(as_text=True)
    assert html.index('id="name-field"') < html.index('id="option-field"')
    assert 'maxlength="100"' in html


def test_a_revoked_qr_codes_page_offers_no_download_and_its_images_are_gone(wizard, saved):
    url = f"/admin/qr-codes/{saved.public_id}"
    wizard.post(f"{url}/revoke", data={"csrf_token": wizard.token})
    html = wizard.get(url).get_data(as_text=True)
    assert "offers no download and no printable sheet" in html
    assert "qr-code.png" not in html and "qr-code.svg" not in html and "/print" not in html
    for path in ("qr-code.png", "qr-code.svg?download=1", "print"):
        response = wizard.get(f"{url}/{path}")
        assert response.status_code == 410, path
        assert "revoked" in response.get_data(as_text=True)


def test_the_review_page_says_what_is_true_about_the_mail(wizard, db):
    wizard.post(CREATE, data=auto_form(wizard, send_to_user="y"))
    qr = db.session.scalar(sa.select(QrCode))
    html = wizard.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    mail = html.split('id="qr-mail-summary">')[1].split("</dd>")[0]
    assert "QR code to the user (alice@example.com): queued, not sent yet" in mail
    assert "Sent to the user" not in html and "Mail: ;" not in mail and not mail.startswith(";")


def test_the_review_page_without_user_mail_has_no_stray_semicolon(wizard, saved):
    html = wizard.get(f"/admin/qr-codes/{saved.public_id}").get_data(as_text=True)
    mail = html.split('id="qr-mail-summary">')[1].split("</dd>")[0]
    assert mail.strip() == "Notification to it@example.com: queued, not sent yet"


def test_the_review_page_names_the_localization_and_offers_a_larger_view(wizard, db):
    wizard.post(CREATE, data=auto_form(wizard, lang="it"))
    qr = db.session.scalar(sa.select(QrCode))
    html = wizard.get(f"/admin/qr-codes/{qr.public_id}").get_data(as_text=True)
    assert '<dd id="qr-lang">Italian (it)</dd>' in html
    assert "Larger view" in html and 'id="qr-enlarge"' in html


def test_license_figures_have_thousands_separators(admin_client, db):
    set_total(148534)
    html = admin_client.get("/admin/devices/pending").get_data(as_text=True)
    assert 'data-figure="total">148,534<' in html and 'data-figure="remaining">148,534<' in html


def test_the_usage_count_rule_is_stated_the_same_way_in_the_hint_and_the_error(wizard, db):
    set_total(99993)
    rule = "Enter 1 to 10,000: at most 10,000 per QR code, and at most the 99,993 licenses"
    assert rule in html_lib.unescape(wizard.get(NEW).get_data(as_text=True))
    response = wizard.post(CREATE, data=auto_form(wizard, usage_count="10001"),
                           headers={"HX-Request": "true"})
    assert rule in html_lib.unescape(_error(response.get_data(as_text=True), "usage_count"))
    set_total(20)
    response = wizard.post(CREATE, data=auto_form(wizard, usage_count="21"),
                           headers={"HX-Request": "true"})
    assert "Usage Count 21 is too many. Enter 1 to 20:" in _error(
        response.get_data(as_text=True), "usage_count")
