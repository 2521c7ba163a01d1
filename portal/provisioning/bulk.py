"""Bulk provisioning: many automatic QR codes from a CSV file (or the Admin API's JSON rows).

parse_csv → preview_rows (every row checked by validate_request, the wizard's own rules; writes
nothing) → stage (the checked rows kept for Confirm) → start_batch (a Batch, state preparing) →
run_batch: every QR prepared outside any transaction (progress committed every PROGRESS_EVERY
rows or PROGRESS_SECONDS), then ONE short transaction reserves the whole batch's licenses with
one conditional seats.reserve(total) and inserts every QR, its pending enrollments, mail and
audit entries — or nothing, with the batch marked failed and the reason.

Management: a row's `management` cell (companion, adp or android device policy), else the
batch's choice, else its network profile's. An Android Device Policy row's enrollment token is
made at Google while the batch is prepared, before the one transaction; if Google refuses one,
or the batch fails for any other reason, nothing is saved and every token already made is
given back (deleted at Google, retried by the worker).
"""
import codecs
import csv
import dataclasses
import io
import json
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal.accounts.directory import pick_token, record_picked_user
from portal.accounts.models import AdminUser
from portal.accounts.users import find_local_user
from portal.accounts.validation import address_error
from portal.amapi.client import AmapiError, connect
from portal.amapi.models import AmapiTask
from portal.audit.log import record
from portal.database import db, end_transaction, repeated_reads, utcnow
from portal.directory import ldap
from portal.enrollment.models import Batch, PendingEnrollment, QrCode
from portal.enrollment.pending import (AlreadyRevoked, expire_due, pay_google_soon,
                                      revoke_qr_code)
from portal.errors import WHOLE, DomainError
from portal.licensing import seats
from portal.mail.models import OutboxMessage
from portal.provisioning import device_policy
from portal.provisioning.models import StagedBatch
from portal.provisioning.qr_codes import (MAX_USAGE_COUNT, UNLIMITED, Preparation, QrCodeRequest,
                                          add_qr_code, google_enrollment, pending_rows,
                                          prepare_qr_code, resolve, validate_request)
from portal.settings import localizations, network_profiles
from portal.vocabulary import (MANAGEMENT_LABELS, AmapiTaskKind, EnrollmentOption, Management,
                               NetworkType)

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 5_000
COLUMNS = ("username", "usage_count", "localization", "send_to_user", "alternative_address",
           "management")
TEMPLATE = ",".join(COLUMNS) + "\r\n"
DEFAULT_LOCALIZATION = "en"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PROGRESS_EVERY = 50
PROGRESS_SECONDS = 1.0   # and at least this often while Google is asked for tokens
STALE_AFTER = timedelta(minutes=2)
# A token made for a batch is owed for deletion at once, due this long after: if the process
# dies before the batch is saved or given back, the worker deletes it then (no batch takes
# this long); the batch's insert settles the debt in its transaction.
ORPHAN_AFTER = timedelta(hours=24)
_YES, _NO = ("yes", "true", "1", "y"), ("no", "false", "0", "n", "")
# validate_request's field names as the CSV's columns; the others are about the whole batch.
_COLUMN_OF = {"username": "username", "ldap_user": "username", "usage_count": "usage_count",
              "lang": "localization", "alternative_email": "alternative_address",
              "send_to_user": "send_to_user", "management": "management"}
logger = logging.getLogger(__name__)
_BATCH_FIELDS = {"network_profile": "network_profile", "otp_validity": "otp_validity",
                 "companion": WHOLE}
# A management cell's words (case, spaces, - and _ aside) → the vocabulary's values.
_MANAGEMENT_WORDS = {"companion": Management.COMPANION, "adp": Management.ADP,
                     "android device policy": Management.ADP}
GOOGLE_REFUSED = ("Google did not make the enrollment token of row {row}: {message} Nothing was "
                  "saved.")
_GOOGLE_REFUSED = re.compile(r"Google did not make the enrollment token of row (\d+): (.*) "
                             r"Nothing was saved\.", re.S)
MANAGEMENT_CHOICE = "Write companion, or adp (android device policy); empty: the batch's choice."


@dataclass(frozen=True)
class Problem:
    """One problem: the row (as the file numbers it: the header is row 1; 0: the whole file or
    batch), the column (or "") and the message."""
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"Row {self.row}" if self.row else "File"
        return f"{where}, {self.column}: {self.message}" if self.column else \
            f"{where}: {self.message}"


class BulkError(DomainError):
    """The batch cannot be previewed or created; .problems names each row and column."""

    def __init__(self, problems: list[Problem], field: str = WHOLE):
        self.problems = problems
        super().__init__("; ".join(str(problem) for problem in problems[:5])
                         + (f"; and {len(problems) - 5:,} more" if len(problems) > 5 else ""),
                         field)


