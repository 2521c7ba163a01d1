"""No open redirect: `next` on the admin sign-in (the only parameter that names a place to go)
refuses every way of pointing off-site and keeps local paths with their query strings; and no
route follows a foreign URL passed under any of the usual names."""
import itertools
import re
from urllib.parse import quote, unquote, urljoin, urlsplit

from portal.web.session import safe_next
from tests.conftest import ADMIN_PASSWORD, csrf_token, csrf_token_from, post_form, sign_in
from tests.security.conftest import end_user_client, url_for_rule

PENDING = "/admin/devices/pending"
SITE = "https://portal.test"
EVIL = "evil.example"

HOSTILE = [
    f"https://{EVIL}", f"HTTPS://{EVIL}/", f"http:/{EVIL}", f"https:{EVIL}", f"ftp://{EVIL}",
    f"//{EVIL}", f"///{EVIL}", f"////{EVIL}", f" //{EVIL}", f"\t//{EVIL}",
    f"/\\{EVIL}", f"\\\\{EVIL}", f"\\/{EVIL}", f"/\\/{EVIL}", f"\\{EVIL}",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "data:text/html;base64,PHNjcmlwdD4=",
    "vbscript:msgbox(1)",
    f"%2F%2F{EVIL}", f"/%2F{EVIL}", f"/%2f%2f{EVIL}", f"/%5C{EVIL}", f"/%5c%5c{EVIL}",
    f"%5C%5C{EVIL}", f"/%09/{EVIL}", f"/\t/{EVIL}", f"/%0a/{EVIL}", f"/\n/{EVIL}",
    f"/%0d%0aLocation:%20https://{EVIL}", f"/\r\nLocation: https://{EVIL}",
    f"/\r\nSet-Cookie: session=x",
    f"https://portal.test@{EVIL}", f"//portal.test@{EVIL}", f"//{EVIL}%2F..",
    f"/\x00//{EVIL}", f"/\x7f/{EVIL}", f"@{EVIL}", f"{EVIL}",
]

LOCAL = ["/admin/devices/licenses?x=1", "/admin/devices/pending?q=corp%20wlan&page=2",
         "/admin/qr-codes/Abc123?download=1#top", "/admin/settings/sign-in",
         "/admin/devices/pending?next=%2F%2Fevil.example"]


def browser_target(location: str) -> tuple[str, str]:
    """(scheme, host) a browser would go to from our sign-in page: it drops tabs and newlines,
    trims C0 controls and spaces, and reads a backslash as a slash."""
    cleaned = re.sub(r"[\t\n\r]", "", location).strip("".join(map(chr, range(33))))
    parts = urlsplit(urljoin(SITE + "/admin/login", cleaned.replace("\\", "/")))
    return parts.scheme, parts.hostname or ""


def test_every_hostile_next_is_replaced_by_the_default(client, make_admin):
    admin = make_admin()
    credentials = {"username": admin.username, "password": ADMIN_PASSWORD}
    followed = []

    for target in HOSTILE:
        # As the hidden form field carries it, and as it arrives in ?next= from a crafted link.
        in_form = post_form(client, "/admin/login", **credentials, next=target)
        in_query = post_form(client, "/admin/login?next=" + quote(target, safe=""),
                             page="/admin/login", **credentials)
        followed += [(target, r.status_code, r.headers.get("Location"))
                     for r in (in_form, in_query)
                     if (r.status_code, r.headers.get("Location")) != (303, PENDING)]
        if safe_next(target, "/default") != "/default":
            followed.append((target, "safe_next", safe_next(target, "/default")))

    assert followed == []


def test_local_paths_with_query_strings_are_followed(client, make_admin):
    admin = make_admin()

    landed = [sign_in(client, admin.username, next_url=target).headers["Location"]
              for target in LOCAL]

    assert landed == LOCAL


def test_the_page_an_anonymous_admin_asked_for_is_where_sign_in_lands(client, make_admin):
    admin = make_admin()
    asked = PENDING + "?q=corp&page=2"

    login_url = client.get(asked).headers["Location"]
    page = client.get(login_url).get_data(as_text=True)
    response = client.post(login_url, data={"csrf_token": csrf_token_from(page),
                                            "username": admin.username,
                                            "password": ADMIN_PASSWORD,
                                            "next": re.search(r'name="next" type="hidden" '
                                                              r'value="([^"]*)"', page)[1]
                                            .replace("&amp;", "&")})

    assert response.headers["Location"] == asked


