"""Pagination: cursors round-trip, foreign ones are refused, pages meet exactly, and both
strategies read their page from the query arguments, garbage included."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from portal.accounts.models import PortalUser
from portal.audit.models import AuditEvent
from portal.web.pagination import (Cursor, decode_cursor, encode_cursor, keyset, paginate,
                                   read_cursor)

ORDER = (AuditEvent.occurred_at, AuditEvent.id)
T0 = datetime(2099, 5, 1, 8, 30, 15, 123456, tzinfo=timezone.utc)


def test_a_cursor_round_trips_its_values_and_position():
    text = encode_cursor((T0, 42), 75)
    assert decode_cursor(text, ORDER) == ((T0, 42), 75)
    assert "=" not in text and "/" not in text and "+" not in text  # safe in a URL


@pytest.mark.parametrize("text", ["", "x", "!!!", encode_cursor((T0,), 0),
                                  encode_cursor((T0, 1, 2), 0), encode_cursor((T0, 1.5), 0),
                                  encode_cursor(("yesterday", 1), 0),
                                  encode_cursor((T0.replace(tzinfo=None), 1), 0),
                                  encode_cursor((T0, 1), "3"), encode_cursor((T0, 1), True)])
def test_anything_but_our_own_cursor_is_refused(text):
    assert decode_cursor(text, ORDER) is None


@pytest.mark.parametrize("key, position", [
    ((T0, 2**63), 0), ((T0, 10**30), 0), ((T0, -2**63 - 1), 0),  # no 64-bit integer
    ((T0, 1), 2**63),                                             # past any list
    (("9999-12-31T23:59:59-14:00", 1), 0),                        # year 10000 in UTC
    (("0001-01-01T00:00:00+14:00", 1), 0),                        # year 0 in UTC
])
def test_a_cursor_a_database_cannot_compare_is_refused(key, position):
    """An edited cursor of our shape: SQLite cannot bind a larger integer (OverflowError)
    and a time past year 9999 in UTC has no value; both once answered 500."""
    assert decode_cursor(encode_cursor(key, position), ORDER) is None


def test_a_text_key_with_nul_is_refused():
    """PostgreSQL text holds no NUL: such a key would fail the query, not match nothing."""
    names = (PortalUser.username, PortalUser.id)
    assert decode_cursor(encode_cursor(("ann", 7), 0), names) == (("ann", 7), 0)
    assert decode_cursor(encode_cursor(("a\x00b", 7), 0), names) is None


def test_a_cursor_time_in_another_zone_reads_as_utc():
    text = encode_cursor(("2099-05-01T10:30:15.123456+02:00", 42), 0)
    values, _ = decode_cursor(text, ORDER)
    assert values == (T0, 42) and values[0].utcoffset().total_seconds() == 0


def test_read_cursor_takes_after_or_before_and_clamps_the_position():
    assert read_cursor(MultiDict({"after": encode_cursor((T0, 1), 5)}), ORDER) == \
        Cursor("after", (T0, 1), 5)
    assert read_cursor(MultiDict({"before": encode_cursor((T0, 1), -9)}), ORDER) == \
        Cursor("before", (T0, 1), 0)
    assert read_cursor(MultiDict({"page": "2"}), ORDER) is None


def test_pages_meet_exactly_with_ties_in_both_directions(app, db):
    for n in range(12):  # groups of three events share one time
        db.session.add(AuditEvent(occurred_at=T0 - timedelta(seconds=n // 3),
                                  actor_type="system", action="test.keyset"))
    db.session.commit()
    statement = sa.select(AuditEvent).where(AuditEvent.action == "test.keyset")
    everything = db.session.scalars(statement.order_by(AuditEvent.occurred_at.desc(),
                                                       AuditEvent.id.desc())).all()
    seen, page = [], keyset(statement, ORDER, {}, 5)
    while True:
        seen += page.items
        if not page.next:
            break
        assert list(page.next) == ["after"]
        page = keyset(statement, ORDER, page.next, 5)
    assert seen == everything and page.position == 10 and page.number == 3
    assert list(page.previous) == ["before"]
    page = keyset(statement, ORDER, page.previous, 5)
    assert page.items == everything[5:10] and (page.first, page.last) == (6, 10)
    page = keyset(statement, ORDER, page.previous, 5)
    assert page.items == everything[:5] and page.previous is None and page.next


def test_ascending_lists_page_oldest_first(app, db):
    for _ in range(4):
        db.session.add(AuditEvent(occurred_at=T0, actor_type="system", action="test.asc"))
    db.session.commit()
    statement = sa.select(AuditEvent).where(AuditEvent.action == "test.asc")
    ids = (AuditEvent.id,)
    first = keyset(statement, ids, {}, 3, descending=False)
    second = keyset(statement, ids, first.next, 3, descending=False)
    assert [e.id for e in first.items + second.items] == sorted(
        e.id for e in first.items + second.items)
    assert len(second.items) == 1 and second.next is None and second.first == 4


def test_a_foreign_cursor_reads_as_the_first_page(app, db):
    for _ in range(3):
        db.session.add(AuditEvent(occurred_at=T0, actor_type="system", action="test.foreign"))
    db.session.commit()
    statement = sa.select(AuditEvent).where(AuditEvent.action == "test.foreign")
    first = keyset(statement, ORDER, {}, 2)
    assert keyset(statement, ORDER, {"after": "garbage"}, 2).items == first.items
    assert first.number == 1 and first.pages is None and first.next and first.previous is None


def _offset_list(db, n):
    for _ in range(n):
        db.session.add(AuditEvent(occurred_at=T0, actor_type="system", action="test.offset"))
    db.session.commit()
    return (sa.select(AuditEvent).where(AuditEvent.action == "test.offset")
            .order_by(AuditEvent.id))


@pytest.mark.parametrize("asked, number", [("2", 2), ("3", 3), ("99", 3), ("0", 1), ("-1", 1),
                                           ("abc", 1), ("", 1), ("1e3", 1), ("٣", 1),
                                           ("9" * 40, 1)])
def test_offset_pages_read_page_and_survive_garbage(app, db, asked, number):
    page = paginate(_offset_list(db, 7), MultiDict({"page": asked}), 3)
    assert (page.number, page.pages, page.total) == (number, 3, 7)
    assert page.previous == ({"page": number - 1} if number > 1 else None)
    assert page.next == ({"page": number + 1} if number < 3 else None)
    assert len(page.items) == (1 if number == 3 else 3) and page.first == 3 * (number - 1) + 1


def test_an_empty_offset_list_is_one_page_with_no_links(app, db):
    page = paginate(_offset_list(db, 0), {}, 3)
    assert (page.items, page.number, page.pages, page.previous, page.next) == ([], 1, 1, None,
                                                                               None)
