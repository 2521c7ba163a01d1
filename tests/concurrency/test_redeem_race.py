"""Redeeming QR codes under load (companion-api.md §2, PRODUCT.md §4): hundreds of devices
POSTing /api/v1/enrollments at the same moment to gunicorn with two worker processes (four
threads each) on one committed database never get more devices than the Usage Count, never
drive the remaining licenses below zero, and never use one ticket twice; a QR code revoked in the
middle of it, or devices reporting provisioning-complete while it is revoked, leave the license
figures exact.

The test process seeds the database with the app from live_app, starts gunicorn on it (the same
SECRET_KEY, so the encrypted OTPs decrypt), fires the requests from a pool of threads released
together, and, while they run, samples the license counters against the rows behind them. The
same code runs on an SQLite file and, with TEST_DATABASE_URL, on a PostgreSQL database of its own.
Timings and throughput are printed for information; nothing asserts on speed.
"""
import json
import os
import re
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import NamedTuple

import pytest
import requests
import sqlalchemy as sa

from config import database_url
from portal.database import db
from tests.support.gunicorn import gunicorn
from tests.support.live import CommittedSession, live_app

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"
THREADS = 50           # client threads, all released at once
SAMPLE_EVERY = 0.05    # seconds between two looks at the counters during a burst
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
# Throttling of failed attempts has its own tests; here the 401s of a replayed ticket must not
# turn into 429s from one loopback address.
SERVER_ENV = {"API_FAILED_ATTEMPTS_LIMIT": "10000 per minute"}