@dataclass(frozen=True)
class Directory:
    """The Administrative LDAP credentials typed on the bulk form: used for this request's
    look-ups only, never stored. config: the portal's LDAP settings (None: no directory)."""
    config: object
    bind: str
    password: str


@dataclass
class Row:
    """One checked row, as staged: a local user's name or a directory user's pick token."""
    row: int
    username: str
    usage_count: int | None = None
    lang: str = DEFAULT_LOCALIZATION
    send_to_user: bool = False
    alternative_email: str | None = None
    ldap_user: str | None = None    # the directory user's pick token
    management: str | None = None   # the row's own, else the batch's; None: the profile's
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Preview:
    rows: list[Row]
    problems: list[Problem]           # every problem, batch-wide ones (row 0) first
    total: int                        # the licenses the batch reserves
    remaining: int                    # the licenses that remain now

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)

    @property
    def bad_rows(self) -> int:
        return sum(1 for row in self.rows if not row.ok)


# Parsing: bytes → rows (dicts of the columns, with their row number)

def parse_csv(data: bytes) -> list[dict]:
    """The file's rows as {"row": n, column: text}; raises BulkError naming every problem of the
    file itself (size, encoding, header, formula cells, row count). Rows are not checked here."""
    if len(data) > MAX_BYTES:
        raise BulkError([Problem(0, "", f"The file is larger than {MAX_BYTES // 2**20} MB; "
                                        "split it into smaller files.")])
    text = _decode(data)
    if not text.strip():
        raise BulkError([Problem(0, "", "The file is empty: it needs the header row "
                                        f"({TEMPLATE.strip()}) and one row per QR code.")])
    header_line = text.splitlines()[0]
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader)]
    problems = _header_problems(header)
    if problems:
        raise BulkError(problems)
    rows = []
    for cells in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in cells):
            continue
        if len(rows) == MAX_ROWS:
            raise BulkError([Problem(0, "", f"The file has more than {MAX_ROWS:,} rows; split "
                                            f"it into batches of at most {MAX_ROWS:,}.")])
        if len(cells) > len(header):
            problems.append(Problem(number, "", f"The row has {len(cells)} cells, the header "
                                                f"{len(header)}."))
        rows.append({"row": number, **dict(zip(header, cells))})
    if problems:
        raise BulkError(problems)
    if not rows:
        raise BulkError([Problem(0, "", "The file has the header row but no QR code rows.")])
    return rows


def _decode(data: bytes) -> str:
    try:
        return codecs.decode(data.removeprefix(codecs.BOM_UTF8), "utf-8")
    except UnicodeDecodeError as error:
        offset = error.start + (len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0)
        row = data[:offset].count(b"\n") + 1
        raise BulkError([Problem(row, "", f"The file is not UTF-8: byte {offset:,} (in row "
                                          f"{row}) is not valid UTF-8. Save the file as "
                                          "“CSV UTF-8”.")]) from None


def _header_problems(header: list[str]) -> list[Problem]:
    problems = [Problem(1, name or f"column {index + 1}",
                        f"Unknown column; the columns are {', '.join(COLUMNS)}.")
                for index, name in enumerate(header) if name not in COLUMNS]
    problems += [Problem(1, name, "This column appears twice.")
                 for name in sorted({name for name in header if header.count(name) > 1})]
    if "username" not in header:
        problems.append(Problem(1, "username", "The header row needs the column username (the "
                                               f"first row is the header: {TEMPLATE.strip()})."))
    return problems


# Preview: every row checked with the wizard's own rules; nothing written

def preview_rows(rows: Iterable[dict], *, network_profile_id, otp_validity,
                 created_by: AdminUser | None, server_url: str,
                 directory: Directory | None = None, management: str | None = None) -> Preview:
    """Check every row as the wizard checks one QR code (validate_request), plus what only a
    batch has: duplicate users and the total of licenses. rows: dicts of COLUMNS (text, or
    int/bool from JSON) with an optional "row" number. management: the batch's choice for rows
    whose cell is empty (None: the network profile's). Writes nothing. The settings every
    row is checked against (Companion, OTP policy, profile, localizations, license figures)
    are read once for the whole preview."""
    with repeated_reads():
        return _preview(list(rows), network_profile_id, otp_validity, created_by, server_url,
                        directory, management)


