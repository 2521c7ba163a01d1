"""Advanced QR-Code Provisioning in Chromium: both paths of PRODUCT.md §2 by their visible names,
every option × network × security type decoded from the PNG with zxing-cpp, the htmx swaps,
the validation errors, the no-JavaScript path, Revoke, and how the pages look."""
import json
import re

import pytest
from playwright.sync_api import expect

from portal.settings.companion import EXAMPLE_CHECKSUM, EXAMPLE_COMPONENT, EXAMPLE_DOWNLOAD_URL
from tests.browser.conftest import WIZARD_LICENSES, follow, signed_in_context
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser

PREFIX = "android.app.extra."
EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
SERVER_URL = "https://portal.test"  # TestConfig.PORTAL_PUBLIC_URL
REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")
BLOCKED = re.compile(r"Refused to (execute|load)", re.IGNORECASE)
GERMAN_SWISS = "German (Switzerland) (de-CH)"
ITALIAN = "Italian (it)"


# --- fixtures: one signed-in page for the whole module ------------------------------------------

@pytest.fixture(scope="module")
def admin_context(browser, wizard_server):
    context, _ = signed_in_context(browser, wizard_server, accept_downloads=True)
    yield context
    context.close()


@pytest.fixture(scope="module")
def module_log(admin_context) -> list[str]:
    messages = []
    page = admin_context.pages[0]
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


@pytest.fixture
def log(module_log) -> list[str]:
    """The console of the shared page, for this test only."""
    module_log.clear()
    return module_log


@pytest.fixture
def page(admin_context, log):
    """The module's signed-in page at 1280×800 (overrides conftest's per-test page)."""
    page = admin_context.pages[0]
    page.set_viewport_size({"width": 1280, "height": 800})
    return page


@pytest.fixture
def server(wizard_server):
    return wizard_server


# --- helpers ------------------------------------------------------------------------------

def _assert_no_blocked_scripts(log):
    assert [m for m in log if BLOCKED.search(m)] == []
    assert [m for m in log if m.startswith("pageerror")] == []


def _choose(page, name):
    """Pick a radio button or tick a checkbox by its visible label (no request: CSS shows the
    fields that go with it)."""
    page.get_by_label(name, exact=True).check()


def _select_security(page, name):
    page.get_by_label("Security Type", exact=True).select_option(label=name)


def _refused_save(page):
    """Press Save on a form that will be refused, and wait for its error summary."""
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#error-summary")).to_be_focused()


def _fill_wizard(page, *, option="Self Service Portal", user=None, lang=None, usage=None,
                 network="Wi-Fi", ssid=None, security="WPA", password=None, alternative=None):
    page.goto("/admin/devices/pending/new")
    _choose(page, option)
    if user is not None:
        page.get_by_label("User", exact=True).fill(user)
    if lang is not None:
        page.get_by_label("Localization").select_option(label=lang)
    if usage is not None:
        page.get_by_label("Usage Count").fill(usage)
    _choose(page, network)
    if network == "Wi-Fi":
        _select_security(page, security)
        page.get_by_label("SSID").fill(ssid)
        if password is not None:
            page.get_by_label("Password", exact=True).fill(password)
    if alternative is not None:
        _choose(page, "Send Notification to Alternative Address")
        page.get_by_label("Alternative address", exact=True).fill(alternative)


def _save(page) -> str:
    """Press Save and land on the review page; returns the QR code's public id."""
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    return REVIEW_URL.search(page.url)[1]


def _decode(png: bytes) -> dict:
    return json.loads(decode_qr(png))


def _png(page) -> dict:
    """The review page's QR image, fetched with the session's cookies and decoded."""
    response = page.request.get(page.locator("#qr-image").get_attribute("src"))
    assert response.status == 200 and response.headers["content-type"] == "image/png"
    return _decode(response.body())