class Portal(CommittedSession):
    """The test process's side of the shared database. Every method opens and closes its own
    session, so the test never holds SQLite's write lock while gunicorn serves."""

    def __init__(self, app, user_id: int):
        self.app, self.user_id = app, user_id
        self.samples = 0

    def create_qr_code(self, option: str, usage_count: int | None = None) -> dict:
        """A QR code as an admin saves it; its qr_id and, for `auto`, the OTP from its payload."""
        from portal.accounts.models import PortalUser
        from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code

        def create():
            user = db.session.get(PortalUser, self.user_id) if option == "auto" else None
            qr_code = create_qr_code(QrCodeRequest(
                option=option, lang="en", network="mobile", user=user, usage_count=usage_count),
                created_by=None, server_url=self.app.config["PORTAL_PUBLIC_URL"])
            extras = json.loads(qr_code.payload_text())[EXTRAS]
            return {"id": qr_code.id, "qr_id": extras["qr_id"], "otp": extras.get("otp")}
        return self._run(create)

    def issue_tickets(self, qr_code: dict, count: int) -> list[str]:
        from portal.accounts.models import PortalUser
        from portal.enrollment.tickets import issue_ticket
        from portal.enrollment.models import QrCode

        def issue():
            qr, user = db.session.get(QrCode, qr_code["id"]), db.session.get(PortalUser,
                                                                                self.user_id)
            return [issue_ticket(qr, user) for _ in range(count)]
        return self._run(issue)

    def revoke(self, qr_code: dict) -> int:
        from portal.enrollment.pending import revoke_qr_code
        from portal.enrollment.models import QrCode
        return self._run(lambda: revoke_qr_code(db.session.get(QrCode, qr_code["id"]),
                                                revoked_by=None))

    def redeem(self, qr_code: dict, serial: str) -> str:
        """Enroll a device with the QR's OTP, as the API would; its public id."""
        from portal.enrollment.redeem import DeviceInfo, redeem
        return self._run(lambda: redeem(
            qr_code["qr_id"], otp=qr_code["otp"], ticket=None, client_address="127.0.0.1",
            device=DeviceInfo(serial, "samsung", "SM-G991B", 33)).device_id)

    def report_failure(self, device_id: str) -> str:
        """provisioning-complete with `failure`, as the API would; the device's new state."""
        from portal.enrollment.completion import complete
        from portal.enrollment.models import Device
        return self._run(lambda: complete(
            db.session.scalar(sa.select(Device).where(Device.public_id == device_id)),
            "failure", "race test", client_address="127.0.0.1").state)

    def snapshot(self, qr_code: dict | None = None) -> dict:
        """The pool's counters and the rows behind them (overall, and for one QR code), read by
        ONE statement, so the figures agree with each other even while gunicorn commits."""
        from portal.audit.models import AuditEvent
        from portal.enrollment.models import Device, EnrollmentTicket, PendingEnrollment
        from portal.licensing.models import LicensePool
        from portal.enrollment.models import QrCode

        def count(model, *where, what=None):
            return (sa.select(what if what is not None else sa.func.count())
                    .select_from(model).where(*where).scalar_subquery())
        active = Device.state.in_(("provisioning", "enrolled"))
        revoked_qr_codes = sa.select(QrCode.id).where(QrCode.revoked_at.is_not(None))
        columns = [LicensePool.total, LicensePool.used, LicensePool.reserved,
                   count(PendingEnrollment, PendingEnrollment.state == "pending").label("pending"),
                   count(PendingEnrollment, PendingEnrollment.state == "pending",
                         PendingEnrollment.qr_code_id.in_(revoked_qr_codes))
                   .label("pending_on_revoked"),
                   count(Device, active).label("devices")]
        if qr_code is not None:
            of_qr = qr_code["id"]

            def pending(state):
                return count(PendingEnrollment, PendingEnrollment.qr_code_id == of_qr,
                             PendingEnrollment.state == state).label(f"qr_{state}")
            columns += [
                count(Device, Device.qr_code_id == of_qr).label("qr_devices"),
                count(Device, Device.qr_code_id == of_qr, active).label("qr_active_devices"),
                pending("pending"), pending("used"), pending("revoked"),
                count(PendingEnrollment, PendingEnrollment.qr_code_id == of_qr,
                      what=sa.func.count(sa.distinct(PendingEnrollment.device_id)))
                .label("qr_used_distinct_devices"),
                count(EnrollmentTicket, EnrollmentTicket.qr_code_id == of_qr,
                      EnrollmentTicket.used_at.is_not(None)).label("qr_tickets_used"),
                count(EnrollmentTicket, EnrollmentTicket.qr_code_id == of_qr,
                      what=sa.func.count(sa.distinct(EnrollmentTicket.device_id)))
                .label("qr_ticket_distinct_devices"),
                count(AuditEvent, AuditEvent.action == "enrollment.redeem",
                      AuditEvent.target == qr_code["qr_id"]).label("qr_redeem_events"),
            ]
        statement = sa.select(*columns).where(LicensePool.id == 1)
        row = self._run(lambda: db.session.execute(statement).one()._asdict())
        row["remaining"] = row["total"] - row["used"] - row["reserved"]
        return row

    def check_counters(self, qr_code: dict | None = None) -> dict:
        """PRODUCT.md §4: the counters agree with the rows, and remaining is never negative."""
        figures = self.snapshot(qr_code)
        self.samples += 1
        assert figures["reserved"] == figures["pending"], figures
        assert figures["used"] == figures["devices"], figures
        assert figures["remaining"] >= 0, figures
        assert figures["pending_on_revoked"] == 0, figures  # a revoked QR holds no license
        return figures


