"""A read never writes: every GET of the console, the Self Service Portal and the API, and every
re-render of the wizard, runs no INSERT, UPDATE or DELETE and commits nothing, even with an
expired OTP's reservation waiting to be released. The walk reads the URL map, so a route added
later is checked without anyone listing it here."""
import re
from contextlib import contextmanager
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.decorators import admin_required
from portal.audit.log import record
from portal.database import utcnow
from portal.enrollment.models import PendingEnrollment
from tests.conftest import csrf_token_from, sign_in
from tests.security.conftest import known  # noqa: F401  (a fixture: real objects for the URLs)
from tests.security.conftest import end_user_client, methods_of, url_for_rule

BLUEPRINTS = ("admin", "selfservice", "api")
# A write, or the end of a transaction: a commit is a RELEASE SAVEPOINT under the tests'
# savepoint isolation and a COMMIT (statement or DBAPI call) outside it.
WRITE = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|RELEASE\s+SAVEPOINT|COMMIT)\b", re.I)
HX = {"HX-Request": "true"}


@contextmanager
def writes(engine):
    """The write statements and commits run inside the block, as a list, in order."""
    seen = []

    def on_statement(conn, cursor, statement, parameters, context, executemany):
        if WRITE.match(statement):
            seen.append(" ".join(statement.split())[:120])

    def on_commit(conn):
        seen.append("COMMIT")

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    sa.event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
        sa.event.remove(engine, "commit", on_commit)


def expire_otp(db, qr) -> None:
    """Let the QR's OTP expire without ending its pending enrollments, as time alone does."""
    db.session.execute(sa.update(PendingEnrollment).where(PendingEnrollment.qr_code_id == qr.id)
                       .values(expires_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()


@pytest.fixture
def due_reservation(db, make_qr_code):
    """An automatic QR code whose OTP has expired, its licenses still reserved in the pool."""
    qr = make_qr_code("auto", licenses=20, usage_count=2, otp_validity=1)
    expire_otp(db, qr)
    return qr


def get_routes(app):
    return sorted((rule for rule in app.url_map.iter_rules()
                   if rule.endpoint.split(".")[0] in BLUEPRINTS and "GET" in methods_of(rule)),
                  key=lambda rule: rule.rule)


def writing_gets(app, db, clients: dict, known: dict) -> list[str]:
    """Every (GET, visitor, page or fragment) that wrote or committed, with what it ran."""
    problems = []
    for rule in get_routes(app):
        url = url_for_rule(app, rule, known)
        for who, client in clients.items():
            for headers in ({}, HX):
                with writes(db.engine) as seen:
                    client.get(url, headers=headers)
                if seen:
                    kind = "fragment" if headers else "page"
                    problems.append(f"GET {url} ({kind}) as {who}: {'; '.join(seen)}")
    return problems


def test_no_get_writes_or_commits_even_with_an_expired_otp_waiting(
        app, db, admin_client, known, make_qr_code, make_user):
    qr = make_qr_code("auto", licenses=20, usage_count=2, otp_validity=1)
    clients = {"admin": admin_client,
               "end user": end_user_client(app, make_qr_code, make_user)}
    expire_otp(db, qr)  # after the clients' set-up, whose QR codes would expire it
    assert len(get_routes(app)) >= 20, "the walk does not see the routes"

    problems = writing_gets(app, db, clients, known)
    assert problems == [], "\n".join(problems)

    states = db.session.scalars(sa.select(PendingEnrollment.state)
                                .where(PendingEnrollment.qr_code_id == qr.id))
    assert set(states) == {"pending"}  # left for the verbs and the workers to expire


def test_the_walk_flags_a_get_that_writes(app, db, client, make_admin, known):

    @admin_required
    def counting_page():
        record("test.page_view", actor_type="admin")
        db.session.commit()
        return "seen"

    # Routes must be added before the app serves its first request (the sign-in).
    app.add_url_rule("/admin/counting", "admin.counting_page", counting_page)
    assert sign_in(client, make_admin().username).status_code == 303

    problems = writing_gets(app, db, {"admin": client}, known)

    assert [p.split(":")[0] for p in problems] == [
        "GET /admin/counting (page) as admin", "GET /admin/counting (fragment) as admin"]
    assert "INSERT INTO audit_events" in problems[0] and "RELEASE SAVEPOINT" in problems[0]


def _wizard_data(client, **values) -> dict:
    page = client.get("/admin/devices/pending/new").get_data(as_text=True)
    return {"csrf_token": csrf_token_from(page), "option": "auto", "lang": "en",
            "network": "wifi", "wifi_ssid": "Corp-WLAN", "wifi_security": "WPA",
            "usage_count": "1", **values}


@pytest.mark.parametrize("url, extra, headers, status", [
    # (a choice made in the wizard sends no request at all: tests/browser/test_wizard*.py)
    ("/admin/devices/pending/new/directory-users", {"user_type": "ldap", "ldap_query": "al"},
     HX, 200),                                                   # Search directory
    ("/admin/devices/pending", {"usage_count": "0"}, HX, 422),   # Save refused by the form
    ("/admin/devices/pending", {"usage_count": "0"}, {}, 422),   # the same without JavaScript
], ids=["directory search", "refused save", "refused save without JavaScript"])
def test_a_wizard_re_render_writes_nothing(db, admin_client, make_qr_code, url, extra, headers,
                                           status):
    qr = make_qr_code("auto", licenses=20, usage_count=2, otp_validity=1)
    data = _wizard_data(admin_client, **extra)
    expire_otp(db, qr)  # after the GET that fetched the CSRF token

    with writes(db.engine) as seen:
        response = admin_client.post(url, data=data, headers=headers)

    assert response.status_code == status
    assert seen == []