def _expect_image_loaded(page):
    expect(page.locator("#qr-image")).to_be_visible()
    # a broken image is complete with naturalWidth 0, so this times out instead of passing
    page.wait_for_function("() => { const img = document.getElementById('qr-image');"
                           " return img.complete && img.naturalWidth > 100; }")


def _qr_count(server) -> int:
    return server.scalar("SELECT count(*) FROM qr_codes")


def _figure(page, name) -> int:
    text = page.locator(f'#license-figures dd[data-figure="{name}"]').inner_text()
    return int(text.replace(",", ""))


# --- PRODUCT.md §2.1 and §2.2, literally ---------------------------------------------------------

def test_self_service_path_by_visible_names_downloads_a_qr_without_user_or_otp(page, log, server):
    nav = page.get_by_role("navigation", name="Main")
    page.goto("/admin/devices/pending")
    follow(page, nav.get_by_role("link", name="Devices", exact=True).first,  # the section
           "/admin/devices/")
    follow(page, nav.get_by_role("link", name="Pending", exact=True), "/admin/devices/pending")
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    reserved = _figure(page, "reserved")
    page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
    expect(page.get_by_role("heading", name="Advanced QR-Code Provisioning")).to_be_visible()

    _choose(page, "Self Service Portal")
    expect(page.get_by_label("Self Service Portal", exact=True)).to_be_checked()
    page.get_by_label("Localization").select_option(label=GERMAN_SWISS)
    _choose(page, "Wi-Fi")
    page.get_by_label("SSID").fill("Campus Gäste")
    _select_security(page, "WPA")
    page.get_by_label("Password", exact=True).fill("correct horse battery")
    _choose(page, "Send Notification to Alternative Address")
    page.get_by_label("Alternative address", exact=True).fill("it-desk@example.com")
    public_id = _save(page)

    _expect_image_loaded(page)
    expect(page.get_by_role("heading", name="Self Service Portal QR code")).to_be_visible()
    expect(page.locator("#qr-mail-summary")).to_contain_text(
        "Notification to it-desk@example.com: queued, not sent yet")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PNG", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == f"qr-code-{public_id}.png"
    payload = _decode(open(download.path(), "rb").read())
    assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "Campus Gäste"
    assert payload[PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE"] == "WPA"
    assert payload[PREFIX + "PROVISIONING_WIFI_PASSWORD"] == "correct horse battery"
    assert payload[PREFIX + "PROVISIONING_LOCALE"] == "de_CH"
    assert payload[EXTRAS] == {"server_url": SERVER_URL, "option": "ssp", "qr_id": public_id,
                               "lang": "de-CH"}
    # Reusable: no pending enrollment and no license reserved at creation.
    assert server.scalar("SELECT count(*) FROM pending_enrollments p JOIN qr_codes q "
                         "ON q.id = p.qr_code_id WHERE q.public_id = ?", public_id) == 0
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    assert _figure(page, "reserved") == reserved
    _assert_no_blocked_scripts(log)


def test_automatic_path_by_visible_names_shows_the_otp_that_the_qr_carries(
        page, log, server, artifacts):
    page.goto("/admin/devices/pending")
    page.get_by_role("link", name="Advanced QR-Code Provisioning").click()

    _choose(page, "Automatic Provisioning")
    expect(page.get_by_role("group", name="User Type")).to_be_visible()
    _choose(page, "Local")
    user = page.get_by_label("User", exact=True)
    user.press_sequentially("Ali")
    expect(page.locator("#user-results")).to_contain_text("1 match: alice (Alice Smith)")
    user.fill("alice")
    page.get_by_label("Localization").select_option(label=ITALIAN)
    page.get_by_label("Usage Count").fill("3")
    _choose(page, "Wi-Fi")
    page.get_by_label("SSID").fill("Warehouse")
    page.get_by_label("Password", exact=True).fill("forklift-2024")
    page.get_by_label("Send QR-Code to User").check()
    _choose(page, "Define OTP")
    expect(page.get_by_label("OTP validity (hours)")).to_be_visible()
    _choose(page, "Unlimited")
    expect(page.get_by_label("OTP validity (hours)")).to_be_hidden()
    expect(page.get_by_label("User", exact=True)).to_have_value("alice")
    page.screenshot(path=artifacts / "wizard-auto-wifi-1280.png", full_page=True)
    public_id = _save(page)

    _expect_image_loaded(page)
    page.screenshot(path=artifacts / "review-1280.png", full_page=True)
    page.get_by_role("button", name="View OTP").click()
    otp = page.locator("#otp-value")
    expect(otp).to_be_visible()
    expect(page.locator("#otp-list")).to_contain_text("never (Unlimited)")
    rows = page.locator("#otp-list tbody tr")
    expect(rows).to_have_count(3)
    for i in range(3):
        expect(rows.nth(i).locator("td").nth(1)).to_have_text("pending")
    page.locator("#otp-panel").scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "view-otp-1280.png", full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="PNG", exact=True).click()
    payload = _decode(open(download_info.value.path(), "rb").read())
    assert payload[EXTRAS] == {"server_url": SERVER_URL, "option": "auto", "qr_id": public_id,
                               "lang": "it", "user": "alice", "otp": otp.inner_text()}
    assert payload[PREFIX + "PROVISIONING_LOCALE"] == "it"
    assert server.scalar("SELECT count(*) FROM outbox_messages o JOIN qr_codes q ON "
                         "q.id = o.qr_code_id WHERE q.public_id = ? AND o.kind = 'qr_to_user' "
                         "AND o.recipient = 'alice@example.com'", public_id) == 1

    with page.context.expect_page() as sheet_info:
        page.get_by_role("link", name="Printable sheet").click()
    sheet = sheet_info.value
    sheet.set_viewport_size({"width": 1280, "height": 800})
    # The sheet is in the QR's language, Italian.
    expect(sheet.get_by_role("heading", name="Configura il tuo dispositivo aziendale")) \
        .to_be_visible()
    expect(sheet.get_by_text("Tocca sei volte di seguito lo stesso punto")).to_be_visible()
    sheet.wait_for_function("() => { const img = document.querySelector('img.sheet-qr');"
                            " return img.complete && img.naturalWidth > 0; }")
    sheet.screenshot(path=artifacts / "print-sheet-1280.png", full_page=True)
    sheet.close()
    _assert_no_blocked_scripts(log)


