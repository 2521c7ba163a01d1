"""The portal by keyboard alone: the skip link is the first thing Tab reaches and takes the focus
to the page's content, and the QR-code wizard is completed with Tab, the arrows, typing and Enter."""
import re
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIZARD_ADMIN, signed_in_context, wizard_app
from tests.conftest import qr_code_factory, user_factory
from tests.support.live import serving

pytestmark = pytest.mark.browser

REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")
MAX_TABS = 120  # more than the wizard's controls: a control never reached fails, not hangs


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The wizard's portal (alice, licenses, the example Companion) and a de-CH SSP QR code."""
    app = wizard_app(tmp_path_factory.mktemp("keyboard-portal"))
    with app.app_context():
        ssp_qr = qr_code_factory(user_factory())("ssp", lang="de-CH").public_id
    with serving(app) as url:
        yield SimpleNamespace(url=url, username=WIZARD_ADMIN[0], password=WIZARD_ADMIN[1],
                              ssp_qr=ssp_qr)


@pytest.fixture
def admin_page(browser, server):
    context, page = signed_in_context(browser, server)
    yield page
    context.close()


def focused(page) -> dict:
    return page.evaluate("""() => { const e = document.activeElement;
        return {id: e.id, name: e.name || '', tag: e.tagName, text: e.innerText || '',
                type: e.type || '', value: e.value || ''}; }""")


def tab_to(page, **wanted) -> dict:
    """Press Tab until the focused element has every wanted property (id, name, text, …)."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        now = focused(page)
        if all(now.get(key) == value for key, value in wanted.items()):
            return now
    raise AssertionError(f"Tab never reached {wanted}")


def _assert_skip_link_works(page, text: str) -> None:
    page.keyboard.press("Tab")
    skip = page.locator(".skip-link")
    expect(skip).to_be_focused()
    expect(skip).to_have_text(text)
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    page.keyboard.press("Tab")  # and the next Tab goes on inside the content, past the menu
    assert page.evaluate("document.querySelector('main').contains(document.activeElement)")


def test_tab_reaches_the_consoles_skip_link_first_and_enter_moves_focus_to_main(admin_page):
    admin_page.goto("/admin/devices/pending")
    _assert_skip_link_works(admin_page, "Skip to content")


def test_the_self_service_portal_has_the_skip_link_in_the_qrs_language(browser, server):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.goto(f"/ssp/?qr_id={server.ssp_qr}")
    _assert_skip_link_works(page, "Zum Inhalt springen")
    context.close()


def test_the_sign_in_page_starts_in_its_form_and_its_skip_link_comes_first(browser, server):
    """The user name field has the focus already (autofocus); backwards, past the brand, Tab
    still finds the skip link first in the page."""
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    page.goto("/admin/login")
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    context.close()


def test_the_wizard_is_completed_by_keyboard_alone(admin_page):
    page = admin_page
    page.goto("/admin/devices/pending/new")
    tab_to(page, name="option")
    while focused(page)["value"] != "auto":  # a radio group: the arrows move and choose
        page.keyboard.press("ArrowDown")
    tab_to(page, id="username")
    page.keyboard.type("alice")
    tab_to(page, id="wifi_ssid")
    page.keyboard.type("Corp-WLAN")
    tab_to(page, id="wifi_password")
    page.keyboard.type("correct-horse")
    tab_to(page, tag="BUTTON", text="Save")
    page.keyboard.press("Enter")

    expect(page).to_have_url(REVIEW_URL)
    expect(page.get_by_role("heading", name=re.compile("Automatic Provisioning QR code"))) \
        .to_be_visible()
    expect(page.locator("#qr-review")).to_contain_text("alice")
    expect(page.locator("#qr-review")).to_contain_text("Corp-WLAN")


def test_every_visible_control_of_the_wizard_is_reached_by_tab(admin_page):
    page = admin_page
    page.goto("/admin/devices/pending/new")
    controls = set(page.evaluate("""() => [...document.querySelectorAll(
        '#qr-code-form input:not([type=hidden]), #qr-code-form select, #qr-code-form button,'
        + ' #qr-code-form a[href]')]
        .filter(e => e.checkVisibility() && !(e.type === 'radio' && !e.checked))
        .map(e => e.id || e.name || e.innerText)"""))
    reached = set()
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        now = focused(page)
        reached.add(now["id"] or now["name"] or now["text"])
        if now["tag"] == "BUTTON" and now["text"] == "Save":
            break
    assert controls <= reached, controls - reached