@pytest.fixture
def portal(request, tmp_path):
    """A migrated, committed database of its own for one test (an SQLite file, or a fresh
    PostgreSQL database), with a local user and the example Companion; dropped afterwards."""
    # The pid keeps two runs on one server (two checkouts, say) out of each other's way.
    name = f"redeem_{os.getpid()}_" + re.sub(r"\W", "_", request.node.name)[5:35].lower()
    app = live_app(tmp_path, name)
    with app.app_context():
        from portal.accounts.users import add_local_user
        from portal.settings.companion import seed_example_companion
        user_id = add_local_user("alice", "alice@example.com", "user-password-1").id
        seed_example_companion()
        db.session.remove()
    portal = Portal(app, user_id)
    yield portal
    try:
        portal.check_counters()  # after every test, whatever it did
    finally:
        with app.app_context():
            db.engine.dispose()
        base = os.environ.get("TEST_DATABASE_URL")
        if base:
            database = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
            admin = sa.create_engine(database_url(base), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


@pytest.fixture
def server(portal):
    """gunicorn with two worker processes of four threads each, on the portal's database."""
    started = time.perf_counter()
    with gunicorn(portal.app, workers=2, threads=4, env=SERVER_ENV) as url:
        print(f"\ngunicorn (2 workers x 4 threads) on {BACKEND} up in "
              f"{time.perf_counter() - started:.2f} s")
        yield url


def device(serial: str) -> dict:
    return {"serial_number": serial, "manufacturer": "samsung", "model": "SM-G991B",
            "android_api_level": 33}


class Call(NamedTuple):
    path: str
    body: dict
    token: str | None = None  # the device's bearer token


def enrollment(body: dict) -> Call:
    return Call("/api/v1/enrollments", body)


def completion(answer: dict, result: str) -> Call:
    """provisioning-complete for the device of a 201 or 200 answer, with its token."""
    return Call(f"/api/v1/devices/{answer['device_id']}/provisioning-complete",
                {"result": result} if result == "success" else
                {"result": result, "reason": "race test"}, answer["device_token"])


class Burst:
    """Many POSTs at once: up to THREADS threads, each with its own connection, wait at one
    barrier and then send their share of the calls. While they run, the test process samples
    the counters (`check`), and `done` counts the answers received so far."""

    def __init__(self, url: str, calls: list[Call]):
        self.url, self.calls = url, calls
        self.threads = min(THREADS, len(calls))
        self.barrier = threading.Barrier(self.threads + 1)
        self.done = 0
        self.lock = threading.Lock()
        self.seconds = 0.0
        # Set by revoking(): once `held_after` answers are in, the calls not yet sent wait for
        # `resume`, so that some are surely sent after the revocation however busy the machine.
        self.held_after, self.resume = None, threading.Event()

    def _send(self, share: list[tuple[int, Call]]) -> list[tuple[int, int, dict]]:
        answers = []
        with requests.Session() as session:
            self.barrier.wait(30)
            for index, call in share:
                if self.held_after is not None and self.done >= self.held_after:
                    self.resume.wait(60)
                headers = {"Authorization": f"Bearer {call.token}"} if call.token else {}
                response = session.post(self.url + call.path, json=call.body, headers=headers,
                                        timeout=60)
                answers.append((index, response.status_code, _json(response)))
                with self.lock:
                    self.done += 1
        return answers

    def run(self, check=None) -> list[tuple[int, dict]]:
        """(status, body) per call, in the order of `calls`."""
        shares = [list(enumerate(self.calls))[i::self.threads] for i in range(self.threads)]
        with ThreadPoolExecutor(self.threads) as pool:
            futures = [pool.submit(self._send, share) for share in shares]
            self.barrier.wait(30)
            started = time.perf_counter()
            while not all(future.done() for future in futures):
                if check is not None:
                    check()
                time.sleep(SAMPLE_EVERY)
            self.seconds = time.perf_counter() - started
            answers = sorted(a for future in futures for a in future.result())
        return [(status, body) for _, status, body in answers]

    def report(self, what: str) -> str:
        return (f"{what}: {len(self.calls)} requests from {self.threads} threads in "
                f"{self.seconds:.2f} s ({len(self.calls) / self.seconds:.0f} requests/s)")


def _json(response) -> dict:
    try:
        return response.json()
    except ValueError:  # the contract allows none: show it in the failure
        return {"error": {"code": f"not JSON: {response.text[:200]!r}"}}


def outcomes(answers) -> Counter:
    """How many of each status and error code: {"201": 50, "409 usage_exhausted": 150}."""
    return Counter(f"{status} {body['error']['code']}" if "error" in body else str(status)
                   for status, body in answers)


@contextmanager
def revoking(portal: Portal, qr_code: dict, burst: Burst, *, after: int):
    """Revoke the QR code from another thread as soon as `after` answers of the burst are in,
    while the calls already sent race with it and the others wait until it has committed;
    yields a list that receives how many licenses the revocation released."""
    released, failures = [], []
    burst.held_after = after

    def revoke():
        deadline = time.monotonic() + 60
        try:
            while burst.done < after and time.monotonic() < deadline:
                time.sleep(0.002)
            released.append(portal.revoke(qr_code))
        except BaseException as error:  # raised again below, in the test
            failures.append(error)
        finally:
            burst.resume.set()
    revoker = threading.Thread(target=revoke)
    revoker.start()
    try:
        yield released
    finally:
        revoker.join(60)
    if failures:
        raise failures[0]
    assert released, "the revocation did not finish"


def test_200_devices_racing_for_a_usage_count_of_50(portal, server):
    portal.set_total(60)
    qr_code = portal.create_qr_code("auto", usage_count=50)
    assert portal.check_counters()["remaining"] == 10
    burst = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                                       "device": device(f"AUTO{i:04d}")}) for i in range(200)])
    answers = burst.run(check=portal.check_counters)

    assert outcomes(answers) == {"201": 50, "409 usage_exhausted": 150}, outcomes(answers)
    created = [body for status, body in answers if status == 201]
    assert len({body["device_id"] for body in created}) == 50
    assert len({body["device_token"] for body in created}) == 50
    assert {body["state"] for body in created} == {"provisioning"}
    figures = portal.check_counters(qr_code)
    assert (figures["total"], figures["used"], figures["reserved"], figures["remaining"]) \
        == (60, 50, 0, 10), figures
    assert figures["qr_devices"] == figures["qr_active_devices"] == 50, figures
    assert (figures["qr_used"], figures["qr_pending"]) == (50, 0), figures
    assert figures["qr_used_distinct_devices"] == 50, figures
    assert figures["qr_redeem_events"] == 200, figures  # every attempt is in the audit log
    print(burst.report(f"usage count 50 on {BACKEND}") + f"; {portal.samples} consistent "
          "samples of the counters")


