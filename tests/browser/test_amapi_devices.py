"""Devices → Devices in Chromium after Google's push (issue 17): a phone enrolled at Google (the
stand-in) with an Android Device Policy QR code appears once Pub/Sub pushes its ENROLLMENT
notification to the live portal over real HTTP, with its serial number, model, user and
Management, and Pending's Used figure counts it."""
import json
import urllib.request

import pytest
from playwright.sync_api import expect

from portal.accounts.models import PortalUser
from portal.database import db
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from tests.browser.conftest import WIZARD_ADMIN, signed_in_context, wizard_app
from tests.conftest import connect_portal_to_standin
from tests.support.live import serving

pytestmark = pytest.mark.browser
PUSH_PATH = "/api/amapi/notifications"


@pytest.fixture
def adp_server(tmp_path, amapi):
    """The wizard's portal connected to the stand-in, with an Android Device Policy QR code
    for alice (Usage Count 2); its PORTAL_PUBLIC_URL is the live server's (the push audience)."""
    app = wizard_app(tmp_path)
    with serving(app) as url:
        app.config["PORTAL_PUBLIC_URL"] = url
        with app.app_context():
            push_email = connect_portal_to_standin(app, amapi).push_email
            user = db.session.query(PortalUser).filter_by(username="alice").one()
            qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile",
                                              user=user, usage_count=2, management="adp"),
                                created_by=None, server_url=url)
            token = amapi.tokens[qr.enrollment_token_name]["value"]
        yield type("Server", (), {"url": url, "username": WIZARD_ADMIN[0],
                                  "password": WIZARD_ADMIN[1], "token": token,
                                  "push_email": push_email})


def _push(server, amapi, phone) -> int:
    body = json.dumps(amapi.pubsub_push_body(phone)).encode()
    headers = amapi.push_headers(server.url + PUSH_PATH, email=server.push_email)
    request = urllib.request.Request(server.url + PUSH_PATH, data=body, method="POST",
                                     headers=headers)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def test_the_devices_page_shows_a_device_google_enrolled_after_the_push(browser, adp_server,
                                                                        amapi, artifacts):
    context, page = signed_in_context(browser, adp_server)
    used = page.locator('#license-figures dd[data-figure="used"]')
    expect(used).to_have_text("0")

    phone = amapi.enroll(adp_server.token, serial="ADPBROWSER1", model="Pixel 8",
                         manufacturer="Google", api_level=35)
    assert _push(adp_server, amapi, phone) == 204

    page.reload()
    expect(used).to_have_text("1")
    nav = page.get_by_role("navigation", name="Main")
    nav.locator(".subnav").get_by_role("link", name="Devices", exact=True).click()
    row = page.locator("#device-rows tr", has_text="ADPBROWSER1")
    expect(row).to_contain_text("Google Pixel 8")
    expect(row).to_contain_text("Android Device Policy")
    expect(row).to_contain_text("alice")
    expect(row).to_contain_text("Enrolled")
    page.screenshot(path=artifacts / "devices-adp-1280x800.png")
    row.get_by_role("link", name="ADPBROWSER1").click()
    expect(page.locator("#management")).to_have_text("Android Device Policy")
    expect(page.locator("#device-facts")).to_contain_text("15 (API level 35)")
    context.close()
