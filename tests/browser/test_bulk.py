"""Bulk provisioning in Chromium, by visible names: upload → preview → Confirm → progress →
the batch page → Revoke batch, at 1280 and 360 px; a broken file's problems with Confirm off."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIZARD_ADMIN, WIZARD_USER_PASSWORD, WizardServer
from tests.browser.conftest import signed_in_context, wizard_app
from tests.support.live import serving
from tests.support.pdf import page_texts

pytestmark = pytest.mark.browser

ROWS = 60
BLOCKED = re.compile(r"Refused to (execute|load)|Content Security Policy", re.IGNORECASE)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A portal of its own: a network profile, ROWS pupils, batches made in the background."""
    from portal.accounts.users import add_local_user
    from portal.settings import network_profiles
    root = tmp_path_factory.mktemp("bulk-portal")
    app = wizard_app(root)
    app.config["BULK_IN_BACKGROUND"] = True  # as in production: the page polls the progress
    with app.app_context():
        network_profiles.save(network_profiles.ProfileValues(
            name="School Wi-Fi", network="wifi", wifi_ssid="School", wifi_security="WPA",
            wifi_password="correct-horse"), actor="test")
        for index in range(ROWS):
            add_local_user(f"pupil{index:03}", f"pupil{index:03}@example.com",
                           "user-password-1")
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


@pytest.fixture(params=[1280, 360], ids=["1280px", "360px"])
def admin_page(request, browser, server):
    context, page = signed_in_context(browser, server, width=request.param, timeout=15000,
                                      accept_downloads=True)
    log = []
    page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    page.width = request.param
    yield page
    problems = [m for m in log if BLOCKED.search(m) or m.startswith(("error", "pageerror"))]
    assert [m for m in problems if "status of 422" not in m] == []  # 422: a refused preview
    context.close()


def _upload(page, name: str, text: str) -> None:
    page.get_by_label("CSV file").set_input_files(
        {"name": name, "mimeType": "text/csv", "buffer": text.encode()})
    page.get_by_label("Network profile").select_option(label="School Wi-Fi")
    page.get_by_role("button", name="Preview").click()


def test_upload_preview_confirm_progress_batch_and_revoke(admin_page, server, artifacts,
                                                          tmp_path):
    page, width = admin_page, admin_page.width
    page.get_by_role("link", name="Bulk provisioning").click()
    expect(page.get_by_role("heading", name="Bulk provisioning", exact=True)).to_be_visible()

    # A broken file: every problem named, Confirm disabled, nothing saved.
    _upload(page, "broken.csv", "username;usage_count\npupil000;0\nghost;1\npupil000;1\n")
    problems = page.locator("#bulk-problems")
    expect(problems).to_contain_text("Row 2, usage_count: Usage Count must be a whole number")
    expect(problems).to_contain_text("Row 3, username: Unknown user 'ghost'")
    expect(problems).to_contain_text("Row 4, username: Duplicate row")
    expect(page.get_by_role("button", name="Confirm")).to_be_disabled()
    assert server.scalar("SELECT count(*) FROM staged_batches") == 0

    # A clean file: the preview, then Confirm.
    name = f"class-{width}.csv"
    _upload(page, name, "username,send_to_user\n"
            + "".join(f"pupil{index:03},{'yes' if index % 2 else 'no'}\n"
                      for index in range(ROWS)))
    expect(page.locator("#bulk-summary")).to_contain_text(f"{ROWS} rows, 0 with problems.")
    page.screenshot(path=str(artifacts / f"bulk-preview-{width}.png"), full_page=True)
    page.get_by_role("button", name="Confirm").click()

    expect(page.get_by_role("heading", name=f"Batch {name}")).to_be_visible()
    # The page polls the progress until the batch is created, then links to its QR codes; a
    # batch made before the page was asked for lists them at once.
    done = page.get_by_role("status").filter(has_text=f"Created {ROWS} QR codes.")
    table = page.get_by_role("table", name="The batch's QR codes")
    expect(done.or_(table)).to_be_visible()
    if done.is_visible():
        page.get_by_role("link", name="Show the batch's QR codes").click()
    table = page.get_by_role("table")
    expect(table.get_by_role("row")).to_have_count(51)  # the header and the first page of 50
    expect(page.locator("#batch-totals")).to_contain_text(f"{ROWS} ({ROWS} active, 0 revoked)")
    expect(page.get_by_text("Page 1 of 2 (60 QR codes)")).to_be_visible()
    page.screenshot(path=str(artifacts / f"bulk-batch-{width}.png"), full_page=True)
    assert server.scalar("SELECT count(*) FROM outbox_messages m JOIN qr_codes q "
                         "ON q.id = m.qr_code_id JOIN batches b ON b.id = q.batch_id "
                         "WHERE b.name = ?", name) == ROWS // 2

    # Print batch: one PDF, a page per QR code with its pupil's name (each page decoded back
    # to its payload in tests/provisioning/test_printing.py).
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("link", name="Print batch").click()
    texts = page_texts(open(download.value.path(), "rb").read(), tmp_path)
    assert len(texts) == ROWS
    assert sorted(re.search(r"For (pupil\d{3})", text).group(1) for text in texts) == [
        f"pupil{index:03}" for index in range(ROWS)]

    page.get_by_role("link", name="Revoke batch").click()
    expect(page.get_by_role("heading", name=f"Revoke batch {name}?")).to_be_visible()
    page.get_by_role("button", name="Revoke batch").click()
    expect(page.get_by_text(f"{ROWS} QR codes of the batch revoked; {ROWS} licenses "
                            "returned to the pool.")).to_be_visible()
    expect(page.locator("#batch-totals")).to_contain_text(f"{ROWS} (0 active, {ROWS} revoked)")
    expect(page.get_by_role("link", name="Revoke batch")).to_have_count(0)

    page.get_by_role("link", name="Batches").first.click()
    expect(page.get_by_role("heading", name="Batches", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=name)).to_be_visible()
