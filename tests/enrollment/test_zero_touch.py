"""The Zero-Touch / Knox list: parsing uploaded lines, importing them once, checking devices."""
import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import ZeroTouchEntry
from portal.enrollment.zero_touch import (ZeroTouchError, delete_entry, import_identifiers,
                                          is_listed, luhn_valid, parse_identifiers, read_lines)

IMEI = "356938035643809"       # a valid check digit
BAD_IMEI = "356938035643808"   # the same IMEI with a wrong check digit


def _listed(db) -> dict[str, str]:
    return dict(db.session.execute(sa.select(ZeroTouchEntry.identifier, ZeroTouchEntry.kind)).all())


def _events(db):
    return db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action.like("zero_touch.%")).order_by(AuditEvent.id)).all()


# luhn_valid -----------------------------------------------------------------------------------

@pytest.mark.parametrize("digits, valid", [
    (IMEI, True), (BAD_IMEI, False), ("490154203237518", True), ("79927398713", True),
    ("79927398710", False), ("", False), ("35693803564380x", False), ("３５６９３８０３５６４３８０９", False),
])
def test_luhn_check_digit(digits, valid):
    assert luhn_valid(digits) is valid


# parse_identifiers ----------------------------------------------------------------------------

def test_valid_imeis_are_imeis_and_everything_else_valid_is_an_upper_cased_serial():
    entries, rejects = parse_identifiers([IMEI, "r58n123abc", "SN-1_2.3", "12345678901234"])

    assert [(e.line_no, e.kind, e.value) for e in entries] == [
        (1, "imei", IMEI), (2, "serial", "R58N123ABC"), (3, "serial", "SN-1_2.3"),
        (4, "serial", "12345678901234")]
    assert rejects == []


@pytest.mark.parametrize("header", ["serial", "IMEI", "serial_number", "Serial Number",
                                    "serial-number", "imei,model"])
def test_a_header_on_the_first_line_is_skipped(header):
    entries, rejects = parse_identifiers([header, "ABC1"])

    assert [e.value for e in entries] == ["ABC1"]
    assert rejects == []


def test_a_header_word_after_the_first_line_is_a_serial_number():
    entries, _ = parse_identifiers(["ABC1", "serial"])

    assert [e.value for e in entries] == ["ABC1", "SERIAL"]


def test_blank_lines_comments_and_a_bom_are_skipped_and_line_numbers_stay_true():
    lines = ["\ufeff# exported from Knox", "", "   ", "serial", "  abc1  ", "# note", ",,", "XYZ9"]

    entries, rejects = parse_identifiers(lines)

    assert [(e.line_no, e.value) for e in entries] == [(5, "ABC1"), (8, "XYZ9")]
    assert rejects == []


def test_of_comma_separated_fields_the_first_non_empty_one_counts():
    entries, _ = parse_identifiers([f",  ,{IMEI},R58N", '"abc2", Samsung, SM-G991B', " ,def3,",
                                    "ghi4;Samsung", "\tjkl5\tPixel"])

    assert [(e.kind, e.value) for e in entries] == [("imei", IMEI), ("serial", "ABC2"),
                                                    ("serial", "DEF3"), ("serial", "GHI4"),
                                                    ("serial", "JKL5")]


@pytest.mark.parametrize("line, reason", [
    (BAD_IMEI, "check digit (Luhn) is wrong"),
    ("A" * 65, "at most 64 characters; this one has 65"),
    ("R58N/123", "'/' is not allowed"),
    ("R58N 123", "' ' is not allowed"),
    ("SÉRIE1", "'É' is not allowed"),
    ("abc:def", "':' is not allowed"),
])
def test_invalid_lines_are_rejected_with_their_number_text_and_reason(line, reason):
    entries, rejects = parse_identifiers(["serial", "OK1", line])

    assert [e.value for e in entries] == ["OK1"]
    [(line_no, text, message)] = rejects
    assert (line_no, text) == (3, line)
    assert reason in message


