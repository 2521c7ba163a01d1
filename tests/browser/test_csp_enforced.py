"""In Chromium the Content-Security-Policy really stops an injected script. The pages are the
portal's own, served with their own headers; only their body is altered on the way, as a stored
cross-site-scripting flaw would alter it."""
import pytest

pytestmark = pytest.mark.browser

INJECTED = ('<script>window.injectedRan = true;</script>'
            '<img id="injected" src="/no-such-image.png" onerror="window.handlerRan = true">')

# Added through the DevTools protocol, which the page's policy does not govern.
RECORD_VIOLATIONS = """
window.violations = [];
document.addEventListener('securitypolicyviolation',
    (event) => window.violations.push(event.effectiveDirective + ' ' + event.blockedURI));
"""


@pytest.fixture
def injected(browser, live_server):
    """A page whose served HTML gets INJECTED before </body>; yields (page, console, headers)."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(5000)
    context.add_init_script(RECORD_VIOLATIONS)
    served = {}

    def inject(route):
        response = route.fetch()
        served.update(response.headers)
        route.fulfill(response=response,
                      body=response.text().replace("</body>", INJECTED + "</body>"))

    context.route(lambda url: "/admin/login" in url or "/ssp/" in url, inject)
    page = context.new_page()
    console = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield page, console, served
    context.close()


@pytest.mark.parametrize("path", ["/admin/login", "/ssp/?qr_id=BrowserQr0000"])
def test_injected_inline_script_and_handler_do_not_run(injected, path):
    page, console, served = injected

    page.goto(path, wait_until="load")
    page.wait_for_function("document.getElementById('injected').complete")

    assert "script-src 'self'" in served["content-security-policy"]
    assert page.evaluate("window.injectedRan") is None
    assert page.evaluate("window.handlerRan") is None
    violations = page.evaluate("window.violations")
    assert "script-src-elem inline" in violations, violations
    assert "script-src-attr inline" in violations, violations
    assert any("inline script" in line and "Content Security Policy" in line
               and "blocked" in line for line in console), console


def test_the_pages_own_script_still_runs(injected):
    """The control: the policy blocks what was injected, not the portal's own htmx."""
    page, _, _ = injected

    page.goto("/admin/login", wait_until="load")

    assert page.evaluate("typeof window.htmx") == "object"
    assert page.evaluate("window.injectedRan") is None
