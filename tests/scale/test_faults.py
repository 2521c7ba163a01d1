"""Faults a deployment meets (issue 7, part 4): PostgreSQL restarted while devices enroll, and
Redis gone while the portal serves.

- Database: the requests that meet the outage fail cleanly (the contract's error JSON, never a
  page or a trace); the next ones succeed on fresh connections (pool_pre_ping); nothing is
  half-written, and a device whose answer was lost gets its enrollment by asking again.
- Redis: enrolling and signing in go on; throttling falls back to each process's memory and
  the log says so; when Redis is back, the processes share it again.
"""
import itertools
import random
import re
import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import requests

from config import database_url
from portal.database import db
from tests.api.conftest import altered
from tests.concurrency.test_redeem_race import Portal, outcomes
from tests.conftest import _fresh_postgres_database
from tests.scale.conftest import (SERVER_ENV, TIMEOUT, Browser, contract_error, device,
                                  migrated_app, own_redis, redeem, sign_in_admin, sign_in_ssp,
                                  throwaway_postgres)
from tests.support.gunicorn import gunicorn

FALLBACK = re.compile(r"Redis \(REDIS_URL\) does not answer: throttling falls back to the "
                      r"memory of this process \(pid (\d+)\)")
RECOVERED = re.compile(r"Redis \(REDIS_URL\) answers again: this process \(pid (\d+)\) shares")


