"""Admin → Companion in a real browser: Read APK fills the form, the portal's address, Save,
and the saved APK downloads from /companion/<version code>.apk."""
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import (WIZARD_ADMIN, WIZARD_USER_PASSWORD, WizardServer, open_menu,
                                    signed_in_context, wizard_app)
from tests.support.apks import COMPONENT, apks  # noqa: F401
from tests.support.live import serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def companion_server(tmp_path_factory):
    """A portal of its own (example Companion): these tests save the Companion settings."""
    root = tmp_path_factory.mktemp("companion-portal")
    app = wizard_app(root)
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


@pytest.mark.parametrize("width", [1280, 360])
def test_read_apk_fills_the_form_and_save_serves_it_from_the_portal(
        browser, companion_server, apks, width):
    context, page = signed_in_context(browser, companion_server, width=width, height=900)
    try:
        open_menu(page, "Admin", "Companion")
        expect(page.get_by_role("heading", name="Companion")).to_be_visible()

        page.get_by_label("Companion APK").set_input_files(str(apks.v2v3))
        page.get_by_role("button", name="Read APK").click()

        expect(page.get_by_text("The APK is read")).to_be_visible()
        expect(page.get_by_label("Admin component name")).to_have_value(COMPONENT)
        expect(page.get_by_label("Signature checksum")).to_have_value(apks.key_a.checksum)

        page.get_by_role("button", name="Use the portal's address for this APK").click()
        # Wait for the answer itself: the URL field may hold this address already (a test
        # before saved it), and htmx drops an Enter pressed while the form's request is out.
        expect(page.get_by_text("The values below are checked against this APK")).to_be_visible()
        expect(page.get_by_label("APK download URL")).to_have_value(
            "https://portal.test/companion/42.apk")
        # Enter in a field saves, as the Save button does, rather than reading the APK again.
        page.get_by_label("Enrollment link scheme").press("Enter")
        expect(page.get_by_text("The Companion settings are saved.")).to_be_visible(
            timeout=10_000)

        response = page.request.get("/companion/42.apk")
        assert response.status == 200 and response.body() == apks.v2v3.read_bytes()
    finally:
        context.close()


def test_a_wrong_file_is_explained_beside_the_file_field(browser, companion_server, apks):
    context, page = signed_in_context(browser, companion_server)
    try:
        page.goto("/admin/settings/companion")
        page.get_by_label("Companion APK").set_input_files(str(apks.not_apk))
        page.get_by_role("button", name="Read APK").click()
        expect(page.locator("#apk-error")).to_have_text("This file is not an APK.")
    finally:
        context.close()