def _preview(rows, network_profile_id, otp_validity, created_by, server_url,
             directory, management=None) -> Preview:
    problems = _batch_problems(network_profile_id, otp_validity, len(rows))
    if management is not None and management not in tuple(Management):
        problems.append(Problem(0, "management", "Choose Companion or Android Device Policy."))
        management = None
    checked, first_row = [], {}
    found, ambiguous = _directory_users(rows, directory, problems)
    for index, raw in enumerate(rows, start=1):
        row = _read_row(raw, index, found, management, ambiguous)
        key = row.username.strip().lower()
        if key and key in first_row:
            row.problems.append(Problem(row.row, "username", f"Duplicate row: user "
                                        f"'{row.username}' is already in row {first_row[key]}."))
        elif key:
            first_row[key] = row.row
        if not row.problems or all(problem.column in ("usage_count", "send_to_user",
                                                      "management")
                                   for problem in row.problems):
            _check(row, network_profile_id, otp_validity, created_by, server_url, directory,
                   problems)
        checked.append(row)
    figures = seats.figures()
    total = sum(_licenses(row) for row in checked)
    running = 0
    for row in checked:
        running += _licenses(row)
        if running > figures.remaining and row.ok:
            row.problems.append(Problem(row.row, "usage_count", f"Too many licenses: the batch "
                                        f"reaches {running:,} here, {figures.remaining:,} "
                                        "remain."))
            break
    if total > figures.remaining:
        problems.append(Problem(0, "usage_count", f"The batch reserves {total:,} licenses; "
                                                  f"{figures.remaining:,} remain."))
    problems += [problem for row in checked for problem in row.problems]
    return Preview(checked, _unique(problems), total, figures.remaining)


def _licenses(row: Row) -> int:
    """The licenses a row reserves (0 for a Usage Count that is refused anyway)."""
    count = row.usage_count
    return count if isinstance(count, int) and 1 <= count <= MAX_USAGE_COUNT else 0


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _batch_problems(network_profile_id, otp_validity, count: int) -> list[Problem]:
    problems = []
    if network_profiles.get(network_profile_id) is None:
        problems.append(Problem(0, "network_profile", "Choose one of the saved network "
                                                      "profiles."))
    if count == 0:
        problems.append(Problem(0, "", "There are no rows: add one row per QR code."))
    elif count > MAX_ROWS:
        problems.append(Problem(0, "", f"{count:,} rows: a batch has at most {MAX_ROWS:,}."))
    return problems


def _read_row(raw: dict, index: int, found: dict, management: str | None = None,
              ambiguous: dict | None = None) -> Row:
    number = raw.get("row") if isinstance(raw.get("row"), int) else index
    row = Row(number, str(raw.get("username") or "").strip())
    for name in raw:
        if name not in COLUMNS and name != "row":
            row.problems.append(Problem(number, str(name), "Unknown column; the columns are "
                                                           f"{', '.join(COLUMNS)}."))
    formulas = [Problem(number, str(name), "A cell may not start with =, +, -, @, a tab or a "
                                           "line break (spreadsheet formulas are refused).")
                for name, value in raw.items()
                if isinstance(value, str) and value.startswith(FORMULA_STARTS)]
    if formulas:
        row.problems += formulas
        return row
    if not row.username:
        row.problems.append(Problem(number, "username", "Enter the user's name."))
    elif find_local_user(row.username) is None:
        row.ldap_user = found.get(row.username.lower())
        if row.username.lower() in (ambiguous or {}):
            row.problems.append(Problem(number, "username", ambiguous[row.username.lower()]))
    row.usage_count = _usage_count(raw.get("usage_count"), row)
    lang = str(raw.get("localization") or "").strip() or DEFAULT_LOCALIZATION
    known = localizations.find(lang)
    row.lang = known.tag if known is not None else lang
    send = raw.get("send_to_user")
    if isinstance(send, bool):
        row.send_to_user = send
    elif str(send if send is not None else "").strip().lower() in _YES + _NO:
        row.send_to_user = str(send or "").strip().lower() in _YES
    else:
        row.problems.append(Problem(number, "send_to_user", "Write yes or no (or true/false, "
                                                            "1/0)."))
    row.alternative_email = str(raw.get("alternative_address") or "").strip() or None
    row.management = _management(raw.get("management"), row) or management
    return row


def _management(value, row: Row) -> str | None:
    """The row's own Management, or None for an empty cell (the batch's choice then)."""
    words = " ".join(str(value if value is not None else "").replace("_", " ")
                     .replace("-", " ").lower().split())
    if not words:
        return None
    if words in _MANAGEMENT_WORDS:
        return _MANAGEMENT_WORDS[words]
    row.problems.append(Problem(row.row, "management", f"'{str(value)[:30]}' is not a "
                                                       f"Management. {MANAGEMENT_CHOICE}"))
    return None


def management_label(row: Row, profile) -> str:
    """The Management a row's QR code gets: its own (or the batch's), else the profile's."""
    value = row.management or (profile.management if profile is not None else None) \
        or Management.COMPANION
    return MANAGEMENT_LABELS.get(value, value)