# --- every option × network × security type ------------------------------------------------------

NETWORKS = {
    "wifi-wpa": {"network": "Wi-Fi", "security": "WPA", "password": "pass phrase 8+"},
    "wifi-wep": {"network": "Wi-Fi", "security": "WEP", "password": "k3y!5"},
    "wifi-none": {"network": "Wi-Fi", "security": "None", "password": None},
    "mobile": {"network": "Mobile data"},
}
OPTIONS = {"ssp": {"option": "Self Service Portal"},
           "auto": {"option": "Automatic Provisioning", "user": "alice", "usage": "1"}}


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("option", OPTIONS)
def test_saved_qr_decodes_to_exactly_the_android_extras_for(page, log, option, network):
    choices = dict(OPTIONS[option], **NETWORKS[network])
    ssid = f"Lab {option} {network}" if choices["network"] == "Wi-Fi" else None
    _fill_wizard(page, ssid=ssid, lang="English (en)", **choices)
    public_id = _save(page)

    payload = _png(page)

    expected = {
        PREFIX + "PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME": EXAMPLE_COMPONENT,
        PREFIX + "PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION": EXAMPLE_DOWNLOAD_URL,
        PREFIX + "PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM": EXAMPLE_CHECKSUM,
        PREFIX + "PROVISIONING_LOCALE": "en",
        PREFIX + "PROVISIONING_LEAVE_ALL_SYSTEM_APPS_ENABLED": True,
        EXTRAS: {"server_url": SERVER_URL, "option": option, "qr_id": public_id, "lang": "en"},
    }
    if ssid is None:
        expected[PREFIX + "PROVISIONING_USE_MOBILE_DATA"] = True
    else:
        expected[PREFIX + "PROVISIONING_WIFI_SSID"] = ssid
        expected[PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE"] = choices["security"].upper()
        if choices["password"] is not None:  # the key as typed; none at all for an open network
            expected[PREFIX + "PROVISIONING_WIFI_PASSWORD"] = choices["password"]
    if option == "auto":
        otp = payload[EXTRAS].get("otp", "")
        assert re.fullmatch(r"[\x21-\x7e]{4,64}", otp)
        expected[EXTRAS] |= {"user": "alice", "otp": otp}
    assert payload == expected
    # JSON booleans, not the strings "true" or 1 (a dict compare treats True == 1).
    for key, value in payload.items():
        if value is True or key.endswith(("_ENABLED", "_MOBILE_DATA", "_HIDDEN")):
            assert value is True, key
    assert all(isinstance(value, str) for value in payload[EXTRAS].values())
    _assert_no_blocked_scripts(log)


# --- choices show and hide fields without a request ---------------------------------------------

def _mark(page):
    page.evaluate("window.__marker = 1")


def _still_same_document(page) -> bool:
    return page.evaluate("window.__marker") == 1


@pytest.fixture
def requests(page) -> list[str]:
    """The requests the page sends from now on (method and URL), but the live QR version's
    GETs: a read that only replaces its own element (tests/browser/test_wizard_options.py)."""
    sent = []

    def note(request):
        if "/admin/devices/pending/new/qr-version" not in request.url:
            sent.append(f"{request.method} {request.url}")
    page.on("request", note)
    yield sent
    page.remove_listener("request", note)


def test_choosing_automatic_provisioning_shows_user_type_without_a_request(page, log, requests):
    page.goto("/admin/devices/pending/new")
    expect(page.get_by_role("group", name="User Type")).to_be_hidden()
    _mark(page)
    requests.clear()

    _choose(page, "Automatic Provisioning")

    expect(page.get_by_role("group", name="User Type")).to_be_visible()
    expect(page.get_by_label("Usage Count")).to_be_visible()
    expect(page.get_by_label("Define OTP")).to_be_visible()
    expect(page.locator("#auto-note")).to_be_visible()
    expect(page.locator("#ssp-note")).to_be_hidden()
    _choose(page, "Self Service Portal")
    expect(page.get_by_role("group", name="User Type")).to_be_hidden()
    assert _still_same_document(page) and requests == []
    _assert_no_blocked_scripts(log)


def test_choosing_mobile_data_hides_wifi_and_explains_sim_and_android_13(page, log, requests):
    page.goto("/admin/devices/pending/new")
    expect(page.get_by_label("SSID")).to_be_visible()
    page.get_by_label("Localization").select_option(label=ITALIAN)
    _mark(page)
    requests.clear()

    _choose(page, "Mobile data")

    expect(page.get_by_label("SSID")).to_be_hidden()
    expect(page.get_by_label("Security Type")).to_be_hidden()
    note = page.locator("#mobile-data-note")
    expect(note).to_contain_text("SIM or eSIM")
    expect(note).to_contain_text("Android 13")
    expect(page.get_by_label("Localization")).to_have_value("it")
    assert _still_same_document(page) and requests == []
    _assert_no_blocked_scripts(log)


def test_security_type_none_hides_the_password(page, log):
    page.goto("/admin/devices/pending/new")
    _select_security(page, "None")
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    _select_security(page, "WEP")
    expect(page.get_by_label("Password", exact=True)).to_be_visible()
    _assert_no_blocked_scripts(log)


def test_ticking_define_otp_shows_unlimited_and_validity_hours(page, log, requests):
    page.goto("/admin/devices/pending/new")
    _choose(page, "Automatic Provisioning")
    expect(page.get_by_label("Unlimited")).to_be_hidden()
    _mark(page)
    requests.clear()

    _choose(page, "Define OTP")

    expect(page.get_by_label("Unlimited")).to_be_visible()
    expect(page.get_by_label("OTP validity (hours)")).to_be_visible()
    assert _still_same_document(page) and requests == []
    _assert_no_blocked_scripts(log)


def test_choosing_ldap_without_a_directory_says_where_to_set_it_up_and_save_refuses(
        page, log, server):
    page.goto("/admin/devices/pending/new")
    _choose(page, "Automatic Provisioning")
    before = _qr_count(server)
    _mark(page)

    _choose(page, "LDAP")

    group = page.get_by_role("group", name="Administrative LDAP credentials")
    expect(group).to_be_visible()
    expect(group.locator("#no-directory")).to_contain_text("No directory is configured yet")
    expect(group.get_by_role("link", name="set up Active Directory")).to_have_attribute(
        "href", "/admin/settings/sign-in")
    page.get_by_label("SSID").fill("Office")
    page.get_by_label("Password", exact=True).fill("office password")
    _refused_save(page)
    expect(page.locator("#ldap_user-field .error")).to_contain_text("No directory is configured")
    expect(page.get_by_label("SSID")).to_have_value("Office")
    expect(page.get_by_label("Password", exact=True)).to_have_value("office password")
    assert _still_same_document(page)
    assert _qr_count(server) == before
    _assert_no_blocked_scripts([m for m in log if "status of 422" not in m])


# --- validation errors ----------------------------------------------------------------------

INVALID = {
    "wpa-password-of-7": (
        {"password": "seven77"}, "wifi_password",
        "Password for WPA must be 8–63 characters long, not 7."),
    "ssid-of-33-bytes": (
        {"ssid": "Zürich-Büro-Gäste-WLAN-5GHz-23"}, "wifi_ssid",
        "SSID is 33 bytes long in UTF-8, but Android allows at most 32 bytes"),
    "wep-key-of-6": (
        {"security": "WEP", "password": "abcdef"}, "wifi_password",
        "Password for WEP must be 5 or 13 printable ASCII characters, or 10 or 26 hexadecimal"),
    "usage-count-above-remaining": (
        {"option": "Automatic Provisioning", "user": "alice", "usage": str(WIZARD_LICENSES + 1)},
        "usage_count", f"Usage Count {WIZARD_LICENSES + 1} is too many."),
    "invalid-alternative-address": (
        {"alternative": "it-desk at example"}, "alternative_email",
        "is not a valid email address"),
    "unknown-user": (
        {"option": "Automatic Provisioning", "user": "nobody", "usage": "1"}, "username",
        "No local user is named 'nobody'."),
}
# The label of each _fill_wizard() argument, and how to read the value typed back.
TYPED = {"lang": "Localization", "ssid": "SSID", "password": "Password", "user": "User",
         "usage": "Usage Count", "alternative": "Alternative address"}


@pytest.mark.parametrize("case", INVALID)
def test_bad_input_shows_its_error_next_to_the_field_keeps_values_and_saves_nothing(
        page, log, server, artifacts, case):
    overrides, field, message = INVALID[case]
    choices = {"lang": GERMAN_SWISS, "ssid": "Kept SSID", "password": "kept password"}
    choices.update(overrides)
    before = _qr_count(server), server.scalar("SELECT count(*) FROM pending_enrollments")
    _fill_wizard(page, **choices)
    _mark(page)

    _refused_save(page)

    expect(page.locator(f"#{field}-field .error")).to_contain_text(message)
    expect(page.locator(".field-invalid, fieldset.field-invalid")).to_have_count(1)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-summary").get_by_role("link")).to_have_attribute(
        "href", f"#{field}")
    typed = {TYPED[name]: value for name, value in choices.items() if name in TYPED}
    assert len(typed) >= 3  # what was typed is all still there, password included
    typed["Localization"] = "de-CH"  # the select's value for GERMAN_SWISS
    for label, value in typed.items():
        expect(page.get_by_label(label, exact=True)).to_have_value(value)
    assert _still_same_document(page) and page.url.endswith("/admin/devices/pending/new")
    assert (_qr_count(server), server.scalar("SELECT count(*) FROM pending_enrollments")) == before
    # "Saving…" fades out (200 ms) once htmx has settled the answer
    expect(page.locator(".actions .htmx-indicator")).to_have_css("opacity", "0")
    page.screenshot(path=artifacts / f"wizard-validation-error-{case}-1280.png", full_page=True)
    _assert_no_blocked_scripts([m for m in log if "status of 422" not in m])


