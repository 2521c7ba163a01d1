"""`flask --app wsgi zero-touch import FILE.csv` and `zero-touch list` (PRODUCT.md §6)."""
import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import ZeroTouchEntry

IMEI = "356938035643809"
BAD_IMEI = "356938035643808"


@pytest.fixture
def run(app, db):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))
    return invoke


def _listed(db) -> dict[str, str]:
    db.session.expire_all()
    return dict(db.session.execute(sa.select(ZeroTouchEntry.identifier, ZeroTouchEntry.kind)).all())


def _imports(db):
    return db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "zero_touch.import")).all()


def _file(tmp_path, content: bytes | str, name="devices.csv"):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(path)


def test_import_adds_the_valid_lines_prints_counts_and_each_rejected_line(run, db, tmp_path):
    path = _file(tmp_path, f"serial,model\r\nr58n123abc,SM-G991B\r\n{BAD_IMEI}\r\n{IMEI}\r\n"
                           "# end\r\nbad/serial\r\n")

    result = run("zero-touch", "import", path)

    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "Added 2, already listed 0, rejected 2.",
        "line 3: 15 digits, but not a valid IMEI: the check digit (Luhn) is wrong.",
        "line 6: '/' is not allowed: a serial number has only letters A–Z, digits, - _ and .",
    ]
    assert _listed(db) == {"R58N123ABC": "serial", IMEI: "imei"}
    [event] = _imports(db)
    assert (event.actor_type, event.actor) == ("operator", "operator")


def test_importing_the_same_file_again_adds_nothing_and_says_already_listed(run, db, tmp_path):
    path = _file(tmp_path, f"ABC1\n{IMEI}\n")
    run("zero-touch", "import", path)

    result = run("zero-touch", "import", path)

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Added 0, already listed 2, rejected 0."
    assert len(_listed(db)) == 2


BAD_FILES = {
    "missing": (None, "no such file"),
    "not_utf8": ("SÉRIE1\n".encode("latin-1"), "not UTF-8"),
    "empty": (b"", "no valid serial number or IMEI"),
    "only_header_and_comments": (b"imei\n# nothing\n\n", "no valid serial number or IMEI"),
    "only_bad_lines": (f"{BAD_IMEI}\nA/B\n".encode(), "no valid serial number or IMEI"),
}


@pytest.mark.parametrize("content, fragment", BAD_FILES.values(), ids=BAD_FILES.keys())
def test_a_file_that_cannot_be_used_prints_one_error_line_exits_non_zero_and_writes_nothing(
        run, db, tmp_path, content, fragment):
    path = str(tmp_path / "absent.csv") if content is None else _file(tmp_path, content)

    result = run("zero-touch", "import", path)

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and fragment in errors[0], result.output
    assert _listed(db) == {}
    assert _imports(db) == []


def test_a_directory_is_refused_with_one_error_line(run, db, tmp_path):
    result = run("zero-touch", "import", str(tmp_path))

    assert result.exit_code != 0
    assert [line for line in result.output.splitlines() if line.startswith("Error:")]


def test_list_prints_every_entry_or_the_ones_matching_the_search(run, db, tmp_path):
    run("zero-touch", "import", _file(tmp_path, f"abc1\nxyz2\n{IMEI}\n"))

    everything = run("zero-touch", "list")
    matching = run("zero-touch", "list", "--search", "abc")

    assert everything.exit_code == 0
    assert [line for line in everything.output.splitlines() if "\t" in line] == [
        f"{IMEI}\timei", "ABC1\tserial", "XYZ2\tserial"]
    assert "3 on the list." in everything.output
    assert [line for line in matching.output.splitlines() if "\t" in line] == ["ABC1\tserial"]