def _usage_count(value, row: Row) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 1
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) < 10:
        return int(text)
    row.problems.append(Problem(row.row, "usage_count", f"'{text[:20]}' is not a whole number; "
                                                        f"enter 1 to {MAX_USAGE_COUNT:,}."))
    return None


def request_for(row: Row, network_profile_id, otp_validity) -> QrCodeRequest:
    """The wizard's request for one row: Automatic Provisioning with the batch's profile, and
    the row's Management (when it has none, the profile's)."""
    management = {"management": row.management, "management_given": True} \
        if row.management else {}
    return QrCodeRequest(option=EnrollmentOption.AUTO, lang=row.lang, network=NetworkType.WIFI,
                         username=None if row.ldap_user else row.username,
                         ldap_user=row.ldap_user, usage_count=row.usage_count,
                         send_to_user=row.send_to_user, alternative_email=row.alternative_email,
                         otp_validity=otp_validity, network_profile_id=network_profile_id,
                         **management)


def _check(row: Row, network_profile_id, otp_validity, created_by, server_url, directory,
           problems: list[Problem]) -> None:
    if row.usage_count is None:  # already named; check the rest with a valid count
        request = dataclasses.replace(request_for(row, network_profile_id, otp_validity),
                                      usage_count=1)
    else:
        request = request_for(row, network_profile_id, otp_validity)
    errors = validate_request(request, server_url=server_url, created_by=created_by)
    for name, message in errors.items():
        if name in _BATCH_FIELDS:
            problems.append(Problem(0, _BATCH_FIELDS[name], message))
        elif name in ("username", "ldap_user") and not row.ldap_user and row.username:
            hint = "" if directory is not None else (
                " A directory user is found only with the Administrative LDAP credentials: "
                "enter them and preview again.")
            row.problems.append(Problem(row.row, "username", f"Unknown user '{row.username}': "
                                        f"no local or directory user has this name.{hint}"))
        elif name == "usage_count" and _only_license_shortage({name: message}, row):
            continue  # too few licenses for this row: the batch's total says it once
        elif name == "usage_count" and row.usage_count is not None \
                and row.usage_count > MAX_USAGE_COUNT:
            row.problems.append(Problem(row.row, "usage_count", f"At most {MAX_USAGE_COUNT:,} "
                                        "per QR code."))
        else:
            row.problems.append(Problem(row.row, _COLUMN_OF.get(name, ""), message))


def _directory_users(rows: list[dict], directory: Directory | None,
                     problems: list[Problem]) -> tuple[dict[str, str], dict[str, str]]:
    """Pick tokens of the directory users named by rows that are not local users, looked up
    by exact name with the typed credentials (used here only, one bind for all): {lowercased
    name: token}, and {lowercased name: why it is not picked} for names several directory
    entries share (picking one of them would be a guess)."""
    if directory is None or directory.config is None:
        return {}, {}
    names = {str(raw.get("username") or "").strip() for raw in rows}
    names = sorted(name for name in names if name and find_local_user(name) is None)
    if not names:
        return {}, {}
    end_transaction()  # only read so far: the directory answers outside a transaction
    try:
        users, ambiguous = ldap.find_users_named(directory.config, directory.bind,
                                                 directory.password, names)
    except ldap.DirectoryError as error:
        problems.append(Problem(0, "ldap_bind", f"The directory search failed: {error.cause}"))
        return {}, {}
    return ({name: pick_token(user) for name, user in users.items()},
            {name: f"{len(dns)} directory entries have this user name ({'; '.join(dns[:3])}"
                   f"{'; …' if len(dns) > 3 else ''}), and a QR code is for one person: make "
                   "the name unique in the directory or narrow the LDAP user filter."
             for name, dns in ambiguous.items()})


# Staging and creating the batch

def stage(preview: Preview, *, name: str | None, network_profile_id, otp_validity,
          created_by: AdminUser | None, replace_earlier: bool = True) -> StagedBatch:
    """Keep a clean preview's rows for Confirm (no QR code, no license yet). Commits.
    replace_earlier=False: keep the same creator's unconfirmed previews (the Admin API, whose
    calls may run at once, confirms each at once)."""
    if not preview.ok:
        raise BulkError(preview.problems or [Problem(0, "", "There are no rows.")])
    if replace_earlier:
        # An admin's earlier previews that were never confirmed are dropped: one at a time.
        db.session.execute(sa.delete(StagedBatch).where(
            StagedBatch.batch_id.is_(None),
            StagedBatch.created_by_id == (created_by.id if created_by else None)
            if created_by else StagedBatch.created_by_id.is_(None)))
    staged = StagedBatch(
        public_id=secrets.token_urlsafe(12), name=(name or "")[:255] or None,
        network_profile_id=int(network_profile_id),
        otp_validity=None if otp_validity is None else str(otp_validity),
        rows_json=json.dumps([_staged_values(row) for row in preview.rows]),
        row_count=len(preview.rows), total=preview.total,
        created_by_id=created_by.id if created_by else None)
    db.session.add(staged)
    db.session.commit()
    return staged


