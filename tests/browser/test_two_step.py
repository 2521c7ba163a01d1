"""Two-step sign-in in a real browser: turn it on from Admin → Sign-in methods, sign out, sign
in again with the password and then the code of the authenticator app (pyotp plays the app)."""
import re
import time

import pyotp
import pytest
from playwright.sync_api import expect

from portal.accounts.admins import create_admin
from tests.browser.conftest import _live_app, open_menu, sign_in
from tests.browser.test_admin_console import CSP_VIOLATION
from tests.support.live import serving

pytestmark = pytest.mark.browser

ADMIN = ("two-step-admin", "two step admin password 1")
HELPDESK = ("two-step-helpdesk", "two step helpdesk password 1")


@pytest.fixture
def server_url(tmp_path_factory):
    """A portal for each test: turning two-step on must not change another test's admins."""
    from flask_migrate import upgrade

    app = _live_app(tmp_path_factory.mktemp("two-step-portal"))
    with app.app_context():
        upgrade()
        create_admin(ADMIN[0], "two-step-admin@example.com", ADMIN[1])
        create_admin(HELPDESK[0], "two-step-helpdesk@example.com", HELPDESK[1],
                     role="helpdesk")
    with serving(app) as url:
        yield url


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    yield page
    context.close()


def test_turn_on_sign_out_and_sign_in_with_the_code(page, console, artifacts):
    page.goto("/admin/login")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    page.goto("/admin/settings/sign-in")
    page.get_by_role("link", name="Two-step sign-in").click()

    expect(page.get_by_role("heading", name="Turn on two-step sign-in")).to_be_visible()
    expect(page.get_by_label("QR code for the authenticator app").locator("svg")).to_be_visible()
    page.screenshot(path=artifacts / "two-step-set-up-1280x800.png")
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    page.get_by_role("textbox", name="Code").fill(totp.now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()

    expect(page.get_by_role("heading", name="Two-step sign-in is on")).to_be_visible()
    expect(page.locator("#recovery-code-list li")).to_have_count(10)
    page.get_by_role("link", name="I have saved the recovery codes").click()
    expect(page.get_by_text("10 of 10 recovery codes left.")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Two-step sign-in")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/admin/login/code$"))
    code = page.get_by_role("textbox", name="Code")
    code.fill("000000" if totp.now() != "000000" else "111111")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("This code is wrong or was used already")).to_be_visible()
    code.fill(totp.at(time.time() + 30))  # the code of now was spent turning it on
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    page.screenshot(path=artifacts / "two-step-signed-in-1280x800.png")
    # The wrong code's 422 is logged as a failed load; nothing else may be.
    assert [m for m in console if CSP_VIOLATION.search(m) or m.startswith("pageerror")] == []


def test_required_for_everyone_a_helpdesk_admin_sets_it_up_at_sign_in(page, browser,
                                                                     server_url, artifacts):
    page.goto("/admin/login")
    sign_in(page, *ADMIN)
    open_menu(page, "Admin", "Sign-in methods")
    page.get_by_label("Require two-step sign-in of every admin").check()
    page.get_by_role("button", name="Save two-step sign-in").click()
    expect(page.get_by_text("Every admin must now sign in with two steps")).to_be_visible()

    context = browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 800})
    helpdesk = context.new_page()
    helpdesk.goto("/admin/login")
    sign_in(helpdesk, *HELPDESK)
    expect(helpdesk.get_by_text("Every admin must sign in with two steps.")).to_be_visible()
    totp = pyotp.TOTP(helpdesk.locator("#totp-secret").inner_text())
    helpdesk.get_by_role("textbox", name="Code").fill(totp.now())
    helpdesk.get_by_role("button", name="Turn on two-step sign-in").click()
    expect(helpdesk.locator("#recovery-code-list li")).to_have_count(10)
    helpdesk.screenshot(path=artifacts / "two-step-recovery-codes-1280x800.png")
    helpdesk.get_by_role("link", name="I have saved the recovery codes").click()

    expect(helpdesk.get_by_role("heading", name="Pending")).to_be_visible()
    context.close()
