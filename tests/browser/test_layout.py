"""Every console page the menu reaches, and the QR code page, a device page, the wizard, the
admin's own account and the Self Service Portal's sign-in, at a desktop's 1280 px and a phone's
360 px: the page never scrolls sideways (a hidden column label once widened Users to 960 px at
360 px), and nothing sticks out of its card (a wide table scrolls inside its own box). The admin
bar takes at most two rows at 1280 px, read in order, with every entry shown.
Seeded so that no table is empty: a QR code with a history, a device, a webhook, a token; the
admin's name is as long as a name can be (64 characters)."""
import json
from dataclasses import dataclass
from functools import partial

import pytest
from playwright.sync_api import expect

from portal.accounts.admins import create_admin
from portal.accounts.api_tokens import create_token
from portal.accounts.users import add_local_user
from portal.audit.log import record
from portal.licensing.seats import set_total
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.settings.companion import seed_example_companion
from portal.settings.network_profiles import ProfileValues, save as save_profile
from portal.simulator.device import Device, enroll
from portal.webhooks.endpoints import create_endpoint
from tests.browser.conftest import sign_in
from tests.support.live import live_app, serving

pytestmark = pytest.mark.browser

ADMIN = ("layout-administrator.of.the.warehouse-handhelds@example-corp.com",
         "layout admin password 1")
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
WIDTHS = (1280, 360)
# The long lists, named so that a change to the menu cannot drop one unseen.
LISTS = ["/admin/devices/", "/admin/devices/pending", "/admin/people/users",
         "/admin/people/administrators", "/admin/settings/licenses", "/admin/audit",
         "/admin/outbox", "/admin/settings/network-profiles", "/admin/settings/zero-touch"]
# A name and an address as long as the forms take, without a space to break them at.
LONG_NAME = "Warehouse-handhelds-second-floor-east-wing-" + "x" * 50
LONG_ADDRESS = "logistics.department.second.floor.notifications@subsidiary.example.com"


@dataclass(frozen=True)
class Site:
    url: str
    qr_id: str
    ssp_qr_id: str
    device_id: str


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    app = live_app(tmp_path_factory.mktemp("layout-portal"), "layout")
    with app.app_context():
        create_admin(ADMIN[0], "layout-admin@example.com", ADMIN[1])
        seed_example_companion()
        set_total(50)
        alice = add_local_user("alice", "alice@example.com", "alice password 1234",
                               display_name="Alice Smith")
        save_profile(ProfileValues(name="Head office Wi-Fi", network="wifi",
                                   wifi_ssid="HeadOffice-Corporate-5GHz", wifi_security="WPA",
                                   wifi_password="head office wifi password"), actor=ADMIN[0])
        audit = partial(record, actor_type="admin", actor=ADMIN[0])
        create_endpoint("https://hooks.example.com/android/enrollment/events/"
                        "receiver-with-a-long-path", "Ticketing system",
                        ["device.enrolled", "qr_code.revoked"], actor=ADMIN[0], audit=audit)
        create_token("Inventory sync", "read", created_by=ADMIN[0], days=30)
        qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="wifi",
                                          wifi_ssid="HeadOffice-Corporate-5GHz",
                                          wifi_security="WPA", wifi_password="a wifi password",
                                          user=alice, usage_count=3, send_to_user=True,
                                          alternative_email=LONG_ADDRESS, name=LONG_NAME),
                            created_by=None, server_url="https://portal.test")
        payload, qr_id = json.loads(qr.payload_text()), qr.public_id
        ssp_qr_id = create_qr_code(QrCodeRequest(option="ssp", lang="en", network="mobile"),
                                   created_by=None, server_url="https://portal.test").public_id
    with serving(app) as url:
        payload[EXTRAS]["server_url"] = url
        outcome = enroll(payload, Device(serial_number="LAYOUT0000000000000001",
                                         manufacturer="Zebra Technologies", model="TC58 Mobile "
                                         "Computer", android_api_level=34))
        assert outcome.state == "enrolled"
        with app.app_context():
            from portal.enrollment.models import Device as DeviceRow
            from portal.database import db
            device_id = db.session.query(DeviceRow.public_id).scalar()
        yield Site(url, qr_id, ssp_qr_id, device_id)


# Every element whose box sticks out of the card (or the page's main region) it is in, unless
# it is inside a box that scrolls or clips it (that box is checked itself). 1 px boxes are the
# visually-hidden labels.
OVERFLOWS = """() => {
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className.trim()
       ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  const clipped = (el, box) => {
    for (let up = el.parentElement; up && up !== box; up = up.parentElement)
      if (getComputedStyle(up).overflowX !== 'visible') return true;
    return false;
  };
  const found = [];
  for (const box of document.querySelectorAll('.card, main')) {
    const edge = box.getBoundingClientRect();
    for (const el of box.querySelectorAll('*')) {
      if (!el.getClientRects().length) continue;
      const r = el.getBoundingClientRect();
      if (r.width <= 1 && r.height <= 1) continue;
      if (clipped(el, box)) continue;
      if (r.right > edge.right + 0.5 || r.left < edge.left - 0.5)
        found.push(`${name(el)} spans ${Math.round(r.left)}–${Math.round(r.right)} px in `
                   + `${name(box)} (${Math.round(edge.left)}–${Math.round(edge.right)})`);
    }
  }
  return found.slice(0, 5);
}"""


def _menu_pages(page) -> list[str]:
    """Every page the signed-in Administrator's menu links to (each section lists its own
    pages only while it is the current one)."""
    nav = page.get_by_role("navigation", name="Main")
    sections = [a.get_attribute("href") for a in nav.locator(":scope > ul > li > a").all()]
    pages = []
    for section in sections:
        page.goto(section)
        pages += [a.get_attribute("href") for a in nav.locator("li.active .subnav a").all()]
    return list(dict.fromkeys(pages))


