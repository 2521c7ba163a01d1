"""htmx indicators tell the truth: while a request runs, the indicator it names shows and no other
(the Save of Admin → Mail once showed "Sending…" as well, because every indicator inside a
sending form showed). Each request is held by the browser until the check is done, and CSS
transitions are off, so nothing here waits for time."""
import pytest

from tests.browser.conftest import signed_in_context

pytestmark = pytest.mark.browser

SHOWN = """() => [...document.querySelectorAll('.htmx-indicator')]
  .filter((el) => el.getClientRects().length && getComputedStyle(el).opacity !== '0')
  .map((el) => el.id)"""

CASES = [  # page, what sends, the one indicator that shows (None: none)
    ("/admin/settings/mail", "#mail-form > button.primary", "mail-save-indicator"),
    ("/admin/settings/mail", "#send-test-mail", "mail-test-indicator"),
    ("/admin/settings/sign-in", "#sign-in-form > button.primary", "sign-in-save-indicator"),
    ("/admin/settings/sign-in", "#test-ldap", "ldap-test-indicator"),
    ("/admin/settings/sign-in", "#test-azure", "azure-test-indicator"),
    ("/admin/settings/android-management", "#amapi-form > button.primary",
     "amapi-save-indicator"),
    ("/admin/settings/android-management", "#test-amapi", "amapi-test-indicator"),
    ("/admin/settings/companion", "#companion-form > button.primary", "companion-save-indicator"),
    ("/admin/settings/companion", "#read-apk", "companion-apk-indicator"),
    ("/admin/devices/pending/new", "#qr-code-form button.primary", "save-indicator"),
    # Typing asks for the live QR version: that is not saving.
    ("/admin/devices/pending/new", "type #name", None),
]


@pytest.fixture(scope="module")
def admin_page(browser, wizard_server):
    context, page = signed_in_context(browser, wizard_server, bypass_csp=True)
    yield page
    context.close()


@pytest.mark.parametrize("url, sender, indicator", CASES)
def test_only_the_requests_own_indicator_shows(admin_page, url, sender, indicator):
    page = admin_page
    page.goto(url)
    page.add_style_tag(content="*, *::before { transition: none !important; }")
    held = []

    def hold(route):
        if route.request.headers.get("hx-request") == "true":
            held.append(route)
        else:
            route.continue_()

    page.route("**/*", hold)
    try:
        with page.expect_request(lambda request: request.headers.get("hx-request") == "true"):
            if sender.startswith("type "):
                page.locator(sender.removeprefix("type ")).fill("Warehouse")
            else:
                page.locator(sender).click()
        shown = page.evaluate(SHOWN)
    finally:
        for route in held:
            route.abort()
        page.unroute("**/*")

    assert shown == ([indicator] if indicator else [])
