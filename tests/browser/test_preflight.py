"""Admin → Preflight in Chromium, by visible names: run it, read each check, and follow the
wizard's one-line summary back to it."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import open_menu, signed_in_context

pytestmark = pytest.mark.browser


def test_run_preflight_then_the_wizard_links_to_its_failures(browser, wizard_server):
    context, page = signed_in_context(browser, wizard_server)
    open_menu(page, "Admin", "Preflight")
    expect(page.get_by_role("heading", name="Preflight", exact=True)).to_be_visible()
    expect(page.get_by_text("The preflight has not run yet.")).to_be_visible()

    page.get_by_role("button", name="Run preflight").click()
    table = page.get_by_role("table", name="Preflight checks")
    expect(table).to_be_visible(timeout=30000)
    row = table.get_by_role("row", name=re.compile("Quick-start values"))
    expect(row.get_by_text("Failure", exact=True)).to_be_visible()
    expect(row).to_contain_text("Enter your Companion's values under Admin → Companion.")
    expect(page.locator("#preflight-summary")).to_contain_text(re.compile(r"\d+ failures"))
    expect(page).to_have_url(re.compile(r"/admin/settings/preflight$"))  # htmx: no reload

    open_menu(page, "Devices", "Pending")
    page.get_by_role("link", name="Advanced QR-Code Provisioning").click()
    note = page.locator("#preflight-note")
    expect(note).to_contain_text("failures that can stop phones from enrolling")
    note.get_by_role("link", name="see Admin → Preflight").click()
    expect(page.get_by_role("table", name="Preflight checks")).to_be_visible()
    context.close()
