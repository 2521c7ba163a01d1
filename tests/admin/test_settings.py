"""Settings pages: Self Service Portal (OTP), Companion, Localizations, Zero-Touch / Knox.

Each page works without JavaScript (POST → 303, errors → 422 page) and with htmx (fragment,
422 fragment), keeps typed values on errors, writes nothing then, and records every change.
"""
import io
import json
import re

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import ZeroTouchEntry
from portal.enrollment.zero_touch import import_identifiers
from portal.settings.companion import EXAMPLE_CHECKSUM, seed_example_companion
from portal.settings.models import CompanionSettings, Localization, OtpPolicy
from tests.conftest import csrf_token_from

SSP = "/admin/settings/self-service-portal"
COMPANION = "/admin/settings/companion"
LOCALIZATIONS = "/admin/settings/localizations"
ZERO_TOUCH = "/admin/settings/zero-touch"
UPLOAD = "/admin/settings/zero-touch/upload"
HX = {"HX-Request": "true"}
IMEI = "356938035643809"
BAD_IMEI = "356938035643808"


def _token(client, url=SSP) -> str:
    return csrf_token_from(client.get(url).get_data(as_text=True))


def _post(client, url, data, *, htmx=False, page=None, **kwargs):
    """POST as the browser would: the form's token without JS, the X-CSRFToken header with htmx."""
    token = _token(client, page or url)
    if htmx:
        return client.post(url, data=data, headers={**HX, "X-CSRFToken": token}, **kwargs)
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def _field_error(html: str, field_id: str) -> str:
    """The error text shown next to one field (render_field's `<span id="…-error">`)."""
    match = re.search(rf'<span class="error" id="{field_id}-error">(.*?)</span>', html, re.S)
    assert match, f"no error next to {field_id}"
    return match.group(1)


def _events(db, action):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == action)
                              .order_by(AuditEvent.id)).all()


def _html(response) -> str:
    return response.get_data(as_text=True)


# Access: every route needs an admin, every POST a CSRF token ---------------------------------

GET_ROUTES = [SSP, COMPANION, LOCALIZATIONS, ZERO_TOUCH,
              LOCALIZATIONS + "/fr-CH/delete", ZERO_TOUCH + "/1/delete"]
POST_ROUTES = [SSP, COMPANION, LOCALIZATIONS, LOCALIZATIONS + "/fr-CH/delete", UPLOAD,
               ZERO_TOUCH + "/1/delete"]


@pytest.mark.parametrize("url", GET_ROUTES)
def test_anonymous_get_is_sent_to_the_admin_sign_in(client, url):
    response = client.get(url)

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize("url", GET_ROUTES)
def test_anonymous_htmx_get_gets_401_with_hx_redirect(client, url):
    response = client.get(url, headers=HX)

    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/admin/login?next=")


@pytest.mark.parametrize("url", POST_ROUTES)
def test_anonymous_post_with_a_valid_token_is_sent_to_sign_in_and_changes_nothing(client, db, url):
    token = csrf_token_from(_html(client.get("/admin/login")))

    response = client.post(url, data={"csrf_token": token, "length": "20", "alphabet": "digits",
                                      "validity_hours": "1", "tag": "fr-CH", "name": "French"})

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")
    assert db.session.get(OtpPolicy, 1).length == 12
    assert not db.session.scalar(sa.select(Localization).where(Localization.tag == "fr-CH"))


@pytest.mark.parametrize("url", POST_ROUTES)
def test_post_without_csrf_token_is_refused_with_400(admin_client, db, url):
    response = admin_client.post(url, data={"length": "20", "alphabet": "digits",
                                            "validity_hours": "1", "tag": "fr-CH",
                                            "name": "French"})

    assert response.status_code == 400
    assert db.session.get(OtpPolicy, 1).length == 12
    assert not db.session.scalar(sa.select(Localization).where(Localization.tag == "fr-CH"))


# Self Service Portal: OTP defaults -----------------------------------------------------------

def _otp_row(db):
    db.session.expire_all()
    row = db.session.get(OtpPolicy, 1)
    return row.length, row.alphabet, row.validity_hours


