"""The wizard on a server that answers every request 300 ms late: whatever the admin types right
after any choice (and while Save or Search directory is under way) is what the QR code gets."""
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WizardServer, signed_in_context, wizard_app
from tests.browser.test_wizard import EXTRAS, PREFIX, REVIEW_URL, _png
from tests.support.live import serving

pytestmark = pytest.mark.browser

DELAY = 0.3  # seconds; at 300 ms the old wizard lost the password typed after a choice
SETTLE = 1000  # ms to wait before looking: any late answer has landed by then


class Slow:
    """WSGI middleware: every request but static files waits DELAY before the app sees it."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/static/"):
            time.sleep(DELAY)
        return self.wsgi_app(environ, start_response)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory, ldap_server):
    """The wizard server (alice local, 100 licenses) with a directory to search, answering late."""
    from portal.database import db
    from portal.settings.models import SignInSettings
    from tests.selfservice.conftest import ldap_values

    root = tmp_path_factory.mktemp("slow-wizard")
    app = wizard_app(root)
    with app.app_context():
        row = SignInSettings(id=1, **ldap_values(ldap_server.config("ldaps")))
        row.ldap_enabled = False  # the wizard needs the directory, not SSP sign-in
        db.session.merge(row)
        db.session.commit()
    app.wsgi_app = Slow(app.wsgi_app)
    with serving(app) as url:
        yield WizardServer(url, "wizard-admin", "wizard admin password 1", root / "portal.db",
                           "alice password 1234")


@pytest.fixture
def page(browser, slow_server):
    context, page = signed_in_context(browser, slow_server, timeout=8000, height=900)
    page.goto("/admin/devices/pending/new")
    yield page
    context.close()


@pytest.fixture
def requests(page) -> list[str]:
    """Every request the page sends from now on, as "METHOD path", but the live QR version's
    GETs: a read that only replaces its own element (tests/browser/test_wizard_options.py)."""
    sent = []

    def note(request):
        path = request.url.split("//", 1)[1].split("/", 1)[1]
        if not path.startswith("admin/devices/pending/new/qr-version"):
            sent.append(f"{request.method} {path}")
    page.on("request", note)
    return sent


def _label(page, name):
    return page.get_by_label(name, exact=True)


def _save(page) -> dict:
    """Save, land on the review page, and decode the QR code it shows."""
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    return _png(page)


def test_a_password_typed_at_once_after_a_security_type_is_exactly_the_one_saved(
        page, requests):
    _label(page, "SSID").fill("Slow Office")
    _label(page, "Security Type").select_option("WEP")
    _label(page, "Password").fill("k3y!5")
    page.wait_for_timeout(SETTLE)
    expect(_label(page, "Password")).to_have_value("k3y!5")

    _label(page, "Security Type").select_option("WPA")
    _label(page, "Password").fill("")
    _label(page, "Password").press_sequentially("Supersecret-2024", delay=15)
    page.wait_for_timeout(SETTLE)
    assert requests == []  # a choice asks the server nothing

    payload = _save(page)
    assert payload[PREFIX + "PROVISIONING_WIFI_SECURITY_TYPE"] == "WPA"
    assert payload[PREFIX + "PROVISIONING_WIFI_PASSWORD"] == "Supersecret-2024"


def test_mobile_data_and_back_keeps_the_ssid_and_password_typed_before_and_between(page):
    _label(page, "SSID").fill("Round")
    _label(page, "Password").fill("trip-password")
    for network in ("Mobile data", "Wi-Fi", "Mobile data", "Wi-Fi"):
        _label(page, network).check()
    _label(page, "SSID").press("End")
    _label(page, "SSID").press_sequentially(" Trip")
    page.wait_for_timeout(SETTLE)
    expect(_label(page, "SSID")).to_have_value("Round Trip")
    expect(_label(page, "Password")).to_have_value("trip-password")

    payload = _save(page)
    assert payload[PREFIX + "PROVISIONING_WIFI_SSID"] == "Round Trip"
    assert payload[PREFIX + "PROVISIONING_WIFI_PASSWORD"] == "trip-password"


def test_option_user_type_and_otp_choices_keep_what_is_typed_right_after_them(
        page, slow_server, requests):
    _label(page, "Automatic Provisioning").check()
    _label(page, "User").press_sequentially("alice")
    _label(page, "LDAP").check()
    _label(page, "Directory user").fill("someone")
    _label(page, "Local").check()
    _label(page, "Usage Count").fill("2")
    _label(page, "Mobile data").check()
    _label(page, "Send Notification to Alternative Address").check()
    _label(page, "Alternative address").fill("desk@example.com")
    _label(page, "Define OTP").check()
    _label(page, "OTP validity (hours)").fill("5")
    _label(page, "Unlimited").check()
    expect(_label(page, "OTP validity (hours)")).to_be_hidden()
    _label(page, "Unlimited").uncheck()
    _label(page, "Send QR-Code to User").check()
    page.wait_for_timeout(SETTLE)
    assert [r for r in requests if not r.startswith("GET admin/users/search")] == []
    for label, value in {"User": "alice", "Usage Count": "2", "OTP validity (hours)": "5",
                         "Alternative address": "desk@example.com"}.items():
        expect(_label(page, label)).to_have_value(value)

    payload = _save(page)
    public_id = payload[EXTRAS]["qr_id"]
    assert payload[EXTRAS]["user"] == "alice"
    assert slow_server.scalar(
        "SELECT usage_count || ' ' || alternative_email || ' ' || send_to_user || ' ' || "
        "round((julianday(otp_expires_at) - julianday(created_at)) * 24) FROM qr_codes "
        "WHERE public_id = ?", public_id) == "2 desk@example.com 1 5.0"


def test_search_directory_keeps_the_ldap_password_and_what_is_typed_meanwhile(
        page, slow_server, ldap_server, requests):
    _label(page, "Automatic Provisioning").check()
    _label(page, "LDAP").check()
    _label(page, "Bind DN or user name").fill(ldap_server.admin_dn)
    _label(page, "LDAP password").fill(ldap_server.admin_password)
    _label(page, "Directory user").fill("ali")
    _label(page, "Mobile data").check()
    page.get_by_role("button", name="Search directory").click()
    _label(page, "Usage Count").fill("3")  # typed while the directory is searched
    expect(page.get_by_text("1 user found")).to_be_visible()
    page.wait_for_timeout(SETTLE)
    expect(_label(page, "LDAP password")).to_have_value(ldap_server.admin_password)
    expect(_label(page, "Usage Count")).to_have_value("3")
    assert [r.split("?")[0] for r in requests] == [
        "POST admin/devices/pending/new/directory-users"]

    payload = _save(page)
    assert payload[EXTRAS]["user"] == "alice"
    assert slow_server.scalar("SELECT q.usage_count || ' ' || u.source FROM qr_codes q JOIN "
                              "portal_users u ON u.id = q.user_id WHERE q.public_id = ?",
                              payload[EXTRAS]["qr_id"]) == "3 ldap"


def test_a_save_with_six_bad_fields_shows_every_message_at_once_and_keeps_typing(
        page, slow_server, artifacts):
    before = slow_server.scalar("SELECT count(*) FROM qr_codes")
    _label(page, "Automatic Provisioning").check()
    _label(page, "User").fill("nobody")
    _label(page, "Usage Count").fill("101")
    _label(page, "SSID").fill("Zürich-Büro-Gäste-WLAN-5GHz-23")
    _label(page, "Password").fill("seven77")
    _label(page, "Send Notification to Alternative Address").check()
    _label(page, "Alternative address").fill("desk at example")
    _label(page, "Define OTP").check()
    _label(page, "OTP validity (hours)").fill("0")
    page.get_by_role("button", name="Save").click()
    _label(page, "Password").press("End")  # typed while Save is under way:
    _label(page, "Password").press_sequentially("7")

    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_have_attribute("role", "alert")
    expect(summary).to_contain_text("6 problems to fix before saving")
    expect(summary.get_by_role("link")).to_have_count(6)
    for field, message in {
            "username": "No local user is named 'nobody'.",
            "usage_count": "Usage Count 101 is too many. Enter 1 to",
            "wifi_ssid": "SSID is 33 bytes long",
            "wifi_password": "Password for WPA must be 8–63 characters long, not 7.",
            "alternative_email": "is not a valid email address",
            "otp_validity": "The OTP validity must be 1 to 87,600 hours."}.items():
        expect(page.locator(f"#{field}-error")).to_contain_text(message)
        expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
        expect(summary.locator(f'a[href="#{field}"]')).to_be_visible()
    expect(_label(page, "Password")).to_have_value("seven777")
    page.screenshot(path=artifacts / "wizard-six-errors-1280.png", full_page=True)
    assert slow_server.scalar("SELECT count(*) FROM qr_codes") == before

    # Put right, saved: the messages of the fields set right are gone first.
    _label(page, "User").fill("alice")
    _label(page, "Usage Count").fill("1")
    _label(page, "SSID").fill("Fixed")
    _label(page, "Alternative address").fill("desk@example.com")
    _label(page, "OTP validity (hours)").fill("1")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    assert slow_server.scalar("SELECT count(*) FROM qr_codes") == before + 1


def test_a_second_refused_save_clears_the_messages_of_fields_set_right(page):
    _label(page, "SSID").fill("")
    _label(page, "Password").fill("short")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#error-summary")).to_contain_text("2 problems")
    _label(page, "SSID").fill("Better")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#error-summary")).to_contain_text("1 problem to fix")
    expect(page.locator("#wifi_ssid-error")).to_be_empty()
    expect(page.locator("#wifi_ssid")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-invalid")).to_have_count(1)
    expect(page.locator("#error-summary")).to_be_focused()
