"""No 500 from an edited URL. Every list page of the console is opened with hostile query
arguments: cursors and page numbers no pager wrote (huge ids, negative, not numbers, NUL),
dates no calendar has, and searches that no query language should see (NUL, unbalanced
quotes, FTS5 operators, 10,000 characters). Each answer is the first page, or the list with
a message beside the field (200 or 422): never a 5xx, never an error in the log.

The pages are found in the code, not listed here: every view that reaches the paginator
(keyset or paginate) is walked with the pager's arguments, and every URL a console page sends
a search or filter to (a GET form, a field with hx-get) with hostile values of each field's
kind; a new list page or a new filter is walked without anyone adding it. Both databases: on
PostgreSQL the same values must not fail either (its text cannot hold NUL).
"""
import dis
import inspect
import logging
import re
import types
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from werkzeug.routing import UnicodeConverter

from portal.web import pagination
from portal.web.pagination import encode_cursor, keyset
from tests.conftest import _signed_in, csrf_token
from tests.security.conftest import is_admin_rule, url_for_rule
from tests.support.pages import field_error, html_of

# The console's lists as they are today; the discovery below must find at least these.
KNOWN_LISTS = {
    "admin.pending", "admin.devices", "admin.device", "admin.audit_log", "admin.zero_touch",
    "admin.users", "admin.outbox", "admin.view_qr_code_otp", "admin.reset_qr_code_otp",
}

T = datetime(2026, 5, 1, 8, 30, tzinfo=timezone.utc).isoformat()
HUGE = (2**63, 2**64, 10**30, -2**63 - 1)  # no row's id, nor a 64-bit integer
# Cursors no pager wrote, each leading to the first page: not ours at all, or of our shape
# around values no row holds, for each kind of key the lists use: (time, id), (text, id), (id,).
FORGED_CURSORS = [encode_cursor(key, 0) for n in HUGE for key in ((T, n), ("a", n), (n,))] + [
    encode_cursor((T, 1), 10**30),    # a position past any list
    encode_cursor(("a\x00b", 1), 0),  # NUL in a text key (PostgreSQL cannot compare it)
]
CURSORS = ["9223372036854775808", "18446744073709551616", "1" + "0" * 30, "-1", "abc", "",
           "\x00"] + FORGED_CURSORS
# Times past year 9999 or before year 1 once in UTC: the first page of a list by time, but a
# list by name reads them as a name.
ODD_CURSORS = [encode_cursor(("9999-12-31T23:59:59-14:00", 1), 0),
               encode_cursor(("0001-01-01T00:00:00+14:00", 1), 0)]
PAGES = ["99999999999999999999", "0", "-5", "x", "", "\x00", "١٢"]
DATES = ["10000-01-01", "99999-12-31", "0000-00-00", "2026-13-45", "\x00", "9999-12-31",
         "0001-01-01"]
TEXTS = ["\x00", "abc\x00def", '"', '"abc', "*", "NEAR(", "a AND", "-", "^", "%", "_", "\\",
         "x" * 10_000, "Zürich ✓ 日本 🙂"]
CHOICES = ["\x00", "x" * 10_000, "nonsense"]
PAGER = {"after": CURSORS + ODD_CURSORS, "before": CURSORS + ODD_CURSORS, "page": PAGES}
FIRST_PAGE = set(CURSORS + PAGES)
# A POST acts on every call (Reset OTP makes a new OTP, a tenth of a second each): it is
# walked as htmx sends it, with the cursors that reach the database.
POST_PAGER = {"after": FORGED_CURSORS + ODD_CURSORS, "before": FORGED_CURSORS + ODD_CURSORS}


def paged_endpoints(app) -> dict[str, str]:
    """{endpoint: method} of every console view that reaches the paginator, directly or
    through functions of its own module."""
    found = {}
    for rule in app.url_map.iter_rules():
        if is_admin_rule(rule) and _reaches_paginator(app.view_functions[rule.endpoint]):
            found[rule.endpoint] = "GET" if "GET" in rule.methods else "POST"
    return found


