"""The Pending list: QR codes newest first, searchable, with their pending enrollments' states.

A page is read in steps whose cost does not grow with the list: the keys of the page's QR codes
(from one index), then those QR codes with their users, then the state counts of their pending
enrollments only.
"""
import sqlalchemy as sa

from portal.accounts.models import PortalUser
from portal.database import db, utcnow
from portal.enrollment.models import Device, PendingEnrollment, QrCode
from portal.provisioning import search
from portal.settings import companion
from portal.vocabulary import EnrollmentOption, PendingState

ORDER = (QrCode.created_at, QrCode.id)  # newest first; the keyset of the list
_NO_COUNTS = (0, 0, 0, 0)
_STATES = tuple(PendingState)


def qr_code_keys(query: str = "", *, state: str | None = None,
                 option: str | None = None, batch_id: int | None = None) -> sa.Select:
    """(created_at, id) of the QR codes matching the search of Name, QR ID, user, SSID and
    alternative address (case-insensitive, anywhere in the text), of a list state (STATES)
    and an option (EnrollmentOption), and of a bulk batch, when given; to be paged by ORDER.

    Every column it reads is in ix_qr_codes_listing, so paging, and on SQLite the search,
    never read the QR rows themselves; on PostgreSQL a selective search starts from the
    trigram indexes ix_qr_codes_search and ix_portal_users_search instead."""
    statement = sa.select(QrCode.created_at, QrCode.id)
    if query:
        statement = statement.where(_matches(query))
    if state in STATES:
        statement = statement.where(_in_state(state, utcnow()))
    if state == STALE:
        statement = statement.where(_in_state("active", utcnow()), _stale_keys())
    if option in tuple(EnrollmentOption):
        statement = statement.where(QrCode.option == option)
    if batch_id is not None:
        statement = statement.where(QrCode.batch_id == batch_id)
    return statement


def filters_from(args) -> dict[str, str]:
    """The list's filters from a request's arguments (unknown values: no filter), as
    qr_code_keys takes them."""
    state, option = args.get("state"), args.get("option")
    return {"state": state if state in STATES + (STALE,) else None,
            "option": option if option in tuple(EnrollmentOption) else None}


# The Pending list's states of a QR code. active: not revoked and a device may still enroll
# (Self Service Portal: always; Automatic: a pending enrollment is waiting and valid);
# exhausted: automatic, none waiting, none expired (all used or deleted); expired: automatic,
# none waiting, some expired; revoked.
STATES = ("active", "exhausted", "expired", "revoked")


def _pending_exists(*conditions) -> sa.Exists:
    return sa.exists().where(PendingEnrollment.qr_code_id == QrCode.id, *conditions)


def _in_state(state: str, now) -> sa.ColumnElement[bool]:
    if state == "revoked":
        return QrCode.revoked_at.is_not(None)
    waiting = _pending_exists(PendingEnrollment.state == PendingState.PENDING, sa.or_(
        PendingEnrollment.expires_at.is_(None), PendingEnrollment.expires_at >= now))
    expired = _pending_exists(sa.or_(
        PendingEnrollment.state == PendingState.EXPIRED,
        sa.and_(PendingEnrollment.state == PendingState.PENDING,
                PendingEnrollment.expires_at < now)))
    auto = sa.and_(QrCode.revoked_at.is_(None), QrCode.option == EnrollmentOption.AUTO, ~waiting)
    return {"active": sa.and_(QrCode.revoked_at.is_(None),
                              sa.or_(QrCode.option == EnrollmentOption.SSP, waiting)),
            "exhausted": sa.and_(auto, ~expired),
            "expired": sa.and_(auto, expired)}[state]


# Stale: an active QR code whose payload names another Companion component or checksum than
# the current settings: devices would download the Companion and refuse it. It is a mark on
# an active row (and a filter of the list), not a state of its own.
STALE = "stale"


def _stale(config) -> sa.ColumnElement[bool]:
    if config is None:
        return sa.false()
    current = QrCode.companion_values(config)
    return sa.or_(QrCode.companion_component != current["companion_component"],
                  QrCode.companion_checksum != current["companion_checksum"])


def _stale_keys() -> sa.ColumnElement[bool]:
    """The Stale filter's condition. The unrevoked stale QR codes are first read from the
    narrow entries of ix_qr_codes_companion: when there are few (usually none), the list reads
    only those; when many (just after a Companion change), scanning in list order fills a page
    at once."""
    stale = _stale(companion.current())
    ids = db.session.scalars(sa.select(QrCode.id).where(QrCode.revoked_at.is_(None), stale)
                             .limit(search.FEW + 1)).all()
    return QrCode.id.in_(ids) if len(ids) <= search.FEW else stale


def staleness(qr: QrCode, state: str, config) -> str | None:
    """What changed since an active QR code was made ("checksum", "component", or
    "component and checksum"); None when it is not stale (or not known: made before
    migration 0013 could read it)."""
    if state != "active" or config is None or qr.companion_checksum is None:
        return None
    current = QrCode.companion_values(config)
    changed = [name for name, column in (("component", "companion_component"),
                                         ("checksum", "companion_checksum"))
               if getattr(qr, column) != current[column]]
    return " and ".join(changed) or None