def _staged_values(row: Row) -> dict:
    values = dataclasses.asdict(row)
    values.pop("problems")
    return values


def staged_rows(staged: StagedBatch) -> list[Row]:
    return [Row(**values) for values in json.loads(staged.rows_json)]


def find_staged(public_id: str, created_by: AdminUser | None) -> StagedBatch | None:
    """A preview not yet confirmed, only for the admin who made it."""
    if not isinstance(public_id, str) or not 8 <= len(public_id) <= 32:
        return None
    return db.session.scalar(sa.select(StagedBatch).where(
        StagedBatch.public_id == public_id, StagedBatch.batch_id.is_(None),
        StagedBatch.created_by_id == (created_by.id if created_by else None)))


def start_batch(staged: StagedBatch, *, created_by: AdminUser | None,
                created_by_name: str | None = None) -> Batch:
    """The batch of a confirmed preview, state preparing; run_batch makes its QR codes. Commits;
    a preview is confirmed once (a second Confirm finds it taken)."""
    batch = Batch(public_id=secrets.token_urlsafe(9), name=staged.name, state="preparing",
                  row_count=staged.row_count, done=0,
                  network_profile_id=staged.network_profile_id,
                  created_by_id=created_by.id if created_by else None,
                  created_by_name=created_by.username if created_by
                  else created_by_name or "operator")
    db.session.add(batch)
    db.session.flush()
    taken = db.session.execute(sa.update(StagedBatch).where(
        StagedBatch.id == staged.id, StagedBatch.batch_id.is_(None)).values(batch_id=batch.id)
        .execution_options(synchronize_session=False))
    if taken.rowcount != 1:
        db.session.rollback()
        raise BulkError([Problem(0, "", "This preview was confirmed already.")])
    db.session.commit()
    return batch


class _GoogleRefused(Exception):
    """Google did not make a row's enrollment token: the batch fails."""

    def __init__(self, row: int, error: AmapiError):
        super().__init__(error.message)
        self.row, self.message = row, error.message


def run_batch(batch_id: int, *, server_url: str,
              progress: Callable[[int, int], None] | None = None,
              actor: tuple[str, str] | None = None) -> Batch:
    """Make the batch's QR codes: prepared one by one outside any transaction (batch.done
    committed every PROGRESS_EVERY rows), Android Device Policy rows' tokens made at Google
    meanwhile, then inserted in one transaction with one conditional reservation of all their
    licenses. On any refusal (Google's too) nothing is saved, the tokens made are given back,
    and the batch is marked failed with the reason. Returns the batch."""
    batch = db.session.get(Batch, batch_id)
    staged = db.session.scalar(sa.select(StagedBatch).where(StagedBatch.batch_id == batch_id))
    if batch is None or batch.state != "preparing":
        return batch
    if staged is None:
        return _fail(batch, "Its rows are gone; upload the file again.")
    created_by = db.session.get(AdminUser, batch.created_by_id) if batch.created_by_id else None
    profile_id, otp_validity = staged.network_profile_id, _validity(staged.otp_validity)
    rows, shared = staged_rows(staged), Preparation.current()
    _keep(created_by, shared.companion_config, shared.policy)
    made = []  # what Google made for the batch's Android Device Policy rows
    try:
        with repeated_reads():
            prepared, problems = _prepare_rows(batch, rows, profile_id, otp_validity,
                                               created_by, server_url, shared, progress, made)
        if problems:
            batch = _fail(batch, "Rows changed since the preview: " + "; ".join(problems[:5]))
        else:
            batch = _insert(batch, staged, prepared, created_by, actor)
    except _GoogleRefused as refused:
        batch = _fail(batch, GOOGLE_REFUSED.format(row=refused.row, message=refused.message))
    finally:
        if made:
            db.session.rollback()
            if db.session.scalar(sa.select(Batch.state).where(Batch.id == batch_id)) \
                    != "created":
                _give_back(made)
    return batch


