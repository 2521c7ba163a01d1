"""Network profiles in Chromium, by their visible names, at 1280 and 360 px: create a profile
under Admin → Network profiles (a refused Save first), then make a QR code in the wizard with
Network Type → Saved profile and see the profile on its review page and in its payload; page
through the list with its pager."""
import json
import re

import pytest
from playwright.sync_api import expect

from portal.admin import network_profiles as profiles_view
from portal.database import db
from portal.settings.network_profiles import ProfileValues, listing, save as save_profile
from tests.browser.conftest import WizardServer, open_menu, signed_in_context, wizard_app
from tests.support.live import serving
from tests.support.qr import decode_qr

pytestmark = pytest.mark.browser

BLOCKED = re.compile(r"Refused to (execute|load)|Content Security Policy", re.IGNORECASE)
REVIEW_URL = re.compile(r"/admin/qr-codes/([A-Za-z0-9_-]{8,})$")
PREFIX = "android.app.extra.PROVISIONING_"


@pytest.fixture(scope="module")
def portal_app(tmp_path_factory):
    root = tmp_path_factory.mktemp("profiles-portal")
    app = wizard_app(root)
    app.root = root
    return app


@pytest.fixture(scope="module")
def server(portal_app):
    from tests.browser.conftest import WIZARD_ADMIN, WIZARD_USER_PASSWORD
    with serving(portal_app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, portal_app.root / "portal.db",
                           WIZARD_USER_PASSWORD)


@pytest.fixture(params=[1280, 360], ids=["1280px", "360px"])
def width(request) -> int:
    return request.param


@pytest.fixture
def admin_page(browser, server, width):
    context, page = signed_in_context(browser, server, width=width, height=800)
    log = []
    page.on("console", lambda message: log.append(
        f"{message.type}: {message.text} on {page.url}"))
    page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    yield page
    problems = [m for m in log if BLOCKED.search(m) or m.startswith(("error", "pageerror"))]
    assert [m for m in problems if "status of 422" not in m] == []  # 422: a refused form
    context.close()


def _fits(page, width):
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def _open_profiles(page, width):
    open_menu(page, "Admin", "Network profiles")
    expect(page.get_by_role("heading", name="Network profiles", exact=True)).to_be_visible()


