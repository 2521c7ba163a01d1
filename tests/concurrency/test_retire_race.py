"""Retiring devices while others enroll (issue 13): 50 retirements race 50 redemptions in real
processes on one committed database (SQLite, or PostgreSQL with TEST_DATABASE_URL). Each
retirement gives back exactly one license, even when two admins retire the same device at once;
the licenses it frees are what Self Service Portal devices enroll with; and all the while
`used + reserved <= total`, used equals the devices provisioning or enrolled, and reserved
equals the live pending enrollments (sampled during the race, checked after it).
"""
import json
import os
import time

import sqlalchemy as sa

from portal.database import db

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
DEVICES = 50


def _qr_code(race_db, option: str, usage_count: int | None = None) -> dict:
    from portal.accounts.models import PortalUser
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code

    def create():
        user = db.session.get(PortalUser, race_db.target.user_id) if option == "auto" else None
        qr = create_qr_code(QrCodeRequest(option=option, lang="en", network="mobile", user=user,
                                          usage_count=usage_count),
                            created_by=None, server_url="https://portal.test")
        extras = json.loads(qr.payload_text())[EXTRAS]
        return {"id": qr.id, "qr_id": extras["qr_id"], "otp": extras.get("otp")}
    return race_db._run(create)


def _enrolled(race_db, qr: dict, count: int) -> list[str]:
    """`count` devices redeemed and enrolled on the QR code; their public ids."""
    from portal.enrollment.completion import complete
    from portal.enrollment.models import Device
    from portal.enrollment.redeem import DeviceInfo, redeem

    def enroll(serial):
        device_id = redeem(qr["qr_id"], otp=qr["otp"], ticket=None, client_address="127.0.0.1",
                           device=DeviceInfo(serial, "samsung", "SM-G991B", 33)).device_id
        complete(db.session.scalar(sa.select(Device).where(Device.public_id == device_id)),
                 "success", None, client_address="127.0.0.1")
        return device_id
    return [race_db._run(enroll, f"OLD{number:03d}") for number in range(count)]


def _tickets(race_db, qr: dict, count: int) -> list[str]:
    from portal.accounts.models import PortalUser
    from portal.enrollment.models import QrCode
    from portal.enrollment.tickets import issue_ticket
    return race_db._run(lambda: [issue_ticket(db.session.get(QrCode, qr["id"]),
                                              db.session.get(PortalUser, race_db.target.user_id))
                                 for _ in range(count)])


def _retired(race_db) -> int:
    from portal.enrollment.models import Device
    return race_db._run(lambda: db.session.scalar(
        sa.select(sa.func.count()).select_from(Device).where(Device.state == "retired")))


def _sum(reports, key):
    return sum(report["refused"].get(key, 0) for report in reports)


def test_fifty_retirements_race_fifty_redemptions(race_db, race):
    half = DEVICES // 2
    race_db.set_total(2 * DEVICES)
    old = _enrolled(race_db, _qr_code(race_db, "auto", usage_count=DEVICES), DEVICES)
    waiting = _qr_code(race_db, "auto", usage_count=half)   # reserved licenses
    self_service = _qr_code(race_db, "ssp")                  # free licenses, none yet
    tickets = _tickets(race_db, self_service, 26)
    start = race_db.check_counters()
    assert (start["used"], start["reserved"], start["remaining"]) == (DEVICES, half, half)
    race_db.set_total(DEVICES + half)  # nothing free: SSP devices enroll with what retiring frees

    # Two admins retire every device (each one twice, in opposite orders), while automatic
    # devices take the reserved licenses and Self Service Portal devices the freed ones.
    target = race_db.target
    jobs = [("retire_devices", f"retire{i}", {"target": target, "device_ids": ids})
            for i, ids in enumerate((old[:half], old[half:], old[::-1][:half],
                                     old[::-1][half:]))]
    jobs += [("redeem_devices", f"auto{i}", {"target": target, "qr_id": waiting["qr_id"],
                                             "otp": waiting["otp"],
                                             "serials": [f"AUTO{i}-{n}" for n in range(13)]})
             for i in range(2)]
    jobs += [("redeem_devices", f"ssp{i}", {"target": target, "qr_id": self_service["qr_id"],
                                            "tickets": tickets[i::2],
                                            "serials": [f"SSP{i}-{n}" for n in range(13)]})
             for i in range(2)]
    race.start(jobs)
    started = race.go()
    reports = race.collect(len(jobs), while_waiting=race_db.check_counters)
    seconds = time.perf_counter() - started
    race.finish()

    by_name = {report["worker"]: report for report in reports}
    retirers = [by_name[f"retire{i}"] for i in range(4)]
    assert sum(r["ok"] for r in retirers) == DEVICES                 # one release per device
    assert _sum(retirers, "already_retired") == DEVICES              # the second admin told so
    auto = [by_name["auto0"], by_name["auto1"]]
    assert sum(r["ok"] for r in auto) == half                        # the reserved licenses
    assert _sum(auto, "usage_exhausted") == 26 - half
    ssp = [by_name["ssp0"], by_name["ssp1"]]
    enrolled_ssp = sum(r["ok"] for r in ssp)
    assert enrolled_ssp + _sum(ssp, "no_license") == 26, ssp   # a license, or none left
    assert _retired(race_db) == DEVICES
    end = race_db.check_counters()
    assert end["used"] == half + enrolled_ssp and end["reserved"] == 0, end
    assert end["used"] + end["reserved"] <= end["total"], end
    print(f"\n{BACKEND}: {DEVICES * 2} retirements (50 twice) and 52 redemptions in "
          f"{seconds:.2f} s; {enrolled_ssp} of 26 Self Service Portal devices got a freed "
          f"license in time; {race_db.samples} samples of the counters")
