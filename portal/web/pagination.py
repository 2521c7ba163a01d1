"""Offset pagination over any select, rows or scalars (Flask-SQLAlchemy's paginate is scalars only)."""
import math
from dataclasses import dataclass

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
