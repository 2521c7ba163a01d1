"""The Zero-Touch / Knox list: devices that must not enroll with Advanced QR provisioning."""
import re
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from portal.audit.log import record
from portal.database import db, utcnow
from portal.enrollment.models import ZeroTouchEntry
from portal.errors import DomainError

MAX_SERIAL_LENGTH = 64
_SERIAL = re.compile(r"[A-Za-z0-9._-]+")
_SEPARATORS = re.compile(r"[,;\t]")
_HEADERS = {"serial", "serials", "serial_number", "serialnumber", "serial_no", "sn", "imei",
            "imei1", "imei_1", "identifier", "id"}
_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
_CHUNK = 500  # rows per INSERT, well under SQLite's limit on bound parameters
_SHOWN_TEXT = 80


class Identifier(NamedTuple):
    line_no: int
    kind: str  # "serial" or "imei"
    value: str


class Rejected(NamedTuple):
    line_no: int
    text: str
    reason: str


@dataclass
class ImportResult:
    added: int
    duplicates: int
    rejected: list[Rejected] = field(default_factory=list)


class ZeroTouchError(DomainError):
    """A list that cannot be imported ("file") or an entry that cannot be deleted; .rejected
    holds the lines refused, each with its reason."""

    def __init__(self, errors, rejected: list[Rejected] | None = None):
        super().__init__(errors)
        self.rejected = rejected or []


def luhn_valid(digits: str) -> bool:
    """True for a string of digits whose last digit is its Luhn check digit (as in IMEIs)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def read_lines(data: bytes) -> list[str]:
    """Decode an uploaded or read file (UTF-8, with or without BOM) into its lines."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ZeroTouchError({"file": "The file is not UTF-8 text; save it as CSV (UTF-8) or "
                                      "plain text with one serial number or IMEI per "
                                      "line."}) from None
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def parse_identifiers(lines: Iterable[str]) -> tuple[list[Identifier], list[Rejected]]:
    """Split lines into identifiers and rejected lines (numbered from 1).

    Blank lines, `#` comments and a header on the first line are skipped; of the fields
    separated by commas (or semicolons or tabs) the first non-empty one counts.
    """
    entries, rejects, first = [], [], True
    for line_no, line in enumerate(lines, start=1):
        text = line.strip().lstrip("\ufeff")
        value = _first_field(text)
        if not value or text.startswith("#"):
            continue
        if first and value.lower().replace(" ", "_").replace("-", "_") in _HEADERS:
            first = False
            continue
        first = False
        kind, problem = _classify(value)
        if problem:
            rejects.append(Rejected(line_no, _shorten(text), problem))
        else:
            entries.append(Identifier(line_no, kind,
                                      value if kind == "imei" else value.upper()))
    return entries, rejects


def import_identifiers(lines: Iterable[str], *, actor_type: str, actor: str) -> ImportResult:
    """Add every valid identifier that is not listed yet, in one transaction, and commit.

    Raises ZeroTouchError (nothing written) when no line holds a valid identifier.
    """
    entries, rejects = parse_identifiers(lines)
    if not entries:
        raise ZeroTouchError({"file": "The file holds no valid serial number or IMEI; nothing "
                                      "was added."}, rejects)
    kinds = {}
    for entry in entries:
        kinds.setdefault(entry.value, entry.kind)
    try:
        added = _insert_new(kinds)
        record("zero_touch.import", actor_type=actor_type, actor=actor, added=added,
               duplicates=len(entries) - added, rejected=len(rejects))
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return ImportResult(added, len(entries) - added, rejects)


# Whether one of the bound identifiers is on the list, to ask inside another (Core) query.
LISTED = sa.exists().where(ZeroTouchEntry.__table__.c.identifier.in_(
    sa.bindparam("zero_touch_identifiers", expanding=True)))


def is_listed(serial_number: str | None, imei: str | None) -> bool:
    """True when the serial number (compared upper-cased) or the IMEI is on the list."""
    candidates = identifiers(serial_number, imei)
    if not candidates:
        return False
    return db.session.scalar(sa.select(LISTED), {"zero_touch_identifiers": candidates})


def identifiers(serial_number: str | None, imei: str | None) -> list[str]:
    """What the list is searched for: the serial number upper-cased, and the IMEI."""
    return [value for value in ((serial_number or "").strip().upper(), (imei or "").strip())
            if value]


def search(query: str | None = None) -> sa.Select:
    """The entries whose identifier contains the query (without regard to case), sorted."""
    statement = sa.select(ZeroTouchEntry).order_by(ZeroTouchEntry.identifier)
    query = (query or "").strip().upper()
    if query:
        statement = statement.where(ZeroTouchEntry.identifier.contains(query, autoescape=True))
    return statement


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(ZeroTouchEntry))


def delete_entry(entry_id: int, *, actor: str) -> str:
    """Remove one entry and commit; returns its identifier.

    Raises ZeroTouchError when it is not on the list (any more).
    """
    entry = db.session.get(ZeroTouchEntry, entry_id)
    if entry is None:
        raise ZeroTouchError("That entry is not on the list (any more).")
    identifier = entry.identifier
    record("zero_touch.delete", actor_type="admin", actor=actor, target=identifier,
           kind=entry.kind)
    db.session.delete(entry)
    db.session.commit()
    return identifier


def _first_field(text: str) -> str:
    # Commas per the format; semicolons and tabs too, as spreadsheets in many locales export.
    for part in _SEPARATORS.split(text):
        part = part.strip().strip('"').strip()
        if part:
            return part
    return ""


def _classify(value: str) -> tuple[str, str | None]:
    if len(value) == 15 and value.isascii() and value.isdigit():
        if luhn_valid(value):
            return "imei", None
        return "imei", "15 digits, but not a valid IMEI: the check digit (Luhn) is wrong."
    if len(value) > MAX_SERIAL_LENGTH:
        return "serial", (f"A serial number has at most {MAX_SERIAL_LENGTH} characters; "
                          f"this one has {len(value)}.")
    if not _SERIAL.fullmatch(value):
        bad = next(char for char in value if not _SERIAL.fullmatch(char))
        return "serial", (f"{bad!r} is not allowed: a serial number has only letters A–Z, "
                          "digits, - _ and .")
    return "serial", None


def _insert_new(kinds: dict[str, str]) -> int:
    """Insert the identifiers not listed yet; concurrent imports of the same ones are harmless."""
    insert = _INSERTS[db.session.get_bind(ZeroTouchEntry).dialect.name]
    now, added, rows = utcnow(), 0, list(kinds.items())
    for start in range(0, len(rows), _CHUNK):
        values = [{"identifier": value, "kind": kind, "created_at": now}
                  for value, kind in rows[start:start + _CHUNK]]
        statement = (insert(ZeroTouchEntry).values(values)
                     .on_conflict_do_nothing(index_elements=["identifier"])
                     .returning(ZeroTouchEntry.id))
        added += len(db.session.execute(statement).all())
    return added


def _shorten(text: str) -> str:
    return text if len(text) <= _SHOWN_TEXT else text[:_SHOWN_TEXT - 1] + "…"