def list_state(qr: QrCode, pending: int, expired: int) -> str:
    """The row's state as _in_state defines it, from the counts the list has read."""
    if qr.is_revoked:
        return "revoked"
    if qr.option == EnrollmentOption.SSP or pending:
        return "active"
    return "expired" if expired else "exhausted"


def _matches(query: str):
    if "\x00" in query:
        # No stored text holds NUL (PostgreSQL's text cannot), and no database searches for
        # one: FTS5 reads a query only up to it, SQLite's LIKE matches every row, psycopg
        # refuses to send it.
        return sa.false()
    pattern = "%" + query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    sqlite = db.session.get_bind().dialect.name == "sqlite"
    if sqlite and len(query) >= search.MIN_LENGTH:
        # A search that matches few rows: the trigram FTS5 tables of migration 0006 name
        # them without reading every row. One that matches many: the scan below fills a
        # page after a few rows and stops.
        qr_ids = search.few_matches(search.qr_code_search, query)
        user_ids = search.few_matches(search.portal_user_search, query)
        if qr_ids is not None and user_ids is not None:
            return sa.or_(QrCode.id.in_(qr_ids), QrCode.user_id.in_(user_ids))
    if sqlite:  # too short for trigrams, or matching many rows
        users = sa.select(PortalUser.id).where(sa.or_(*(
            _contains(column, pattern, sqlite)
            for column in (PortalUser.username, PortalUser.display_name, PortalUser.email))))
        of_users = QrCode.user_id.in_(users)
    else:
        # One trigram index scan of the lower-case search_key (three ILIKEs would make the
        # planner read every user); = ANY(ARRAY(...)) lets it combine the users' QR codes
        # with the trigram scans of qr_codes (a BitmapOr).
        users = sa.select(PortalUser.id).where(
            PortalUser.search_key.like(pattern.lower(), escape="\\"))
        of_users = QrCode.user_id == sa.any_(sa.func.array(users.scalar_subquery()))
    return sa.or_(*(_contains(column, pattern, sqlite)
                    for column in (QrCode.public_id, QrCode.wifi_ssid, QrCode.alternative_email,
                                   QrCode.name)),
                  of_users)


def _contains(column, pattern: str, sqlite: bool):
    # SQLite's LIKE ignores ASCII case by itself (and SQLite's lower() knows only ASCII too):
    # the lower() that ilike() adds there would only cost a function call per row and column.
    # PostgreSQL's ILIKE is what its trigram indexes answer.
    if sqlite:
        return column.like(pattern, escape="\\")
    return column.ilike(pattern, escape="\\")


def qr_code_rows(keys) -> list[tuple]:
    """(QrCode, username, pending, used, expired, revoked, devices, state, stale) for the keys'
    QR codes, in the keys' order; devices: how many enrolled through a Self Service Portal QR
    code (None for automatic ones); stale: staleness(). Three queries (and the Companion
    settings' row), whatever the number of keys."""
    ids = [key.id for key in keys]
    if not ids:
        return []
    found = {qr.id: (qr, username) for qr, username in db.session.execute(
        sa.select(QrCode, PortalUser.username)
        .outerjoin(PortalUser, PortalUser.id == QrCode.user_id).where(QrCode.id.in_(ids)))}
    counts = state_counts(ids)
    devices = device_counts([id_ for id_ in ids if id_ in found
                             and found[id_][0].option == EnrollmentOption.SSP])
    rows, config = [], companion.current()
    for id_ in (id_ for id_ in ids if id_ in found):
        qr, username = found[id_]
        pending, used, expired, revoked = counts.get(id_, _NO_COUNTS)
        state = list_state(qr, pending, expired)
        rows.append((qr, username, pending, used, expired, revoked,
                     devices.get(id_, 0) if qr.option == EnrollmentOption.SSP else None,
                     state, staleness(qr, state, config)))
    return rows


def device_counts(qr_code_ids: list[int]) -> dict[int, int]:
    """{qr_code_id: devices that enrolled through it} (every device row, retired ones too),
    read from the (qr_code_id, serial_number) index."""
    if not qr_code_ids:
        return {}
    return dict(db.session.execute(
        sa.select(Device.qr_code_id, sa.func.count())
        .where(Device.qr_code_id.in_(qr_code_ids)).group_by(Device.qr_code_id)).all())


def state_counts(qr_code_ids: list[int]) -> dict[int, tuple[int, int, int, int]]:
    """{qr_code_id: (pending, used, expired, revoked)} as of now for these QR codes only, read
    from the (qr_code_id, state) index."""
    state = PendingEnrollment.current_state_at(utcnow())
    rows = db.session.execute(
        sa.select(PendingEnrollment.qr_code_id, state, sa.func.count())
        .where(PendingEnrollment.qr_code_id.in_(qr_code_ids))
        .group_by(PendingEnrollment.qr_code_id, state))
    counts: dict[int, dict[str, int]] = {}
    for qr_code_id, state, count in rows:
        counts.setdefault(qr_code_id, {})[state] = count
    return {qr_code_id: tuple(by_state.get(state, 0) for state in _STATES)
            for qr_code_id, by_state in counts.items()}


def qr_code_total() -> int:
    """How many QR codes there are (the search's matches are not counted: that would read
    the whole index once more on every page)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)) or 0
