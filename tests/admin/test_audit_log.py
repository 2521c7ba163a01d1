"""Admin → Audit log: listing, each filter, keyset pages both ways, bad cursors, access."""
import html as html_lib
import re
from datetime import datetime, timedelta, timezone

import pytest

from portal.admin import audit as audit_view
from portal.audit.listing import known_actions
from portal.audit.models import AuditEvent
from portal.web.forms import CONTROL_CHARACTERS
from portal.web.pagination import encode_cursor

AUDIT = "/admin/audit"
# Later than anything the fixtures record (they record "now"), so these events come first.
T0 = datetime(2099, 3, 1, 12, 0, tzinfo=timezone.utc)


def add_event(db, *, at=T0, action="qr_code.create", actor_type="admin", actor="alice",
              outcome="success", code=None, target=None, serial_number=None, details=None):
    event = AuditEvent(occurred_at=at, action=action, actor_type=actor_type, actor=actor,
                       outcome=outcome, code=code, target=target, serial_number=serial_number,
                       details=details)
    db.session.add(event)
    db.session.commit()
    return event


def row_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="audit-event-(\d+)"', html)]


def link(html: str, rel: str) -> str | None:
    found = re.search(rf'<a href="([^"]+)"[^>]*rel="{rel}"', html)
    return html_lib.unescape(found[1]) if found else None


@pytest.fixture
def small_pages(monkeypatch):
    monkeypatch.setattr(audit_view, "PAGE_SIZE", 5)


def test_anonymous_users_are_sent_to_sign_in(client, htmx_client):
    response = client.get(AUDIT)
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert htmx_client.get(AUDIT).status_code == 401


def test_lists_events_newest_first_with_their_reason_and_is_in_the_console_nav(admin_client,
                                                                               db):
    old = add_event(db, at=T0 - timedelta(hours=1), action="enrollment.redeem",
                    actor_type="device", actor=None, outcome="refused",
                    code="invalid_credentials", target="QrAbcdefgh12", serial_number="SN-1")
    new = add_event(db, at=T0, details={"usage_count": 3})
    html = admin_client.get(AUDIT).get_data(as_text=True)
    assert "<h1>Audit log</h1>" in html
    assert row_ids(html)[:2] == [new.id, old.id]
    assert "invalid_credentials" in html and "SN-1" in html and "usage_count=3" in html
    assert re.search(r'href="/admin/audit"[^>]*aria-current="page"[^>]*>Audit log<', html)


def test_htmx_request_gets_the_table_fragment(admin_htmx_client, db):
    add_event(db)
    response = admin_htmx_client.get(AUDIT + "?outcome=success")
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "HX-Request" in response.vary
    assert body.startswith('<div id="audit-table"') and "<html" not in body


@pytest.mark.parametrize("query, expected", [
    ("action=qr_code.revoke", {"revoke"}),
    ("outcome=refused", {"refused"}),
    ("actor=bob", {"bob"}),
    ("serial_number=SN-42", {"serial"}),
    ("target=QrTarget0001", {"target"}),
    ("since=2099-03-02", {"late", "revoke"}),
    ("until=2099-02-28", {"early"}),
    ("since=2099-02-28&until=2099-03-01", {"early", "refused", "bob", "serial", "target"}),
    ("action=enrollment.redeem&outcome=refused", {"refused"}),
])
def test_each_filter_shows_exactly_the_matching_events(admin_client, db, query, expected):
    events = {
        "early": add_event(db, at=T0 - timedelta(days=1), actor="carol"),
        "refused": add_event(db, action="enrollment.redeem", actor_type="device", actor=None,
                             outcome="refused", code="expired"),
        "bob": add_event(db, actor="bob"),
        "serial": add_event(db, action="enrollment.redeem", actor_type="device", actor=None,
                            serial_number="SN-42"),
        "target": add_event(db, target="QrTarget0001"),
        "late": add_event(db, at=T0 + timedelta(days=1), actor="dave"),
        "revoke": add_event(db, at=T0 + timedelta(days=2), action="qr_code.revoke"),
    }
    html = admin_client.get(f"{AUDIT}?{query}").get_data(as_text=True)
    shown = set(row_ids(html))
    ours = {name for name, event in events.items() if event.id in shown}
    assert ours == expected
    if "since" not in query and "until" not in query:
        assert len(shown) == len(ours)  # nothing else matches, from other fixtures either


def test_the_action_select_offers_the_actions_in_the_log(admin_client, db):
    add_event(db, action="zz_demo.action")
    assert "zz_demo.action" in known_actions()
    assert known_actions() == sorted(set(known_actions()))
    html = admin_client.get(AUDIT).get_data(as_text=True)
    assert '<option value="zz_demo.action">zz_demo.action</option>' in html
    assert re.search(r'<option [^>]*value="">Any action</option>', html)