# --- JavaScript off: plain form posts ------------------------------------------------------------

def test_without_javascript_choices_show_their_fields_and_save_posts_plainly(browser, server):
    context, page = signed_in_context(browser, server, java_script_enabled=False)
    try:
        page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
        assert page.evaluate("typeof window.htmx") == "undefined"
        expect(page.get_by_role("group", name="User Type")).to_be_hidden()
        page.get_by_label("Automatic Provisioning").check()
        expect(page.get_by_role("group", name="User Type")).to_be_visible()  # CSS alone
        expect(page.get_by_role("button", name="Update form")).to_have_count(0)

        page.get_by_label("User", exact=True).fill("alice")
        page.get_by_label("SSID").fill("No Script")
        page.get_by_label("Password", exact=True).fill("short")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Save").click()
        assert posted.value.status == 422
        expect(page.locator("#error-summary")).to_be_focused()
        expect(page.locator("#wifi_password-error")).to_contain_text("8–63")
        expect(page.get_by_label("SSID")).to_have_value("No Script")
        expect(page.get_by_label("Password", exact=True)).to_have_value("")  # not echoed…
        expect(page.locator("#wifi_password-field")).to_contain_text("type it again")  # …said
        page.get_by_label("Password", exact=True).fill("no script pass")
        with page.expect_response(lambda r: r.request.method == "POST") as posted:
            page.get_by_role("button", name="Save").click()
        assert posted.value.status == 303
        expect(page).to_have_url(REVIEW_URL)
        expect(page.locator("#qr-image")).to_be_visible()
        payload = _png(page)
        assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "No Script"
        assert payload[PREFIX + "PROVISIONING_WIFI_PASSWORD"] == "no script pass"
        assert payload[EXTRAS]["user"] == "alice"
    finally:
        context.close()


