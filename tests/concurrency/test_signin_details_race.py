"""Admins save and revoke Self Service QR codes with Android Device Policy at the same moment,
in six real processes against the stand-in, on one committed database (SQLite, or PostgreSQL
with TEST_DATABASE_URL). Google keeps an enterprise's sign-in details as one list that the API
only replaces whole (enterprises.get, then enterprises.patch), and the stand-in holds each
patch for a moment, so without the sign-in details' lease (portal.amapi.lease) the processes
read the same list and write over each other: sign-in details of new QR codes lost (those QR
codes enroll nothing), revoked ones back (those go on enrolling). With it, Google ends up with
exactly the live QR codes' sign-in details."""
import os
import time

import sqlalchemy as sa

from portal.database import db
from tests.conftest import connect_portal_to_standin

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"
CREATORS, REVOKERS, EACH = 4, 2, 2


def _ssp_qr_codes(race_db, amapi, count: int) -> list[int]:
    from portal.accounts.models import PortalUser
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code

    def create():
        connect_portal_to_standin(race_db.app, amapi)
        user = db.session.get(PortalUser, race_db.target.user_id)
        return [create_qr_code(QrCodeRequest(option="ssp", lang="en", network="mobile",
                                             user=user, management="adp"),
                               created_by=None, server_url="https://portal.test").id
                for _ in range(count)]
    return race_db._run(create)


def _live_public_ids(race_db) -> set[str]:
    from portal.enrollment.models import QrCode
    return set(race_db._run(lambda: db.session.scalars(sa.select(QrCode.public_id).where(
        QrCode.revoked_at.is_(None), QrCode.management == "adp")).all()))


def _owed(race_db) -> list:
    from portal.amapi.models import AmapiTask
    return race_db._run(lambda: db.session.execute(sa.select(
        AmapiTask.resource, AmapiTask.last_error).where(AmapiTask.done_at.is_(None))).all())


def test_sign_in_details_saved_and_revoked_at_once_are_all_kept_or_removed(race_db, race,
                                                                            amapi):
    race_db.set_total(10)
    revoked = _ssp_qr_codes(race_db, amapi, REVOKERS * EACH)
    amapi.delay(r"^/v1/enterprises/[^/]+$", 0.15, times=None, method="PATCH")
    jobs = [("change_signin_details", f"save{i}", {"target": race_db.target,
                                                    "amapi_url": amapi.url, "create": EACH})
            for i in range(CREATORS)]
    jobs += [("change_signin_details", f"revoke{i}",
              {"target": race_db.target, "amapi_url": amapi.url,
               "revoke_ids": revoked[i * EACH:(i + 1) * EACH]}) for i in range(REVOKERS)]
    race.start(jobs)
    started = race.go()
    reports = race.collect(len(jobs))
    seconds = time.perf_counter() - started
    race.finish()

    made = {public_id for report in reports for public_id in report["refusal_texts"]}
    assert len(made) == CREATORS * EACH
    assert sum(report["revoked"] for report in reports) == REVOKERS * EACH
    live = _live_public_ids(race_db)
    assert live == made
    at_google = [detail["tokenTag"]
                 for detail in amapi.enterprises["enterprises/LC0abc"]["signinDetails"]]
    assert sorted(at_google) == sorted(live)
    assert _owed(race_db) == []
    patches = len(amapi.calls("PATCH", r"^/v1/enterprises/[^/]+$"))
    print(f"\n{BACKEND}: {CREATORS * EACH} saves and {REVOKERS * EACH} revocations of Self "
          f"Service QR codes at once in {seconds:.2f} s, {patches} patches of the sign-in "
          f"details; Google holds the {len(at_google)} live ones")
