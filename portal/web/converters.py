"""URL converters of the application's routes."""
from werkzeug.routing import IntegerConverter

MAX_ROW_ID = 2**63 - 1  # the largest id PostgreSQL's BIGINT and SQLite's INTEGER hold


class RowIdConverter(IntegerConverter):
    """`<id:name>`: an id a database row can have, 1 to 2**63 − 1. Any other number in an
    edited URL does not match the route (404) before a query is made: SQLite cannot even
    bind a larger integer (OverflowError), which once answered 500."""

    def __init__(self, map, *args, **kwargs):
        super().__init__(map, min=1, max=MAX_ROW_ID)


def register(app) -> None:
    """Before any blueprint adds its rules."""
    app.url_map.converters["id"] = RowIdConverter
