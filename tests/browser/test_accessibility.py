"""axe-core in Chromium on every console and Self Service Portal page, at 1280 px and at a
phone's 360 px: no serious or critical violation. The console's pages come from the URL map
(with real ids, as in the security walk), so a page added later is audited by itself, or must be
listed in NOT_PAGES with the reason it is not a page."""
from dataclasses import dataclass, replace

import pyotp
import pytest
from axe_playwright_python.base import AXE_SCRIPT  # axe-core's axe.min.js, pinned with it
from playwright.sync_api import expect

from portal.accounts.two_step import new_secret, turn_on
from portal.enrollment.pending import revoke_qr_code
from tests.browser.conftest import (HELPDESK, WIZARD_ADMIN, sign_in, signed_in_context,
                                    wizard_app)
from tests.conftest import admin_factory, qr_code_factory, user_factory
from tests.security.conftest import is_admin_rule, known_objects, url_for_rule
from tests.support.live import serving

pytestmark = pytest.mark.browser

WIDTHS = (1280, 360)
SEVERE = ("serious", "critical")
# Admin GET endpoints that are not pages a person reads, and why each is not audited here.
NOT_PAGES = {
    "admin.qr_code_image": "the QR code as PNG or SVG (its <img> is audited on the review page)",
    "admin.export_devices": "a CSV download",
    "admin.export_audit_log": "a CSV download",
    "admin.search_users": "the wizard's user suggestions, a fragment swapped into the wizard",
    "admin.qr_code_payload": "a JSON download (Export on the review page, which is audited)",
    "admin.qr_code_version": "the wizard's live QR version, a fragment swapped into the wizard",
    "admin.bulk_template": "a CSV download (the bulk provisioning template)",
    "admin.batch_progress": "a batch's progress, a fragment the batch page polls",
    "admin.print_qr_code_pdf": "a PDF download (Download PDF on a QR code's page)",
    "admin.print_batch": "a PDF download (Print batch on the batch page)",
}
# Pages only someone without a console session sees (audited in their own context).
ANONYMOUS_PAGES = {"admin.login", "admin.sign_in_code"}
TWO_STEP_ADMIN = ("audit-two-step", "audit two step password 1")
END_USER = ("alice", "alice password 1234")


@dataclass(frozen=True)
class AuditServer:
    url: str
    username: str
    password: str
    known: dict
    urls: dict  # admin endpoint -> the URL audited
    ssp_qr: str
    revoked_qr: str


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The wizard's portal plus the security walk's objects (a QR with its pending enrollment,
    device and mail, a custom localization, ...), a Helpdesk and a two-step admin, a de-CH Self
    Service Portal QR and a revoked one."""
    app = wizard_app(tmp_path_factory.mktemp("a11y-portal"))
    with app.app_context():
        make_admin = admin_factory()
        make_qr_code = qr_code_factory(user_factory())
        known = known_objects(make_admin, make_qr_code)
        make_admin(HELPDESK[0], HELPDESK[1], role="helpdesk")
        secret = new_secret()
        turn_on(make_admin(*TWO_STEP_ADMIN), secret, pyotp.TOTP(secret).now())
        ssp_qr = make_qr_code("ssp", lang="de-CH").public_id
        revoked = make_qr_code("ssp", network="mobile")
        revoke_qr_code(revoked, revoked_by=None)
        urls = {rule.endpoint: url_for_rule(app, rule, known)
                for rule in app.url_map.iter_rules()
                if is_admin_rule(rule) and "GET" in rule.methods}
    with serving(app) as url:
        yield AuditServer(url, *WIZARD_ADMIN, known, urls, ssp_qr, revoked.public_id)


def severe_violations(page) -> list[str]:
    """axe-core's serious and critical violations of the page as it is now, one line each."""
    if not page.evaluate("() => typeof window.axe === 'object'"):  # once per page load
        page.evaluate(AXE_SCRIPT)
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + "; ".join(" ".join(node["target"]) for node in v["nodes"][:5])
            for v in results["violations"] if v["impact"] in SEVERE]


def audit(page, url: str, problems: list[str], *, status=200) -> None:
    """Open url and audit it at each width; what axe finds goes into problems. A page that
    does not answer `status` is a problem too: the walk would audit an error page instead
    (an id missing from known_objects, say)."""
    response = page.goto(url)
    if response.status != status:
        problems.append(f"{url} answered {response.status}, not {status}: is its id in "
                        "tests/security/conftest.py known_objects?")
    audit_here(page, url, problems)


