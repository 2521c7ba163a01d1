"""The audit log in a real browser at 1280 px: long values wrap (no sideways scrolling), the
actor filter matches by prefix as one types, From after To says so, Export CSV downloads."""
import csv
import io

import pytest
from playwright.sync_api import expect

from portal.accounts.admins import create_admin
from portal.audit.log import record
from portal.database import db
from tests.browser.conftest import _live_app, open_menu, sign_in
from tests.support.live import serving

pytestmark = pytest.mark.browser

ADMIN = ("audit-admin", "audit admin password 1")
LONG = "Very-Long-Actor-Name-Without-Any-Space-" * 6


@pytest.fixture(scope="module")
def server_url(tmp_path_factory):
    from flask_migrate import upgrade

    app = _live_app(tmp_path_factory.mktemp("audit-portal"))
    with app.app_context():
        upgrade()
        create_admin(ADMIN[0], "audit-admin@example.com", ADMIN[1])
        record("qr_code.create", actor_type="admin", actor=LONG, target="T" * 200,
               serial_number="S" * 64, reason="x" * 600, note=", ".join(["word"] * 80))
        for name in ("Helpdesk-Hanna", "helpdesk-hugo"):
            record("device.retire", actor_type="admin", actor=name, serial_number="R58N42")
        db.session.commit()
    with serving(app) as url:
        yield url


@pytest.fixture
def page(browser, server_url):
    context = browser.new_context(base_url=server_url, viewport={"width": 1280, "height": 800},
                                  accept_downloads=True)
    context.set_default_timeout(5000)
    page = context.new_page()
    page.goto("/admin/login")
    sign_in(page, *ADMIN)
    expect(page.get_by_role("heading", name="Pending")).to_be_visible()
    yield page
    context.close()


def test_the_audit_log_fits_1280_px_and_filters_by_prefix(page, artifacts):
    open_menu(page, "Admin", "Audit log")
    expect(page.get_by_role("heading", name="Audit log")).to_be_visible()

    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.screenshot(path=artifacts / "audit-log-1280x800.png", full_page=True)

    page.get_by_label("Actor (starts with)").fill("HELPDESK-H")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#audit-rows tr")).to_have_count(2)
    expect(page.get_by_role("textbox", name="Actor (starts with)")).to_have_value("HELPDESK-H")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.reader(io.StringIO(open(download.value.path(), encoding="utf-8").read())))
    assert sorted(row[5] for row in rows[1:]) == ["Helpdesk-Hanna", "helpdesk-hugo"]


def test_from_later_than_to_says_so(page):
    page.goto("/admin/audit")
    page.get_by_label("From").fill("2030-05-02")
    page.get_by_label("To", exact=True).fill("2030-05-01")
    page.get_by_role("button", name="Filter").click()

    expect(page.get_by_text("The To date must not be before the From date.")).to_be_visible()
    expect(page.get_by_text("No audit event matches these filters.")).to_be_visible()