def _reaches_paginator(function, seen=None) -> bool:
    function = inspect.unwrap(function)
    seen = seen if seen is not None else set()
    if function in seen or not isinstance(function, types.FunctionType):
        return False
    seen.add(function)
    for name in _globals(function.__code__):
        target = function.__globals__.get(name)
        if target in (pagination, pagination.keyset, pagination.paginate):
            return True
        if isinstance(target, types.FunctionType) and \
                target.__module__ == function.__module__ and _reaches_paginator(target, seen):
            return True
    return False


def _globals(code) -> set[str]:
    """The global names the code (and the code nested in it) reads."""
    names = {instruction.argval for instruction in dis.get_instructions(code)
             if instruction.opname == "LOAD_GLOBAL"}
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _globals(const)
    return names


class _Arguments(HTMLParser):
    """The query arguments a page sends to other URLs: {path: {name: kind}}, from its GET
    forms (their action) and from fields that send themselves (hx-get on the field)."""

    def __init__(self):
        super().__init__()
        self.form_action, self.found = None, {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            get = (attrs.get("method") or "get").lower() == "get"
            self.form_action = _path(attrs.get("action")) if get else None
        elif tag in ("input", "select") and attrs.get("name") and \
                attrs.get("type") not in ("hidden", "submit", "checkbox", "radio"):
            kind = "choice" if tag == "select" else \
                "date" if attrs.get("type") == "date" else "text"
            for target in {self.form_action, _path(attrs.get("hx-get"))} - {None}:
                self.found.setdefault(target, {})[attrs["name"]] = kind

    def handle_endtag(self, tag):
        if tag == "form":
            self.form_action = None


def _path(url: str | None) -> str | None:
    return urlsplit(url).path if url else None


VALUES = {"text": TEXTS, "date": DATES, "choice": CHOICES}


@dataclass
class ListPage:
    endpoint: str
    method: str
    url: str
    arguments: dict = field(default_factory=dict)  # {name: hostile values}


def list_pages(app, client, known) -> list[ListPage]:
    """Every list of the console: the paginator's users (with its arguments), and every
    URL a console page sends a search or filter to (with those fields); an export
    (admin.export_x) takes the filters of its list (admin.x)."""
    paged, pages, sent = paged_endpoints(app), {}, {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not is_admin_rule(rule) or rule.endpoint in ("admin.login", "admin.sign_in_code"):
            continue
        url = url_for_rule(app, rule, known)
        if rule.endpoint in paged:
            method = paged[rule.endpoint]
            pages[url] = ListPage(rule.endpoint, method, url,
                                  dict(PAGER if method == "GET" else POST_PAGER))
        if "GET" in rule.methods and (not rule.arguments or rule.endpoint in paged):
            parser = _Arguments()
            parser.feed(html_of(client.get(url)))
            for path, fields in parser.found.items():
                sent.setdefault(path, {}).update(fields)
    adapter = app.url_map.bind("localhost")
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("admin.export_"):
            sent[url_for_rule(app, rule, known)] = sent.get(
                adapter.build(rule.endpoint.replace("export_", "", 1)), {})
    for path, fields in sent.items():
        if fields and path.startswith("/admin"):
            endpoint = adapter.match(path, method="GET")[0]
            page = pages.setdefault(path, ListPage(endpoint, "GET", path))
            page.arguments.update({name: VALUES[kind] for name, kind in fields.items()})
    return list(pages.values())


# What differs between two answers of one list: CSRF tokens (signed with the time), nonces,
# and the search and filter forms, which show what was asked.
_VOLATILE = re.compile(r'(name="csrf_token"[^>]*value="|"X-CSRFToken": "|nonce=")[^"]+')
_GET_FORM = re.compile(r'<form\b[^>]*method="get".*?</form>', re.S | re.I)


def _stable(html: str) -> str:
    return _GET_FORM.sub("<form>…</form>", _VOLATILE.sub(r"\1…", html))


class _Walk:
    def __init__(self, client, page: ListPage):
        self.client, self.page = client, page
        self.token = csrf_token(client, "/admin/devices/pending") if page.method == "POST" \
            else None

    def open(self, args: dict, htmx: bool):
        headers = {"HX-Request": "true"} if htmx else {}
        if self.token:
            headers["X-CSRFToken"] = self.token
        response = self.client.open(self.page.url, method=self.page.method, query_string=args,
                                    headers=headers)
        response.get_data()  # a streamed answer (CSV) is read within its own request
        return response


def problems_of(client, page: ListPage) -> list[str]:
    """Every hostile argument the page did not survive: a 5xx, an answer other than the
    unedited request's or a 422 with the message beside its field, or a pager argument that
    did not lead to the first page."""
    walk = _Walk(client, page)
    ways = (False, True) if page.method == "GET" else (True,)  # htmx: True
    # A POST may act once (Delete): the unedited answer is then the second one.
    unedited = {htmx: [walk.open({}, htmx) for _ in range(1 if page.method == "GET" else 2)][-1]
                for htmx in ways}
    if page.method == "GET" and any(r.status_code != 200 for r in unedited.values()):
        return [f"{page.url}: {unedited[False].status_code} unedited"]
    problems = []
    for name, values in page.arguments.items():
        for value in values:
            for htmx in ways:
                try:  # a view's exception reaching the test client is a 500 too
                    problem = _problem(walk.open({name: value}, htmx), name, unedited[htmx])
                except Exception as error:  # noqa: BLE001 - every failure is one problem
                    problem = f"raised {type(error).__name__}: {str(error)[:80]}"
                if problem:
                    problems.append(f"{page.method} {page.url}{' (htmx)' if htmx else ''} "
                                    f"?{name}={value[:40]!r}: {problem}")
    return problems


def _problem(response, name: str, unedited) -> str | None:
    status, html = response.status_code, html_of(response)
    if status == 422 and field_error(html, name):
        return None
    if status != unedited.status_code:
        return f"answered {status}"
    value = response.request.args.get(name)
    # A cursor no pager wrote, or text no search can mean (NUL: PostgreSQL's text cannot hold
    # it): the first page, or the list with the message beside the field.
    first_page = value in FIRST_PAGE if name in PAGER else "\x00" in value
    if first_page and response.request.method == "GET" and not field_error(html, name) and \
            _stable(html) != _stable(html_of(unedited)):
        return "not the first page, nor a message beside the field"
    return None


@pytest.fixture
def walked(app, db, known, admin_client) -> list[ListPage]:
    return list_pages(app, admin_client, known)


def test_the_discovery_finds_every_list_of_the_console(app):
    assert KNOWN_LISTS <= set(paged_endpoints(app)), KNOWN_LISTS - set(paged_endpoints(app))


def test_the_walk_finds_every_search_and_filter_of_the_console(walked):
    sent = {(page.endpoint, name) for page in walked for name in page.arguments}
    assert {("admin.pending", "q"), ("admin.pending", "state"), ("admin.pending", "after"),
            ("admin.devices", "q"), ("admin.export_devices", "q"), ("admin.users", "q"),
            ("admin.users", "source"), ("admin.zero_touch", "q"), ("admin.zero_touch", "page"),
            ("admin.outbox", "status"), ("admin.search_users", "username"),
            ("admin.audit_log", "since"), ("admin.audit_log", "actor"),
            ("admin.export_audit_log", "until"), ("admin.view_qr_code_otp", "after")} <= sent


def test_the_discovery_finds_a_new_list_page(app):
    app.add_url_rule("/admin/new-list", "admin.new_list", _new_list)

    assert "admin.new_list" in paged_endpoints(app)


def _new_list():
    """A list page as a later change might add it: its pager is found in a helper."""
    return str(_new_list_page().items)


def _new_list_page():
    from flask import request

    from portal.audit.listing import ORDER, AuditFilters, events
    return keyset(events(AuditFilters()), ORDER, request.args, 5)


def test_every_list_page_survives_edited_arguments(app, walked, admin_client, caplog,
                                                  nul_sent):
    caplog.set_level(logging.WARNING)
    problems = []
    for page in walked:
        problems += problems_of(admin_client, page)

    assert not problems, "\n".join(problems)
    assert [record.getMessage() for record in caplog.records
            if record.levelno >= logging.ERROR] == []
    assert nul_sent == []


def test_the_walk_flags_a_list_that_fails_on_an_edited_url(app, db, make_admin, caplog):
    app.add_url_rule("/admin/fragile", "admin.fragile", _fragile_list)
    client = _signed_in(app.test_client(), make_admin())

    problems = problems_of(client, ListPage("admin.fragile", "GET", "/admin/fragile",
                                            {"page": PAGES}))

    assert "GET /admin/fragile ?page='x': answered 500" in problems
    assert "GET /admin/fragile (htmx) ?page='0': not the first page, nor a message beside " \
           "the field" in problems
    assert any(record.levelno >= logging.ERROR for record in caplog.records)


def _fragile_list():
    """A pager that trusts its argument."""
    from flask import request
    return f"<p>Page {int(request.args.get('page') or 1)}</p>"


# Edited ids in the path (console, Self Service Portal, API) -----------------------------

IDS = ["\x00", "a\x00b", "x" * 10_000, "Zürich ✓", "..", "-1", str(2**64), "' OR '1'='1"]


@pytest.fixture
def nul_sent(db) -> list[str]:
    """The statements that were sent a NUL: PostgreSQL refuses every one (psycopg cannot even
    send it), so a NUL reaching the database is a 500 there, whichever database runs here."""
    sent = []

    def watch(conn, cursor, statement, parameters, context, executemany):
        if _holds_nul(parameters):
            sent.append(" ".join(statement.split())[:100])

    connection = db.session.get_bind()  # the test's connection, which every request uses
    sa.event.listen(connection, "before_cursor_execute", watch)
    yield sent
    sa.event.remove(connection, "before_cursor_execute", watch)


def _holds_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        value = value.values()
    return isinstance(value, (list, tuple, type({}.values()))) and any(map(_holds_nul, value))


def edited_id_problems(app, client, rules, known, check) -> list[str]:
    """Each route of `rules` with each of IDS in place of each text argument of its path."""
    token = csrf_token(client, "/admin/login")
    problems = []
    for rule in rules:
        texts = [name for name in rule.arguments
                 if isinstance(rule._converters[name], UnicodeConverter)]
        for name, value, method in ((n, v, m) for n in texts for v in IDS
                                    for m in sorted(rule.methods - {"HEAD", "OPTIONS"})):
            values = {arg: known.get(arg, "1") for arg in rule.arguments} | {name: value}
            for arg, converter in rule._converters.items():
                if getattr(converter, "items", None) and arg != name:
                    values[arg] = sorted(converter.items)[0]
            url = app.url_map.bind("localhost").build(rule.endpoint, values)
            response = client.open(url, method=method, json={},
                                   headers={"X-CSRFToken": token, "Authorization": "Bearer x"})
            problem = check(response)
            if problem:
                problems.append(f"{method} {rule.rule} {name}={value[:20]!r}: {problem}")
    return problems


def _html_refusal(response) -> str | None:
    return f"answered {response.status_code}" if response.status_code >= 500 else None


def _json_refusal(response) -> str | None:
    body = response.get_json(silent=True)
    if response.status_code >= 500 or response.mimetype != "application/json" or \
            not (isinstance(body, dict) and body.get("error", {}).get("code")):
        return f"answered {response.status_code} {response.mimetype}"
    return None


def test_edited_ids_in_console_urls_never_fail(app, known, admin_client, nul_sent):
    rules = [rule for rule in app.url_map.iter_rules() if is_admin_rule(rule)]

    assert edited_id_problems(app, admin_client, rules, known, _html_refusal) == []
    assert nul_sent == []


def test_edited_ids_in_api_urls_answer_contract_json(app, client, known, nul_sent):
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/api/")]
    assert any(rule.arguments for rule in rules), "the walk does not see the API's routes"

    assert edited_id_problems(app, client, rules, known, _json_refusal) == []
    assert nul_sent == []


def test_edited_qr_ids_in_self_service_urls_never_fail(app, client, known, nul_sent):
    """The phone's pages read the QR code from ?qr_id= (and the language from ?lang=)."""
    problems = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/ssp/") or "GET" not in rule.methods:
            continue
        for name, value in ((n, v) for n in ("qr_id", "lang") for v in IDS):
            response = client.get(rule.rule, query_string={name: value})
            if response.status_code >= 500:
                problems.append(f"GET {rule.rule} ?{name}={value[:20]!r}: "
                                f"{response.status_code}")

    assert problems == [] and nul_sent == []