def test_one_device_asking_20_times_at_once_gets_one_enrollment(portal, server):
    portal.set_total(10)
    qr_code = portal.create_qr_code("auto", usage_count=5)
    burst = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                                       "device": device("SAMEDEVICE1")})] * 20)
    answers = burst.run(check=portal.check_counters)

    assert outcomes(answers) == {"201": 1, "200": 19}, outcomes(answers)
    assert len({body["device_id"] for _, body in answers}) == 1
    figures = portal.check_counters(qr_code)
    assert figures["qr_devices"] == 1 and figures["qr_used"] == 1, figures
    assert (figures["qr_pending"], figures["used"], figures["reserved"]) == (4, 1, 4), figures

    # Tokens rotate: whichever answer was committed last holds the only token that works.
    device_id = answers[0][1]["device_id"]
    statuses = Counter(requests.get(f"{server}/api/v1/devices/{device_id}", timeout=10,
                                    headers={"Authorization": f"Bearer {body['device_token']}"}
                                    ).status_code for _, body in answers)
    assert statuses == {200: 1, 401: 19}, statuses
    print(burst.report(f"one serial on {BACKEND}"))


def test_100_tickets_racing_for_the_last_30_licenses(portal, server):
    portal.set_total(40)
    portal.create_qr_code("auto", usage_count=10)  # reserves 10: exactly 30 remain
    qr_code = portal.create_qr_code("ssp")
    tickets = portal.issue_tickets(qr_code, 101)
    assert portal.check_counters()["remaining"] == 30
    burst = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "ticket": ticket,
                                       "device": device(f"SSP{i:04d}")})
                           for i, ticket in enumerate(tickets[:100])])
    answers = burst.run(check=portal.check_counters)

    assert outcomes(answers) == {"201": 30, "409 no_license": 70}, outcomes(answers)
    figures = portal.check_counters(qr_code)
    assert (figures["total"], figures["used"], figures["reserved"], figures["remaining"]) \
        == (40, 30, 10, 0), figures
    assert figures["qr_devices"] == figures["qr_active_devices"] == 30, figures
    assert figures["qr_tickets_used"] == figures["qr_ticket_distinct_devices"] == 30, figures
    print(burst.report(f"last 30 licenses on {BACKEND}"))

    # One license more. A fresh ticket sent by 10 devices at once enrolls exactly one of them;
    # a spent ticket sent by 10 other devices at the same moment enrolls none.
    portal.set_total(41)
    spent = tickets[[status for status, _ in answers].index(201)]
    replay = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "ticket": ticket,
                                        "device": device(f"REPLAY{i:02d}")})
                            for i, ticket in enumerate([tickets[100]] * 10 + [spent] * 10)])
    answers = replay.run(check=portal.check_counters)

    assert outcomes(answers[:10]) == {"201": 1, "401 invalid_credentials": 9}, outcomes(answers)
    assert outcomes(answers[10:]) == {"401 invalid_credentials": 10}, outcomes(answers)
    figures = portal.check_counters(qr_code)
    assert (figures["total"], figures["used"], figures["reserved"], figures["remaining"]) \
        == (41, 41 - 10, 10, 0), figures
    assert figures["qr_devices"] == figures["qr_tickets_used"] == 31, figures
    assert figures["qr_ticket_distinct_devices"] == 31, figures
    assert figures["qr_redeem_events"] == 120, figures
    print(replay.report(f"replayed tickets on {BACKEND}") + f"; {portal.samples} consistent "
          "samples of the counters")