def test_an_action_not_logged_yet_filters_to_nothing_rather_than_erroring(admin_client, db):
    html = admin_client.get(AUDIT + "?action=mail.never_sent").get_data(as_text=True)
    assert "No audit event matches these filters." in html and "Not a valid choice" not in html


def test_invalid_dates_are_explained_and_ignored(admin_client, db):
    event = add_event(db)
    html = admin_client.get(AUDIT + "?since=2099-13-01").get_data(as_text=True)
    assert "Not a valid date value." in html and event.id in row_ids(html)
    html = admin_client.get(AUDIT + "?since=2099-03-02&until=2099-03-01").get_data(as_text=True)
    assert "The To date must not be before the From date." in html


def test_without_javascript_the_filter_form_is_a_plain_get_form(admin_client, db):
    add_event(db, actor="erin")
    html = admin_client.get(AUDIT).get_data(as_text=True)
    assert re.search(r'<form class="audit-filters" method="get" action="/admin/audit"', html)
    assert '<button type="submit" class="primary">Filter</button>' in html
    # What a browser submits: every field, the empty ones too.
    page = admin_client.get(AUDIT + "?action=&outcome=&actor=erin&serial_number=&target="
                            "&since=&until=").get_data(as_text=True)
    assert len(row_ids(page)) == 1


