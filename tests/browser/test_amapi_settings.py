"""Admin → Android Management API in Chromium: upload the key file, Save, and Test connection
shows every step ✓ (the real Google client libraries against the loopback stand-in)."""
import json

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (WIZARD_ADMIN, WIZARD_USER_PASSWORD, WizardServer, open_menu,
                                    signed_in_context, wizard_app)
from tests.browser.test_accessibility import audit_here
from tests.support.live import serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def amapi_server(tmp_path_factory, amapi_standin):
    """A portal of its own whose Google is the stand-in: these tests save the settings."""
    root = tmp_path_factory.mktemp("amapi-portal")
    app = wizard_app(root)
    app.config.update(AMAPI_ENDPOINT=amapi_standin.url)
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


@pytest.mark.parametrize("width", [1280, 360])
def test_upload_the_key_save_and_every_step_of_the_test_passes(
        browser, amapi_server, amapi, tmp_path, artifacts, width):
    key = amapi.service_account_key()
    key_path = tmp_path / "portal-key.json"
    key_path.write_text(json.dumps(key, indent=2))
    context, page = signed_in_context(browser, amapi_server, width=width, height=900)
    try:
        open_menu(page, "Admin", "Android Management API")
        expect(page.get_by_role("heading", name="Android Management API", exact=True)) \
            .to_be_visible()
        page.get_by_label("Enterprise", exact=True).fill("LC0abc")
        page.get_by_label("Service-account key (.json file)").set_input_files(str(key_path))
        page.get_by_label("Policy for Self Service Portal").fill("fully-managed")
        page.get_by_label("Policy for Automatic Provisioning").fill("kiosk")
        page.get_by_label("Push service account (optional)").fill(
            "pubsub-push@proj.iam.gserviceaccount.com")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_text("The Android Management API settings are saved.")) \
            .to_be_visible(timeout=10_000)
        expect(page.locator("#amapi-key-account")).to_have_text(key["client_email"])
        expect(page.locator("#amapi-key-id")).to_have_text(key["private_key_id"])
        expect(page.get_by_label("Enterprise", exact=True)).to_have_value("enterprises/LC0abc")

        page.get_by_role("button", name="Test connection").click()
        result = page.locator("#amapi-test-result")
        expect(result).to_contain_text("The connection works.", timeout=10_000)
        expect(result.locator("li.ok")).to_have_count(5)
        expect(result.locator("li.failed")).to_have_count(0)
        expect(page.locator("#amapi-connection-status")).to_contain_text("UTC: passed")
        for label in ("Service-account key", "Access token", "Enterprise",
                      "Policy for Self Service Portal", "Policy for Automatic Provisioning"):
            expect(result).to_contain_text(label)
        html = page.content()
        assert key["private_key"].splitlines()[1] not in html
        # The page fits the screen: nothing wider than the viewport.
        page.screenshot(path=str(artifacts / f"amapi-settings-{width}.png"), full_page=True)
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()


def test_a_failing_step_is_named_and_the_values_stay(browser, amapi_server, amapi):
    context, page = signed_in_context(browser, amapi_server)
    try:
        page.goto("/admin/settings/android-management")
        page.get_by_label("Enterprise", exact=True).fill("enterprises/LC0nowhere")
        page.get_by_label("…or paste the key file's contents").fill(
            json.dumps(amapi.service_account_key()))
        page.get_by_label("Policy for Automatic Provisioning").fill("kiosk")
        page.get_by_role("button", name="Test connection").click()
        result = page.locator("#amapi-test-result")
        expect(result).to_contain_text("The connection test failed.", timeout=10_000)
        expect(result.locator("li.failed")).to_contain_text(
            "Google does not know the enterprise enterprises/LC0nowhere.")
        # Only the result was swapped in: what the admin typed is still there.
        expect(page.get_by_label("Enterprise", exact=True)).to_have_value("enterprises/LC0nowhere")
        expect(page.get_by_label("Policy for Automatic Provisioning")).to_have_value("kiosk")
        expect(page.locator("#amapi-test-indicator")).to_have_css("opacity", "0")  # faded out
        problems = []
        audit_here(page, "a failed Test connection", problems)
        # Save refused: every message at once, the pasted key gone from the field.
        page.get_by_label("Policy for Automatic Provisioning").fill("not a policy")
        page.get_by_role("button", name="Save").click()
        expect(page.locator("#error-summary")).to_contain_text("A policy id")
        expect(page.get_by_label("…or paste the key file's contents")).to_have_value("")
        expect(page.locator(".htmx-request, .htmx-settling")).to_have_count(0)
        for indicator in ("#amapi-test-indicator", "#amapi-save-indicator"):
            expect(page.locator(indicator)).to_have_css("opacity", "0")  # faded out
        audit_here(page, "a refused Save", problems)
        assert problems == []
    finally:
        context.close()
