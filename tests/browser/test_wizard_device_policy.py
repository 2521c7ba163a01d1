"""The wizard's Management choice in Chromium: a Self Service Portal and an Automatic
Provisioning QR code with Android Device Policy, against the Android Management API stand-in
(the live server asks it through Google's real client libraries)."""
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WizardServer, WIZARD_ADMIN, WIZARD_USER_PASSWORD, \
    signed_in_context, wizard_app
from tests.conftest import connect_portal_to_standin
from tests.support.amapi_standin import TOKEN_EXTRA
from tests.support.live import serving
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser

PREFIX = "android.app.extra."
EXTRAS = PREFIX + "PROVISIONING_ADMIN_EXTRAS_BUNDLE"
REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")


@pytest.fixture
def server(tmp_path, amapi):
    """A wizard portal of its own, connected to the stand-in (reset for this test)."""
    app = wizard_app(tmp_path)
    with app.app_context():
        connect_portal_to_standin(app, amapi)
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, tmp_path / "portal.db", WIZARD_USER_PASSWORD)


@pytest.fixture
def page(browser, server):
    context, page = signed_in_context(browser, server)
    messages = []
    page.on("pageerror", lambda error: messages.append(str(error)))
    page.errors = messages
    yield page
    context.close()


def _figure(page, name) -> int:
    return int(page.locator(f'#license-figures dd[data-figure="{name}"]').inner_text()
               .replace(",", ""))


def _new_qr_code(page, option):
    page.goto("/admin/devices/pending")
    page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
    page.get_by_label(option, exact=True).check()
    management = page.get_by_role("group", name="Management")
    expect(management.get_by_label("Companion", exact=True)).to_be_checked()
    management.get_by_label("Android Device Policy", exact=True).check()
    expect(page.locator("#adp-note")).to_be_visible()
    expect(page.locator("#companion-management-note")).to_be_hidden()


def _wifi(page, ssid):
    page.get_by_label("Wi-Fi", exact=True).check()
    page.get_by_label("Security Type", exact=True).select_option(label="WPA")
    page.get_by_label("SSID").fill(ssid)
    page.get_by_label("Password", exact=True).fill("correct horse battery")


def _save(page) -> str:
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    return REVIEW_URL.search(page.url)[1]


def _png(page) -> dict:
    response = page.request.get(page.locator("#qr-image").get_attribute("src"))
    assert response.status == 200
    return json.loads(decode_qr(response.body()))


def test_self_service_with_android_device_policy(page, server, amapi):
    page.goto("/admin/devices/pending")
    reserved = _figure(page, "reserved")
    _new_qr_code(page, "Self Service Portal")
    page.get_by_label("Localization").select_option(label="German (Switzerland) (de-CH)")
    _wifi(page, "Campus-ADP")
    expect(page.locator("#qr-version-number")).to_be_visible()  # sized without a Google call
    public_id = _save(page)

    expect(page.locator("#qr-management")).to_have_text("Android Device Policy")
    payload = _png(page)
    (detail,) = amapi.enterprises["enterprises/LC0abc"]["signinDetails"]
    assert detail["tokenTag"] == public_id and detail["signinUrl"].endswith(
        f"/ssp/?qr_id={public_id}")
    assert payload[EXTRAS] == json.loads(detail["qrCode"])[EXTRAS]
    assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "Campus-ADP"
    assert payload[PREFIX + "PROVISIONING_LOCALE"] == "de_CH"
    page.goto("/admin/devices/pending")
    assert _figure(page, "reserved") == reserved
    expect(page.locator("#qr-code-rows")).to_contain_text("Android Device Policy")
    assert page.errors == []


def test_automatic_with_android_device_policy_and_a_google_failure_first(page, server, amapi,
                                                                        artifacts):
    page.goto("/admin/devices/pending")
    reserved = _figure(page, "reserved")
    _new_qr_code(page, "Automatic Provisioning")
    page.get_by_label("Local", exact=True).check()
    page.get_by_label("User", exact=True).fill("alice")
    page.get_by_label("Usage Count").fill("2")
    _wifi(page, "Warehouse")

    # Google refuses once: the sentence beside Save, every value still as typed, nothing saved.
    amapi.fail(r"/enrollmentTokens$", 403, times=1, method="POST")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#save-error")).to_contain_text("Google refused permission")
    expect(page.get_by_label("SSID")).to_have_value("Warehouse")
    expect(page.get_by_label("Password", exact=True)).to_have_value("correct horse battery")
    expect(page.get_by_label("Usage Count")).to_have_value("2")
    assert server.scalar("SELECT count(*) FROM qr_codes") == 0
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(artifacts / f"wizard-adp-refused-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})

    public_id = _save(page)  # Google well again
    expect(page.locator("#qr-management")).to_have_text("Android Device Policy")
    name = server.scalar("SELECT enrollment_token_name FROM qr_codes WHERE public_id = ?",
                         public_id)
    token = amapi.tokens[name]
    expect(page.locator("#qr-enrollment-token")).to_contain_text(name)
    page.screenshot(path=str(artifacts / "qr-code-adp-1280.png"), full_page=True)
    payload = _png(page)
    assert payload[EXTRAS] == {TOKEN_EXTRA: token["value"]}
    assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "Warehouse"
    page.get_by_role("button", name="View OTP").click()
    expect(page.locator("#otp-value")).to_have_text(token["value"])
    expect(page.locator("#otp-panel")).to_contain_text("Google's enrollment token")
    page.goto("/admin/devices/pending")
    assert _figure(page, "reserved") == reserved + 2
    assert page.errors == []


def test_the_example_companion_banner_shows_only_for_the_companion(page, server, artifacts):
    """The banner about the example Companion values concerns the Companion only: Android
    Device Policy hides it in the browser, with the network cut, and what was typed stays."""
    page.goto("/admin/devices/pending/new")
    banner = page.locator("#companion-example")
    expect(banner).to_be_visible()
    page.get_by_label("Name").fill("Front desk tablets")
    page.route("**/*", lambda route: route.abort())  # no answer can be what hides it
    management = page.get_by_role("group", name="Management")
    management.get_by_label("Android Device Policy", exact=True).check()
    expect(banner).to_be_hidden()
    management.get_by_label("Companion", exact=True).check()
    expect(banner).to_be_visible()
    management.get_by_label("Android Device Policy", exact=True).check()
    expect(banner).to_be_hidden()
    expect(page.get_by_label("Name")).to_have_value("Front desk tablets")
    page.unroute("**/*")
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 800})
        page.screenshot(path=artifacts / f"wizard-device-policy-{width}.png")


def test_the_refused_wizard_page_keeps_the_banner_hidden_for_android_device_policy(browser,
                                                                                 server):
    """Without JavaScript a refused Save answers the whole page (422): Android Device Policy
    is still chosen there, and the example Companion banner stays hidden."""
    context, page = signed_in_context(browser, server, java_script_enabled=False)
    page.goto("/admin/devices/pending/new")
    page.get_by_label("Automatic Provisioning", exact=True).check()
    page.get_by_role("group", name="Management").get_by_label(
        "Android Device Policy", exact=True).check()
    with page.expect_response(lambda response: response.request.method == "POST") as answer:
        page.get_by_role("button", name="Save").click()
    assert answer.value.status == 422
    expect(page.get_by_role("group", name="Management").get_by_label(
        "Android Device Policy", exact=True)).to_be_checked()
    expect(page.locator("#companion-example")).to_be_hidden()
    expect(page.locator("#adp-note")).to_be_visible()
    context.close()
