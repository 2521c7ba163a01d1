"""Devices → Devices in Chromium: a device enrolled by the Companion simulator over real HTTP
is found by its serial number, opened, retired (after the confirmation naming it), and its
license is back on Pending's figures; a Helpdesk admin finds it too but has no Retire."""
import json
import re
from dataclasses import dataclass

import pytest
from playwright.sync_api import expect

from portal.accounts.admins import create_admin
from portal.accounts.models import PortalUser
from portal.database import db
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.simulator.device import Device, enroll
from portal.vocabulary import AdminRole
from tests.browser.conftest import WIZARD_LICENSES, signed_in_context, wizard_app
from tests.support.live import serving

pytestmark = pytest.mark.browser

EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
HELPDESK = ("helpdesk-browser", "helpdesk browser password 1")


@dataclass(frozen=True)
class FleetServer:
    url: str
    username: str
    password: str
    payload: dict


@pytest.fixture(scope="module")
def fleet_server(tmp_path_factory):
    """The wizard's portal with an Automatic Provisioning QR code (Usage Count 2) and a
    Helpdesk admin; the QR's payload points at the live server."""
    root = tmp_path_factory.mktemp("fleet-portal")
    app = wizard_app(root)
    with app.app_context():
        create_admin(*HELPDESK[:1], "helpdesk@example.com", HELPDESK[1], role=AdminRole.HELPDESK)
        user = db.session.query(PortalUser).filter_by(username="alice").one()
        qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile", user=user,
                                          usage_count=2), created_by=None,
                            server_url="https://portal.test")
        payload = json.loads(qr.payload_text())
    with serving(app) as url:
        from tests.browser.conftest import WIZARD_ADMIN
        payload[EXTRAS]["server_url"] = url
        yield FleetServer(url, *WIZARD_ADMIN, payload)


def _figure(page, name: str):
    return page.locator(f'#license-figures dd[data-figure="{name}"]')


def test_find_open_and_retire_a_simulated_device(browser, fleet_server, artifacts):
    outcome = enroll(fleet_server.payload, Device(serial_number="SIMBROWSER01",
                                                  manufacturer="Simulated", model="Sim Phone",
                                                  android_api_level=34))
    assert outcome.state == "enrolled"
    context, page = signed_in_context(browser, fleet_server)
    expect(_figure(page, "used")).to_have_text("1")
    remaining = int(_figure(page, "remaining").inner_text().replace(",", ""))

    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".subnav").get_by_role("link", name="Devices", exact=True).click()
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()
    search = page.get_by_role("searchbox", name="Search")
    search.fill("simbrow")
    expect(page).to_have_url(re.compile(r"/admin/devices/\?q=simbrow"))
    expect(search).to_be_focused()  # only the table was swapped, not the input
    row = page.locator("#device-rows tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("Sim Phone")
    expect(row).to_contain_text("14")  # Android 14 from API level 34
    expect(row).to_contain_text("Enrolled")
    page.screenshot(path=artifacts / "devices-1280x800.png")
    page.get_by_label("State").select_option("failed")
    expect(page.get_by_text("No device matches")).to_be_visible()
    page.get_by_label("State").select_option("enrolled")
    expect(row).to_have_count(1)
    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    exported = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert len(exported) == 2 and exported[1].startswith("SIMBROWSER01,")

    row.get_by_role("link", name="SIMBROWSER01").click()
    expect(page.get_by_role("heading", name=re.compile("Device SIMBROWSER01"))).to_be_visible()
    # A row's link is a page of its own, not a swap of the table it sits in.
    expect(page).to_have_url(re.compile(r"/admin/devices/[^/?]+$"))
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("#device-table")).to_have_count(0)
    timeline = page.locator("#device-timeline")
    expect(timeline).to_contain_text("Redeemed the QR code")
    expect(timeline).to_contain_text("Provisioning complete")
    page.screenshot(path=artifacts / "device-1280x800.png")
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scroll

    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Retire").click()
    expect(page.get_by_text("its license returned to the pool")).to_be_visible()
    assert messages == ["Retire device SIMBROWSER01 (Simulated Sim Phone)? "
                        "Its license returns to the pool."]
    expect(page.locator("#retired")).to_contain_text(fleet_server.username)
    expect(timeline).to_contain_text("Retired by")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    expect(_figure(page, "used")).to_have_text("0")
    expect(_figure(page, "remaining")).to_have_text(f"{remaining + 1:,}")
    assert remaining + 1 <= WIZARD_LICENSES
    page.locator("#qr-code-rows a").first.click()
    expect(page.get_by_role("heading", name="What the QR code contains")).to_be_visible()
    expect(page.locator("header.topbar")).to_have_count(1)
    expect(page.locator("#qr-code-table")).to_have_count(0)
    context.close()


def test_helpdesk_finds_the_device_but_cannot_retire(browser, fleet_server):
    enroll(fleet_server.payload, Device(serial_number="SIMHELPDESK2", model="Sim Tablet"))
    server = FleetServer(fleet_server.url, *HELPDESK, fleet_server.payload)
    context, page = signed_in_context(browser, server)
    page.goto("/admin/devices/?q=simhelp")
    page.locator("#device-rows").get_by_role("link", name="SIMHELPDESK2").click()
    expect(page.get_by_role("heading", name=re.compile("Device SIMHELPDESK2"))).to_be_visible()
    expect(page.get_by_role("button", name="Retire")).to_have_count(0)
    context.close()
