"""A Helpdesk admin in a real browser: the menu offers only what the role may use, and a
settings page opened by its address is the console's "Not allowed" page, not a crash."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import HELPDESK, open_menu, sign_in

pytestmark = pytest.mark.browser


def test_helpdesk_sees_devices_only_and_is_refused_an_admin_page(page, artifacts):
    page.goto("/admin/login")
    sign_in(page, *HELPDESK)
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()

    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Devices", exact=True).first).to_be_visible()
    expect(nav.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="Audit log")).to_have_count(0)
    expect(page.get_by_role("link", name="Advanced QR-Code Provisioning")).to_be_visible()

    response = page.goto("/admin/settings/companion")
    assert response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_text("Your role, Helpdesk, may not open this page")).to_be_visible()
    page.screenshot(path=artifacts / "helpdesk-forbidden-1280x800.png")

    open_menu(page, "Devices", "Pending")
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