def test_keyset_pages_forward_and_back_are_exact_even_with_equal_timestamps(admin_client, db,
                                                                           small_pages):
    # 23 events, most sharing a timestamp with others: only (time, id) orders them.
    created = [add_event(db, at=T0 - timedelta(seconds=n // 4), actor="keyset")
               for n in range(23)]
    expected = [e.id for e in sorted(created, key=lambda e: (e.occurred_at, e.id),
                                     reverse=True)]
    url, pages = AUDIT + "?actor=keyset", []
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        pages.append(row_ids(html))
        assert f"Page {len(pages)}" in html
        url = link(html, "next")
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [i for page in pages for i in page] == expected
    assert "actor=keyset" in link(html, "prev")  # the filter travels with the cursor
    back = []
    url = link(html, "prev")
    while url:
        html = admin_client.get(url).get_data(as_text=True)
        back.append(row_ids(html))
        url = link(html, "prev")
    assert back == pages[-2::-1]
    assert link(html, "next") is not None and "Page 1" in html


def test_newer_from_a_short_page_refills_to_a_full_first_page(admin_client, db, small_pages):
    created = [add_event(db, at=T0 - timedelta(seconds=n), actor="refill") for n in range(7)]
    # A cursor from a bookmark made when there were fewer events: only 2 are newer now.
    cursor = encode_cursor((created[2].occurred_at, created[2].id), 5)
    html = admin_client.get(f"{AUDIT}?actor=refill&before={cursor}").get_data(as_text=True)
    assert row_ids(html) == [e.id for e in created[:5]] and link(html, "prev") is None


@pytest.mark.parametrize("cursor", [
    "garbage", "%%%", "e30", encode_cursor(("2099-01-01T00:00:00", 1), 0),
    encode_cursor((1, 2), 0), encode_cursor((T0,), 0), encode_cursor((T0, "x"), 0),
    encode_cursor((T0, True), 0), "W1siMjA5OSJdXQ" * 30])
@pytest.mark.parametrize("direction", ["after", "before"])
def test_a_bad_cursor_shows_the_first_page(admin_client, db, small_pages, cursor, direction):
    first = add_event(db, actor="cursor")
    response = admin_client.get(f"{AUDIT}?actor=cursor&{direction}={cursor}")
    assert response.status_code == 200
    assert row_ids(response.get_data(as_text=True)) == [first.id]


def test_a_cursor_past_the_end_shows_the_first_page(admin_client, db, small_pages):
    only = add_event(db, actor="end")
    cursor = encode_cursor((T0 - timedelta(days=999), 1), 50)
    html = admin_client.get(f"{AUDIT}?actor=end&after={cursor}").get_data(as_text=True)
    assert row_ids(html) == [only.id]


# Prefix filters, without regard to case

def shown_actors(admin_client, query: str) -> set[str]:
    html = admin_client.get(f"{AUDIT}?{query}").get_data(as_text=True)
    ids = set(row_ids(html))
    return {event.actor for event in AuditEvent.query.filter(AuditEvent.id.in_(ids))}


def test_the_actor_filter_matches_the_beginning_in_any_case(admin_client, db):
    for actor in ("Prefix-Alice", "prefix-alicia", "PREFIX_ALI", "prefix-bob", "xprefix-ali"):
        add_event(db, actor=actor)

    assert shown_actors(admin_client, "actor=prefix-ali") == {"Prefix-Alice", "prefix-alicia"}
    assert shown_actors(admin_client, "actor=PREFIX-ALIC") == {"Prefix-Alice", "prefix-alicia"}
    assert shown_actors(admin_client, "actor=prefix") == {
        "Prefix-Alice", "prefix-alicia", "PREFIX_ALI", "prefix-bob"}
    # % and _ are plain characters, not wildcards.
    assert shown_actors(admin_client, "actor=prefix_") == {"PREFIX_ALI"}
    assert shown_actors(admin_client, "actor=pre%25ali") == set()


def test_the_serial_number_filter_matches_the_beginning_in_any_case(admin_client, db):
    found = [add_event(db, action="enrollment.redeem", serial_number=serial)
             for serial in ("R58N-42", "r58n-4299")]
    add_event(db, action="enrollment.redeem", serial_number="R58N-5")
    add_event(db, action="enrollment.redeem", serial_number="XR58N-42")

    html = admin_client.get(AUDIT + "?serial_number=r58N-42").get_data(as_text=True)

    assert set(row_ids(html)) == {event.id for event in found}


def test_a_prefix_of_the_last_code_point_still_matches(admin_client, db):
    from portal.audit.listing import _following
    assert _following("ab") == "ac" and _following("a\U0010ffff") == "b"
    assert _following("\U0010ffff") is None and _following("\ud7ff") == "\ue000"
    event = add_event(db, actor="zz\U0010ffffend")
    html = admin_client.get(AUDIT + "?actor=zz\U0010ffff").get_data(as_text=True)
    assert row_ids(html) == [event.id]


# Bad input in the filters

def test_a_from_later_than_to_says_so_beside_to_and_shows_no_event(admin_client, db):
    add_event(db)

    html = admin_client.get(AUDIT + "?since=2099-03-02&until=2099-03-01").get_data(as_text=True)

    assert re.search(r'id="until-error">The To date must not be before the From date\.', html)
    assert row_ids(html) == [] and "No audit event matches these filters." in html


@pytest.mark.parametrize("query, field, message", [
    ("actor=" + "a" * 257, "actor", "An actor has at most 256 characters."),
    ("serial_number=" + "S" * 65, "serial_number", "A serial number has at most 64 characters."),
    ("target=" + "t" * 257, "target", "A target has at most 256 characters."),
    ("since=yesterday", "since", "Not a valid date value."),
    ("until=2099-02-30", "until", "Not a valid date value."),
    ("outcome=maybe", "outcome", "Not a valid choice."),
    ("actor=ab%00c", "actor", CONTROL_CHARACTERS),  # PostgreSQL's text cannot hold NUL
    ("action=%00", "action", CONTROL_CHARACTERS),
])
def test_bad_filter_input_is_explained_beside_its_field_and_left_out(admin_client, db, query,
                                                                     field, message):
    event = add_event(db)

    response = admin_client.get(f"{AUDIT}?{query}")

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert re.search(rf'id="{field}-error">{re.escape(message)}', html)
    assert event.id in row_ids(html)


@pytest.mark.parametrize("query, shown", [
    ("until=9999-12-31", True),   # the last day a date can name: no day after it to stop at
    ("since=9999-12-31", False),
    ("since=0001-01-01&until=9999-12-31", True),
])
def test_the_first_and_last_days_of_the_calendar_filter_like_any_other(admin_client, db,
                                                                       query, shown):
    event = add_event(db)

    response = admin_client.get(f"{AUDIT}?{query}")

    assert response.status_code == 200
    assert (event.id in row_ids(response.get_data(as_text=True))) is shown
    assert (len(export(admin_client, query)) > 1) is shown


@pytest.mark.parametrize("value", ["10000-01-01", "99999-12-31", "0000-00-00", "2026-13-45",
                                   "\x00"])
def test_a_date_no_calendar_has_is_explained_beside_its_field(admin_client, db, value):
    event = add_event(db)

    response = admin_client.get(AUDIT, query_string={"since": value, "until": value})

    html = response.get_data(as_text=True)
    assert response.status_code == 200 and event.id in row_ids(html)
    for field in ("since", "until"):
        assert re.search(rf'id="{field}-error">Not a valid date value\.', html)


# The actions of the fleet console

def test_new_actions_and_their_groups_can_be_selected(admin_client, db):
    sign_in_event = add_event(db, action="admin.sign_in_code")
    totp = add_event(db, action="admin.totp_on")
    retire = add_event(db, action="device.retire")

    html = admin_client.get(AUDIT).get_data(as_text=True)

    for action in ("admin.totp_on", "admin.sign_in_code", "device.retire"):
        assert f'<option value="{action}">{action}</option>' in html
    assert re.search(r'<option value="admin\.\*">admin\.\* \(all \d+\)</option>', html)
    shown = set(row_ids(admin_client.get(AUDIT + "?action=admin.*").get_data(as_text=True)))
    assert {sign_in_event.id, totp.id} <= shown and retire.id not in shown
    assert all(e.action.startswith("admin.")
               for e in AuditEvent.query.filter(AuditEvent.id.in_(shown)))


# Export CSV

def export(admin_client, query: str = "") -> list[list[str]]:
    import csv
    import io
    response = admin_client.get(f"{AUDIT}/export.csv?{query}")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert re.match(r'attachment; filename="audit-log-\d{8}-\d{6}\.csv"',
                    response.headers["Content-Disposition"])
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_export_csv_holds_the_filtered_log_newest_first_with_details_as_json(admin_client, db):
    old = add_event(db, at=T0 - timedelta(hours=1), actor="csv-Export", serial_number="SN-9",
                    details={"usage_count": 3, "name": "Lab"})
    new = add_event(db, actor="csv-export", outcome="refused", code="expired")
    add_event(db, actor="someone-else")

    rows = export(admin_client, "actor=CSV-EX")

    assert rows[0] == ["Time (UTC)", "Action", "Outcome", "Code", "Actor type", "Actor",
                       "QR code or target", "Serial number", "Address", "Details"]
    assert [row[5] for row in rows[1:]] == ["csv-export", "csv-Export"]
    assert rows[1][:4] == [new.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
                           "qr_code.create", "refused", "expired"]
    assert rows[2][7] == "SN-9" and rows[2][9] == '{"name": "Lab", "usage_count": 3}'
    assert old.id != new.id


def test_export_csv_neutralizes_formulas(admin_client, db):
    add_event(db, actor="=HYPERLINK(\"http://evil\")", target="+1-2", serial_number="@SUM(A1)",
              details={"note": "-3"})

    [row] = export(admin_client, "actor=%3DHYPER")[1:]

    assert row[5] == "'=HYPERLINK(\"http://evil\")" and row[6] == "'+1-2"
    assert row[7] == "'@SUM(A1)" and row[9] == '{"note": "-3"}'


def test_export_csv_of_an_inverted_date_range_is_only_the_header(admin_client, db):
    add_event(db)
    assert len(export(admin_client, "since=2099-03-02&until=2099-03-01")) == 1


def test_the_export_link_carries_the_filters_and_is_not_boosted(admin_client, db):
    add_event(db, actor="linked")
    html = admin_client.get(AUDIT + "?actor=linked&outcome=success").get_data(as_text=True)
    found = re.search(r'<a class="button" id="export-audit-log" href="([^"]+)" '
                      r'hx-boost="false" download>Export CSV</a>', html)
    assert found and html_lib.unescape(found[1]) in (
        "/admin/audit/export.csv?actor=linked&outcome=success",
        "/admin/audit/export.csv?outcome=success&actor=linked")


def test_long_details_are_truncated_with_the_whole_text_as_title(admin_client, db):
    add_event(db, actor="long-details", details={"reason": "x" * 300})
    html = admin_client.get(AUDIT + "?actor=long-details").get_data(as_text=True)
    assert 'title="reason=' + "x" * 300 + '"' in html and "x" * 130 not in html.split(
        'title="')[0]


def test_filtered_with_htmx_the_messages_come_out_of_band_beside_their_fields(
        admin_htmx_client, db):
    body = admin_htmx_client.get(
        AUDIT + "?since=2099-03-02&until=2099-03-01").get_data(as_text=True)

    assert body.startswith('<div id="audit-table"') and 'name="until"' not in body
    assert '<span class="error" id="until-error" hx-swap-oob="true">The To date must not be ' \
           'before the From date.</span>' in body
    assert '<span class="error" id="since-error" hx-swap-oob="true"></span>' in body


def test_a_prefix_of_one_actor_reads_its_index_in_keyset_order(db):
    """One value alone matches: an index range already in order (no sort); several: a range."""
    import sqlalchemy as sa
    from portal.audit.listing import AuditFilters, ORDER, events
    if db.session.get_bind().dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's; PostgreSQL was measured by hand")
    for actor in ("Plan-Alice", "plan-alice", "plan-bob"):
        add_event(db, actor=actor)

    def plan(prefix):
        statement = events(AuditFilters(actor=prefix)).order_by(
            *(column.desc() for column in ORDER)).limit(51)
        compiled = statement.compile(db.session.get_bind(),
                                     compile_kwargs={"literal_binds": True})
        return " ".join(row[-1] for row in db.session.execute(
            sa.text(f"EXPLAIN QUERY PLAN {compiled}")))

    assert plan("PLAN-A") == "SEARCH audit_events USING INDEX ix_audit_events_actor_prefix " \
                             "(<expr>=?)"
    assert "ix_audit_events_actor_prefix (<expr>>? AND <expr><?)" in plan("plan-")
