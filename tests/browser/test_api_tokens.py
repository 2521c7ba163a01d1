"""Admin → API tokens in Chromium, by visible names, at 1280 and 360 px: create a token, see it
once (and use it), then revoke it after confirming; the API refuses it from then on."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WIZARD_ADMIN, WIZARD_USER_PASSWORD, WizardServer
from tests.browser.conftest import signed_in_context, wizard_app
from tests.support.live import serving

pytestmark = pytest.mark.browser

BLOCKED = re.compile(r"Refused to (execute|load)|Content Security Policy", re.IGNORECASE)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("api-tokens-portal")
    with serving(wizard_app(root)) as url:
        yield WizardServer(url, *WIZARD_ADMIN, root / "portal.db", WIZARD_USER_PASSWORD)


@pytest.mark.parametrize("width", [1280, 360])
def test_create_a_token_see_it_once_and_revoke_it(browser, server, artifacts, width):
    context, page = signed_in_context(browser, server, width=width, height=900)
    log = []
    page.on("console", lambda message: log.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: log.append(f"pageerror: {error}"))
    page.on("dialog", lambda dialog: dialog.accept())  # hx-confirm
    name = f"HR system {width}"

    page.goto("/admin/settings/api-tokens")
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    page.get_by_label("Name").fill(name)
    page.get_by_label("Provision: everything").check()
    page.get_by_label("Expires", exact=True).select_option(label="In 30 days")
    page.get_by_role("button", name="Create token").click()

    expect(page.get_by_role("heading", name=f"API token {name} created")).to_be_visible()
    expect(page.get_by_text("Copy the token now: it is not shown again.")).to_be_visible()
    field = page.get_by_label(re.compile(r"^Token \(Provision"))
    token = field.input_value()
    assert re.fullmatch(r"qrp_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", token)
    box = field.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= width  # whole, at any width
    page.screenshot(path=str(artifacts / f"api-token-created-{width}.png"), full_page=True)
    api = context.request
    licenses = f"{server.url}/api/admin/v1/licenses"
    assert api.get(licenses, headers={"Authorization": f"Bearer {token}"}).status == 200

    page.get_by_role("link", name="Done").click()
    row = page.get_by_role("row", name=re.compile(name))
    expect(row).to_contain_text("Provision")
    expect(row).to_contain_text("Active")
    assert token not in page.content()  # shown once: never again
    page.screenshot(path=str(artifacts / f"api-tokens-{width}.png"), full_page=True)

    row.get_by_role("button", name=f"Revoke {name}").click()
    expect(row).to_contain_text("Revoked")
    expect(page.get_by_text(f"The API token {name} is revoked.")).to_be_visible()
    refused = api.get(licenses, headers={"Authorization": f"Bearer {token}"})
    assert refused.status == 401 and refused.json()["error"]["code"] == "invalid_token"
    problems = [m for m in log if BLOCKED.search(m) or m.startswith(("error", "pageerror"))]
    assert problems == []
    context.close()


def test_revoke_without_javascript_asks_on_a_page_first(browser, server):
    context, page = signed_in_context(browser, server, java_script_enabled=False)
    page.goto("/admin/settings/api-tokens")
    page.get_by_label("Name").fill("No-JS script")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("Copy the token now: it is not shown again.")).to_be_visible()
    page.get_by_role("link", name="Done").click()
    page.get_by_role("row", name=re.compile("No-JS script")).get_by_role(
        "button", name="Revoke No-JS script").click()
    expect(page.get_by_role("heading", name="Revoke the API token No-JS script?")).to_be_visible()
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("row", name=re.compile("No-JS script"))).to_contain_text("Revoked")
    context.close()
