"""Stale QR codes, Regenerate and Export in Chromium, by their visible names: the Pending list's
Stale badge after the Companion's checksum changed, Regenerate through its confirmation page,
and both JSON exports (the one with secrets after its confirmation page)."""
import json
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WizardServer, signed_in_context, wizard_app
from tests.browser.test_pending_actions import REVIEW_URL, _create_named_qr_code
from tests.provisioning.test_regenerate import change_companion, checksum_of
from tests.support.live import serving

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    return wizard_app(tmp_path_factory.mktemp("stale-portal"))


@pytest.fixture(scope="module")
def server(app):
    with serving(app) as url:
        yield WizardServer(url, "wizard-admin", "wizard admin password 1",
                           app.config["INSTANCE_PATH"] + "/portal.db", "alice password 1234")


@pytest.fixture(scope="module")
def page(browser, server):
    context, page = signed_in_context(browser, server, accept_downloads=True)
    yield page
    context.close()


def test_a_stale_qr_code_is_marked_and_regenerated_through_its_confirmation(page, server, app):
    old = _create_named_qr_code(page, "Warehouse scanners", usage="2")
    with app.app_context():
        change_companion(checksum=checksum_of("the rotated signing certificate"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Pending").click()
    row = page.get_by_role("row").filter(has_text="Warehouse scanners")
    expect(row.get_by_text("Stale", exact=True)).to_be_visible()
    expect(row).to_contain_text("Made with the Companion's old checksum; devices will refuse it.")
    row.get_by_role("link", name="Regenerate").click()
    expect(page.get_by_role("heading", name="Regenerate QR code Warehouse scanners?")) \
        .to_be_visible()
    expect(page.get_by_label("Mail the new QR code again")).not_to_be_checked()
    page.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_text(f"QR code {old} was revoked; this new QR code replaces it"))\
        .to_be_visible()
    new = REVIEW_URL.search(page.url)[1]
    assert new != old
    expect(page.locator("#qr-stale-note")).to_have_count(0)
    assert server.scalar("SELECT revoked_at IS NOT NULL FROM qr_codes WHERE public_id = ?", old)
    assert server.scalar("SELECT usage_count FROM qr_codes WHERE public_id = ?", new) == 2


def test_export_redacted_then_with_secrets_after_the_confirmation(page, server):
    public_id = _create_named_qr_code(page, "Kiosk export", usage="1")
    with page.expect_download() as download:
        page.get_by_role("link", name="JSON, secrets redacted").click()
    assert download.value.suggested_filename.endswith("-payload-secrets-redacted.json")
    redacted = json.load(open(download.value.path(), encoding="utf-8"))
    extras = redacted["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert extras["otp"].startswith("REDACTED") and extras["qr_id"] == public_id
    page.get_by_role("link", name="JSON with secrets…").click()
    expect(page.get_by_role("heading", name=re.compile("with its secrets"))).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("button", name="Export with secrets").click()
    full = json.load(open(download.value.path(), encoding="utf-8"))
    otp = full["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]["otp"]
    assert not otp.startswith("REDACTED") and len(otp) >= 16
    assert server.scalar("SELECT count(*) FROM audit_events WHERE action = ? AND target = ?",
                         "qr_code.export_payload", public_id) == 1