def test_ssp_page_shows_heading_labels_and_the_saved_values(admin_client):
    html = _html(admin_client.get(SSP))

    assert "<h1>Self Service Portal</h1>" in html
    for field_id, label in [("length", "OTP length"), ("alphabet", "Characters"),
                            ("validity_hours", "Validity (hours)")]:
        assert f'<label for="{field_id}">{label}</label>' in html
    assert '<label for="unlimited" class="checkbox">' in html
    assert 'value="12"' in html and 'value="72"' in html
    assert '<option selected value="alnum">' in html
    assert re.search(r"Example with the saved settings: <code>[0-9A-Za-z]{12}</code>", html)


def test_ssp_page_says_which_otp_the_length_and_characters_are_for(admin_client, db,
                                                                   make_qr_code):
    _post(admin_client, SSP, {"length": "6", "alphabet": "digits", "validity_hours": "24"})
    kinds = _html(admin_client.get(SSP)).split('id="otp-kinds"')[1].split("</dl>")[0]

    assert "OTP inside a QR code (read by the device)" in kinds
    assert "always 16 URL-safe characters (96 random bits)" in kinds
    assert "OTP a person types" in kinds
    # And it is so: a six-digit policy does not weaken the OTP a QR code carries.
    otp = json.loads(make_qr_code("auto").payload_text())[
        "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["otp"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", otp)


def test_ssp_plain_post_saves_records_and_redirects_303_with_a_flash(admin_client, db):
    response = _post(admin_client, SSP, {"length": "20", "alphabet": "digits",
                                         "validity_hours": "24"})

    assert response.status_code == 303
    assert response.headers["Location"] == SSP
    assert _otp_row(db) == (20, "digits", 24)
    [event] = _events(db, "settings.otp_policy")
    assert (event.actor_type, event.actor) == ("admin", admin_client.admin.username)
    assert "The OTP defaults are saved." in _html(admin_client.get(SSP))


def test_ssp_unlimited_stores_no_validity_whatever_the_hours_field_holds(admin_client, db):
    response = _post(admin_client, SSP, {"length": "8", "alphabet": "upper",
                                         "validity_hours": "", "unlimited": "y"})

    assert response.status_code == 303
    assert _otp_row(db) == (8, "upper", None)
    html = _html(admin_client.get(SSP))
    assert re.search(r'<input [^>]*checked id="unlimited"', html)
    assert "valid without limit" in html