def _prepare_rows(batch, rows, profile_id, otp_validity, created_by, server_url, shared,
                  progress, made: list):
    prepared, problems, connection = [], [], None
    reported = time.monotonic()
    for index, row in enumerate(rows, start=1):
        request = request_for(row, profile_id, otp_validity)
        errors = validate_request(request, server_url=server_url, created_by=created_by)
        errors.pop("usage_count", None) if _only_license_shortage(errors, row) else None
        google = None
        if errors:
            problems.append(f"row {row.row}: " + " ".join(errors.values()))
        elif not problems:  # once a row fails, the others are only checked
            resolved, profile = resolve(request)
            public_id = None
            if resolved.management == Management.ADP:
                resolved = _recorded(resolved, profile)
                if connection is None:
                    connection = _connect(row)
                public_id = secrets.token_urlsafe(9)
            _keep(resolved.user, profile)
            # The reads end here: SQLite's BEGIN IMMEDIATE takes the one write lock for every
            # transaction, so none stays open while Google is asked or the QR code is prepared.
            db.session.rollback()
            if public_id is not None:
                google = _token(row, resolved, public_id, server_url, shared, connection)
                made.append(google)
                _hold(google)
            prepared.append((request, prepare_qr_code(
                resolved, profile, created_by=created_by, server_url=server_url,
                shared=shared, public_id=public_id, google=google)))
        if index % PROGRESS_EVERY == 0 or index == len(rows) \
                or (google is not None and time.monotonic() - reported >= PROGRESS_SECONDS):
            _progress(batch, index)
            reported = time.monotonic()
            if progress:
                progress(index, len(rows))
    return prepared, problems


def _hold(google) -> None:
    """Owe the deletion of a token just made, due after ORPHAN_AFTER (committed now)."""
    db.session.add(AmapiTask(kind=AmapiTaskKind.DELETE_TOKEN, resource=google.token_name,
                             next_attempt_at=utcnow() + ORPHAN_AFTER))
    db.session.commit()


def _held(names: list[str]):
    """The held deletions of these tokens, not yet done."""
    return sa.and_(AmapiTask.kind == AmapiTaskKind.DELETE_TOKEN, AmapiTask.resource.in_(names),
                   AmapiTask.done_at.is_(None))


def _give_back(made: list) -> None:
    """The batch is not saved: its tokens are deleted at Google now (or retried)."""
    db.session.rollback()
    db.session.execute(sa.update(AmapiTask).where(_held([g.token_name for g in made]))
                       .values(next_attempt_at=utcnow())
                       .execution_options(synchronize_session=False))
    device_policy.give_back(*made)  # commits; deleted at Google now, or retried by the worker


def _recorded(request: QrCodeRequest, profile) -> QrCodeRequest:
    """A directory user is recorded (and committed) before Google is asked for a token naming
    them (user.accountIdentifier is their portal id), as the wizard does."""
    if request.user is None or request.user.id is not None or not request.ldap_user:
        return request
    user = record_picked_user(request.ldap_user)
    db.session.commit()
    for thing in (user, profile):  # loaded again before they are detached
        if thing is not None and thing in db.session:
            db.session.refresh(thing)
    return dataclasses.replace(request, user=user)


def _connect(row: Row):
    try:
        connection = connect()
    except AmapiError as error:
        raise _GoogleRefused(row.row, error) from None
    _keep(connection.settings)  # read again by each token, after the reads end
    return connection


def _token(row: Row, request: QrCodeRequest, public_id: str, server_url: str, shared,
           connection):
    try:
        return google_enrollment(request, public_id, server_url=server_url,
                                 policy=shared.policy, connection=connection)
    except AmapiError as error:
        raise _GoogleRefused(row.row, error) from None


def _keep(*objects) -> None:
    """Detach these loaded objects from the session, so that ending a transaction does not
    expire them (reading an expired attribute would open a transaction again)."""
    for thing in objects:
        if sa.inspect(thing, raiseerr=False) is not None and thing in db.session:
            db.session.expunge(thing)


def _only_license_shortage(errors: dict, row: Row) -> bool:
    # The one conditional reservation of the whole batch decides about licenses.
    return set(errors) == {"usage_count"} and isinstance(row.usage_count, int) \
        and 1 <= row.usage_count <= MAX_USAGE_COUNT


def _validity(text: str | None):
    if text is None or text == UNLIMITED:
        return text
    return int(text)


