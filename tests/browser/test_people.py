"""Admin → Users, Administrators, Licenses and My account in Chromium, by their visible names:
add a user, disable them, set a password; add a Helpdesk admin, who then sees only Devices."""
import re
import sqlite3
from contextlib import closing

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIZARD_LICENSES, WizardServer, sign_in, signed_in_context
from tests.browser.conftest import wizard_app
from tests.support.live import serving

pytestmark = pytest.mark.browser

BLOCKED = re.compile(r"Refused to (execute|load)|Content Security Policy", re.IGNORECASE)
HELPDESK = ("hanna", "hanna helpdesk password")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A portal of its own: the admin, the example Companion, licenses and the user alice."""
    from tests.browser.conftest import WIZARD_ADMIN, WIZARD_USER_PASSWORD
    root = tmp_path_factory.mktemp("people-portal")
    with serving(wizard_app(root)) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


@pytest.fixture
def admin_page(browser, server):
    context, page = signed_in_context(browser, server)
    log = []
    page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    yield page
    problems = [m for m in log if BLOCKED.search(m) or m.startswith(("error", "pageerror"))]
    assert [m for m in problems if "status of 422" not in m] == []  # 422: a refused form
    context.close()


def _open(page, section: str, name: str):
    nav = page.get_by_role("navigation", name="Main")
    link = nav.get_by_role("link", name=section, exact=True)
    href = link.get_attribute("href")
    link.click()
    expect(page).to_have_url(re.compile(re.escape(href) + "$"))  # the section's page is in
    expect(nav.locator("li.active > a")).to_have_text(section)
    nav.get_by_role("link", name=name, exact=True).click()
    expect(page.get_by_role("heading", name=name, exact=True)).to_be_visible()


def test_add_a_user_disable_them_and_set_a_password(admin_page, server, artifacts):
    page = admin_page
    _open(page, "Admin", "Users")
    page.get_by_role("link", name="Add user").click()
    page.get_by_label("User name").fill("alice")  # taken
    page.get_by_label("Display name").fill("Bruno Beispiel")
    page.get_by_label("Email").fill("bruno@example.com")
    page.get_by_label("Password").fill("bruno password 1")
    page.get_by_role("button", name="Add user").click()
    expect(page.locator("#username-error")).to_contain_text("already exists")
    expect(page.get_by_label("Display name")).to_have_value("Bruno Beispiel")  # typed, kept
    page.get_by_label("User name").fill("bruno")
    page.get_by_label("Password").fill("bruno password 1")
    page.get_by_role("button", name="Add user").click()

    expect(page.get_by_text("The user bruno is added")).to_be_visible()
    row = page.locator("tr", has_text="Bruno Beispiel")
    expect(row).to_contain_text("Active")
    row.get_by_role("button", name="Disable").click()
    expect(row).to_contain_text("Disabled")
    expect(page.get_by_text("The user bruno is disabled.")).to_be_visible()
    page.screenshot(path=artifacts / "people-users-1280x800.png", caret="initial")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    assert server.scalar("SELECT active FROM portal_users WHERE username = 'bruno'") == 0

    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_role("heading", name="User bruno")).to_be_visible()
    page.get_by_label("New password").fill("short")
    page.get_by_role("button", name="Set new password").click()
    expect(page.locator("#password-error")).to_contain_text("at least 8 characters")
    page.get_by_label("New password").fill("bruno new password")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_text("The user bruno has a new password.")).to_be_visible()
    page.screenshot(path=artifacts / "people-user-1280x800.png", full_page=True, caret="initial")

    page.get_by_role("link", name="← Users").click()
    page.get_by_label("Search").fill("bruno")
    row = page.locator("tr", has_text="Bruno Beispiel")
    row.get_by_role("button", name="Enable").click()
    expect(row).to_contain_text("Active")


def test_add_a_helpdesk_admin_who_sees_only_devices(admin_page, browser, server, artifacts):
    page = admin_page
    _open(page, "Admin", "Administrators")
    page.get_by_role("link", name="Add administrator").click()
    page.get_by_label("User name").fill(HELPDESK[0])
    page.get_by_label("Email").fill("hanna@example.com")
    page.get_by_label("Password").fill(HELPDESK[1])
    page.get_by_label("Helpdesk").check()
    page.get_by_label("Mail recipient").check()
    page.get_by_role("button", name="Add administrator").click()
    row = page.locator("tr", has_text="hanna@example.com")
    expect(row).to_contain_text("Helpdesk")
    page.screenshot(path=artifacts / "people-administrators-1280x800.png", caret="initial")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280

    context = browser.new_context(base_url=server.url)
    helpdesk = context.new_page()
    helpdesk.goto("/admin/login")
    sign_in(helpdesk, *HELPDESK)
    nav = helpdesk.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Devices", exact=True).first).to_be_visible()
    expect(nav.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    response = helpdesk.goto("/admin/people/users")
    assert response.status == 403
    helpdesk.get_by_role("link", name=HELPDESK[0]).click()  # the top bar: My account
    expect(helpdesk.get_by_role("heading", name="My account")).to_be_visible()
    context.close()


def test_the_license_total_is_refused_below_used_and_reserved(admin_page, server, artifacts):
    with closing(sqlite3.connect(server.database)) as connection, connection:
        connection.execute("UPDATE license_pool SET used = 7, reserved = 3")
    page = admin_page
    _open(page, "Admin", "Licenses")
    expect(page.locator('dd[data-figure="total"]')).to_have_text(f"{WIZARD_LICENSES:,}")
    expect(page.locator('dd[data-figure="remaining"]')).to_have_text("90")
    page.get_by_label("Total licenses").fill("9")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#total-error")).to_have_text(
        "Cannot set 9 licenses: 7 are used and 3 reserved, so at least 10 are needed.")
    page.screenshot(path=artifacts / "people-licenses-1280x800.png", caret="initial")
    page.get_by_label("Total licenses").fill("2500")
    page.get_by_role("button", name="Save").click()
    expect(page.locator('dd[data-figure="total"]')).to_have_text("2,500")
    expect(page.get_by_text("The total is 2,500 licenses.")).to_be_visible()
