"""Two admins confirming bulk batches at once for the last licenses: exactly one batch wins.

Both previews were fine (each batch fits the licenses that remained); only one batch fits
them together. Two real processes (spawned, each with its own app and engine) run their
confirmed batch at the same moment; the one conditional seats.reserve(total) of each batch's
insert transaction decides. Runs on SQLite, and on PostgreSQL with TEST_DATABASE_URL.
"""
import multiprocessing
import traceback

import sqlalchemy as sa

from portal.database import db
from tests.support.race_workers import BARRIER_TIMEOUT, race_config

ROWS, USAGE, TOTAL = 3, 2, 10   # each batch reserves 6 licenses; 10 fit one batch, not two
URL = "https://portal.test"


def run_confirmed_batch(target, batch_id: int, barrier, results) -> None:
    """A worker: its own app on the shared database; waits for the other, runs its batch."""
    try:
        from portal import create_app
        from portal.provisioning import bulk
        app = create_app(race_config(target))
        with app.app_context():
            barrier.wait(BARRIER_TIMEOUT)
            batch = bulk.run_batch(batch_id, server_url=URL)
            results.put({"batch": batch_id, "state": batch.state, "error": batch.error})
            db.session.remove()
            db.engine.dispose()
    except BaseException:
        barrier.abort()
        results.put({"batch": batch_id, "fatal": traceback.format_exc()})


def _prepare(race_db) -> list[int]:
    """Two admins, a profile, six users; each admin previews and confirms a batch of three."""
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.provisioning import bulk
    from portal.settings import network_profiles

    def prepare():
        profile = network_profiles.save(network_profiles.ProfileValues(
            name="Race Wi-Fi", network="wifi", wifi_ssid="Race", wifi_security="WPA",
            wifi_password="correct-horse"), actor="test")
        batch_ids = []
        for admin_no in (1, 2):
            admin = create_admin(f"bulkadmin{admin_no}", f"bulkadmin{admin_no}@example.com",
                                 "correct horse battery")
            rows = []
            for row in range(ROWS):
                name = f"racer{admin_no}{row}"
                add_local_user(name, f"{name}@example.com", "user-password-1")
                rows.append({"username": name, "usage_count": USAGE})
            preview = bulk.preview_rows(rows, network_profile_id=profile.id, otp_validity=None,
                                        created_by=admin, server_url=URL)
            assert preview.ok and preview.total == 6 and preview.remaining == TOTAL, \
                preview.problems
            staged = bulk.stage(preview, name=f"batch{admin_no}", network_profile_id=profile.id,
                                otp_validity=None, created_by=admin)
            batch_ids.append(bulk.start_batch(staged, created_by=admin).id)
        return batch_ids
    return race_db._run(prepare)


def test_two_admins_confirming_batches_for_the_last_licenses(race_db):
    race_db.set_total(TOTAL)
    batch_ids = _prepare(race_db)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    processes = [ctx.Process(target=run_confirmed_batch, daemon=True,
                             args=(race_db.target, batch_id, barrier, results))
                 for batch_id in batch_ids]
    for process in processes:
        process.start()
    reports = [results.get(timeout=180) for _ in processes]
    for process in processes:  # only the processes this test started
        process.join(timeout=30)
    assert not [report["fatal"] for report in reports if "fatal" in report], reports

    assert sorted(report["state"] for report in reports) == ["created", "failed"], reports
    loser = next(report for report in reports if report["state"] == "failed")
    assert "reserves 6 licenses and only 4 remain" in loser["error"], loser
    figures = race_db.check_counters()
    assert (figures["total"], figures["reserved"], figures["remaining"]) == (10, 6, 4), figures
    assert figures["pending_rows"] == figures["pending"] == 6, figures
    assert figures["qr_codes"] == figures["create_events"] == ROWS, figures
    assert figures["outbox"] == 0  # no send_to_user, no alternative address, no recipient

    from portal.enrollment.models import QrCode
    winner = next(report["batch"] for report in reports if report["state"] == "created")
    in_batches = race_db._run(lambda: dict(db.session.execute(
        sa.select(QrCode.batch_id, sa.func.count()).group_by(QrCode.batch_id)).all()))
    assert in_batches == {winner: ROWS}
