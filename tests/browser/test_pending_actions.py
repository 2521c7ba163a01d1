"""Pending enrollments one by one in Chromium, by their visible names: a named QR code from the
wizard, Reset OTP (the page says to download or mail it again), Delete with its confirmation,
Extend, the Pending list's Name search and filters, and Helpdesk's Unlimited refused."""
import re

import pytest
from playwright.sync_api import expect

from portal.accounts.admins import create_admin
from tests.browser.conftest import WizardServer, follow, signed_in_context, wizard_app
from tests.support.live import serving

pytestmark = pytest.mark.browser

REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")
HELPDESK = ("pending-helpdesk", "helpdesk password 1234")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("pending-actions-portal")
    app = wizard_app(root)
    with app.app_context():
        create_admin(HELPDESK[0], "helpdesk@example.com", HELPDESK[1], role="helpdesk")
    with serving(app) as url:
        yield WizardServer(url, "wizard-admin", "wizard admin password 1", root / "portal.db",
                           "alice password 1234")


@pytest.fixture(scope="module")
def page(browser, server):
    context, page = signed_in_context(browser, server)
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm: the admin says OK
    yield page
    context.close()


def _create_named_qr_code(page, name: str, usage: str = "3") -> str:
    # Pending's own answer first: the page may show Pending already, and the wizard's link
    # clicked while Pending's request was still out was once overtaken by it in CI.
    follow(page, page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending"),
           "/admin/devices/pending")
    page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
    expect(page).to_have_url(re.compile(r"/admin/devices/pending/new$"))
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Automatic Provisioning", exact=True).check()
    page.get_by_label("User", exact=True).fill("alice")
    page.get_by_label("Usage Count").fill(usage)
    page.get_by_label("Mobile data", exact=True).check()
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(REVIEW_URL)
    expect(page.locator("#qr-name")).to_have_text(name)
    return REVIEW_URL.search(page.url)[1]


def _pending(server, public_id, state="pending") -> int:
    return server.scalar(
        "SELECT count(*) FROM pending_enrollments p JOIN qr_codes q ON q.id = p.qr_code_id "
        "WHERE q.public_id = ? AND p.state = ?", public_id, state)


def test_reset_otp_then_the_page_says_to_download_or_mail_it_again(page, server):
    public_id = _create_named_qr_code(page, "Library tablets")
    before = server.scalar("SELECT otp_hash FROM qr_codes WHERE public_id = ?", public_id)
    page.get_by_role("link", name="Reset OTP").click()
    expect(page.get_by_role("heading", name=re.compile("Reset the OTP"))).to_be_visible()
    page.get_by_role("button", name="Reset OTP").click()
    note = page.locator("#otp-reset-note")
    expect(note).to_contain_text("The OTP was reset")
    expect(note).to_contain_text("no longer works")
    assert server.scalar("SELECT otp_hash FROM qr_codes WHERE public_id = ?",
                         public_id) != before
    note.get_by_role("button", name="Mail again").click()
    expect(page.get_by_text(re.compile(r"queued: the QR code is mailed again|Nobody to mail")))\
        .to_be_visible()


def test_delete_one_pending_enrollment_with_its_confirmation(page, server):
    public_id = _create_named_qr_code(page, "Gym iPads")
    reserved = server.scalar("SELECT reserved FROM license_pool")
    page.get_by_role("button", name="View OTP").click()
    page.get_by_role("button", name="Delete pending enrollment #1").click()  # hx-confirm: OK
    expect(page.get_by_text("1 license returned to the pool")).to_be_visible()
    assert _pending(server, public_id) == 2 and _pending(server, public_id, "revoked") == 1
    assert server.scalar("SELECT reserved FROM license_pool") == reserved - 1


def test_extend_by_days_and_bad_input_beside_the_field(page, server):
    public_id = _create_named_qr_code(page, "Warehouse scanners")
    page.get_by_role("link", name="Extend").click()
    page.get_by_label("Extend by").fill("0")
    page.get_by_role("button", name="Extend").click()
    expect(page.locator("#amount-error")).to_contain_text("1 or more")
    page.get_by_label("Extend by").fill("30")
    page.get_by_label("Unit").select_option(label="days")
    page.get_by_role("button", name="Extend").click()
    expect(page.get_by_text("The OTP's expiry changed for 3 pending enrollments")).to_be_visible()
    expires = server.scalar("SELECT otp_expires_at FROM qr_codes WHERE public_id = ?", public_id)
    assert expires.startswith(("2026", "2027"))


def test_the_pending_list_finds_a_qr_code_by_its_name(page, server):
    _create_named_qr_code(page, "Reception kiosk", usage="1")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    search = page.get_by_role("searchbox", name="Search")
    search.fill("kiosk")
    rows = page.locator("#qr-code-rows tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Reception kiosk")
    expect(search).to_have_value("kiosk")  # only the table was replaced


def test_helpdesk_choosing_unlimited_gets_the_message_beside_it(browser, server):
    helpdesk = WizardServer(server.url, *HELPDESK, server.database, server.user_password)
    context, page = signed_in_context(browser, helpdesk)
    try:
        page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
        page.get_by_label("Automatic Provisioning", exact=True).check()
        page.get_by_label("User", exact=True).fill("alice")
        page.get_by_label("Mobile data", exact=True).check()
        page.get_by_label("Define OTP").check()
        page.get_by_label("Unlimited").check()
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#otp_unlimited-error")).to_have_text(
            "Only an Administrator may define an Unlimited OTP.")
    finally:
        context.close()
