"""Admin → Preflight (Administrators only) and the wizard's one-line summary of the last run."""
import sqlalchemy as sa

from portal.preflight import PreflightRun
from portal.settings.companion import seed_example_companion
from tests.conftest import post_form
from tests.security.conftest import changed_tables, snapshot
from tests.support.pages import events, html_of

PAGE = "/admin/settings/preflight"
WIZARD = "/admin/devices/pending/new"


def wizard(client) -> str:
    response = client.get(WIZARD)
    assert response.status_code == 200
    return html_of(response)


def runs(db) -> list[PreflightRun]:
    return list(db.session.scalars(sa.select(PreflightRun).order_by(PreflightRun.id)))


def test_the_page_shows_that_the_preflight_has_not_run_and_writes_nothing(admin_client, db):
    before = snapshot(db)
    response = admin_client.get(PAGE)
    assert response.status_code == 200
    html = html_of(response)
    assert "<h1>Preflight</h1>" in html and "has not run yet" in html
    assert '<button type="submit" class="primary" id="run-preflight">Run preflight</button>' in html
    assert changed_tables(before, snapshot(db)) == []


def test_run_preflight_keeps_the_run_and_the_page_shows_every_check(admin_client, db):
    seed_example_companion()
    response = post_form(admin_client, PAGE)
    assert response.status_code == 303 and response.headers["Location"].endswith(PAGE)
    [run] = runs(db)
    assert run.actor == admin_client.admin.username and run.failures >= 2
    html = html_of(admin_client.get(PAGE))
    assert f"{run.failures} failures" in html
    assert '<strong class="check-name">Quick-start values</strong>' in html
    assert '<span class="badge badge-error">Failure</span>' in html
    assert '<span class="badge badge-refused">Warning</span>' in html
    assert "How to fix it: Enter your Companion&#39;s values under Admin → Companion." in html
    [event] = events(db, "preflight.run")
    assert event.actor == admin_client.admin.username and event.details["failures"] == run.failures


def test_htmx_run_answers_the_result_region_only(admin_htmx_client, db):
    response = post_form(admin_htmx_client, PAGE)
    assert response.status_code == 200
    body = html_of(response)
    assert body.startswith('\n<div id="preflight-run"') or body.lstrip().startswith(
        '<div id="preflight-run"')
    assert "<html" not in body and "Last run" in body


def test_a_run_without_the_csrf_token_is_refused_and_runs_nothing(admin_client, db):
    response = admin_client.post(PAGE)
    assert response.status_code == 400
    assert runs(db) == []


def test_helpdesk_may_neither_open_nor_run_the_preflight(helpdesk_client, db):
    assert helpdesk_client.get(PAGE).status_code == 403
    assert helpdesk_client.post(PAGE, headers={"X-CSRFToken": "x"}).status_code in (400, 403)
    assert runs(db) == []
    assert 'href="/admin/settings/preflight"' not in wizard(helpdesk_client)


def test_the_admin_menu_links_to_preflight(admin_client, db):
    html = html_of(admin_client.get(PAGE))
    assert '<a href="/admin/settings/preflight" aria-current="page">Preflight</a>' in html \
        or ('href="/admin/settings/preflight"' in html and ">Preflight</a>" in html)


# The wizard's summary

def make_run(db, failures: int, warnings: int = 0):
    db.session.add(PreflightRun(actor_type="admin", actor="ada", failures=failures,
                                warnings=warnings, results=[]))
    db.session.commit()


def test_the_wizard_says_nothing_before_the_first_run(admin_client, db):
    assert 'id="preflight-note"' not in wizard(admin_client)


def test_the_wizard_links_to_preflight_when_the_last_run_failed(admin_client, db):
    make_run(db, failures=0)
    make_run(db, failures=2, warnings=1)
    html = wizard(admin_client)
    assert 'id="preflight-note"' in html
    assert "found 2 failures that can stop phones from enrolling" in html
    assert '<a href="/admin/settings/preflight">see Admin → Preflight</a>' in html


def test_the_wizard_says_nothing_when_the_last_run_has_warnings_only(admin_client, db):
    make_run(db, failures=3)
    make_run(db, failures=0, warnings=2)
    assert 'id="preflight-note"' not in wizard(admin_client)


def test_helpdesk_reads_the_summary_without_a_link(helpdesk_client, db):
    make_run(db, failures=1)
    html = wizard(helpdesk_client)
    assert "found 1 failure that can stop" in html
    assert "ask an Administrator to look at Admin → Preflight" in html
