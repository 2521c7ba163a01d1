"""SQLite's BEGIN IMMEDIATE waits for the write lock in short steps of its own
(portal.database.begin_immediate), gives up after its timeout, and leaves the connection's
busy timeout as it found it. Another process holds the lock, as another gunicorn worker does."""
import sqlite3
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from portal.database import SQLITE_BUSY_TIMEOUT, begin_immediate, configure_sqlite

# Holds the write lock of the file in argv[1] for argv[2] seconds, saying "locked" when it has it.
_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute("INSERT INTO t VALUES (1)")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


@pytest.fixture
def database(tmp_path):
    path = tmp_path / "lock.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x INTEGER)")
    connection.close()
    return path


def hold_lock(path, seconds):
    """Another process with the write lock; returns once it has it."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def connect(path):
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT * 1000)}")
    return connection


def busy_timeout(connection) -> int:
    return connection.execute("PRAGMA busy_timeout").fetchone()[0]


def test_waits_for_the_other_process_then_holds_the_lock(database):
    holder = hold_lock(database, 0.3)
    connection = connect(database)
    begin_immediate(connection, timeout=10)
    assert holder.wait(timeout=10) == 0  # it committed before we got the lock
    assert connection.in_transaction
    assert connection.execute("SELECT count(*) FROM t").fetchone()[0] == 1  # and we see it
    connection.execute("INSERT INTO t VALUES (2)")
    connection.execute("COMMIT")
    assert busy_timeout(connection) == SQLITE_BUSY_TIMEOUT * 1000


def test_gives_up_after_its_timeout_with_database_is_locked(database):
    holder = hold_lock(database, 5)
    try:
        connection = connect(database)
        start = time.monotonic()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            begin_immediate(connection, timeout=0.3)
        assert time.monotonic() - start >= 0.3  # it did wait (no upper bound: a busy machine)
        assert not connection.in_transaction
        assert busy_timeout(connection) == SQLITE_BUSY_TIMEOUT * 1000
    finally:
        holder.kill()
        holder.wait()


def test_any_other_error_is_raised_at_once(database):
    connection = connect(database)
    connection.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        begin_immediate(connection, timeout=10)
    assert busy_timeout(connection) == SQLITE_BUSY_TIMEOUT * 1000


def test_the_engine_begins_every_transaction_this_way(database):
    engine = sa.create_engine(f"sqlite:///{database}")
    configure_sqlite(engine)
    holder = hold_lock(database, 0.3)
    try:
        with engine.begin() as connection:  # waits for the holder, then writes
            connection.execute(sa.text("INSERT INTO t VALUES (3)"))
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert holder.wait(timeout=10) == 0
        with engine.connect() as connection:
            assert connection.execute(sa.text("SELECT x FROM t ORDER BY rowid")).scalars() \
                .all() == [1, 3]
    finally:
        holder.kill()
        holder.wait()
        engine.dispose()
