"""The wizard's provisioning options in Chromium, by their visible names: EAP and proxy fields
show and hide with no request, the QR version follows the typing without touching the inputs
and without a secret in any URL, and an EAP-TLS code saved from an uploaded PKCS#12 decodes from
its PNG and passes companion-sim's Android checks."""
import json
import re

import pytest
from playwright.sync_api import expect

from portal.simulator.checks import check_payload
from tests.browser.conftest import ARTIFACTS, signed_in_context
from tests.support import eap_certs
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser

NEW = "/admin/devices/pending/new"
REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")
P = "android.app.extra.PROVISIONING_"


@pytest.fixture(scope="module")
def context(browser, wizard_server):
    context, _ = signed_in_context(browser, wizard_server)
    yield context
    context.close()


@pytest.fixture
def page(context):
    page = context.pages[0]
    page.set_viewport_size({"width": 1280, "height": 800})
    return page


def _label(page, name):
    return page.get_by_label(name, exact=True)


def test_eap_and_proxy_fields_follow_the_choices_with_no_request(page):
    page.goto(NEW)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    security = _label(page, "Security Type")
    expect(_label(page, "EAP method")).to_be_hidden()
    security.select_option(label="EAP (WPA/WPA2-Enterprise)")
    for name in ("EAP method", "Phase 2 authentication", "Identity", "Anonymous identity",
                 "Domain", "CA certificate", "Password"):
        expect(_label(page, name)).to_be_visible()
    expect(page.get_by_text("Android 10+")).to_be_visible()
    _label(page, "EAP method").select_option("TLS")
    expect(_label(page, "Client certificate")).to_be_visible()
    for name in ("Password", "Phase 2 authentication", "Anonymous identity"):
        expect(_label(page, name)).to_be_hidden()
    _label(page, "Manual proxy").check()
    expect(_label(page, "Proxy host")).to_be_visible()
    expect(_label(page, "PAC URL")).to_be_hidden()
    _label(page, "Proxy auto-config (PAC)").check()
    expect(_label(page, "PAC URL")).to_be_visible()
    expect(_label(page, "Proxy host")).to_be_hidden()
    security.select_option(label="WPA")
    expect(_label(page, "EAP method")).to_be_hidden()
    expect(_label(page, "Password")).to_be_visible()
    # Only the live QR version asked the server anything, and only with GET.
    assert all("/qr-version?" in url for url in requests if "/admin/" in url), requests


def test_the_qr_version_follows_the_typing_without_a_secret_in_the_url(page):
    page.goto(NEW)
    version = page.locator("#qr-version")
    expect(version).to_contain_text("QR version")
    urls = []
    page.on("request", lambda request: urls.append(request.url))
    _label(page, "Password").fill("a-wifi-secret-nobody-logs")
    ssid = _label(page, "SSID")
    ssid.fill("Corp")
    expect(version).to_contain_text("QR version")
    first = version.inner_text()
    ssid.press_sequentially("-" + "x" * 27, delay=5)  # still typing while answers arrive
    expect(version).not_to_have_text(first)
    expect(ssid).to_have_value("Corp-" + "x" * 27)
    asked = [url for url in urls if "/qr-version?" in url]
    assert asked and not [url for url in asked if "secret" in url or "csrf_token" in url]
    assert all("wifi_password_bytes=25" in url for url in asked[-1:]), asked


def test_an_eap_tls_code_from_an_uploaded_pkcs12_decodes_and_passes_androids_checks(
        page, tmp_path):
    p12 = tmp_path / "dev1.p12"
    p12.write_bytes(eap_certs.client_p12(b"p12-pass"))
    page.goto(NEW)
    _label(page, "Self Service Portal").check()
    _label(page, "SSID").fill("Corp-8021X")
    _label(page, "Time zone").fill("Europe/Zurich")
    _label(page, "Security Type").select_option(label="EAP (WPA/WPA2-Enterprise)")
    _label(page, "EAP method").select_option("TLS")
    _label(page, "Identity").fill("dev1")
    _label(page, "Client certificate").set_input_files(str(p12))
    _label(page, "Client certificate password").fill("p12-pass")
    expect(page.locator("#qr-version")).to_contain_text("About QR version")
    _shoot(page, "wizard-eap-tls")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    expect(page.locator("#qr-density")).to_contain_text("the client certificate")
    _shoot(page, "review-eap-tls")
    response = page.request.get(page.locator("#qr-image").get_attribute("src"))
    text = decode_qr(response.body())
    payload, problems = check_payload(text, api_level=29)
    assert problems == []
    assert (payload[P + "WIFI_EAP_METHOD"], payload[P + "TIME_ZONE"]) == ("TLS", "Europe/Zurich")
    assert "p12-pass" not in page.content() and json.dumps(payload)


def test_refused_options_show_their_messages_beside_the_fields(page):
    page.goto(NEW)
    _label(page, "SSID").fill("Corp")
    _label(page, "Password").fill("correct-horse")
    _label(page, "Time zone").fill("Europe/Zurch")
    _label(page, "Manual proxy").check()
    _label(page, "Proxy host").fill("proxy.corp.example")
    _label(page, "Proxy port").fill("70000")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#time_zone-error")).to_contain_text("not an IANA time zone")
    expect(page.locator("#proxy_port-error")).to_contain_text("not 70000")
    expect(_label(page, "Proxy port")).to_have_value("70000")  # nothing typed is replaced


def _shoot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (1280, 360):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