def audit_here(page, what: str, problems: list[str]) -> None:
    """Audit the page the test has reached (after a form, say) at each width."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        problems += [f"{what} at {width} px: {line}" for line in severe_violations(page)]
    page.set_viewport_size({"width": WIDTHS[0], "height": 800})


def test_not_pages_are_real_endpoints(server):
    assert set(NOT_PAGES) | ANONYMOUS_PAGES <= set(server.urls), \
        (set(NOT_PAGES) | ANONYMOUS_PAGES) - set(server.urls)


def test_every_console_page_passes_axe_as_administrator(browser, server):
    context, page = signed_in_context(browser, server)
    problems = []
    for endpoint, url in sorted(server.urls.items()):
        if endpoint not in NOT_PAGES and endpoint not in ANONYMOUS_PAGES:
            audit(page, url, problems)
    audit(page, "/admin/qr-codes/NoSuchQrCode", problems, status=404)
    context.close()
    assert not problems, "\n".join(problems)


def test_the_helpdesk_console_and_its_refusal_pass_axe(browser, server):
    helpdesk = replace(server, username=HELPDESK[0], password=HELPDESK[1])
    context, page = signed_in_context(browser, helpdesk)
    problems = []
    audit(page, server.urls["admin.pending"], problems)
    audit(page, server.urls["admin.companion_settings"], problems, status=403)
    context.close()
    assert not problems, "\n".join(problems)


def test_the_sign_in_pages_pass_axe(browser, server):
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    problems = []
    audit(page, server.urls["admin.login"], problems)
    page.get_by_label("User name").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".error, .flash-error, [role=alert]").first).to_be_visible()
    audit_here(page, "refused sign-in", problems)
    page.goto(server.urls["admin.login"])
    sign_in(page, *TWO_STEP_ADMIN)
    expect(page).to_have_url(f"{server.url}{server.urls['admin.sign_in_code']}")
    audit_here(page, "the two-step code page", problems)
    context.close()
    assert not problems, "\n".join(problems)


def test_every_self_service_portal_page_passes_axe(browser, server):
    """In German (the QR is de-CH): sign-in, a refused sign-in, Start, the enrollment link and
    the error pages."""
    context = browser.new_context(base_url=server.url)
    page = context.new_page()
    problems = []
    audit(page, f"/ssp/?qr_id={server.ssp_qr}", problems)
    _ssp_sign_in(page, END_USER[0], "wrong password")
    expect(page.locator("#sign-in-error")).to_be_visible()
    audit_here(page, "refused sign-in", problems)
    _ssp_sign_in(page, *END_USER)
    expect(page.locator("#ssp-start")).to_be_visible()
    audit_here(page, "Start", problems)
    page.locator("#start").click()
    expect(page.locator("#enrollment-link")).to_be_visible()
    audit_here(page, "enrollment link", problems)
    audit(page, "/ssp/?qr_id=NoSuchQrCode", problems, status=404)
    audit(page, f"/ssp/?qr_id={server.revoked_qr}", problems, status=403)
    audit(page, f"/ssp/azure/callback?qr_id={server.ssp_qr}", problems, status=400)
    context.close()
    assert not problems, "\n".join(problems)


def _ssp_sign_in(page, username, password):
    page.locator("#username").fill(username)
    page.locator("#password").fill(password)
    page.locator("#ssp-sign-in button[type=submit]").click()


FORM_PAGES = ("/admin/settings/", "/admin/account/", "/admin/people/", "/admin/devices/pending/new")


def test_every_hint_is_read_with_its_field(browser, server):
    """On the wizard and every settings, account and people page: a field's hint is part of its
    control's accessible description (as Chromium computes it), so a screen reader reads it."""
    context, page = signed_in_context(browser, server)
    checked, problems = 0, []
    for url in sorted(u for u in server.urls.values() if u.startswith(FORM_PAGES)):
        page.goto(url)
        for control_id, hint in page.evaluate("""() => [...document.querySelectorAll('.field')]
            .filter(f => f.querySelector(':scope > .hint:not(.htmx-indicator)'))
            .flatMap(f => [...f.querySelectorAll('input:not([type=hidden]), select, textarea')]
              .map(c => [c.id, f.querySelector(':scope > .hint:not(.htmx-indicator)').textContent.trim()]))"""):
            checked += 1
            description = page.locator(f"[id='{control_id}']").evaluate(
                "c => (c.getAttribute('aria-describedby') || '').split(' ')"
                ".map(id => document.getElementById(id)?.textContent.trim() || '').join(' ')")
            if hint not in description:
                problems.append(f"{url} #{control_id}: hint not in its description")
    context.close()
    assert checked > 20  # the walk found the hints at all
    assert not problems, "\n".join(problems)


def test_the_wizard_shows_the_fallback_note_only_for_an_untranslated_localization(
        browser, server, artifacts):
    context, page = signed_in_context(browser, server)
    page.goto(server.urls["admin.new_qr_code"])
    localization, note = page.get_by_label("Localization"), page.locator("#lang-fallback-note")
    expect(note).to_be_hidden()
    localization.select_option(label="Français (Canada) (fr-CA) · pages and mail in English")
    expect(note).to_be_visible()
    expect(note).to_contain_text("are in English")
    page.locator("#step-localization").screenshot(path=artifacts / "wizard-fallback-note.png")
    localization.select_option(value="de-CH")
    expect(note).to_be_hidden()
    context.close()
