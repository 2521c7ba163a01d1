"""While Google answers, the database is free: a real process creates an Android Device Policy
QR code as the wizard does and is held inside Google's token create, while this process
writes to the same committed database (SQLite or PostgreSQL). On SQLite every transaction
holds the write lock from BEGIN, so a create that asked Google inside its transaction would
keep this write waiting until Google answered (here: never, the worker waits for the write).
The suite checks every other call site too: STRICT_TRANSACTIONS makes a call to Google inside
a transaction raise."""
import os
import time

import sqlalchemy as sa

from portal.database import db
from tests.conftest import connect_portal_to_standin

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"


def test_a_write_goes_through_while_google_makes_the_token(race_db, race, amapi):
    race_db._run(connect_portal_to_standin, race_db.app, amapi)
    race_db.set_total(10)
    race.start([("create_adp_qr_code", "wizard", {"target": race_db.target,
                                                  "amapi_url": amapi.url})])
    race.go()
    race.sync.pair_barrier.wait(60)           # the worker is inside Google's create now
    started = time.perf_counter()
    try:
        race_db.set_total(12)                 # a write, as any other admin or device makes
    finally:
        waited = time.perf_counter() - started
        race.sync.pair_barrier.wait(60)       # let Google answer
    [report] = race.collect(1)
    race.finish()

    assert report["ok"] == 1, report
    from portal.enrollment.models import QrCode
    made = race_db._run(lambda: db.session.execute(
        sa.select(QrCode.management, QrCode.enrollment_token_name)).all())
    assert len(made) == 1 and made[0][0] == "adp" and made[0][1] in amapi.tokens
    figures = race_db.check_counters()
    assert (figures["total"], figures["reserved"]) == (12, 2), figures
    print(f"\n{BACKEND}: a write during Google's token create took {waited * 1000:.1f} ms")
