"""The SQLAlchemy binding: naming conventions, UTC timestamps, SQLite pragmas."""
import functools
import sqlite3
import time
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


_READS: ContextVar[dict | None] = ContextVar("portal_repeated_reads", default=None)


@contextmanager
def repeated_reads():
    """Within this block, each @read_once function answers the same arguments from its first
    answer instead of asking the database again: for work that checks hundreds of rows against
    the same settings (a bulk batch's preview), where reading the Companion, the OTP policy, a
    localization or the license figures once per row would be most of the time. Only for
    reads whose answer may be a moment old: what must be exact is guarded again where it is
    written (the license reservation's conditional UPDATE)."""
    token = _READS.set({})
    try:
        yield
    finally:
        _READS.reset(token)


def read_once(function):
    """Mark a read that repeated_reads() may answer from memory (hashable arguments only)."""
    @functools.wraps(function)
    def wrapper(*args):
        memo = _READS.get()
        if memo is None:
            return function(*args)
        key = (function, args)
        if key not in memo:
            memo[key] = function(*args)
        return memo[key]
    return wrapper


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC on both databases (SQLite stores naive values)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return value.replace(tzinfo=timezone.utc) if value is not None else None


SQLITE_BUSY_TIMEOUT = 30.0  # seconds a statement (and BEGIN IMMEDIATE) waits for a lock
_FIRST_WAIT, _LONGEST_WAIT = 0.0001, 0.001  # seconds between BEGIN IMMEDIATE's tries


def configure_sqlite(engine: sa.Engine) -> None:
    """WAL, foreign keys, a busy timeout, and BEGIN IMMEDIATE.

    Every transaction takes SQLite's write lock at BEGIN: a deferred transaction that reads and
    then writes fails with "database is locked" when another process wrote in between, instead
    of waiting. Immediate transactions queue for the lock (begin_immediate), so conditional
    updates from many processes serialise cleanly.
    """
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        begin_immediate(connection.connection.driver_connection)


def end_transaction() -> None:
    """Commit, keeping the values of the objects loaded so far (no expiry): before a slow call
    to another system, after reading what the call and the code after it need. Reading an
    object again afterwards would start a new transaction (and, on SQLite, take the lock)."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


class HeldLockDuringCall(AssertionError):
    """A slow call to another system was made inside a transaction (tests only)."""


def no_transaction_open(what: str) -> None:
    """Call before asking another system something that may take seconds (Google, a directory).
    On SQLite every transaction holds the database's write lock from its BEGIN (above): one
    left open across such a call stops every other writer (devices redeeming, other admins)
    until the call returns, for up to its timeout and retries. The caller ends its transaction
    first (end_transaction, after reading what it needs). With
    STRICT_TRANSACTIONS (the tests) an open transaction raises, so the suite finds every place
    that forgets; otherwise nothing happens, since PostgreSQL's transactions lock only rows."""
    from flask import current_app, has_app_context
    if not has_app_context() or not current_app.config.get("STRICT_TRANSACTIONS"):
        return
    session = db.session()
    if session.in_transaction() and session.get_bind().dialect.name == "sqlite":
        raise HeldLockDuringCall(f"{what} was called inside a transaction: on SQLite it holds "
                                 "the write lock until the call returns")


def begin_immediate(dbapi_connection, timeout: float = SQLITE_BUSY_TIMEOUT) -> None:
    """BEGIN IMMEDIATE, trying again every 0.1 ms at first and every millisecond at most
    while another connection holds the write lock, for up to `timeout` seconds.

    SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 … ms between its tries: a writer
    that finds the lock held by a transaction of one millisecond, whose process the scheduler
    then sets aside for a moment, sleeps 10 or 25 ms after the lock was free again. That was
    the long tail of the redemption's latency (docs/benchmarks.md). Here a writer waits at most
    a millisecond too long. Only BEGIN is tried this way: it is where a writer waits for
    another, and the statements of a transaction that holds the lock keep the busy timeout.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA busy_timeout=0")
        wait, deadline = _FIRST_WAIT, None
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                    raise
                now = time.monotonic()
                deadline = deadline or now + timeout
                if now >= deadline:
                    raise
                time.sleep(wait)
                wait = min(wait * 2, _LONGEST_WAIT)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
        cursor.close()


def save_singleton(model, fill, **new_row):
    """Create or update a settings table's single row (id 1) and commit.

    `fill(row)` sets the values and records the audit event. When two admins save the first
    row at the same moment one insert loses; it then updates the winner's row instead.
    """
    for attempt in (1, 2):
        row = db.session.get(model, 1)
        if row is None:
            row = model(id=1, **new_row)
            db.session.add(row)
        fill(row)
        try:
            db.session.commit()
            return row
        except sa.exc.IntegrityError:
            db.session.rollback()
            if attempt == 2:
                raise
