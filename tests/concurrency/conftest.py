"""Race tests need committed rows that other processes can see, so instead of the rolled-back
`db` fixture each test gets a database of its own, migrated from empty: an SQLite file, or a
fresh PostgreSQL database when TEST_DATABASE_URL is set (style guideline 23).
"""
import multiprocessing
import os
import queue
import re
import time

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from config import database_url
from portal import create_app
from portal.database import db
from tests.conftest import _fresh_postgres_database, drop_postgres_database
from tests.support.live import CommittedSession
from tests.support.race_workers import (BARRIER_TIMEOUT, POOL_SIZE, Sync, Target, race_config,
                                        serve)

SAMPLE_EVERY = 0.05  # seconds between two looks at the counters during a race


class RaceDatabase(CommittedSession):
    """The parent's view of the shared database. Every method opens and closes its own
    session, so the test process never holds SQLite's write lock while workers run."""

    def __init__(self, target: Target):
        self.target = target
        self.app = create_app(race_config(target))
        self.samples = 0

    def revoke_all(self) -> int:
        """Revoke every live QR code through the domain function; licenses released."""
        from portal.enrollment.pending import revoke_qr_code
        from portal.enrollment.models import QrCode

        def revoke():
            live = db.session.scalars(sa.select(QrCode).where(QrCode.revoked_at.is_(None)))
            return sum(revoke_qr_code(qr_code, revoked_by=None) for qr_code in live.all())
        return self._run(revoke)

    def snapshot(self) -> dict:
        """The pool's counters and the rows behind them, read by ONE statement, so the
        figures are consistent with each other even while other processes commit."""
        from portal.audit.models import AuditEvent
        from portal.enrollment.models import Device, PendingEnrollment
        from portal.licensing.models import LicensePool
        from portal.mail.models import OutboxMessage
        from portal.enrollment.models import QrCode

        def count(model, *where):
            return sa.select(sa.func.count()).select_from(model).where(*where).scalar_subquery()

        def pending(state):
            return count(PendingEnrollment, PendingEnrollment.state == state)
        statement = sa.select(
            LicensePool.total, LicensePool.used, LicensePool.reserved,
            pending("pending").label("pending"), pending("used").label("pending_used"),
            pending("expired").label("expired"), pending("revoked").label("revoked"),
            count(PendingEnrollment).label("pending_rows"),
            count(Device, Device.state.in_(("provisioning", "enrolled"))).label("devices"),
            count(QrCode).label("qr_codes"),
            count(QrCode, QrCode.revoked_at.is_not(None)).label("qr_codes_revoked"),
            count(OutboxMessage).label("outbox"),
            count(AuditEvent, AuditEvent.action == "qr_code.create").label("create_events"),
        ).where(LicensePool.id == 1)
        row = self._run(lambda: db.session.execute(statement).one()._asdict())
        row["remaining"] = row["total"] - row["used"] - row["reserved"]
        return row

    def check_counters(self) -> dict:
        """PRODUCT.md §4: the counters agree with the rows, and remaining is never negative."""
        figures = self.snapshot()
        self.samples += 1
        assert figures["reserved"] == figures["pending"], figures
        assert figures["used"] == figures["devices"], figures
        assert figures["remaining"] >= 0, figures
        return figures