def _problems(page) -> list[str]:
    problems = []
    scroll, inner = page.evaluate(
        "[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll > inner:
        problems.append(f"the page scrolls sideways: {scroll} px wide in a {inner} px window")
    return problems + page.evaluate(OVERFLOWS)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways_or_overflows_its_cards(browser, site, artifacts, width):
    context = browser.new_context(base_url=site.url, viewport={"width": width, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto("/admin/login")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    menu = {url.strip("/").replace("/", "-"): url for url in _menu_pages(page)}
    assert len(menu) >= 18, menu  # the menu's pages were found, not just the four below
    assert [url for url in LISTS if url not in menu.values()] == []
    pages = {**menu, "qr-code": f"/admin/qr-codes/{site.qr_id}",
             "device": f"/admin/devices/{site.device_id}", "wizard": "/admin/devices/pending/new",
             "account-password": "/admin/account/password",  # the top bar's user name
             "account-two-step": "/admin/account/two-step",
             "ssp-sign-in": f"/ssp/?qr_id={site.ssp_qr_id}"}
    found = {}
    folder = artifacts / "layout"
    folder.mkdir(exist_ok=True)
    for name, url in pages.items():
        page.goto(url)
        expect(page.locator("main h1").first).to_be_visible()
        if problems := _problems(page):
            found[url] = problems
        page.screenshot(path=folder / f"{name}-{width}.png", full_page=True)
    context.close()

    assert found == {}, "\n".join(f"{url}: {problem}" for url, problems in found.items()
                                    for problem in problems)


def test_the_admin_pages_fold_into_the_menu_on_a_phone_and_open_by_keyboard(browser, site):
    """At 360 px Admin's sixteen pages are one "Admin pages" line (a <details>) that Enter
    opens; at 1280 px they are all in the bar with no summary."""
    pages = ["Self Service Portal", "Companion", "Android Management API", "Preflight",
             "Localizations", "Network profiles", "Zero-Touch / Knox", "Sign-in methods", "Mail",
             "Outbox", "Webhooks", "Audit log", "Users", "Administrators", "Licenses",
             "API tokens"]
    for width in WIDTHS:
        context = browser.new_context(base_url=site.url,
                                      viewport={"width": width, "height": 800})
        context.set_default_timeout(5000)
        page = context.new_page()
        page.goto("/admin/login")
        sign_in(page, *ADMIN)
        page.goto("/admin/settings/mail")
        nav = page.get_by_role("navigation", name="Main")
        summary = nav.locator("summary", has_text="Admin pages")
        if width == 360:
            expect(summary).to_be_visible()
            expect(nav.get_by_role("link", name="Outbox", exact=True)).to_be_hidden()
            summary.focus()
            page.keyboard.press("Enter")
        else:
            expect(summary).to_be_hidden()
        for name in pages:
            expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
        expect(nav.get_by_role("link", name="Mail", exact=True)).to_have_attribute(
            "aria-current", "page")
        if width == 360:  # Tab goes on from the summary into the opened list
            page.keyboard.press("Tab")
            expect(nav.get_by_role("link", name=pages[0], exact=True)).to_be_focused()
        context.close()


# The admin bar's entries as they show, in document order: each one's text and box.
BAR_ENTRIES = """() => [...document.querySelectorAll(
    'header.topbar :is(.brand, nav a, nav summary, .who, button)')]
  .filter((el) => el.checkVisibility())
  .map((el) => { const r = el.getBoundingClientRect();
                 return {text: el.textContent.trim(), top: r.top, bottom: r.bottom,
                         left: r.left}; })"""


def _bar_rows(page) -> list[list[str]]:
    """The bar's entries by row (an entry starts a row when it lies below every entry of the
    row before), each row left to right."""
    rows, bottom = [], None
    for entry in sorted(page.evaluate(BAR_ENTRIES), key=lambda entry: entry["top"]):
        if bottom is None or entry["top"] >= bottom - 1:
            rows.append([])
            bottom = entry["bottom"]
        rows[-1].append(entry)
        bottom = max(bottom, entry["bottom"])
    return [[entry["text"] for entry in sorted(row, key=lambda entry: entry["left"])]
            for row in rows]


@pytest.mark.parametrize("url, most_rows", [("/admin/devices/pending", 1),
                                            ("/admin/settings/mail", 2)])
def test_the_admin_bar_fits_its_rows_at_1280_px_in_reading_order(browser, site, artifacts, url,
                                                                  most_rows):
    """Devices (two pages) is one row; Admin, with its sixteen pages, two: the brand, the
    sections and the pages, then the account at the end, read left to right and down as in
    the document, none hidden (with the longest user name there is)."""
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto("/admin/login")
    sign_in(page, *ADMIN)
    page.goto(url)
    expect(page.locator("main h1").first).to_be_visible()
    page.screenshot(path=artifacts / f"admin-bar-{url.rsplit('/', 1)[1]}-1280.png",
                    caret="initial", clip={"x": 0, "y": 0, "width": 1280, "height": 200})
    entries = [entry["text"] for entry in page.evaluate(BAR_ENTRIES)]
    rows = _bar_rows(page)
    context.close()

    assert len(rows) <= most_rows, rows
    assert [text for row in rows for text in row] == entries  # in reading order
    assert entries[0] == "QR-Code Provisioning" and entries[-2:] == [ADMIN[0], "Sign out"]
    assert len(entries) == 1 + 2 + (2 if "devices" in url else 16) + 2, entries
