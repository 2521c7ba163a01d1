"""The console's CSV export: formula-safe cells and a streamed body."""
import csv
import io
from datetime import datetime, timezone

import pytest

from portal.web.csv_export import csv_response, neutralize


@pytest.mark.parametrize("value, cell", [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+1-555", "'+1-555"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tcmd", "'\tcmd"), ("\rcmd", "'\rcmd"),
    ("R58N123", "R58N123"), ("a=b", "a=b"), (None, ""), (42, "42"),
    (datetime(2026, 12, 3, 14, 5, 6, tzinfo=timezone.utc), "2026-12-03 14:05:06 UTC"),
])
def test_cells_a_spreadsheet_would_run_are_neutralized(value, cell):
    assert neutralize(value) == cell


def test_the_response_streams_every_row_as_a_csv_attachment(app):
    produced = []

    def rows():
        for number in range(1234):
            produced.append(number)
            yield (f"=evil{number}", number)

    with app.test_request_context():
        response = csv_response("devices.csv", ("serial", "n"), rows())
        assert produced == []  # nothing read before the body is sent
        body = response.get_data(as_text=True)

    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="devices.csv"'
    table = list(csv.reader(io.StringIO(body)))
    assert table[0] == ["serial", "n"]
    assert len(table) == 1 + 1234
    assert table[1] == ["'=evil0", "0"] and table[-1] == ["'=evil1233", "1233"]