@pytest.fixture
def race_db(request, tmp_path):
    """A committed database of its own for one test, with a user and the example Companion."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        # The pid keeps two runs on one server (two checkouts, say) out of each other's way.
        name = f"portal_race_{os.getpid()}_" + re.sub(r"\W", "_", request.node.name)[:36].lower()
        uri = _fresh_postgres_database(database_url(base), name)
    else:
        uri = f"sqlite:///{tmp_path / 'race.db'}"
    instance = tmp_path / "instance"
    app = create_app(race_config(Target(uri, str(instance), 0)))
    with app.app_context():
        from portal.accounts.users import add_local_user
        from portal.settings.companion import seed_example_companion
        upgrade()
        user_id = add_local_user("alice", "alice@example.com", "user-password-1").id
        seed_example_companion()
        db.session.remove()
        db.engine.dispose()
    race = RaceDatabase(Target(uri, str(instance), user_id))
    yield race
    try:
        race.check_counters()  # after every test, whatever it did
    finally:
        with race.app.app_context():
            db.engine.dispose()
        if base:
            drop_postgres_database(uri)


class WorkerPool:
    """POOL_SIZE spawned processes, started once per session: each pays for its imports once
    and then runs one job per race, on the database of the test that sent it."""

    def __init__(self):
        self.ctx = multiprocessing.get_context("spawn")
        self.results = self.ctx.Queue()
        self.sync = Sync(self.ctx.Barrier(POOL_SIZE + 1), self.ctx.Barrier(2), self.ctx.Event())
        self.jobs = [self.ctx.Queue() for _ in range(POOL_SIZE)]
        self.processes = [self.ctx.Process(target=serve, name=f"race-worker-{index}",
                                           args=(index, jobs, self.results, self.sync),
                                           daemon=True)
                          for index, jobs in enumerate(self.jobs)]
        started = time.perf_counter()
        for process in self.processes:
            process.start()
        for _ in self.processes:
            message = self.results.get(timeout=120)
            assert message.get("ready"), message
        self.startup = time.perf_counter() - started
        self.broken = False

    def close(self):
        for jobs in self.jobs:
            jobs.put(None)
        deadline = time.monotonic() + (2 if self.broken else 30)
        for process in self.processes:  # only the processes this pool started
            process.join(timeout=max(0.1, deadline - time.monotonic()))
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)

    def restart(self):
        self.close()
        self.__init__()


@pytest.fixture(scope="session")
def worker_pool():
    pool = WorkerPool()
    print(f"\n{POOL_SIZE} spawned workers ready in {pool.startup:.2f} s")
    yield pool
    pool.close()


class Race:
    """One race on the pool: jobs for some workers, the others idle at the same barrier."""

    def __init__(self, pool: WorkerPool):
        self.pool, self.sync, self.results = pool, pool.sync, pool.results
        self.done = 0

    def start(self, jobs, *, rounds: int = 1):
        """jobs: [(function, name, kwargs)], at most POOL_SIZE; `rounds` barrier rounds."""
        assert len(jobs) <= POOL_SIZE
        self.sync.barrier.reset()
        self.sync.pair_barrier.reset()
        self.sync.stop.clear()
        self.rounds = rounds
        jobs = list(jobs) + [("idle", f"idle{i}", {"rounds": rounds})
                             for i in range(len(jobs), POOL_SIZE)]
        for queue_, job in zip(self.pool.jobs, jobs):
            queue_.put(job)

    def go(self) -> float:
        """Wait until every worker has its app, then release them all at once."""
        try:
            self.sync.barrier.wait(BARRIER_TIMEOUT)
        except Exception:
            self._fail_with_reports("a worker never reached the start barrier")
        return time.perf_counter()

    def stop(self) -> None:
        self.sync.stop.set()

    def collect(self, count: int, *, while_waiting=None, timeout: float = 120) -> list[dict]:
        """`count` reports; fails on a worker's fatal or unexpected exception, or its death."""
        reports, deadline = [], time.monotonic() + timeout
        while len(reports) < count:
            if while_waiting is not None:
                while_waiting()
            report = self._next(deadline)
            if report is not None and not report.get("done"):
                reports.append(report)
        unexpected = [f"{r['worker']}:\n{text}" for r in reports for text in r["unexpected"]]
        assert not unexpected, "unexpected exceptions in workers:\n" + "\n".join(unexpected)
        return reports

    def finish(self, timeout: float = 60) -> None:
        """Wait until every pool process has finished its job (and disposed its engine)."""
        deadline = time.monotonic() + timeout
        while self.done < POOL_SIZE:
            report = self._next(deadline)
            assert report is None or report.get("done"), f"report not collected: {report}"

    def _next(self, deadline: float) -> dict | None:
        try:
            report = self.results.get(timeout=SAMPLE_EVERY)
        except queue.Empty:
            dead = [p.name for p in self.pool.processes if not p.is_alive()]
            if dead or time.monotonic() > deadline:
                self._fail_with_reports(f"workers died or hung: {dead}")
            return None
        if "fatal" in report:
            pytest.fail(f"worker {report['worker']} failed:\n{report['fatal']}")
        self.done += bool(report.get("done"))
        return report

    def _fail_with_reports(self, message: str):
        texts = []
        while True:
            try:
                report = self.results.get(timeout=1)
            except queue.Empty:
                break
            if not report.get("done"):
                texts.append(report.get("fatal") or str(report))
        pytest.fail(message + "\n" + "\n".join(texts))


@pytest.fixture
def race(worker_pool):
    if worker_pool.broken:  # a previous race failed half-way: start from fresh processes
        worker_pool.restart()
    race = Race(worker_pool)
    yield race
    if race.done < POOL_SIZE:
        worker_pool.sync.barrier.abort()
        worker_pool.sync.pair_barrier.abort()
        worker_pool.broken = True
