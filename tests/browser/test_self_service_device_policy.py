"""The Self Service Portal's Android Device Policy flow in headless Chromium at a phone's size:
the page Android Device Policy opens (/ssp/?qr_id=…&provisioningInfo=…), a local user's sign-in,
Start, and the redirect to Google's enrollment URL, whose et= is a token the Android Management
API stand-in issued (Google is never reached: Chromium's enterprise.google.com is on loopback)."""
import threading
from urllib.parse import parse_qs, urlsplit

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request

from portal.accounts.users import add_local_user
from portal.database import db
from portal.licensing.seats import set_total
from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
from portal.settings.companion import seed_example_companion
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.test_accessibility import audit_here
from tests.conftest import connect_portal_to_standin
from tests.support.amapi_standin import ENROLL_INVALID_URL, ENROLL_URL
from tests.support.live import live_app, serving

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
GOOGLE = ENROLL_URL + "**"


@pytest.fixture(scope="module")
def portal(tmp_path_factory, amapi_standin):
    """A portal connected to the stand-in, with the local user lena and 20 licenses."""
    app = live_app(tmp_path_factory.mktemp("ssp-adp-portal"), "ssp_adp")
    with app.app_context():
        seed_example_companion()
        set_total(20)
        add_local_user("lena", "lena@example.com", "lena password 1", display_name="Lena Local")
        connect_portal_to_standin(app, amapi_standin)
        db.session.remove()
    with serving(app) as url:
        app.config["PORTAL_PUBLIC_URL"] = url
        yield app, url


@pytest.fixture
def adp_qr(portal, amapi):
    """An Android Device Policy Self Service QR code (its sign-in details at the stand-in,
    reset for this test, point at the live portal); its public id."""
    app, url = portal
    with app.app_context():
        qr = create_qr_code(QrCodeRequest(option="ssp", management="adp", lang="en",
                                          network="mobile"),
                            created_by=None, server_url=url)
        public_id = qr.public_id
        db.session.remove()
    return public_id


class FakeGoogle:
    """enterprise.google.com as Chromium reaches it here: its host name mapped to a loopback
    HTTPS server (--host-resolver-rules) that answers every page and records the URLs.

    Playwright's page.route() cannot stand in: it calls a handler only for the first URL of a
    redirect chain, and Start answers with a redirect (303) to Google's enrollment URL."""

    def __init__(self):
        self.seen: list[str] = []
        self.server = make_server("127.0.0.1", 0, self._wsgi, threaded=True,
                                  ssl_context="adhoc")
        self.port = self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        self.seen.append(f"https://{request.host}{request.full_path.rstrip('?')}")
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [b"<!doctype html><title>Google</title><link rel=\"icon\" href=\"data:,\">"
                b"<h1>Enrolling</h1>"]


@pytest.fixture(scope="module")
def google_and_chromium(browser):
    """A Chromium whose enterprise.google.com is FakeGoogle (no request leaves the machine)."""
    google = FakeGoogle()
    google.thread.start()
    host = urlsplit(ENROLL_URL).hostname
    chromium = browser.browser_type.launch(
        executable_path=CHROMIUM, headless=True,
        args=CHROMIUM_ARGS + [f"--host-resolver-rules=MAP {host} 127.0.0.1:{google.port}"])
    yield google, chromium
    chromium.close()
    google.server.shutdown()


@pytest.fixture
def google(google_and_chromium):
    google, _chromium = google_and_chromium
    google.seen.clear()
    return google


@pytest.fixture
def phone(google_and_chromium):
    _google, chromium = google_and_chromium
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                                   ignore_https_errors=True)  # FakeGoogle's own certificate
    context.set_default_timeout(8000)
    page = context.new_page()
    yield page
    context.close()