# --- Revoke ------------------------------------------------------------------------------------

def test_revoke_after_confirm_returns_the_reserved_licenses_to_pending_figures(page, log):
    page.goto("/admin/devices/pending")
    reserved, remaining = _figure(page, "reserved"), _figure(page, "remaining")
    _fill_wizard(page, option="Automatic Provisioning", user="alice", usage="2",
                 network="Mobile data")
    _save(page)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    assert (_figure(page, "reserved"), _figure(page, "remaining")) == (reserved + 2, remaining - 2)
    page.go_back()
    expect(page).to_have_url(REVIEW_URL)

    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Revoke").click()
    expect(page.locator(".badge-active")).to_be_visible()
    dialogs = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()
    page.once("dialog", accept)
    page.get_by_role("button", name="Revoke").click()

    expect(page.locator("h1 .badge-revoked")).to_contain_text("Revoked")
    expect(page.get_by_text("2 licenses returned to the pool")).to_be_visible()
    expect(page.get_by_role("button", name="Revoke")).to_have_count(0)
    assert dialogs and dialogs[0].startswith("Revoke this QR code?")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    assert (_figure(page, "reserved"), _figure(page, "remaining")) == (reserved, remaining)
    _assert_no_blocked_scripts(log)


# --- a phone-sized screen ---------------------------------------------------------------------

def test_wizard_fits_a_360_pixel_screen(page, log, artifacts):
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto("/admin/devices/pending/new")
    _choose(page, "Automatic Provisioning")
    _choose(page, "Define OTP")

    page.screenshot(path=artifacts / "wizard-auto-360.png", full_page=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    for label in ("Usage Count", "SSID", "Localization"):
        box = page.get_by_label(label).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 360, label
    _assert_no_blocked_scripts(log)
