"""The one way the console exports a list as CSV: streamed row by row (a million rows never
sit in memory), and safe to open in a spreadsheet (no cell is taken for a formula)."""
import csv
import io
from collections.abc import Iterable, Sequence
from datetime import datetime

from flask import Response, stream_with_context

# A cell that starts with one of these is a formula to Excel, LibreOffice and Google Sheets
# (OWASP "CSV injection"); tab and carriage return start one too in some of them.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralize(value) -> str:
    """The cell's text, with a leading apostrophe where a spreadsheet would see a formula."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S UTC")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]) -> Response:
    """A streamed text/csv attachment: the header, then one line per row as `rows` yields it.

    `rows` is consumed while the response is sent (inside the request's context), so a
    query read in batches (`yield_per`) keeps the worker's memory flat."""
    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for count, row in enumerate(rows, 1):
            writer.writerow([neutralize(value) for value in row])
            if count % 500 == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(lines()), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response
