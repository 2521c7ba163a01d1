"""Pagination: offset pages for the short lists, keyset pages for the long ones.

Offset pagination (`paginate`) counts the rows and skips (page - 1) * per_page of them, so its
cost grows with the list and with the page number; it suits lists of a few hundred rows.
Keyset pagination (`keyset`) continues from the sort key of the last row shown, through an
index, so every page costs the same however long the list and however deep the page.
"""
import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from portal.database import db


@dataclass
class Page:
    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1


def paginate(statement: sa.Select, page: int, per_page: int, *, scalars: bool = True) -> Page:
    """One count and one page query; a page number past the end shows the last page."""
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())) or 0
    page = min(max(page, 1), max(1, math.ceil(total / per_page)))
    result = db.session.execute(statement.limit(per_page).offset((page - 1) * per_page))
    items = list(result.scalars() if scalars else result.all())
    return Page(items, page, per_page, total)


# Keyset pagination

_MAX_CURSOR_LENGTH = 300


@dataclass(frozen=True)
class Cursor:
    """Where a keyset page starts: the sort key of a row shown on the page before ("after")
    or after ("before") it, and how many rows come before the page that leads there."""
    direction: str        # "after" (the next page) or "before" (the previous page)
    values: tuple
    position: int         # for display only ("Page 3", "rows 51-75"), never for the query


@dataclass
class KeysetPage:
    items: list
    per_page: int
    position: int             # rows before this page (exact unless rows came or went meanwhile)
    next: str | None = None   # an opaque cursor: pass it back as ?after=
    previous: str | None = None  # pass it back as ?before=

    @property
    def number(self) -> int:
        return self.position // self.per_page + 1

    @property
    def first(self) -> int:
        return self.position + 1

    @property
    def last(self) -> int:
        return self.position + len(self.items)


def encode_cursor(values: tuple, position: int) -> str:
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    text = json.dumps([plain, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str, columns) -> tuple[tuple, int] | None:
    """(values, position) from encode_cursor, typed like the columns; None if it is not one."""
    if not text or len(text) > _MAX_CURSOR_LENGTH:
        return None
    try:
        plain, position = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if len(plain) != len(columns) or not _is_int(position):
            return None
        values = tuple(_typed(value, column) for value, column in zip(plain, columns))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        return None
    return values, max(position, 0)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(value, column):
    kind = getattr(column.type, "impl_instance", column.type).python_type  # TypeDecorators too
    if kind is datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("a cursor's time is always in UTC")
        return parsed
    if kind is int and not _is_int(value):
        raise ValueError("not a whole number")
    if kind is str and not isinstance(value, str):
        raise ValueError("not text")
    return value


def read_cursor(args, columns) -> Cursor | None:
    """The cursor in ?after= or ?before=; None, meaning the first page, when it is absent or
    is not one of ours (a stale bookmark or an edited URL shows the first page, not an error)."""
    for direction in ("after", "before"):
        decoded = decode_cursor(args.get(direction, ""), columns)
        if decoded is not None:
            return Cursor(direction, *decoded)
    return None


def keyset(statement: sa.Select, columns: tuple, cursor: Cursor | None, per_page: int, *,
           descending: bool = True, scalars: bool = True) -> KeysetPage:
    """One page of `statement` in the order of `columns` (a unique key, last column the id),
    read from the cursor through an index: one query, whatever the page's depth.

    Items are ORM objects (scalars) or rows; both must carry the columns by their names.
    A cursor with nothing beyond it falls back to the first page (a second query, rarely).
    """
    if cursor is not None and cursor.direction == "before":
        rows = _fetch(statement, columns, cursor.values, per_page + 1, not descending, scalars)
        if len(rows) >= per_page:
            more = len(rows) > per_page
            rows = rows[:per_page][::-1]
            position = max(cursor.position - per_page, 0) if more else 0
            return _page(rows, columns, per_page, position, has_previous=more, has_next=True)
    elif cursor is not None:
        rows = _fetch(statement, columns, cursor.values, per_page + 1, descending, scalars)
        if rows:
            return _page(rows[:per_page], columns, per_page, cursor.position,
                         has_previous=True, has_next=len(rows) > per_page)
    rows = _fetch(statement, columns, None, per_page + 1, descending, scalars)
    return _page(rows[:per_page], columns, per_page, 0, has_previous=False,
                 has_next=len(rows) > per_page)


def _fetch(statement, columns, values, limit, descending, scalars) -> list:
    if values is not None:
        statement = statement.where(_beyond(columns, values, descending))
    order = [column.desc() if descending else column.asc() for column in columns]
    result = db.session.execute(statement.order_by(None).order_by(*order).limit(limit))
    return list(result.scalars() if scalars else result.all())


def _beyond(columns, values, descending):
    """Rows strictly past `values` in the list's order. Written as `a <= x AND (a < x OR ...)`
    rather than a row-value comparison, so that both databases use the index's range on `a`."""
    column, value = columns[0], values[0]
    strictly = column < value if descending else column > value
    if len(columns) == 1:
        return strictly
    reaches = column <= value if descending else column >= value
    return sa.and_(reaches, sa.or_(strictly, _beyond(columns[1:], values[1:], descending)))


def _page(rows, columns, per_page, position, *, has_previous, has_next) -> KeysetPage:
    page = KeysetPage(rows, per_page, position)
    if rows and has_next:
        page.next = encode_cursor(_key(rows[-1], columns), position + len(rows))
    if rows and has_previous:
        page.previous = encode_cursor(_key(rows[0], columns), position)
    return page


def _key(item, columns) -> tuple:
    return tuple(getattr(item, column.key) for column in columns)
