"""Every admin route refuses anonymous visitors and signed-in end users. The test walks the URL
map, so a route added later is checked without anyone having to list it here."""
from portal.accounts.decorators import admin_required
from portal.audit.log import record
from tests.security.conftest import (anonymous_client, changed_tables, end_user_client,
                                     is_admin_rule, location_path, methods_of, snapshot,
                                     url_for_rule)

# The only admin routes someone without an admin session may reach. Each entry is a way into
# the console without signing in, so the list stays tiny and says why. (Static files are
# served by the "static" endpoint under /static, outside the console.)
PUBLIC_ADMIN_ENDPOINTS = {
    "admin.login",  # the sign-in page itself: GET shows the form, POST checks the password
    # Two-step sign-in: the code after the password. Without the password step's (signed,
    # 5-minute) state in the session it only sends the visitor back to admin.login.
    "admin.sign_in_code",
}
LOGIN = "/admin/login"


def _problem(response, method: str, htmx: bool) -> str | None:
    """None when the response is a refusal that sends the visitor to the admin sign-in."""
    status, target = response.status_code, location_path(response)
    if htmx:
        if status != 401 or target != LOGIN:
            return f"answered {status} (HX-Redirect {target}), not 401 to the sign-in"
    elif method == "GET":
        if status != 302 or target != LOGIN:
            return f"answered {status} (Location {target}), not a redirect to the sign-in"
    elif status not in (302, 303, 401, 403) or (status in (302, 303) and target != LOGIN):
        return f"answered {status} (Location {target}), not a refusal"
    return None


def unguarded_routes(app, db, visitors: dict, known: dict) -> list[str]:
    """Every (route, method, visitor) that was not refused, or whose request changed a table."""
    problems = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not is_admin_rule(rule) or rule.endpoint in PUBLIC_ADMIN_ENDPOINTS:
            continue
        url = url_for_rule(app, rule, known)
        for method in methods_of(rule):
            for who, (client, htmx) in visitors.items():
                # A valid CSRF token, so that a refusal proves the access check.
                headers = {"X-CSRFToken": client.csrf_token, **({"HX-Request": "true"}
                                                                if htmx else {})}
                # A POST view could act and still redirect, so its tables are compared too.
                before = snapshot(db) if method != "GET" else None
                problem = _problem(client.open(url, method=method, headers=headers), method,
                                   htmx)
                if before and (changed := changed_tables(before, snapshot(db))):
                    problem = f"{problem or 'refused'}, but changed {', '.join(changed)}"
                if problem:
                    problems.append(f"{method} {url} as {who}: {problem}")
    return problems


def _visitors(app, make_qr_code, make_user) -> dict:
    anonymous = anonymous_client(app)
    return {"anonymous": (anonymous, False), "anonymous htmx": (anonymous, True),
            "end user": (end_user_client(app, make_qr_code, make_user), False)}


def test_every_admin_route_refuses_anonymous_visitors_and_end_users(app, db, known,
                                                                    make_qr_code, make_user):
    walked = [rule for rule in app.url_map.iter_rules() if is_admin_rule(rule)]
    assert len(walked) >= 30, "the walk does not see the console's routes"

    assert unguarded_routes(app, db, _visitors(app, make_qr_code, make_user), known) == []


def test_the_walk_flags_a_new_route_that_lacks_admin_required(app, db, known, make_qr_code,
                                                              make_user):
    def leaky_page():
        return "<h1>Every QR code</h1>"

    def leaky_action():
        record("test.leak", actor_type="admin")
        db.session.commit()
        return "", 204

    @admin_required
    def guarded_page():
        return "fine"

    # Routes must be added before the app serves its first request (the visitors sign in).
    app.add_url_rule("/admin/leaky", "admin.leaky_page", leaky_page)
    app.add_url_rule("/admin/leaky", "admin.leaky_action", leaky_action, methods=["POST"])
    app.add_url_rule("/admin/elsewhere", "elsewhere", leaky_page)  # not on the admin blueprint
    app.add_url_rule("/admin/guarded", "admin.guarded_page", guarded_page)

    problems = unguarded_routes(app, db, _visitors(app, make_qr_code, make_user), known)

    flagged = {problem.split(" as ")[0] for problem in problems}
    assert flagged == {"GET /admin/leaky", "POST /admin/leaky", "GET /admin/elsewhere"}
    assert len(problems) == 3 * 3  # each of the three, for each visitor
    assert all("changed audit_events" in p for p in problems if p.startswith("POST"))


def test_the_public_allow_list_is_tiny_and_every_entry_is_real(app, client):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}

    assert len(PUBLIC_ADMIN_ENDPOINTS) <= 2
    assert PUBLIC_ADMIN_ENDPOINTS <= endpoints
    assert client.get(LOGIN).status_code == 200


def test_an_admin_reaches_every_admin_page(admin_client, app, known):
    """The other side of the walk: the refusals above are not simply broken pages."""
    urls = [url_for_rule(app, rule, known) for rule in app.url_map.iter_rules()
            if is_admin_rule(rule) and "GET" in rule.methods]
    assert {"/admin/devices/pending", "/admin/audit"} <= set(urls)
    for url in urls:
        response = admin_client.get(url)
        assert response.status_code in (200, 302), (url, response.status_code)
        assert location_path(response) != LOGIN, url
