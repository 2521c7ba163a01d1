"""Licenses under concurrency (PRODUCT.md §4): saving an Automatic Provisioning QR code creates
the QR, its Usage Count pending enrollments and the reservation in one transaction, so admins
saving at once never reserve more than remain, and remaining = total - used - reserved never
goes below zero, whatever runs at the same time.

Every test runs real processes against a committed database of the current backend: an
SQLite file, or PostgreSQL when TEST_DATABASE_URL is set.
"""
import os
import time

import pytest

ON_POSTGRES = bool(os.environ.get("TEST_DATABASE_URL"))


def _refusals(reports) -> dict:
    total = {}
    for report in reports:
        for key, count in report["refused"].items():
            total[key] = total.get(key, 0) + count
    return total


def test_two_admins_racing_for_the_last_licenses(race_db, race):
    rounds, started = 5, time.perf_counter()
    race_db.set_total(10)
    race.start([("save_qr_codes", f"admin{i}",
                 {"target": race_db.target, "rounds": rounds, "usage_count": 6})
                for i in (1, 2)], rounds=rounds)
    update_refusals = 0
    for round_no in range(1, rounds + 1):
        assert race_db.check_counters()["remaining"] == 10
        race.go()
        reports = race.collect(2)
        assert sorted(r["ok"] for r in reports) == [0, 1], reports
        assert _refusals(reports) == {"usage_count": 1}, reports
        update_refusals += sum(r["refused_by_update"] for r in reports)

        figures = race_db.check_counters()
        assert (figures["reserved"], figures["remaining"]) == (6, 4), figures
        assert figures["pending"] == 6, figures
        # Nothing half-written by the loser: one more QR, its 6 rows, its mail, its audit event.
        assert figures["qr_codes"] == figures["outbox"] == figures["create_events"] == round_no
        assert figures["pending_rows"] == 6 * round_no, figures
        assert race_db.revoke_all() == 6  # the pool is back to 10 for the next round
    race.finish()
    print(f"\n{rounds} rounds of 2 savers on {'PostgreSQL' if ON_POSTGRES else 'SQLite'} in "
          f"{time.perf_counter() - started:.2f} s; {update_refusals} of {rounds} refusals "
          "came from the conditional UPDATE, the rest from the form check")


@pytest.mark.skipif(not ON_POSTGRES, reason="SQLite takes its write lock at BEGIN IMMEDIATE, "
                    "before the form check reads the pool, so that check cannot go stale")
def test_a_stale_license_check_is_caught_by_the_conditional_update(race_db, race):
    # Both savers pass "enough licenses remain" before either reserves: only the conditional
    # UPDATE in seats.reserve() stands between them and overspending.
    started = time.perf_counter()
    race_db.set_total(10)
    race.start([("save_qr_codes", f"admin{i}", {"target": race_db.target, "usage_count": 6,
                                                "pause_after_check": True})
                for i in (1, 2)])
    race.go()
    reports = race.collect(2)
    race.finish()
    assert sorted(r["ok"] for r in reports) == [0, 1], reports
    assert _refusals(reports) == {"usage_count": 1}, reports
    assert sum(r["refused_by_update"] for r in reports) == 1, reports
    figures = race_db.check_counters()
    assert (figures["reserved"], figures["remaining"], figures["pending_rows"]) == (6, 4, 6)
    assert figures["qr_codes"] == figures["outbox"] == figures["create_events"] == 1, figures
    print(f"\nstale check caught in {time.perf_counter() - started:.2f} s")


def test_many_savers_never_overspend(race_db, race):
    processes, saves, usage_count, total = 8, 5, 3, 50
    started = time.perf_counter()
    race_db.set_total(total)
    race.start([("save_qr_codes", f"admin{i}", {"target": race_db.target, "saves": saves,
                                                "usage_count": usage_count})
                for i in range(processes)])
    raced = race.go()
    reports = race.collect(processes, while_waiting=race_db.check_counters)
    raced = time.perf_counter() - raced
    race.finish()

    assert sum(r["ok"] for r in reports) == total // usage_count == 16, reports
    assert _refusals(reports) == {"usage_count": processes * saves - 16}, reports
    figures = race_db.check_counters()
    assert (figures["reserved"], figures["remaining"]) == (48, 2), figures
    assert figures["pending_rows"] == figures["pending"] == 48, figures
    assert figures["qr_codes"] == figures["outbox"] == figures["create_events"] == 16, figures
    print(f"\n{processes}x{saves} saves in {raced:.2f} s ({time.perf_counter() - started:.2f} s "
          f"with process start-up); {race_db.samples} consistent samples of the counters")


def test_savers_racing_with_revokers_and_expiry(race_db, race):
    savers, saves, usage_count = 4, 10, 2
    started = time.perf_counter()
    race_db.set_total(6)
    race.start(
        [("save_qr_codes", f"admin{i}", {"target": race_db.target, "saves": saves,
                                         "usage_count": usage_count,
                                         "validities": (1, None, 1, "unlimited")})
         for i in range(savers)]
        + [("revoke_and_expire", f"revoker{i}", {"target": race_db.target, "seed": i})
           for i in range(2)])
    raced = race.go()
    reports = race.collect(savers, while_waiting=race_db.check_counters)
    race.stop()
    reports += race.collect(2, while_waiting=race_db.check_counters)
    raced = time.perf_counter() - raced
    race.finish()

    saved = [r for r in reports if r["worker"].startswith("admin")]
    revokers = [r for r in reports if r["worker"].startswith("revoker")]
    created = sum(r["ok"] for r in saved)
    assert set(_refusals(saved)) <= {"usage_count"}, reports
    assert created + sum(_refusals(saved).values()) == savers * saves

    figures = race_db.check_counters()
    assert figures["qr_codes"] == figures["outbox"] == figures["create_events"] == created
    assert figures["pending_rows"] == usage_count * created, figures
    assert figures["qr_codes_revoked"] == sum(r["revoked"] for r in revokers), reports
    released = sum(r["released_by_revoke"] + r["released_by_expiry"] for r in revokers)
    assert released == figures["expired"] + figures["revoked"], (released, figures)
    assert figures["revoked"] == sum(r["released_by_revoke"] for r in revokers), figures
    assert figures["expired"] == sum(r["released_by_expiry"] for r in revokers), figures
    assert figures["pending_rows"] == figures["pending"] + released, figures
    print(f"\n{savers} savers ({created} saved, {savers * saves - created} refused) against "
          f"2 revokers ({figures['qr_codes_revoked']} revoked, "
          f"{sum(r['already_revoked'] for r in revokers)} already revoked; "
          f"{figures['revoked']} rows revoked, {figures['expired']} expired) in {raced:.2f} s "
          f"({time.perf_counter() - started:.2f} s with start-up); "
          f"{race_db.samples} consistent samples of the counters")
