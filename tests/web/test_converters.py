"""Every route that takes a row id answers an edited id no row can have (too big for the
database, zero, negative) with 404 (or 405), never 500: SQLite cannot bind an integer over 2**63 − 1."""
import pytest

from portal.web.converters import MAX_ROW_ID, RowIdConverter
from tests.conftest import csrf_token
from tests.security.conftest import known  # noqa: F401  (a fixture: real objects for the URLs)
from tests.security.conftest import methods_of


def id_rules(app) -> list:
    return [rule for rule in app.url_map.iter_rules()
            if any(isinstance(converter, RowIdConverter)
                   for converter in rule._converters.values())]


def edited_url(app, rule, known: dict, edited: int) -> str:  # noqa: F811
    values = {name: edited if isinstance(converter, RowIdConverter) else known.get(name, "1")
              for name, converter in rule._converters.items()}
    return app.url_map.bind("localhost").build(rule.endpoint, values)


def test_no_route_takes_an_unbounded_int(app):
    assert [rule.rule for rule in app.url_map.iter_rules() if "<int:" in rule.rule] == []
    assert len(id_rules(app)) >= 15  # users, administrators, pending, outbox, Zero-Touch


@pytest.mark.parametrize("edited", [99999999999999999999, MAX_ROW_ID + 1, 0, -1])
def test_an_id_no_row_can_have_is_404_on_every_route(app, admin_client, known,  # noqa: F811
                                                     edited):
    token = csrf_token(admin_client, "/admin/devices/pending")
    problems = []
    for rule in id_rules(app):
        url = edited_url(app, rule, known, edited)
        assert str(edited) in url
        for method in methods_of(rule):
            status = admin_client.open(url, method=method,
                                       headers={"X-CSRFToken": token}).status_code
            # (a POST may get 405: Werkzeug sees the address, not the method, of the GET beside)
            if status != 404 and not (method == "POST" and status == 405):
                problems.append(f"{method} {url}: {status}")
    assert problems == []