def test_ssp_htmx_post_returns_the_form_fragment_and_the_flash_out_of_band(admin_client, db):
    response = _post(admin_client, SSP, {"length": "16", "alphabet": "alnum",
                                         "validity_hours": "48"}, htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<form id="otp-policy-form"')
    assert re.search(r'<div id="flash"[^>]* hx-swap-oob="true">', html)
    assert "The OTP defaults are saved." in html
    assert "<html" not in html
    assert _otp_row(db) == (16, "alnum", 48)


BAD_OTP = {
    "length_5": ({"length": "5"}, "length", "from 6 to 64"),
    "length_65": ({"length": "65"}, "length", "from 6 to 64"),
    "length_empty": ({"length": ""}, "length", "Enter the OTP length"),
    "length_word": ({"length": "twelve"}, "length", "Not a valid integer"),
    "validity_0": ({"validity_hours": "0"}, "validity_hours", "from 1 to 87600 hours"),
    "validity_87601": ({"validity_hours": "87601"}, "validity_hours", "from 1 to 87600 hours"),
    "validity_empty_not_unlimited": ({"validity_hours": ""}, "validity_hours",
                                     "or tick Unlimited"),
    "alphabet_unknown": ({"alphabet": "hex"}, "alphabet", "Not a valid choice"),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("change, field, message", BAD_OTP.values(), ids=BAD_OTP.keys())
def test_ssp_bad_input_gets_422_with_the_error_next_to_the_field_and_nothing_saved(
        admin_client, db, change, field, message, htmx):
    data = {"length": "20", "alphabet": "digits", "validity_hours": "24", **change}

    response = _post(admin_client, SSP, data, htmx=htmx)

    assert response.status_code == 422
    html = _html(response)
    assert html.startswith('<form id="otp-policy-form"') is htmx
    assert message in _field_error(html, field)
    typed = next(iter(change.values()))
    if field != "alphabet" and typed:
        assert f'value="{typed}"' in html
    assert _otp_row(db) == (12, "alnum", 72)
    assert _events(db, "settings.otp_policy") == []


def test_ssp_every_bad_value_is_shown_at_once_with_a_summary_linking_to_each_field(
        admin_client, db):
    response = _post(admin_client, SSP, {"length": "5", "alphabet": "hex",
                                         "validity_hours": "0"}, htmx=True)

    assert response.status_code == 422
    html = _html(response)
    for field in ("length", "alphabet", "validity_hours"):
        assert _field_error(html, field)
    summary = re.search(r'<div class="error-summary" id="error-summary" role="alert".*?</div>',
                        html, re.S)[0]
    assert "3 problems to fix before saving" in summary
    assert [f'href="#{field}"' in summary for field in ("length", "alphabet", "validity_hours")] \
        == [True] * 3
    assert _otp_row(db) == (12, "alnum", 72)


# Companion -----------------------------------------------------------------------------------

COMPONENT = "ch.acme.companion/.AdminReceiver"
URL = "https://mdm.acme.ch/companion.apk"
CHECKSUM = "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg"
GOOD_COMPANION = {"component_name": COMPONENT, "download_url": URL,
                  "signature_checksum": CHECKSUM, "leave_system_apps_enabled": "y",
                  "enrollment_link_scheme": "acme-companion"}
COMPANION_LABELS = [("component_name", "Admin component name"),
                    ("download_url", "APK download URL"),
                    ("signature_checksum", "Signature checksum"),
                    ("enrollment_link_scheme", "Enrollment link scheme")]


def test_companion_page_shows_labels_and_says_it_is_not_configured(admin_client):
    html = _html(admin_client.get(COMPANION))

    assert "<h1>Companion</h1>" in html
    for field_id, label in COMPANION_LABELS:
        assert f'<label for="{field_id}">{label}</label>' in html
    assert '<label for="leave_system_apps_enabled" class="checkbox">' in html
    assert "Leave system apps enabled" in html
    assert "not configured yet" in html
    assert "QR codes already created keep the values they were created with" in html
    assert 'value="companion"' in html


def test_companion_page_warns_when_the_quick_start_example_values_are_in_use(admin_client, db):
    seed_example_companion()

    html = _html(admin_client.get(COMPANION))

    assert "EXAMPLE values" in html and "Real devices cannot use them" in html
    assert f'value="{EXAMPLE_CHECKSUM}"' in html


@pytest.mark.parametrize("config_overrides", [{
    "COMPANION_COMPONENT_NAME": "org.env.app/.Receiver",
    "COMPANION_DOWNLOAD_URL": "https://env.example.org/app.apk",
    "COMPANION_SIGNATURE_CHECKSUM": CHECKSUM}], indirect=True)
def test_companion_page_is_prefilled_from_the_environment_and_says_so(admin_client):
    html = _html(admin_client.get(COMPANION))

    assert 'value="org.env.app/.Receiver"' in html
    assert 'value="https://env.example.org/app.apk"' in html
    assert "COMPANION_* environment variables" in html
    assert "EXAMPLE values" not in html


def test_companion_plain_post_saves_the_row_records_it_and_redirects_303(admin_client, db):
    seed_example_companion()
    data = {**GOOD_COMPANION, "signature_checksum": f"  {CHECKSUM}\r\n"}
    del data["leave_system_apps_enabled"]

    response = _post(admin_client, COMPANION, data)

    assert response.status_code == 303
    assert response.headers["Location"] == COMPANION
    db.session.expire_all()
    row = db.session.get(CompanionSettings, 1)
    assert (row.component_name, row.download_url, row.signature_checksum,
            row.leave_system_apps_enabled, row.enrollment_link_scheme) == (
        COMPONENT, URL, CHECKSUM, False, "acme-companion")
    [event] = _events(db, "settings.companion")
    assert event.actor == admin_client.admin.username
    html = _html(admin_client.get(COMPANION))
    assert "The Companion settings are saved." in html
    assert "EXAMPLE values" not in html


def test_companion_htmx_post_returns_the_form_fragment_and_the_flash(admin_client, db):
    response = _post(admin_client, COMPANION, GOOD_COMPANION, htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<form id="companion-form"')
    assert 'hx-swap-oob="true"' in html and "The Companion settings are saved." in html
    assert db.session.get(CompanionSettings, 1).enrollment_link_scheme == "acme-companion"


BAD_COMPANION = {
    "component_without_slash": ("component_name", "ch.acme.companion.AdminReceiver",
                                "package/.Receiver"),
    "component_empty": ("component_name", "", "Enter the admin component name"),
    "http_download_url": ("download_url", "http://mdm.acme.ch/companion.apk", "https://"),
    "checksum_with_plus": ("signature_checksum", "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEX+g",
                           "replace + with -"),
    "checksum_with_inner_space": ("signature_checksum",
                                  "I5YvS0O5hXY46mb01 BlRjq4oJJGs2kuUcHvVkAPEXlg", "spaces"),
    "checksum_of_20_bytes": ("signature_checksum", "qZk-NkcGgWq6PiVxeFDCbJzQ2J0", "SHA-1"),
    "scheme_http": ("enrollment_link_scheme", "http", "opened by the browser"),
    "scheme_javascript": ("enrollment_link_scheme", "javascript", "opened by the browser"),
    "scheme_intent": ("enrollment_link_scheme", "intent", "opened by the browser"),
    "scheme_vbscript": ("enrollment_link_scheme", "vbscript", "opened by the browser"),
    "scheme_upper_case": ("enrollment_link_scheme", "Companion", "lower-case"),
    "scheme_one_letter": ("enrollment_link_scheme", "c", "2–32 characters"),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("field, value, message", BAD_COMPANION.values(), ids=BAD_COMPANION.keys())
def test_companion_bad_input_gets_422_with_the_error_next_to_the_field_and_nothing_saved(
        admin_client, db, field, value, message, htmx):
    response = _post(admin_client, COMPANION, {**GOOD_COMPANION, field: value}, htmx=htmx)

    assert response.status_code == 422
    html = _html(response)
    assert html.startswith('<form id="companion-form"') is htmx
    assert message in _field_error(html, field)
    assert f'value="{value}"' in html
    assert f'value="{COMPONENT}"' in html or field == "component_name"
    assert html.count('class="error"') == 1  # only the bad field is marked
    assert db.session.get(CompanionSettings, 1) is None
    assert _events(db, "settings.companion") == []


@pytest.mark.parametrize("scheme", ["data", "file", "about", "blob", "market", "content",
                                    "android-app", "view-source", "mailto"])
def test_only_a_custom_scheme_is_an_enrollment_link_scheme(scheme):
    from portal.settings.companion import scheme_error
    assert "opened by the browser" in scheme_error(scheme)
    assert scheme_error("acme-companion") is None and scheme_error("companion") is None


def test_companion_shows_every_problem_at_once(admin_client, db):
    response = _post(admin_client, COMPANION, {
        "component_name": "nope", "download_url": "ftp://x/a.apk",
        "signature_checksum": "a+b", "enrollment_link_scheme": "https"})

    assert response.status_code == 422
    html = _html(response)
    for field in ("component_name", "download_url", "signature_checksum",
                  "enrollment_link_scheme"):
        assert _field_error(html, field)


# Localizations -------------------------------------------------------------------------------

def _tags(db):
    db.session.expire_all()
    return db.session.scalars(sa.select(Localization.tag).order_by(Localization.id)).all()


def test_localizations_page_lists_built_ins_without_delete_and_notes_the_oobe(admin_client, db):
    from portal.settings.localizations import add_localization
    add_localization("fr-CH", "French (Switzerland)", actor="alice")

    html = _html(admin_client.get(LOCALIZATIONS))

    assert "<h1>Localizations</h1>" in html
    assert '<label for="tag">Language tag</label>' in html
    assert '<label for="name">Name</label>' in html
    assert "out-of-box (setup) screens are not all localized" in html
    for tag in ("en", "de-CH", "it"):
        assert f"<td><code>{tag}</code></td>" in html
        assert f"/localizations/{tag}/delete" not in html
    assert html.count("<td>Built in</td>") == 3 and html.count("<td>Custom</td>") == 1
    assert 'hx-post="/admin/settings/localizations/fr-CH/delete"' in html
    assert 'action="/admin/settings/localizations/fr-CH/delete"' in html  # the no-JS path
    assert 'hx-confirm="Delete the localization fr-CH (French (Switzerland))?"' in html


def test_add_localization_plain_post_saves_records_and_redirects_303(admin_client, db):
    response = _post(admin_client, LOCALIZATIONS, {"tag": "pt-br", "name": "Português (Brasil)"})

    assert response.status_code == 303
    assert response.headers["Location"] == LOCALIZATIONS
    assert _tags(db) == ["en", "de-CH", "it", "pt-BR"]
    [event] = _events(db, "settings.localization.add")
    assert (event.actor, event.target) == (admin_client.admin.username, "pt-BR")
    html = _html(admin_client.get(LOCALIZATIONS))
    assert "The localization pt-BR (Português (Brasil)) is added." in html


def test_add_localization_htmx_returns_a_reset_form_and_the_table_out_of_band(admin_client, db):
    response = _post(admin_client, LOCALIZATIONS, {"tag": "rm", "name": "Rumantsch"}, htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<form id="localization-form"')
    assert '<div id="localization-table" class="settings-table" hx-swap-oob="true">' in html
    assert "<td><code>rm</code></td>" in html
    assert 'id="tag" maxlength' not in html and 'value="rm"' not in html  # the form is empty again
    assert "The localization rm (Rumantsch) is added." in html
    assert "rm" in _tags(db)


BAD_LOCALIZATIONS = {
    "underscore": ({"tag": "de_CH"}, "tag", "&#34;de-CH&#34; instead of &#34;de_CH&#34;"),
    "one_letter": ({"tag": "x"}, "tag", "not a valid language tag"),
    "too_many_parts": ({"tag": "fr-CH-x-y"}, "tag", "not a valid language tag"),
    "duplicate_other_case": ({"tag": "DE-ch"}, "tag", "exists already"),
    "duplicate_built_in": ({"tag": "en"}, "tag", "exists already"),
    "empty_tag": ({"tag": ""}, "tag", "Enter a language tag"),
    "empty_name": ({"name": ""}, "name", "Enter the name"),
    "name_65_chars": ({"name": "N" * 65}, "name", "at most 64 characters"),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("change, field, message", BAD_LOCALIZATIONS.values(),
                         ids=BAD_LOCALIZATIONS.keys())
def test_add_localization_bad_input_gets_422_next_to_the_field_and_adds_nothing(
        admin_client, db, change, field, message, htmx):
    data = {"tag": "fr-CH", "name": "French (Switzerland)", **change}

    response = _post(admin_client, LOCALIZATIONS, data, htmx=htmx)

    assert response.status_code == 422
    html = _html(response)
    assert html.startswith('<form id="localization-form"') is htmx
    assert message in _field_error(html, field)
    for value in data.values():
        if value:
            assert f'value="{value}"' in html
    assert _tags(db) == ["en", "de-CH", "it"]
    assert _events(db, "settings.localization.add") == []


@pytest.fixture
def custom_localization(db):
    from portal.settings.localizations import add_localization
    return add_localization("fr-CH", "French (Switzerland)", actor="alice")


def test_delete_localization_without_js_confirms_on_a_page_then_posts_and_redirects(
        admin_client, db, custom_localization):
    page = admin_client.get(LOCALIZATIONS + "/fr-CH/delete")
    assert page.status_code == 200
    html = _html(page)
    assert "<h1>Delete the localization fr-CH?</h1>" in html
    assert '<form method="post" action="/admin/settings/localizations/fr-CH/delete"' in html

    response = admin_client.post(LOCALIZATIONS + "/fr-CH/delete",
                                 data={"csrf_token": csrf_token_from(html)})

    assert response.status_code == 303
    assert response.headers["Location"] == LOCALIZATIONS
    assert "fr-CH" not in _tags(db)
    [event] = _events(db, "settings.localization.delete")
    assert (event.actor, event.target) == (admin_client.admin.username, "fr-CH")


def test_delete_localization_with_htmx_removes_the_row_and_flashes(admin_client, db,
                                                                    custom_localization):
    response = _post(admin_client, LOCALIZATIONS + "/fr-CH/delete", {}, htmx=True,
                     page=LOCALIZATIONS)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<div id="flash"') and 'hx-swap-oob="true"' in html
    assert "<tr" not in html  # the empty answer replaces the row
    assert "fr-CH" not in _tags(db)


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("tag", ["de-CH", "en", "it"])
def test_deleting_a_built_in_localization_is_refused_with_422(admin_client, db, tag, htmx):
    response = _post(admin_client, f"{LOCALIZATIONS}/{tag}/delete", {}, htmx=htmx,
                     page=LOCALIZATIONS)

    assert response.status_code == 422
    assert "is built in and cannot be deleted" in _html(response)
    if htmx:
        assert response.headers["HX-Reswap"] == "none"
    assert _tags(db) == ["en", "de-CH", "it"]
    assert _events(db, "settings.localization.delete") == []


def test_the_confirmation_page_of_a_built_in_localization_does_not_exist(admin_client):
    assert admin_client.get(LOCALIZATIONS + "/de-CH/delete").status_code == 404


# Zero-Touch / Knox ---------------------------------------------------------------------------

def _listed(db) -> set[str]:
    db.session.expire_all()
    return set(db.session.scalars(sa.select(ZeroTouchEntry.identifier)))


def _upload(client, content: bytes, *, htmx=False, filename="devices.csv"):
    return _post(client, UPLOAD, {"file": (io.BytesIO(content), filename)}, htmx=htmx,
                 page=ZERO_TOUCH, content_type="multipart/form-data")


def test_zero_touch_page_warns_explains_and_labels_its_controls(admin_client):
    html = _html(admin_client.get(ZERO_TOUCH))

    assert "<h1>Zero-Touch / Knox</h1>" in html
    assert ("Devices registered in Zero-Touch or Knox Mobile\n  Enrollment must not use "
            "Advanced QR provisioning") in html
    assert "the API refuses every device on it" in html
    assert '<label for="file">CSV file</label>' in html
    assert 'enctype="multipart/form-data"' in html
    assert '<label for="q">Search serial number or IMEI</label>' in html
    assert 'hx-trigger="input changed delay:300ms, search"' in html
    assert 'hx-push-url="true"' in html
    assert "The list is empty." in html


def test_upload_without_js_adds_valid_lines_and_flashes_counts_and_rejects_after_303(
        admin_client, db):
    import_identifiers(["OLD1"], actor_type="admin", actor="alice")
    content = f"serial\n# Knox export\nold1\nr58n123abc\n\n{IMEI},Samsung\n{BAD_IMEI}\n".encode()

    response = _upload(admin_client, content)

    assert response.status_code == 303
    assert response.headers["Location"] == ZERO_TOUCH
    assert _listed(db) == {"OLD1", "R58N123ABC", IMEI}
    event = _events(db, "zero_touch.import")[-1]
    assert (event.actor_type, event.actor) == ("admin", admin_client.admin.username)
    html = _html(admin_client.get(ZERO_TOUCH))
    assert "Added 2, already listed 1, rejected 1." in html
    assert f"Line 7 ({BAD_IMEI}): 15 digits, but not a valid IMEI" in html
    assert "3 on the list." in html


def test_upload_with_htmx_returns_the_result_and_the_table_out_of_band(admin_client, db):
    response = _upload(admin_client, f"ABC1\nabc2\n{BAD_IMEI}\n".encode(), htmx=True)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<div id="zero-touch-upload"')
    assert "Added 2, already listed 0, rejected 1." in html
    assert f"Line 3: <code>{BAD_IMEI}</code>" in html
    assert re.search(r'<div id="zero-touch-table"[^>]* hx-swap-oob="true">', html)
    assert "<td><code>ABC2</code></td>" in html
    assert _listed(db) == {"ABC1", "ABC2"}


def test_upload_shows_at_most_20_rejected_lines_and_counts_the_rest(admin_client, db):
    content = "\n".join(["GOOD1"] + [f"bad/{n}" for n in range(25)]).encode()

    html = _html(_upload(admin_client, content, htmx=True))

    assert html.count("<li>Line ") == 20
    assert "… and 5 more rejected lines." in html
    assert "rejected 25." in html


BAD_UPLOADS = {
    "nothing_valid": (f"serial\n{BAD_IMEI}\nR58N/1\n".encode(), "no valid serial number or IMEI"),
    "only_a_header": (b"imei\n", "no valid serial number or IMEI"),
    "empty_file": (b"", "no valid serial number or IMEI"),
    "not_utf8": ("SÉRIE1\n".encode("latin-1"), "not UTF-8"),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["plain", "htmx"])
@pytest.mark.parametrize("content, message", BAD_UPLOADS.values(), ids=BAD_UPLOADS.keys())
def test_an_upload_with_nothing_valid_gets_422_with_the_reason_and_changes_nothing(
        admin_client, db, content, message, htmx):
    import_identifiers(["OLD1"], actor_type="admin", actor="alice")

    response = _upload(admin_client, content, htmx=htmx)

    assert response.status_code == 422
    html = _html(response)
    assert html.startswith('<div id="zero-touch-upload"') is htmx
    assert message in _field_error(html, "file")
    assert _listed(db) == {"OLD1"}
    assert len(_events(db, "zero_touch.import")) == 1


def test_an_upload_with_only_bad_lines_lists_them(admin_client, db):
    html = _html(_upload(admin_client, f"{BAD_IMEI}\nR58N/1\n".encode()))

    assert "Line 1: <code>" in html and "Line 2: <code>R58N/1</code>" in html


def test_a_post_without_a_file_is_refused_with_422(admin_client, db):
    response = _post(admin_client, UPLOAD, {}, page=ZERO_TOUCH)

    assert response.status_code == 422
    assert "Choose a CSV file" in _field_error(_html(response), "file")


@pytest.mark.parametrize("htmx, status", [(False, 413), (True, 422)], ids=["plain", "htmx"])
def test_an_upload_over_2_mib_gets_a_clear_message_and_changes_nothing(admin_client, db, htmx,
                                                                       status):
    content = b"ABCDEFGHIJKLMNO\n" * (2 * 1024 * 1024 // 16 + 1)

    response = _upload(admin_client, content, htmx=htmx)

    assert response.status_code == status
    assert "The file is larger than 2 MiB" in _field_error(_html(response), "file")
    assert _listed(db) == set()


def test_the_list_is_paginated_50_a_page(admin_client, db):
    import_identifiers([f"DEV{n:03d}" for n in range(60)], actor_type="admin", actor="alice")

    first = _html(admin_client.get(ZERO_TOUCH))
    second = _html(admin_client.get(ZERO_TOUCH + "?page=2", headers=HX))

    assert first.count('<tr id="zero-touch-entry-') == 50
    assert "Page 1 of 2" in first and 'href="/admin/settings/zero-touch?page=2"' in first
    assert second.startswith('<div id="zero-touch-table"')
    assert second.count('<tr id="zero-touch-entry-') == 10
    assert "DEV059" in second and "DEV000" not in second


def test_search_filters_without_regard_to_case_and_htmx_gets_the_table(admin_client, db):
    import_identifiers(["R58N123ABC", "R58N999XYZ", IMEI], actor_type="admin", actor="alice")

    response = admin_client.get(ZERO_TOUCH + "?q=abc", headers=HX)

    html = _html(response)
    assert html.startswith('<div id="zero-touch-table"')
    assert "R58N123ABC" in html and "R58N999XYZ" not in html and IMEI not in html
    assert "3 on the list, 1 containing “abc”." in html
    assert "HX-Request" in response.vary
    page = _html(admin_client.get(ZERO_TOUCH + "?q=zzz"))
    assert 'value="zzz"' in page and "No serial number or IMEI on the list contains" in page


def test_delete_entry_without_js_confirms_on_a_page_then_posts_and_redirects(admin_client, db):
    import_identifiers(["ABC1", "ABC2"], actor_type="admin", actor="alice")
    entry_id = db.session.scalar(sa.select(ZeroTouchEntry.id).where(
        ZeroTouchEntry.identifier == "ABC1"))
    url = f"{ZERO_TOUCH}/{entry_id}/delete"
    listing = _html(admin_client.get(ZERO_TOUCH))
    assert f'hx-post="{url}"' in listing and 'hx-confirm="Remove ABC1 from' in listing
    assert f'action="{url}"' in listing  # the no-JS path: GET the confirmation page

    html = _html(admin_client.get(url))
    assert "Remove ABC1 from the Zero-Touch / Knox list?" in html
    response = admin_client.post(url, data={"csrf_token": csrf_token_from(html)})

    assert response.status_code == 303
    assert response.headers["Location"] == ZERO_TOUCH
    assert _listed(db) == {"ABC2"}
    [event] = _events(db, "zero_touch.delete")
    assert (event.actor, event.target) == (admin_client.admin.username, "ABC1")


def test_delete_entry_with_htmx_removes_the_row_and_a_second_delete_is_refused(admin_client, db):
    import_identifiers(["ABC1"], actor_type="admin", actor="alice")
    entry_id = db.session.scalar(sa.select(ZeroTouchEntry.id))
    url = f"{ZERO_TOUCH}/{entry_id}/delete"

    response = _post(admin_client, url, {}, htmx=True, page=ZERO_TOUCH)

    assert response.status_code == 200
    html = _html(response)
    assert html.startswith('<div id="flash"') and "ABC1 is removed" in html and "<tr" not in html
    assert _listed(db) == set()
    again = _post(admin_client, url, {}, htmx=True, page=ZERO_TOUCH)
    assert again.status_code == 422 and again.headers["HX-Reswap"] == "none"
    assert admin_client.get(url).status_code == 404