def test_revoking_a_qr_code_while_100_devices_redeem_it(portal, server):
    portal.set_total(60)
    qr_code = portal.create_qr_code("auto", usage_count=60)
    burst = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                                       "device": device(f"REVOKE{i:04d}")}) for i in range(100)])
    with revoking(portal, qr_code, burst, after=40) as released:
        answers = burst.run(check=portal.check_counters)

    seen = outcomes(answers)
    assert set(seen) <= {"201", "409 usage_exhausted", "403 qr_revoked"}, seen
    assert seen["403 qr_revoked"] > 0, seen  # the revocation came half-way
    enrolled = seen["201"]
    assert enrolled >= 40, seen  # the first 40 answers came before the revocation
    figures = portal.check_counters(qr_code)
    assert figures["used"] + figures["reserved"] + figures["remaining"] == figures["total"] == 60
    assert figures["reserved"] == figures["qr_pending"] == 0, figures
    assert figures["used"] == figures["qr_active_devices"] == figures["qr_used"] == enrolled
    assert figures["qr_revoked"] == released[0] == 60 - enrolled, (released, figures)
    assert figures["qr_redeem_events"] == 100, figures
    print(burst.report(f"revoked half-way on {BACKEND}") + f": {dict(seen)}; the revocation "
          f"released {released[0]} licenses; {portal.samples} consistent samples")


def test_devices_reporting_while_their_qr_code_is_revoked(portal, server):
    # A failed device gives its pending enrollment back; if the QR is revoked meanwhile, that
    # enrollment must end with the others, not wait as "pending" on a QR nobody can redeem.
    portal.set_total(70)
    qr_code = portal.create_qr_code("auto", usage_count=60)
    enrolled = Burst(server, [enrollment({"qr_id": qr_code["qr_id"], "otp": qr_code["otp"],
                                          "device": device(f"LATE{i:04d}")})
                              for i in range(60)]).run(check=portal.check_counters)
    assert outcomes(enrolled) == {"201": 60}, outcomes(enrolled)
    results = ["success", "failure"] * 30
    burst = Burst(server, [completion(body, result)
                           for (_, body), result in zip(enrolled, results)])
    with revoking(portal, qr_code, burst, after=20) as released:
        answers = burst.run(check=portal.check_counters)

    assert [(status, body.get("state")) for status, body in answers] \
        == [(200, "enrolled" if result == "success" else "failed") for result in results], \
        outcomes(answers)
    figures = portal.check_counters(qr_code)
    assert (figures["used"], figures["reserved"], figures["remaining"]) == (30, 0, 40), figures
    assert figures["qr_active_devices"] == figures["qr_used"] == 30, figures
    assert (figures["qr_pending"], figures["qr_revoked"]) == (0, 30), figures
    print(burst.report(f"30 successes and 30 failures, revoked half-way, on {BACKEND}")
          + f"; the revocation released {released[0]} licenses")


