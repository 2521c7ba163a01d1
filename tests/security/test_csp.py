"""Every HTML page the portal serves (console, Self Service Portal, error pages) carries a
Content-Security-Policy under which no inline or eval'd script can run. That the browser then
really refuses an injected inline script is shown in tests/browser/test_csp_enforced.py."""
import pytest
from werkzeug.wrappers import Response

from portal.enrollment.pending import revoke_qr_code
from tests.conftest import csrf_token_from, sign_in
from tests.security.conftest import end_user_client, is_admin_rule, url_for_rule

# Sources under which an injected script could run: inline code, eval, or any other origin.
UNSAFE_SOURCES = {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "'wasm-unsafe-eval'",
                  "'strict-dynamic'", "*", "data:", "blob:", "filesystem:", "http:", "https:"}


@pytest.fixture
def config_overrides():
    return {"ADMIN_LOGIN_LIMIT": "2 per minute", "SSP_SIGN_IN_LIMIT": "2 per minute"}


def script_policy_problems(response) -> list[str]:
    headers = response.headers.getlist("Content-Security-Policy")
    if not headers:
        return ["no Content-Security-Policy"]
    problems = []
    for header in headers:
        directives = {name.lower(): values for name, *values in
                      (part.split() for part in header.split(";") if part.strip())}
        # script-src falls back to default-src; -elem and -attr refine it when present.
        effective = {"script-src": directives.get("script-src", directives.get("default-src")),
                     "script-src-elem": directives.get("script-src-elem", []),
                     "script-src-attr": directives.get("script-src-attr", [])}
        if effective["script-src"] is None:
            problems.append("neither script-src nor default-src")
        for name, sources in effective.items():
            problems += [f"{name} allows {source}" for source in sources or []
                         if source.lower() in UNSAFE_SOURCES or "://" in source]
    return problems


class Pages:
    """Every response of the walk, so the test can insist on each HTML one."""

    def __init__(self):
        self.seen = []

    def __call__(self, client, url, method="GET", **kwargs):
        response = client.open(url, method=method, **kwargs)
        self.seen.append((f"{method} {url}", response))
        return response

    def html(self):
        return [(name, r) for name, r in self.seen if r.mimetype == "text/html"]


def _boom():
    raise RuntimeError("an unexpected failure")


def test_every_html_page_forbids_inline_and_eval_scripts(app, db, make_admin, make_qr_code,
                                                         make_user, known):
    app.add_url_rule("/_test/boom", "boom", _boom)  # an unhandled error: the 500 page
    fetch, admin = Pages(), app.test_client()
    end_user = end_user_client(app, make_qr_code, make_user)
    revoked = make_qr_code("ssp")
    revoke_qr_code(revoked, revoked_by=None)

    # Anonymous: the sign-in page, its refusals, and the error pages.
    login_page = fetch(admin, "/admin/login").get_data(as_text=True)
    for _ in range(3):  # wrong twice, then throttled (429)
        fetch(admin, "/admin/login", "POST", data={
            "csrf_token": csrf_token_from(login_page), "username": "x", "password": "wrong"})
    fetch(admin, "/admin/login", "POST", data={"username": "x"})  # no CSRF token: 400
    fetch(admin, "/admin/no-such-page")
    fetch(admin, "/_test/boom")
    # The console, every page of it, as a signed-in admin; plus View OTP and a refused wizard.
    sign_in(admin, make_admin().username)
    for rule in app.url_map.iter_rules():
        if is_admin_rule(rule) and "GET" in rule.methods:
            fetch(admin, url_for_rule(app, rule, known))
    token = csrf_token_from(fetch(admin, "/admin/devices/pending/new").get_data(as_text=True))
    fetch(admin, f"/admin/qr-codes/{known['public_id']}/otp", "POST",
          data={"csrf_token": token})
    fetch(admin, "/admin/devices/pending", "POST", data={"csrf_token": token, "option": "auto"})
    fetch(admin, "/admin/logout")  # GET: 405
    # The Self Service Portal: its pages, the enrollment link, and its friendly errors.
    qr_id = end_user.qr_id
    for url in (f"/ssp/?qr_id={qr_id}", f"/ssp/start?qr_id={qr_id}", "/ssp/?qr_id=nope",
                f"/ssp/?qr_id={revoked.public_id}", "/ssp/azure/callback"):
        fetch(end_user, url)
    fetch(end_user, f"/ssp/start?qr_id={qr_id}", "POST",
          headers={"X-CSRFToken": end_user.csrf_token})
    fetch(end_user, f"/ssp/sign-out?qr_id={qr_id}", "POST")  # no CSRF token: 400
    anonymous_phone = app.test_client()
    for _ in range(3):
        fetch(anonymous_phone, f"/ssp/sign-in?qr_id={qr_id}", "POST",
              headers={"X-CSRFToken": end_user.csrf_token},
              data={"username": "x", "password": "wrong", "method": "local"})

    pages = fetch.html()
    statuses = {response.status_code for _, response in pages}
    assert {200, 400, 403, 404, 405, 422, 429, 500} <= statuses, statuses
    assert any(name.startswith("GET /ssp") for name, _ in pages)
    assert any("enrollment-link" in r.get_data(as_text=True) for _, r in pages)
    problems = {name: script_policy_problems(r) for name, r in pages if script_policy_problems(r)}
    assert problems == {}


@pytest.mark.parametrize("policy, problems", [
    ("default-src 'self'; script-src 'self'", []),
    ("default-src 'self'", []),
    ("default-src 'self'; script-src 'self' 'unsafe-inline'",
     ["script-src allows 'unsafe-inline'"]),
    ("default-src 'self' 'unsafe-eval'", ["script-src allows 'unsafe-eval'"]),
    ("script-src 'self'; script-src-attr 'unsafe-inline'",
     ["script-src-attr allows 'unsafe-inline'"]),
    ("script-src 'self' https://cdn.example", ["script-src allows https://cdn.example"]),
    ("img-src 'self'", ["neither script-src nor default-src"]),
])
def test_the_policy_check_catches_what_would_let_a_script_in(policy, problems):
    assert script_policy_problems(Response(headers={"Content-Security-Policy": policy})) == \
        problems
    assert script_policy_problems(Response()) == ["no Content-Security-Policy"]


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/openapi.json", "/static/css/portal.css"])
def test_other_responses_carry_the_same_policy(client, path):
    """A JSON or static response opened directly in a browser is a page too."""
    response = client.get(path)

    assert script_policy_problems(response) == []
    response.close()