def _signin_url(amapi, public_id) -> str:
    (enterprise,) = amapi.enterprises.values()
    (detail,) = [d for d in enterprise["signinDetails"] if d["tokenTag"] == public_id]
    return amapi.start_signin(detail["signinEnrollmentToken"], serial="R58NBROWSER1")


def test_sign_in_start_and_on_to_googles_enrollment_url(phone, google, portal, amapi, adp_qr,
                                                         artifacts):
    seen = google.seen
    url = _signin_url(amapi, adp_qr)
    phone.goto(url)
    assert phone.locator("h1").inner_text() == "Set up this device"
    phone.fill("input[name=username]", "lena")
    phone.fill("input[name=password]", "lena password 1")
    phone.click("button[type=submit]:has-text('Sign in')")
    phone.wait_for_selector("#ssp-start")
    assert "Lena Local" in phone.locator("h1").inner_text()
    phone.screenshot(path=artifacts / "ssp-adp-start.png", full_page=True)
    with phone.expect_navigation(url=GOOGLE):
        phone.click("button#start")
    assert phone.locator("h1").inner_text() == "Enrolling"
    (token,) = amapi.tokens.values()
    assert len(seen) == 1 and seen[0].startswith(ENROLL_URL + "?")
    assert parse_qs(urlsplit(seen[0]).query)["et"] == [token["value"]]
    assert token["oneTimeOnly"] is True
    # The device that follows it enrolls at Google, matched to the QR code and lena.
    device = amapi.enroll_from_url(seen[0], serial="R58NBROWSER1")
    assert f'"qr":"{adp_qr}"' in device["enrollmentTokenData"]
    assert '"user":"lena"' in device["enrollmentTokenData"]


def test_a_wrong_password_stays_and_cancel_ends_the_setup_at_google(phone, google, portal,
                                                                    amapi, adp_qr):
    seen = google.seen
    phone.goto(_signin_url(amapi, adp_qr))
    phone.fill("input[name=username]", "lena")
    phone.fill("input[name=password]", "not lena's password")
    phone.click("button[type=submit]:has-text('Sign in')")
    assert "The user name or the password is wrong." in phone.locator("#sign-in-error") \
        .inner_text()
    assert seen == [] and not amapi.tokens
    with phone.expect_navigation(url=GOOGLE):
        phone.click("#cancel-setup")
    assert seen == [ENROLL_INVALID_URL] and not amapi.tokens


def test_opened_in_a_browser_it_says_where_to_open_it(phone, portal, adp_qr):
    _app, url = portal
    phone.goto(f"{url}/ssp/?qr_id={adp_qr}")
    assert phone.locator("h1").inner_text() == \
        "Open this page from the device's setup (scan the QR code)"
    assert phone.locator("input[name=password]").count() == 0


def test_the_device_policy_pages_pass_axe(phone, google, portal, amapi, adp_qr):
    """The pages of this flow at 1280 and 360 px: sign-in with its Cancel, Start, Google's
    refusal with Try again, and the page for a browser outside the device's setup."""
    _app, url = portal
    problems = []
    phone.goto(_signin_url(amapi, adp_qr))
    audit_here(phone, "sign-in (Android Device Policy)", problems)
    phone.fill("input[name=username]", "lena")
    phone.fill("input[name=password]", "lena password 1")
    phone.click("button[type=submit]:has-text('Sign in')")
    phone.wait_for_selector("#ssp-start")
    audit_here(phone, "Start (Android Device Policy)", problems)
    amapi.fail(r"/enrollmentTokens$", 503, times=None)
    phone.click("button#start")
    phone.wait_for_selector("#try-again")
    assert "Google's service is not available right now" in phone.locator("h1").inner_text()
    audit_here(phone, "Google's refusal", problems)
    phone.goto(f"{url}/ssp/?qr_id={adp_qr}&provisioningInfo=edited/value")
    audit_here(phone, "an edited provisioningInfo", problems)
    assert not problems, "\n".join(problems)
    assert google.seen == [] and not amapi.tokens
