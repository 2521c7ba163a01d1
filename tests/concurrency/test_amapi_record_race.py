"""Android Device Policy devices recorded by several processes at once (issue 17): Pub/Sub
delivers at least once and the sync may list a device while its notification is handled, so
eight real processes record the same six phones at the same moment, each in its own order, on
one committed database (SQLite, or PostgreSQL with TEST_DATABASE_URL). Each phone is one device
holding at most one license: the QR code's four pending enrollments go to four of them, the
other two are failed (beyond the usage count) and deleted at Google once, and the token is
deleted at Google once when the last pending enrollment is used."""
import os
import time

import sqlalchemy as sa

from portal.database import db
from tests.conftest import connect_portal_to_standin

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"
PHONES, USAGE = 6, 4


def _adp_qr_code(race_db, amapi) -> dict:
    from portal.accounts.models import PortalUser
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code

    def create():
        connect_portal_to_standin(race_db.app, amapi)
        user = db.session.get(PortalUser, race_db.target.user_id)
        qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile", user=user,
                                          usage_count=USAGE, management="adp"),
                            created_by=None, server_url="https://portal.test")
        return {"id": qr.id, "token_name": qr.enrollment_token_name}
    return race_db._run(create)


def _devices(race_db) -> list[tuple]:
    from portal.enrollment.models import Device
    return race_db._run(lambda: db.session.execute(
        sa.select(Device.amapi_name, Device.state).order_by(Device.serial_number)).all())


def _tasks(race_db) -> list[tuple]:
    from portal.amapi.models import AmapiTask
    return race_db._run(lambda: db.session.execute(
        sa.select(AmapiTask.kind, AmapiTask.resource, AmapiTask.done_at.is_not(None))
        .order_by(AmapiTask.id)).all())


def test_eight_processes_recording_the_same_phones_count_each_once(race_db, race, amapi):
    race_db.set_total(20)
    qr = _adp_qr_code(race_db, amapi)
    value = amapi.tokens[qr["token_name"]]["value"]
    phones = [amapi.enroll(value, serial=f"RACE{n:02d}", model="Pixel 8") for n in range(PHONES)]
    start = race_db.check_counters()
    assert (start["used"], start["reserved"]) == (0, USAGE)

    jobs = [("record_amapi_devices", f"record{i}",
             {"target": race_db.target, "amapi_url": amapi.url,
              "resources": phones[i % PHONES:] + phones[:i % PHONES]}) for i in range(8)]
    race.start(jobs)
    started = race.go()
    reports = race.collect(len(jobs), while_waiting=race_db.check_counters)
    seconds = time.perf_counter() - started
    race.finish()

    outcomes = {}
    for report in reports:
        for outcome, count in report["refused"].items():
            outcomes[outcome] = outcomes.get(outcome, 0) + count
    assert outcomes == {"new": USAGE, "failed": PHONES - USAGE, "known": 8 * PHONES - PHONES}
    recorded = _devices(race_db)
    assert sorted(name for name, _ in recorded) == sorted(p["name"] for p in phones)
    assert sorted(state for _, state in recorded) == ["enrolled"] * USAGE + ["failed"] * 2
    end = race_db.check_counters()
    assert (end["used"], end["reserved"], end["devices"]) == (USAGE, 0, USAGE), end
    tasks = _tasks(race_db)
    assert sorted(kind for kind, _, _ in tasks) == ["delete_device", "delete_device",
                                                    "delete_token"]
    assert all(done for _, _, done in tasks), tasks
    assert len(amapi.calls("DELETE", "/enrollmentTokens/")) == 1
    failed = {name for name, state in recorded if state == "failed"}
    assert sorted(wipe["device"] for wipe in amapi.wipes) == sorted(failed)
    print(f"\n{BACKEND}: 8 processes recorded {PHONES} phones {8 * PHONES} times in "
          f"{seconds:.2f} s; {race_db.samples} samples of the counters")