def test_a_serial_of_exactly_64_characters_is_accepted():
    entries, rejects = parse_identifiers(["a" * 64])

    assert [e.value for e in entries] == ["A" * 64] and rejects == []


def test_a_long_rejected_line_is_shortened_for_display():
    _, [(_, text, _)] = parse_identifiers(["x/" * 100])

    assert len(text) == 80 and text.endswith("…")


# read_lines -----------------------------------------------------------------------------------

def test_read_lines_drops_the_bom_and_understands_windows_and_old_mac_line_ends():
    assert read_lines("\ufeffserial\r\nA1\rB2\nC3".encode()) == ["serial", "A1", "B2", "C3"]


def test_read_lines_refuses_text_that_is_not_utf8():
    with pytest.raises(ZeroTouchError, match="not UTF-8"):
        read_lines("SÉRIE".encode("latin-1"))


# import_identifiers ---------------------------------------------------------------------------

def test_import_adds_new_ones_counts_listed_and_repeated_ones_and_reports_rejects(db):
    import_identifiers(["OLD1"], actor_type="admin", actor="alice")

    result = import_identifiers(["serial", "old1", "new1", IMEI, "NEW1", BAD_IMEI],
                                actor_type="operator", actor="operator")

    assert (result.added, result.duplicates) == (2, 2)
    assert [(r.line_no, r.text) for r in result.rejected] == [(6, BAD_IMEI)]
    assert _listed(db) == {"OLD1": "serial", "NEW1": "serial", IMEI: "imei"}
    event = _events(db)[-1]
    assert (event.action, event.actor_type, event.actor) == ("zero_touch.import", "operator",
                                                            "operator")
    assert event.details == {"added": 2, "duplicates": 2, "rejected": 1}


def test_import_of_many_lines_is_inserted_in_chunks(db):
    lines = [f"DEV{n:05d}" for n in range(1203)]

    result = import_identifiers(lines, actor_type="admin", actor="alice")

    assert (result.added, result.duplicates) == (1203, 0)
    assert len(_listed(db)) == 1203


@pytest.mark.parametrize("lines", [[], ["serial", "# only a comment", ""], [BAD_IMEI, "a/b"]],
                         ids=["empty", "header and comment", "only bad lines"])
def test_an_import_with_no_valid_line_is_refused_and_writes_nothing(db, lines):
    with pytest.raises(ZeroTouchError) as raised:
        import_identifiers(lines, actor_type="admin", actor="alice")

    assert "no valid serial number or IMEI" in raised.value.message
    assert len(raised.value.rejected) == sum(1 for line in lines if line in (BAD_IMEI, "a/b"))
    assert _listed(db) == {}
    assert _events(db) == []


# is_listed and delete_entry -------------------------------------------------------------------

def test_is_listed_compares_serials_upper_cased_and_imeis_exactly(db):
    import_identifiers(["r58n123abc", IMEI], actor_type="admin", actor="alice")

    assert is_listed("R58N123ABC", None)
    assert is_listed(" r58n123abc ", None)
    assert is_listed("OTHER", IMEI)
    assert is_listed(None, IMEI)
    assert not is_listed("OTHER", "490154203237518")
    assert not is_listed("R58N123AB", None)
    assert not is_listed(None, None) and not is_listed("", "")


def test_delete_entry_removes_it_records_it_and_refuses_a_second_time(db):
    import_identifiers(["ABC1", "ABC2"], actor_type="admin", actor="alice")
    entry_id = db.session.scalar(sa.select(ZeroTouchEntry.id).where(
        ZeroTouchEntry.identifier == "ABC1"))

    assert delete_entry(entry_id, actor="bob") == "ABC1"

    assert _listed(db) == {"ABC2": "serial"}
    assert not is_listed("abc1", None)
    event = _events(db)[-1]
    assert (event.action, event.actor, event.target) == ("zero_touch.delete", "bob", "ABC1")
    with pytest.raises(ZeroTouchError):
        delete_entry(entry_id, actor="bob")