def test_create_a_profile_and_make_a_qr_code_from_it(admin_page, server, width, artifacts):
    page, name, ssid = admin_page, f"School Wi-Fi {width}", f"School-{width}"
    _open_profiles(page, width)
    page.get_by_role("link", name="New profile").click()
    expect(page.get_by_role("heading", name="New network profile")).to_be_visible()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Mobile data", exact=True).check()  # CSS hides the Wi-Fi fields
    expect(page.get_by_label("SSID")).to_be_hidden()
    page.get_by_label("Wi-Fi", exact=True).check()
    page.get_by_label("Security Type").select_option(label="None")
    expect(page.get_by_label("Password", exact=True)).to_be_hidden()
    page.get_by_label("Security Type").select_option(label="WPA")
    page.get_by_label("SSID").fill(ssid)
    page.get_by_label("Password", exact=True).fill("short")
    page.get_by_role("button", name="Save").click()

    expect(page.locator("#wifi_password-error")).to_contain_text("8–63 characters")
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)  # typed, kept
    expect(page.get_by_label("SSID")).to_have_value(ssid)
    expect(page.get_by_label("Password", exact=True)).to_have_value("")  # never sent back
    page.screenshot(path=artifacts / f"network-profile-refused-{width}.png", full_page=True)
    _fits(page, width)
    page.get_by_label("Password", exact=True).fill("school secret 1")
    page.get_by_role("button", name="Save").click()

    expect(page.get_by_text(f"The network profile {name} is saved.")).to_be_visible()
    row = page.locator("tr", has_text=name)
    expect(row).to_contain_text(f"Wi-Fi {ssid} (WPA)")
    page.screenshot(path=artifacts / f"network-profiles-{width}.png", full_page=True)
    _fits(page, width)

    page.goto("/admin/devices/pending/new")
    # Each change asks for the live QR version; the next one would abort an answer still out
    # (hx-sync replace; htmx logs that as a console error), so each answer is awaited.
    with page.expect_response(lambda response: "/qr-version" in response.url):
        page.get_by_label("Saved profile", exact=True).check()
    expect(page.get_by_label("SSID")).to_be_hidden()
    expect(page.locator("#proxy-settings")).to_be_hidden()
    # Save while the answer is out would abort it too; "#qr-version" says "version" before.
    with page.expect_response(lambda response: "/qr-version" in response.url):
        page.get_by_label("Network profile").select_option(
            label=f"{name} — Wi-Fi {ssid} (WPA)")
    expect(page.locator("#qr-version")).to_contain_text("version")
    page.screenshot(path=artifacts / f"wizard-saved-profile-{width}.png", full_page=True)
    _fits(page, width)
    page.get_by_role("button", name="Save").click()

    expect(page).to_have_url(REVIEW_URL)
    expect(page.locator("#qr-network-profile")).to_have_text(f"{name} (version 1)")
    page.screenshot(path=artifacts / f"qr-from-profile-{width}.png", full_page=True)
    _fits(page, width)
    png = page.request.get(page.locator("#qr-image").get_attribute("src")).body()
    payload = json.loads(decode_qr(png))
    assert payload[PREFIX + "WIFI_SSID"] == ssid
    assert payload[PREFIX + "WIFI_PASSWORD"] == "school secret 1"
    public_id = REVIEW_URL.search(page.url)[1]
    assert server.scalar("SELECT network_profile_version FROM qr_codes WHERE public_id = ?",
                         public_id) == 1

    # The profile changes: the QR code keeps its network, and its page says so.
    review_url = page.url
    page.goto("/admin/settings/network-profiles")
    page.locator("tr", has_text=name).get_by_role("link", name=f"Edit {name}").click()
    expect(page.get_by_text("Leave it empty to keep the stored password")).to_be_visible()
    page.get_by_label("SSID").fill(f"{ssid}-new")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text(f"The network profile {name} is saved (version 2).")).to_be_visible()
    page.goto(review_url)
    expect(page.locator("#qr-profile-changed")).to_contain_text(
        f"Made from an older version of the network profile {name} (1, now 2)")
    page.screenshot(path=artifacts / f"qr-from-older-profile-{width}.png")
    _fits(page, width)
    png = page.request.get(page.locator("#qr-image").get_attribute("src")).body()
    assert json.loads(decode_qr(png))[PREFIX + "WIFI_SSID"] == ssid


def test_the_pager_pages_through_the_list_and_swaps_only_the_list(admin_page, portal_app, width,
                                                                  monkeypatch, artifacts):
    """Two profiles a page (the server runs in this process): Next and Previous swap the
    table, the URL follows, and Back shows the first page again."""
    monkeypatch.setattr(profiles_view, "PAGE_SIZE", 2)
    with portal_app.app_context():
        for n in (3, 1, 2):
            save_profile(ProfileValues(name=f"Pager {width} {n}", network="mobile"),
                         actor="setup")
        names = [profile.name for profile in db.session.scalars(listing())]
    pages = (len(names) + 1) // 2
    page = admin_page
    _open_profiles(page, width)
    pager = page.get_by_role("navigation", name="Pages")
    names_shown = page.locator("#network-profile-rows tr > td:first-child")
    expect(pager).to_contain_text(f"Page 1 of {pages} ({len(names)} profiles)")
    expect(names_shown).to_have_text(names[:2])

    with page.expect_request(lambda request: "page=2" in request.url) as asked:
        pager.get_by_role("link", name="Next").click()
    assert asked.value.headers.get("hx-target") == "network-profile-table"  # the list only
    expect(page).to_have_url(re.compile(r"/admin/settings/network-profiles\?page=2$"))
    expect(pager).to_contain_text(f"Page 2 of {pages}")
    expect(names_shown).to_have_text(names[2:4])
    expect(page.get_by_role("heading", name="Network profiles", exact=True)).to_be_visible()
    page.screenshot(path=artifacts / f"network-profiles-page-2-{width}.png", caret="initial")
    _fits(page, width)

    pager.get_by_role("link", name="Previous").click()
    expect(page).to_have_url(re.compile(r"\?page=1$"))
    expect(names_shown).to_have_text(names[:2])
    page.go_back()
    expect(page).to_have_url(re.compile(r"\?page=2$"))
    expect(names_shown).to_have_text(names[2:4])
