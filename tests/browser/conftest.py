"""Headless Chromium (Debian's, driven by Playwright) against the portal on a loopback port.

The portal runs in another thread, which cannot see the rolled-back transaction of the `db`
fixture, so these tests use a migrated SQLite file of their own with committed rows.
"""
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect
from flask_migrate import upgrade

from config import TestConfig
from portal import create_app
from portal.accounts.admins import create_admin
from portal.accounts.users import add_local_user
from portal.database import db, utcnow
from portal.enrollment.models import QrCode
from portal.licensing.models import LicensePool
from portal.licensing.seats import set_total
from portal.settings.companion import seed_example_companion
from tests.support.live import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
FIGURES = {"total": 40, "used": 12, "reserved": 3, "remaining": 25}


@dataclass(frozen=True)
class LiveServer:
    url: str
    username: str
    password: str


HELPDESK = ("browser-helpdesk", "browser helpdesk password 1")  # a Helpdesk admin of live_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("live-portal")
    app = _live_app(root)
    admin = LiveServer(url="", username="browser-admin", password="browser admin password 1")
    with app.app_context():
        upgrade()
        create_admin(admin.username, "browser-admin@example.com", admin.password)
        create_admin(HELPDESK[0], "browser-helpdesk@example.com", HELPDESK[1], role="helpdesk")
        _seed(qr_codes=26)
    with serving(app) as url:
        yield LiveServer(url, admin.username, admin.password)


def _live_app(root: Path):
    config = type("LiveConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'portal.db'}", "INSTANCE_PATH": str(root)})
    return create_app(config)


def _seed(qr_codes: int) -> None:
    """License figures that differ from each other, and one QR code more than fits on a page."""
    db.session.execute(sa.update(LicensePool).where(LicensePool.id == 1).values(
        total=FIGURES["total"], used=FIGURES["used"], reserved=FIGURES["reserved"]))
    now = utcnow()
    for i in range(qr_codes):
        wifi = i % 3 == 0
        db.session.add(QrCode(
            public_id=f"BrowserQr{i:04d}", option="ssp", lang=("en", "de-CH", "fr")[i % 3],
            network="wifi" if wifi else "mobile", wifi_ssid="Campus-Guest" if wifi else None,
            wifi_security="NONE" if wifi else None, payload_enc="-", qr_version=19,
            created_at=now - timedelta(hours=i)))
    db.session.commit()


@pytest.fixture(scope="session")
def browser():
    if os.environ.get("PORTAL_SKIP_BROWSER") == "1":
        pytest.skip("PORTAL_SKIP_BROWSER=1 switches the browser tests off")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                  args=CHROMIUM_ARGS)
        except Exception as error:  # a missing browser must fail the run, never pass silently
            pytest.fail(f"Chromium did not start from {CHROMIUM} ({error}). Install it with "
                        "`apt-get install chromium fonts-liberation`, or set "
                        "PORTAL_SKIP_BROWSER=1 to skip the browser tests.")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(base_url=live_server.url,
                                  viewport={"width": 1280, "height": 800})
    context.set_default_timeout(5000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def console(page) -> list[str]:
    """Every console message and uncaught error of the page, as text."""
    messages = []
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@dataclass(frozen=True)
class WizardServer(LiveServer):
    """A live portal of its own for the QR-code wizard, whose QR codes change the figures."""
    database: Path
    user_password: str

    def scalar(self, sql: str, *params):
        """One value read straight from the server's committed SQLite database."""
        with closing(sqlite3.connect(self.database)) as connection:
            return connection.execute(sql, params).fetchone()[0]


WIZARD_LICENSES = 100


@pytest.fixture(scope="module")
def wizard_server(tmp_path_factory):
    """Example Companion, 100 licenses, the local user alice and an admin; nothing else."""
    root = tmp_path_factory.mktemp("wizard-portal")
    app = wizard_app(root)
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


WIZARD_ADMIN = ("wizard-admin", "wizard admin password 1")
WIZARD_USER_PASSWORD = "alice password 1234"


def wizard_app(root: Path):
    """The wizard server's app, migrated and seeded, not yet serving."""
    app = _live_app(root)
    with app.app_context():
        upgrade()
        create_admin(WIZARD_ADMIN[0], "wizard-admin@example.com", WIZARD_ADMIN[1])
        seed_example_companion()
        set_total(WIZARD_LICENSES)
        add_local_user("alice", "alice@example.com", WIZARD_USER_PASSWORD,
                       display_name="Alice Smith")
    return app


def sign_in(page, username, password):
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def signed_in_context(browser, server, *, timeout=5000, width=1280, height=800, **options):
    """A browser context on `server`, signed in as its admin (as a person does, through the
    sign-in page), and the page that did it."""
    context = browser.new_context(base_url=server.url,
                                  viewport={"width": width, "height": height}, **options)
    context.set_default_timeout(timeout)
    page = context.new_page()
    page.goto("/admin/login")
    sign_in(page, server.username, server.password)
    if options.get("java_script_enabled", True):
        expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    return context, page


def follow(page, link, path: str | None = None) -> None:
    """Click a link of the console (boosted: htmx fetches the page at `path`, by default the
    link's own, and swaps it in) and wait until that answer has come in whole. A click on what
    the page shows meanwhile could be overtaken by the answer still out, which would then
    replace what it brought."""
    path = path or urlsplit(link.get_attribute("href")).path

    def answered(response) -> bool:
        return urlsplit(response.url).path == path

    with page.expect_response(answered) as answer:
        link.click()
    answer.value.finished()


def open_menu(page, section: str, name: str) -> None:
    """Go to a console page as a person does: its section in the menu, then the page (only the
    current section lists its pages; on a phone, after opening the section's fold)."""
    nav = page.get_by_role("navigation", name="Main")
    follow(page, nav.get_by_role("link", name=section, exact=True).first)
    expect(nav.locator("li.active > a")).to_have_text(section)
    fold = nav.locator("li.active summary")
    if fold.is_visible():  # on a phone a long section folds its pages (a <details>)
        fold.click()
    nav.get_by_role("link", name=name, exact=True).last.click()