class Stream:
    """Devices enrolling with one QR code and asking for their status, from a few threads with
    a short pause between requests, until stopped. Every answer is kept with the moment its
    request was sent: (sent, kind, serial, status, body)."""

    def __init__(self, url: str, qr_code: dict, *, threads: int = 4, pause: float = 0.02):
        self.url, self.qr_code, self.pause = url, qr_code, pause
        self.answers, self.enrolled = [], []
        self.lock, self.stopping = threading.Lock(), threading.Event()
        self.serials = itertools.count()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_):
        self.stopping.set()
        for thread in self.threads:
            thread.join(TIMEOUT)

    def _run(self) -> None:
        with requests.Session() as session:
            while not self.stopping.is_set():
                with self.lock:
                    number = next(self.serials)
                    known = random.choice(self.enrolled) if self.enrolled else None
                sent = time.monotonic()
                if number % 3 == 2 and known is not None:
                    kind, serial = "status", known["serial"]
                    status, body = _call(session, "GET", f"{self.url}/api/v1/devices/"
                                         f"{known['device_id']}", headers={
                                             "Authorization": f"Bearer {known['device_token']}"})
                else:
                    kind, serial = "redeem", f"STREAM{number:05d}"
                    status, body = _call(session, "POST", f"{self.url}/api/v1/enrollments",
                                         json={"qr_id": self.qr_code["qr_id"],
                                               "otp": self.qr_code["otp"],
                                               "device": device(serial)})
                with self.lock:
                    self.answers.append((sent, kind, serial, status, body))
                    if kind == "redeem" and status == 201:
                        self.enrolled.append({**body, "serial": serial})
                time.sleep(self.pause)

    def count(self, *, since: float = 0.0, ok: bool | None = None) -> int:
        with self.lock:
            return sum(1 for answer in self.answers
                       if answer[0] >= since and (ok is None or _ok(answer) == ok))

    def wait_until(self, condition, what: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s; " \
                                                f"{len(self.answers)} answers so far"
            time.sleep(0.02)


def _ok(answer) -> bool:
    _, kind, _, status, _ = answer
    return status == (201 if kind == "redeem" else 200)


def _call(session, method: str, url: str, **kwargs) -> tuple[int | None, dict]:
    """(status, JSON body); (None, the error) when no HTTP answer came at all."""
    try:
        response = session.request(method, url, timeout=TIMEOUT, **kwargs)
    except requests.RequestException as error:
        return None, {"no_answer": repr(error)}
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, {"not_json": response.text[:300]}


@contextmanager
def _portal_on(cluster, instance: Path):
    """A migrated database on the cluster with a user and the example Companion; the race
    tests' view of it."""
    app = migrated_app(_fresh_postgres_database(database_url(cluster.url()), "portal"), instance)
    try:
        with app.app_context():
            from portal.accounts.users import add_local_user
            from portal.settings.companion import seed_example_companion
            user_id = add_local_user("alice", "alice@example.com", "user-password-1").id
            seed_example_companion()
            db.session.remove()
        yield Portal(app, user_id)
    finally:
        with app.app_context():
            db.engine.dispose()


def test_database_restarted_while_devices_enroll(tmp_path):
    # A restart in two steps: start again only once requests have met the outage, so that
    # every run sees one (a quick `pg_ctl restart` can fall between two requests).
    with throwaway_postgres() as cluster, _portal_on(cluster, tmp_path) as portal:
        portal.set_total(500)
        qr_code = portal.create_qr_code("auto", usage_count=400)
        with gunicorn(portal.app, workers=2, threads=2, log=tmp_path / "gunicorn.log") as url, \
                Stream(url, qr_code) as stream:
            stream.wait_until(lambda: stream.count(ok=True) >= 10, "10 enrollments")
            cluster.stop("fast")
            down = time.monotonic()
            stream.wait_until(lambda: stream.count(since=down, ok=False) >= 8,
                              "8 failed requests while the database is down")
            health = requests.get(f"{url}/healthz", timeout=TIMEOUT)
            assert (health.status_code, health.json()) == (503, {"status": "unavailable"})
            cluster.start()
            up = time.monotonic()
            stream.wait_until(lambda: stream.count(since=up) >= 30, "30 answers after the restart")
            stream.stopping.set()
            retried = _retry_failed_enrollments(url, qr_code, stream.answers)
        _check_nothing_half_written(portal, qr_code, stream, retried, up)


def _retry_failed_enrollments(url: str, qr_code: dict, answers) -> Counter:
    """Every device whose enrollment failed asks again, as the Companion does."""
    failed = {serial for _, kind, serial, status, _ in answers
              if kind == "redeem" and status != 201}
    return Counter(redeem(url, {"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                                "device": device(serial)}).status_code for serial in failed)


def _check_nothing_half_written(portal, qr_code, stream, retried: Counter, up: float) -> None:
    failures = [(status, body) for answer in stream.answers if not _ok(answer)
                for *_, status, body in [answer]]
    assert failures, "no request met the outage"
    assert outcomes(failures) == {"500 internal_error": len(failures)}, outcomes(failures)
    for _, body in failures:
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert "Traceback" not in body["error"]["message"], body
    after = [answer for answer in stream.answers if answer[0] >= up]
    assert all(_ok(answer) for answer in after), \
        outcomes([(status, body) for *_, status, body in after])

    # A retry gets 201, or 200 when the outage only lost the answer (the enrollment had
    # committed); either way each device holds exactly one pending enrollment and license.
    assert set(retried) <= {200, 201}, retried
    serials = {serial for _, kind, serial, _, _ in stream.answers if kind == "redeem"}
    enrolled = sum(1 for answer in stream.answers if answer[1] == "redeem" and _ok(answer))
    figures = portal.check_counters(qr_code)
    assert figures["qr_devices"] == figures["qr_active_devices"] == len(serials), figures
    assert figures["qr_used"] == figures["qr_used_distinct_devices"] == len(serials), figures
    assert figures["qr_pending"] == 400 - len(serials), figures
    assert figures["qr_redeem_events"] == enrolled + retried.total() + retried[200], figures
    print(f"\n{len(stream.answers)} requests: {len(failures)} met the outage (500 "
          f"internal_error), {len(after)} after the restart all succeeded; retries: "
          f"{dict(retried)}")


def test_redis_gone_enrolling_goes_on_and_throttling_falls_back_per_process(deployment,
                                                                          tmp_path):
    log = tmp_path / "gunicorn.log"
    deployment.leave_remaining(20)
    qr_code = deployment.create_qr_code("auto", usage_count=20)
    ssp_code = deployment.create_qr_code("ssp")
    wrong = {"qr_id": qr_code["qr_id"], "otp": altered(qr_code["otp"]),
             "device": device("GUESSER002")}
    serials = (f"REDIS{i:03d}" for i in itertools.count())

    def enroll() -> int:
        return redeem(url, {"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                            "device": device(next(serials))}).status_code

    with own_redis() as server, gunicorn(deployment.app, workers=2, log=log,
                                         env={**SERVER_ENV, "REDIS_URL": server.url}) as url:
        # Shared through Redis: six wrong OTPs from one address, whichever worker took them.
        throttled = deployment.address()
        assert [redeem(url, wrong, address=throttled).status_code for _ in range(6)] == [401] * 6
        contract_error(redeem(url, wrong, address=throttled), 429, "rate_limited")
        assert server.client().keys(f"*{throttled}*")

        server.kill()
        assert [enroll() for _ in range(6)] == [201] * 6
        browser = Browser(deployment.address())
        assert sign_in_ssp(browser, url, ssp_code["qr_id"], deployment.username).status_code \
            == 303
        assert sign_in_admin(Browser(deployment.address()), url,
                             deployment.admins[0]).status_code == 303
        # Each process counts in its own memory now, which starts empty: the address throttled
        # in Redis may try again, and a new one is throttled once one process saw six.
        contract_error(redeem(url, wrong, address=throttled), 401, "invalid_credentials")
        guesser = deployment.address()
        statuses = [redeem(url, wrong, address=guesser).status_code for _ in range(13)]
        assert statuses[:6] == [401] * 6 and 429 in statuses, statuses
        assert statuses.count(401) <= 12, statuses  # at most six in each of the two workers
        assert [enroll() for _ in range(2)] == [201] * 2
        fell_back = set(FALLBACK.findall(log.read_text()))
        assert fell_back, log.read_text()[-3000:]  # one line per process that fell back

        server.start()
        # Flask-Limiter looks at Redis again 1, 2, 4 … 32 s after its last look, when a
        # request comes; each process that fell back says when it shares throttling again.
        deadline = time.monotonic() + 45
        while not fell_back <= set(RECOVERED.findall(log.read_text())):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            redeem(url, wrong, address=deployment.address())
            time.sleep(0.2)
        shared = deployment.address()
        assert [redeem(url, wrong, address=shared).status_code for _ in range(7)] \
            == [401] * 6 + [429]
        assert server.client().keys(f"*{shared}*")
    print("\n" + "\n".join(line for line in log.read_text().splitlines()
                           if FALLBACK.search(line) or RECOVERED.search(line)))