def test_next_is_escaped_where_the_sign_in_page_repeats_it(client):
    attack = '/admin/"><script>alert(1)</script><a href="//evil.example'

    html = client.get("/admin/login?next=" + quote(attack, safe="")).get_data(as_text=True)

    assert "<script>alert(1)" not in html
    assert "&#34;&gt;&lt;script&gt;" in html or "&quot;&gt;&lt;script&gt;" in html


PIECES = ["/", "\\", "%2F", "%5C", "%2f", "%09", "\t", "\n", " ", "%0a", "@", ".", ":", "%00"]


def test_no_combination_of_slashes_and_controls_leads_off_site():
    """Every three-piece prefix before the host: whatever safe_next lets through, a browser
    (and a proxy that decodes it once more) still resolves to this site."""
    for combination in itertools.product(PIECES, repeat=3):
        target = "".join(combination) + EVIL + "/x"
        kept = safe_next(target, "/default")
        for form in (kept, unquote(kept)):
            assert browser_target(form) == ("https", "portal.test"), (target, kept)


def test_the_browser_model_knows_the_tricks():
    """The check above is only as good as its model of a browser."""
    assert browser_target(f"/\t/{EVIL}") == ("https", EVIL)
    assert browser_target(f"/\\{EVIL}") == ("https", EVIL)
    assert browser_target(f" //{EVIL}") == ("https", EVIL)
    assert browser_target("/admin/x?y=//z") == ("https", "portal.test")


REDIRECT_NAMES = ["next", "return", "return_to", "returnTo", "redirect", "redirect_uri",
                  "redirect_to", "url", "continue", "came_from", "target", "dest", "goto"]


SIGN_OUTS = {"admin.logout", "selfservice.sign_out"}


def _off_site_redirects(client, app, known, suffix, who):
    query = "&".join(f"{name}=https://{EVIL}/%2F%2F{EVIL}" for name in REDIRECT_NAMES)
    found = []
    # Signing out last: it would end the session the other requests need.
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint in SIGN_OUTS):
        if rule.endpoint == "static":
            continue
        url = url_for_rule(app, rule, known)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            separator = "&" if "?" in url + suffix else "?"
            response = client.open(url + suffix + separator + query, method=method,
                                   headers={"X-CSRFToken": client.csrf_token},
                                   data={name: f"//{EVIL}" for name in REDIRECT_NAMES})
            for header in ("Location", "HX-Redirect", "HX-Location", "Refresh"):
                value = response.headers.get(header)
                if value and browser_target(value.split("url=")[-1]) != ("https",
                                                                         "portal.test"):
                    found.append(f"{who}: {method} {url} -> {header}: {value}")
    return found


def test_no_route_follows_a_foreign_url_under_any_usual_name(app, db, admin_client, known,
                                                             make_qr_code, make_user):
    admin_client.csrf_token = csrf_token(admin_client, PENDING)
    end_user = end_user_client(app, make_qr_code, make_user)
    anonymous = app.test_client()
    anonymous.csrf_token = csrf_token(anonymous, "/admin/login")

    found = []
    for who, client, suffix in (("anonymous", anonymous, ""), ("end user", end_user,
                                                               f"?qr_id={end_user.qr_id}"),
                                ("admin", admin_client, "")):
        found += _off_site_redirects(client, app, known, suffix, who)

    assert found == []


def test_the_sweep_catches_a_route_that_follows_a_foreign_url(app, db, known):
    from flask import redirect, request

    app.add_url_rule("/_test/bounce", "bounce",
                     lambda: redirect(request.args.get("return_to", "/"), 302))
    anonymous = app.test_client()
    anonymous.csrf_token = csrf_token(anonymous, "/admin/login")

    found = _off_site_redirects(anonymous, app, known, "", "anonymous")

    assert found == [f"anonymous: GET /_test/bounce -> Location: https://{EVIL}///{EVIL}"]
