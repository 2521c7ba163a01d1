"""Every console list at a phone's 360 px: wide tables scroll inside their box, the page itself
never scrolls sideways (a hidden column label once widened the Users page to 960 px)."""
import pytest

from tests.browser.conftest import signed_in_context

pytestmark = pytest.mark.browser

PAGES = ["/admin/devices/", "/admin/devices/pending", "/admin/people/users",
         "/admin/people/administrators", "/admin/settings/licenses", "/admin/audit",
         "/admin/account/password", "/admin/account/two-step", "/admin/outbox"]


def test_no_console_page_scrolls_sideways_at_360_px(browser, wizard_server, artifacts):
    context, page = signed_in_context(browser, wizard_server, width=360, height=740)
    widths = {}
    for url in PAGES:
        page.goto(url)
        widths[url] = page.evaluate("document.documentElement.scrollWidth")
    page.goto("/admin/people/users")
    page.screenshot(path=artifacts / "users-360x740.png")
    context.close()

    assert {url: width for url, width in widths.items() if width > 360} == {}
