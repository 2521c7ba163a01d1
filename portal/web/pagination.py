"""Pagination: one Page, read by offset for the short lists and by keyset for the long ones.

Offset pagination (`paginate`) counts the rows and skips (page - 1) * per_page of them, so its
cost grows with the list and with the page number; it suits lists of a few hundred rows.
Keyset pagination (`keyset`) continues from the sort key of the last row shown, through an
index, so every page costs the same however long the list and however deep the page.
"""
import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa

from portal.database import db
from portal.web.converters import MAX_ROW_ID


@dataclass
class Page:
    """One page of a list, however it was read: its rows, how many rows come before it, and
    the query arguments that lead to the page before and after it (None: there is none)."""
    items: list
    per_page: int
    position: int                 # rows before this page (exact unless rows came or went)
    total: int | None = None      # the list's length, when it was counted
    previous: dict | None = None  # {"page": 2} or {"before": cursor}, for url_for
    next: dict | None = None

    @property
    def number(self) -> int:
        return self.position // self.per_page + 1

    @property
    def pages(self) -> int | None:
        return self.count_pages(self.total)

    def count_pages(self, total: int | None) -> int | None:
        """How many pages `total` rows fill (at least up to this one); None for None."""
        return None if total is None else max(math.ceil(total / self.per_page), self.number)

    @property
    def first(self) -> int:
        return self.position + 1

    @property
    def last(self) -> int:
        return self.position + len(self.items)


def paginate(statement: sa.Select, args: Mapping, per_page: int, *,
             scalars: bool = True) -> Page:
    """The page ?page= asks for: one count and one page query. Garbage reads as page 1, a
    number past the end as the last page."""
    total = db.session.scalar(
        sa.select(sa.func.count()).select_from(statement.order_by(None).subquery())) or 0
    number = min(_page_number(args), max(1, math.ceil(total / per_page)))
    result = db.session.execute(statement.limit(per_page).offset((number - 1) * per_page))
    page = Page(list(result.scalars() if scalars else result.all()), per_page,
                (number - 1) * per_page, total)
    page.previous = {"page": number - 1} if number > 1 else None
    page.next = {"page": number + 1} if number < page.pages else None
    return page


def _page_number(args: Mapping) -> int:
    text = str(args.get("page") or "1")
    return max(int(text), 1) if text.isascii() and text.isdigit() and len(text) < 10 else 1


# Keyset pagination

_MAX_CURSOR_LENGTH = 300


@dataclass(frozen=True)
class Cursor:
    """Where a keyset page starts: the sort key of a row shown on the page before ("after")
    or after ("before") it, and how many rows come before the page that leads there."""
    direction: str        # "after" (the next page) or "before" (the previous page)
    values: tuple
    position: int         # for display only ("Page 3", "rows 51-75"), never for the query


def encode_cursor(values: tuple, position: int) -> str:
    plain = [value.isoformat() if isinstance(value, datetime) else value for value in values]
    text = json.dumps([plain, position], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(text: str, columns) -> tuple[tuple, int] | None:
    """(values, position) from encode_cursor, typed like the columns; None if it is not one,
    or holds a value that both databases could not compare (an edited URL)."""
    if not text or len(text) > _MAX_CURSOR_LENGTH:
        return None
    try:
        plain, position = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        if len(plain) != len(columns) or not _is_int(position) or position > MAX_ROW_ID:
            return None
        values = tuple(_typed(value, column) for value, column in zip(plain, columns))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, OverflowError):
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
        return parsed.astimezone(timezone.utc)  # OverflowError past year 9999 or before 1
    if kind is int and not (_is_int(value) and -MAX_ROW_ID - 1 <= value <= MAX_ROW_ID):
        raise ValueError("not a 64-bit whole number (SQLite cannot bind a larger one)")
    if kind is str and not (isinstance(value, str) and "\x00" not in value):
        raise ValueError("not text, or text with NUL (PostgreSQL's text cannot hold one)")
    return value


def read_cursor(args, columns) -> Cursor | None:
    """The cursor in ?after= or ?before=; None, meaning the first page, when it is absent or
    is not one of ours (a stale bookmark or an edited URL shows the first page, not an error)."""
    for direction in ("after", "before"):
        decoded = decode_cursor(args.get(direction, ""), columns)
        if decoded is not None:
            return Cursor(direction, *decoded)
    return None


def keyset(statement: sa.Select, columns: tuple, args: Mapping, per_page: int,
           *, descending: bool = True, scalars: bool = True, total: int | None = None) -> Page:
    """The page ?after= or ?before= asks for, of `statement` in the order of `columns` (a unique
    key, last column the id), read through an index: one query, whatever the page's depth.

    Items are ORM objects (scalars) or rows; both must carry the columns by their names.
    A cursor with nothing beyond it falls back to the first page (a second query, rarely).
    total: the list's length, when the caller counted it.
    """
    cursor = read_cursor(args, columns)
    if cursor is not None and cursor.direction == "before":
        rows = _fetch(statement, columns, cursor.values, per_page + 1, not descending, scalars)
        if len(rows) >= per_page:
            more = len(rows) > per_page
            rows = rows[:per_page][::-1]
            position = max(cursor.position - per_page, 0) if more else 0
            return _page(Page(rows, per_page, position, total), columns, has_previous=more,
                         has_next=True)
    elif cursor is not None:
        rows = _fetch(statement, columns, cursor.values, per_page + 1, descending, scalars)
        if rows:
            return _page(Page(rows[:per_page], per_page, cursor.position, total), columns,
                         has_previous=True, has_next=len(rows) > per_page)
    rows = _fetch(statement, columns, None, per_page + 1, descending, scalars)
    return _page(Page(rows[:per_page], per_page, 0, total), columns, has_previous=False,
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


def _page(page: Page, columns, *, has_previous: bool, has_next: bool) -> Page:
    if page.items and has_next:
        page.next = {"after": encode_cursor(_key(page.items[-1], columns), page.last)}
    if page.items and has_previous:
        page.previous = {"before": encode_cursor(_key(page.items[0], columns), page.position)}
    return page


def _key(item, columns) -> tuple:
    return tuple(getattr(item, column.key) for column in columns)
