"""Admin → Webhooks in Chromium, by visible names, at 1280 and 360 px: add an endpoint (the
secret shown once), see a delivery to a real HTTPS receiver with its answer, Send again (the
same webhook-id arrives a second time), Rotate secret (the old and the new secret both verify)."""
import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIZARD_ADMIN, WIZARD_USER_PASSWORD, WizardServer
from tests.browser.conftest import signed_in_context, wizard_app
from tests.support.certs import make_certs
from tests.support.live import serving
from tests.webhooks.receiver import Receiver

pytestmark = pytest.mark.browser

BLOCKED = re.compile(r"Refused to (execute|load)|Content Security Policy", re.IGNORECASE)


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    server = Receiver(make_certs(tmp_path_factory.mktemp("hook-tls"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory, receiver):
    root = tmp_path_factory.mktemp("webhooks-portal")
    app = wizard_app(root)
    app.config.update(TRUSTED_CA_FILE=receiver.ca_file, WEBHOOK_SEND_AFTER_COMMIT=True)
    with serving(app) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD), app


def _page(browser, server, width):
    context, page = signed_in_context(browser, server, width=width)
    log = []
    page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    return context, page, log


def _problems(log):
    return [m for m in log if (BLOCKED.search(m) or m.startswith(("error", "pageerror")))
            and "status of 422" not in m]


def _revoke_a_qr_code(app):
    """A domain event, as the console's Revoke records it (the worker's side runs here)."""
    from portal.accounts.models import PortalUser
    from portal.database import db
    from portal.enrollment.pending import revoke_qr_code
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    with app.app_context():
        user = db.session.query(PortalUser).filter_by(username="alice").one()
        qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile", user=user,
                                          usage_count=1, name="Hook test"),
                            created_by=None, server_url="https://portal.test")
        revoke_qr_code(qr, revoked_by=None)
        db.session.remove()


def _deliver(app):
    from portal.database import db
    from portal.webhooks.delivery import deliver_due
    with app.app_context():
        counts = deliver_due()
        db.session.remove()
    return counts


@pytest.mark.parametrize("width", [1280, 360])
def test_add_an_endpoint_see_a_delivery_and_send_it_again(browser, server, receiver, artifacts,
                                                          width):
    server, app = server
    context, page, log = _page(browser, server, width)
    page.goto("/admin/webhooks")
    expect(page.get_by_role("heading", name="Webhooks", exact=True)).to_be_visible()

    # refused beside its field, nothing lost
    url = receiver.url + f"?w={width}"
    page.get_by_label("URL").fill(url.replace("https://", "http://"))
    page.get_by_label("Description (optional)").fill(f"Asset system {width}")
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.locator("#url-error")).to_contain_text("only over https://")
    expect(page.locator("#events-error")).to_contain_text("Choose at least one event")
    expect(page.get_by_label("Description (optional)")).to_have_value(f"Asset system {width}")

    page.get_by_label("URL").fill(url)
    page.get_by_label("qr_code.revoked").check()
    page.get_by_role("button", name="Add endpoint").click()
    secret = page.locator("#webhook-secret-value")
    expect(secret).to_have_text(re.compile(r"^whsec_"))
    receiver.secret = secret.inner_text()
    endpoints = page.get_by_role("table", name="Endpoints")
    expect(endpoints.get_by_role("row").filter(has_text=url)).to_contain_text("Enabled")
    page.screenshot(path=artifacts / f"webhooks-added-{width}.png", full_page=True,
                    caret="initial")

    page.reload()
    expect(page.locator("#webhook-secret-value")).to_have_count(0)       # shown once
    assert receiver.secret not in page.content()

    receiver.fail_next = 1
    _revoke_a_qr_code(app)
    assert _deliver(app).retrying == 1                          # 500 first
    page.reload()
    deliveries = page.get_by_role("table", name="Last deliveries")
    row = deliveries.get_by_role("row").filter(has_text=url).first
    expect(row).to_contain_text("qr_code.revoked")
    expect(row).to_contain_text("Queued")
    expect(row).to_contain_text("500")
    expect(row).to_contain_text("HTTP 500")

    from datetime import timedelta

    from portal.database import utcnow
    from portal.webhooks.delivery import deliver_due
    with app.app_context():
        assert deliver_due(now=utcnow() + timedelta(hours=1)).delivered == 1
    page.reload()
    row = page.get_by_role("table", name="Last deliveries").get_by_role("row").filter(
        has_text=url).first
    expect(row).to_contain_text("Delivered")
    expect(row).to_contain_text('{"ok": true}')
    page.screenshot(path=artifacts / f"webhooks-deliveries-{width}.png", full_page=True,
                    caret="initial")

    before = len(receiver.requests)
    event_id = receiver.requests[-1].webhook_id
    row.get_by_role("button", name=re.compile("Send delivery .* again")).click()
    expect(page.locator("#flash")).to_contain_text(
        "is queued again")
    deadline = time.monotonic() + 20          # delivered right after the request (a thread)
    while len(receiver.requests) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert receiver.requests[-1].webhook_id == event_id and receiver.requests[-1].verified
    assert list(receiver.processed).count(event_id) == 1

    # Rotate secret: confirmed first; the new secret shown once; the old one still signs
    old_secret = receiver.secret
    page.get_by_role("button", name=f"Rotate the secret of {url}").click()
    expect(page.get_by_role("heading", name=f"Rotate the signing secret of {url}?")).to_be_visible()
    expect(page.get_by_label(re.compile("Keep signing with the old secret"))).to_be_checked()
    page.screenshot(path=artifacts / f"webhooks-rotate-{width}.png", full_page=True, caret="initial")
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.locator("#webhook-secret-overlap")).to_contain_text("two signatures")
    new_secret = page.locator("#webhook-secret-value").inner_text()
    assert new_secret.startswith("whsec_") and new_secret != old_secret
    expect(page.get_by_role("table", name="Endpoints").get_by_role("row").filter(
        has_text=url)).to_contain_text("Old secret signs too until")
    _revoke_a_qr_code(app)
    assert _deliver(app).delivered == 1           # the receiver still verifies with the old one
    receiver.secret = new_secret
    _revoke_a_qr_code(app)
    assert _deliver(app).delivered == 1           # and with the new one

    page.get_by_role("table", name="Endpoints").get_by_role("button", name=f"Delete {url}").click()
    expect(page.locator("#flash")).to_contain_text(f"The endpoint {url} is deleted.")
    expect(page.get_by_text("No deliveries yet.")).to_be_visible()
    assert _problems(log) == []
    context.close()