def _progress(batch: Batch, done: int) -> None:
    db.session.execute(sa.update(Batch).where(Batch.id == batch.id)
                       .values(done=min(done, batch.row_count), updated_at=utcnow())
                       .execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(batch)


def _insert(batch: Batch, staged: StagedBatch, prepared: list, created_by,
            actor: tuple[str, str] | None = None) -> Batch:
    """actor: (actor_type, name) for the audit log when no admin made it (an API token)."""
    expire_due()  # commits: expired reservations free their licenses first, as one QR does
    total = sum(qr.usage_count or 0 for _, qr in prepared)
    if not seats.reserve(total):
        remaining = seats.figures().remaining
        db.session.rollback()
        return _fail(batch, f"Too few licenses: the batch reserves {total:,} licenses and only "
                            f"{remaining:,} remain now (taken meanwhile). Nothing was saved.")
    pending = []
    for request, qr_code in prepared:
        resolved, _ = resolve(request, record=True)
        qr_code.batch_id = batch.id
        add_qr_code(qr_code, resolved, created_by=created_by, pending=False, actor=actor,
                    batch=batch.public_id)
        pending += pending_rows(qr_code)
    if pending:
        db.session.execute(sa.insert(PendingEnrollment), pending)
    tokens = [qr.enrollment_token_name for _, qr in prepared if qr.enrollment_token_name]
    if tokens:  # saved with their QR codes: no longer owed to Google
        db.session.execute(sa.delete(AmapiTask).where(_held(tokens))
                           .execution_options(synchronize_session=False))
    db.session.execute(sa.update(Batch).where(Batch.id == batch.id).values(
        state="created", done=batch.row_count, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.delete(staged)
    actor_type, actor_name = actor or (("admin", created_by.username) if created_by
                                       else ("operator", "operator"))
    record("batch.create", actor_type=actor_type, actor=actor_name, target=batch.public_id,
           qr_codes=len(prepared), licenses=total, network_profile=batch.network_profile_id,
           android_device_policy=sum(1 for _, qr in prepared if qr.management == Management.ADP))
    db.session.commit()
    db.session.refresh(batch)
    return batch


def _fail(batch: Batch, reason: str) -> Batch:
    db.session.rollback()
    db.session.execute(sa.update(Batch).where(Batch.id == batch.id).values(
        state="failed", error=reason, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.execute(sa.delete(StagedBatch).where(StagedBatch.batch_id == batch.id))
    db.session.commit()
    db.session.refresh(batch)
    return batch


def create_batch(rows: Iterable[dict], *, network_profile_id, otp_validity,
                 created_by: AdminUser | None, server_url: str, name: str | None = None,
                 directory: Directory | None = None,
                 progress: Callable[[int, int], None] | None = None,
                 management: str | None = None) -> Batch:
    """Preview, stage, start and run a batch at once (the command and the Admin API): raises
    BulkError with every problem and nothing saved, or returns the batch (created, or failed
    with its reason when licenses were taken meanwhile)."""
    preview = preview_rows(rows, network_profile_id=network_profile_id,
                           otp_validity=otp_validity, created_by=created_by,
                           server_url=server_url, directory=directory,
                           management=management)
    if not preview.ok:
        raise BulkError(preview.problems)
    staged = stage(preview, name=name, network_profile_id=network_profile_id,
                   otp_validity=otp_validity, created_by=created_by)
    batch = start_batch(staged, created_by=created_by)
    return run_batch(batch.id, server_url=server_url, progress=progress)


# The batch afterwards

def display_state(batch: Batch) -> str:
    """preparing, created, failed, or interrupted (preparing, but no progress for STALE_AFTER:
    its worker died)."""
    if batch.state == "preparing" and batch.updated_at < utcnow() - STALE_AFTER:
        return "interrupted"
    return batch.state


def restart(batch: Batch) -> bool:
    """An interrupted batch may be run again (its rows are still staged): True if it may."""
    if display_state(batch) != "interrupted":
        return False
    marked = db.session.execute(sa.update(Batch).where(
        Batch.id == batch.id, Batch.state == "preparing", Batch.updated_at == batch.updated_at)
        .values(done=0, updated_at=utcnow()).execution_options(synchronize_session=False))
    db.session.commit()
    db.session.refresh(batch)
    return marked.rowcount == 1


def google_refusal(batch: Batch) -> tuple[int, str] | None:
    """(row, Google's sentence) when the batch failed because Google did not make an Android
    Device Policy row's enrollment token; None otherwise."""
    found = _GOOGLE_REFUSED.fullmatch(batch.error or "") if batch.state == "failed" else None
    return (int(found.group(1)), found.group(2)) if found else None


def find_batch(public_id: str) -> Batch | None:
    if not isinstance(public_id, str) or not 8 <= len(public_id) <= 32 \
            or not public_id.replace("-", "").replace("_", "").isalnum():
        return None
    return db.session.scalar(sa.select(Batch).where(Batch.public_id == public_id))


def batches() -> sa.Select:
    """Every batch, newest first."""
    return sa.select(Batch).order_by(Batch.created_at.desc(), Batch.id.desc())


def batch_qr_codes(batch: Batch) -> sa.Select:
    return sa.select(QrCode).where(QrCode.batch_id == batch.id).order_by(QrCode.id)


def active_qr_codes(batch: Batch) -> list[QrCode]:
    return list(db.session.scalars(batch_qr_codes(batch).where(QrCode.revoked_at.is_(None))))


def revoke_batch(batch: Batch, *, revoked_by: AdminUser | None) -> tuple[int, int]:
    """Revoke every active QR code of the batch in one transaction, each as a single Revoke
    does (revoke_qr_code, its licenses freed and audited). Returns (QR codes, licenses freed).

    The Google tokens (or sign-in details) of its Android Device Policy QR codes are owed in
    that transaction and tried right after it (pay_google_after); a failure leaves them owed
    to the worker and never undoes the revocation."""
    revoked = released = 0
    owed = []
    for qr_code in active_qr_codes(batch):
        try:
            released += revoke_qr_code(qr_code, revoked_by=revoked_by, commit=False)
            revoked += 1
        except AlreadyRevoked:
            continue  # revoked meanwhile by someone else: nothing left to do for it
        if qr_code.management == Management.ADP:
            owed.append(qr_code.id)
    record("batch.revoke", actor_type="admin" if revoked_by else "operator",
           actor=revoked_by.username if revoked_by else "operator", target=batch.public_id,
           qr_codes=revoked, released=released)
    db.session.commit()
    if owed:
        pay_google_after(owed)
    return revoked, released


def pay_google_after(qr_code_ids: list[int]) -> threading.Thread | None:
    """What the batch's revocation owes Google, tried now: in a thread of this process when
    BULK_IN_BACKGROUND (a batch of thousands owes as many deletions, and the admin is answered
    at once), else before returning. The worker retries whatever is still owed."""
    if not current_app.config.get("BULK_IN_BACKGROUND", True):
        pay_google_soon(qr_code_ids)
        return None
    app = current_app._get_current_object()

    def work():
        with app.app_context():
            try:
                pay_google_soon(qr_code_ids)
            finally:
                db.session.remove()
    thread = threading.Thread(target=work, name="bulk-revoke-google", daemon=True)
    thread.start()
    return thread


def totals(batch: Batch) -> dict[str, int]:
    """The batch's QR codes (all, active, revoked) and their pending enrollments (waiting, used)."""
    qr_codes = db.session.execute(sa.select(
        sa.func.count(), sa.func.count(QrCode.revoked_at))
        .where(QrCode.batch_id == batch.id)).one()
    state = PendingEnrollment.current_state_at(utcnow())
    pending = dict(db.session.execute(
        sa.select(state, sa.func.count()).select_from(PendingEnrollment)
        .join(QrCode, QrCode.id == PendingEnrollment.qr_code_id)
        .where(QrCode.batch_id == batch.id).group_by(state)).all())
    return {"qr_codes": qr_codes[0], "revoked": qr_codes[1],
            "active": qr_codes[0] - qr_codes[1], "pending": pending.get("pending", 0),
            "used": pending.get("used", 0)}


def mail_statuses(qr_code_ids: list[int]) -> dict[int, dict[str, int]]:
    """{qr_code_id: {outbox status: messages}} for these QR codes (one query)."""
    found: dict[int, dict[str, int]] = {}
    if not qr_code_ids:
        return found
    for qr_code_id, status, number in db.session.execute(
            sa.select(OutboxMessage.qr_code_id, OutboxMessage.status, sa.func.count())
            .where(OutboxMessage.qr_code_id.in_(qr_code_ids))
            .group_by(OutboxMessage.qr_code_id, OutboxMessage.status)):
        found.setdefault(qr_code_id, {})[status] = number
    return found


def start_running(batch: Batch, *, server_url: str,
                  actor: tuple[str, str] | None = None) -> Batch:
    """run_batch in a thread when BULK_IN_BACKGROUND (on; the tests' one connection turns it
    off: no other thread sees their rows), else at once. Returns the batch as it is now."""
    if current_app.config.get("BULK_IN_BACKGROUND", True):
        run_in_background(current_app._get_current_object(), batch.id, server_url, actor)
        return batch
    return run_batch(batch.id, server_url=server_url, actor=actor)


def run_in_background(app, batch_id: int, server_url: str,
                      actor: tuple[str, str] | None = None) -> threading.Thread:
    """run_batch in a thread of this process (the request answers at once; the page polls the
    batch's progress). A worker that dies leaves the batch preparing: after STALE_AFTER without
    progress the page calls it interrupted and offers to run it again."""
    def work():
        with app.app_context():
            try:
                run_batch(batch_id, server_url=server_url, actor=actor)
            except Exception:  # noqa: BLE001 — the batch says it failed; the log has why
                logger.exception("bulk batch %s failed", batch_id)
                db.session.rollback()
                batch = db.session.get(Batch, batch_id)
                if batch is not None and batch.state == "preparing":
                    _fail(batch, "An unexpected error stopped the batch; nothing was saved.")
            finally:
                db.session.remove()
    thread = threading.Thread(target=work, name=f"bulk-batch-{batch_id}", daemon=True)
    thread.start()
    return thread