def test_a_failure_reported_as_its_qr_code_is_revoked_gives_the_license_back(portal,
                                                                              monkeypatch):
    # The narrowest interleaving, forced: complete() has read the QR code (not revoked) and
    # is about to put the device's pending enrollment back when the revocation runs. It must
    # wait for complete() (and then end that enrollment too) or come first; on SQLite it always
    # waits (BEGIN IMMEDIATE). The hook is _release()'s call of utcnow() after the read.
    from portal.enrollment import completion as completion_module
    portal.set_total(10)
    qr_code = portal.create_qr_code("auto", usage_count=3)
    device_id = portal.redeem(qr_code, "LATEFAIL01")
    released = []
    revoker = threading.Thread(target=lambda: released.append(portal.revoke(qr_code)))
    real_utcnow = completion_module.utcnow

    def revoke_now():
        monkeypatch.setattr(completion_module, "utcnow", real_utcnow)
        revoker.start()
        revoker.join(1)  # returns after 1 s when the revocation waits for this transaction
        return real_utcnow()
    monkeypatch.setattr(completion_module, "utcnow", revoke_now)
    assert portal.report_failure(device_id) == "failed"
    assert revoker.ident is not None, "complete() no longer calls utcnow(): move the hook"
    revoker.join(30)
    assert released, "the revocation did not finish"

    figures = portal.check_counters(qr_code)
    assert (figures["qr_pending"], figures["qr_revoked"]) == (0, 3), figures
    assert (figures["used"], figures["reserved"], figures["remaining"]) == (0, 0, 10), figures


def test_a_webhook_waiting_for_exhaustion_refuses_no_device_that_found_a_pending_enrollment(
        portal, server):
    """qr_code.exhausted is looked for after each redemption's commit, without locking: a
    pending row locked for that look made a concurrent claim skip it (SKIP LOCKED) on
    PostgreSQL and refuse its device as exhausted while a pending enrollment was left. Two
    devices race for each of 25 QR codes of usage count 2: all 50 enroll."""
    from portal.webhooks.endpoints import create_endpoint
    from portal.webhooks.models import WebhookDelivery

    portal._run(create_endpoint, "https://hooks.example.com/portal", "Race",
                ["qr_code.exhausted"], actor="tester", audit=lambda *a, **k: None)
    portal.set_total(50)
    qr_codes = [portal.create_qr_code("auto", usage_count=2) for _ in range(25)]
    burst = Burst(server, [enrollment({"qr_id": qr["qr_id"], "otp": qr["otp"],
                                       "device": device(f"HOOK{n:02d}{i}")})
                           for i in range(2) for n, qr in enumerate(qr_codes)])
    answers = burst.run(check=portal.check_counters)

    assert outcomes(answers) == {"201": 50}, outcomes(answers)
    figures = portal.check_counters()
    assert (figures["used"], figures["reserved"], figures["remaining"]) == (50, 0, 0), figures
    exhausted = portal._run(lambda: db.session.scalar(
        sa.select(sa.func.count(sa.distinct(WebhookDelivery.body))).where(
            WebhookDelivery.event_type == "qr_code.exhausted")))
    assert exhausted >= 25  # each QR code's at least once, never lost
    print(burst.report(f"25 QR codes of usage count 2 with a webhook on {BACKEND}"))
