"""Security headers, the vendored htmx, and markup that the Content-Security-Policy allows."""
from html.parser import HTMLParser
from pathlib import Path

import pytest

from portal.enrollment.models import QrCode
from tests.conftest import sign_in

HTMX_URL = "/static/vendor/htmx-2.0.11.min.js"


def _policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no CSP on {response.request.path}"
    directives = (part.split() for part in header.split(";") if part.strip())
    return {name.lower(): values for name, *values in directives}


class _Markup(HTMLParser):
    """What in a page would need a CSP exception: inline code, inline styles, foreign sources."""

    def __init__(self, html: str):
        super().__init__()
        self.script_srcs, self.stylesheets, self.blocked = [], [], []
        self._in_script = False
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.script_srcs.append(attrs.get("src"))
            if not attrs.get("src"):
                self.blocked.append("inline <script>")
        if tag == "style":
            self.blocked.append("<style> element")
        if tag == "link" and attrs.get("rel") == "stylesheet":
            self.stylesheets.append(attrs.get("href"))
        for name, value in attrs.items():
            if name == "style":
                self.blocked.append(f"style= on <{tag}>")
            elif name.startswith(("on", "hx-on")):
                self.blocked.append(f"{name}= on <{tag}>")
            elif name in ("href", "src", "action") and (value or "").lower().startswith(
                    "javascript:"):
                self.blocked.append(f"javascript: URL on <{tag}>")


def _add_qr_codes(db, count: int) -> None:
    db.session.add_all(QrCode(public_id=f"csp-test-{i:04d}", option="ssp", lang="en",
                              network="mobile", payload_enc="-", qr_version=1)
                       for i in range(count))
    db.session.commit()


def _page(name: str, client, db, make_admin) -> str:
    if name == "sign-in":
        return client.get("/admin/login").get_data(as_text=True)
    if name == "sign-in refused":
        return sign_in(client, "nobody", password="wrong-password-1").get_data(as_text=True)
    if name == "csrf error":
        client.get("/admin/login")
        return client.post("/admin/login", data={"username": "x"}).get_data(as_text=True)
    if name == "not found":
        return client.get("/admin/no-such-page").get_data(as_text=True)
    sign_in(client, make_admin().username)
    if name == "pending with rows":
        _add_qr_codes(db, 26)  # one more than a page, so the pagination renders too
        html = client.get("/admin/devices/pending").get_data(as_text=True)
        assert 'id="qr-code-rows"' in html and "Page 1 of 2" in html
        return html
    if name == "license figures fragment":
        return client.get("/admin/devices/licenses",
                          headers={"HX-Request": "true"}).get_data(as_text=True)
    raise AssertionError(name)


PAGES = ["sign-in", "sign-in refused", "csrf error", "not found", "pending with rows",
         "license figures fragment"]


@pytest.mark.parametrize("path", ["/admin/login", "/admin/no-such-page", "/healthz",
                                  "/static/css/portal.css", HTMX_URL])
def test_csp_allows_only_our_own_scripts(client, path):
    response = client.get(path)
    policy = _policy(response)

    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    for name, values in policy.items():
        if name.startswith("script-src"):
            assert values == ["'self'"], (name, values)
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    response.close()


def test_signed_in_page_has_the_same_csp(admin_client):
    assert _policy(admin_client.get("/admin/devices/pending"))["script-src"] == ["'self'"]


@pytest.mark.parametrize("path", ["/admin/login", "/healthz", "/static/css/portal.css"])
def test_browser_hardening_headers_are_set(client, path):
    response = client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] in {
        "no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin"}
    response.close()


def test_admin_pages_are_not_stored_but_static_files_may_be(admin_client):
    page = admin_client.get("/admin/devices/pending")
    css = admin_client.get("/static/css/portal.css")

    assert "no-store" in page.headers["Cache-Control"]
    assert "no-store" not in css.headers.get("Cache-Control", "")
    css.close()


def test_pages_vary_on_hx_request(admin_client):
    for path in ("/admin/login", "/admin/devices/pending", "/admin/devices/licenses"):
        response = admin_client.get(path)

        assert response.status_code == 200, path
        assert "HX-Request" in response.vary, path


def test_page_loads_htmx_from_our_static_folder_only(client):
    markup = _Markup(client.get("/admin/login").get_data(as_text=True))

    assert HTMX_URL in markup.script_srcs
    foreign = [src for src in markup.script_srcs + markup.stylesheets
               if src and src.lower().startswith(("http:", "https:", "//"))]
    assert foreign == []


def test_vendored_htmx_is_version_2_0_11(app, client):
    response = client.get(HTMX_URL)

    assert response.status_code == 200
    assert response.mimetype in {"text/javascript", "application/javascript"}
    assert 'version:"2.0.11"' in response.get_data(as_text=True)
    response.close()
    on_disk = Path(app.static_folder, "vendor", "htmx-2.0.11.min.js")
    assert 'version:"2.0.11"' in on_disk.read_text()


@pytest.mark.parametrize("name", PAGES)
def test_rendered_markup_needs_no_csp_exception(client, db, make_admin, name):
    html = _page(name, client, db, make_admin)
    assert "<html" in html or name.endswith("fragment"), html[:200]

    assert _Markup(html).blocked == []


def test_not_found_is_a_friendly_html_page(client):
    response = client.get("/admin/no-such-page")

    assert response.status_code == 404
    assert response.mimetype == "text/html"
    html = response.get_data(as_text=True)
    assert "<h1>Not found</h1>" in html
    assert "There is nothing at this address" in html

