"""Keyset pagination: cursors round-trip, foreign ones are refused, pages meet exactly."""
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from portal.audit.models import AuditEvent
from portal.web.pagination import (Cursor, decode_cursor, encode_cursor, keyset,
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
    seen, page = [], keyset(statement, ORDER, None, 5)
    while True:
        seen += page.items
        if not page.next:
            break
        page = keyset(statement, ORDER, read_cursor({"after": page.next}, ORDER), 5)
    assert seen == everything and page.position == 10 and page.number == 3
    page = keyset(statement, ORDER, read_cursor({"before": page.previous}, ORDER), 5)
    assert page.items == everything[5:10] and (page.first, page.last) == (6, 10)
    page = keyset(statement, ORDER, read_cursor({"before": page.previous}, ORDER), 5)
    assert page.items == everything[:5] and page.previous is None and page.next


def test_ascending_lists_page_oldest_first(app, db):
    for _ in range(4):
        db.session.add(AuditEvent(occurred_at=T0, actor_type="system", action="test.asc"))
    db.session.commit()
    statement = sa.select(AuditEvent).where(AuditEvent.action == "test.asc")
    ids = (AuditEvent.id,)
    first = keyset(statement, ids, None, 3, descending=False)
    second = keyset(statement, ids, read_cursor({"after": first.next}, ids), 3,
                    descending=False)
    assert [e.id for e in first.items + second.items] == sorted(
        e.id for e in first.items + second.items)
    assert len(second.items) == 1 and second.next is None and second.first == 4
