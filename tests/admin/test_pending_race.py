"""Delete racing redemptions of the same pending enrollments, on a committed database (an SQLite
file, or PostgreSQL with TEST_DATABASE_URL): each pending enrollment ends exactly once, either
used by one device or deleted by one admin, and the license figures stay exact."""
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from portal.database import db
from tests.support.live import live_app

RACERS = 20  # pending enrollments; as many redemptions and as many Deletes race for them


def _in_app(app, fn, *args, **kwargs):
    with app.app_context():
        try:
            return fn(*args, **kwargs)
        finally:
            db.session.remove()


def _seed(app) -> tuple[str, str, list[int]]:
    from tests.api.conftest import otp_of
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.enrollment.models import PendingEnrollment
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    from portal.settings.companion import seed_example_companion

    seed_example_companion()
    set_total(RACERS * 2)
    create_admin("race-admin", "race-admin@example.com", "race admin password 1")
    user = add_local_user("racer", "racer@example.com", "racer password 1234")
    qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile", user=user,
                                      usage_count=RACERS), created_by=None,
                        server_url="https://portal.test")
    ids = list(db.session.scalars(sa.select(PendingEnrollment.id)
                                  .where(PendingEnrollment.qr_code_id == qr.id)))
    return qr.public_id, otp_of(qr), ids


def _redeem(public_id, otp, serial):
    from portal.enrollment.errors import EnrollmentError
    from portal.enrollment.redeem import DeviceInfo, redeem
    try:
        redeem(public_id, otp=otp, ticket=None, client_address="192.0.2.1",
               device=DeviceInfo(serial_number=serial, manufacturer="samsung",
                                 model="SM-X200", android_api_level=33))
        return "enrolled"
    except EnrollmentError as error:
        return type(error).__name__


def _delete(public_id, pending_id):
    from portal.accounts.models import AdminUser
    from portal.enrollment.models import QrCode
    from portal.provisioning.pending_actions import PendingActionError, delete_pending
    admin = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == "race-admin"))
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == public_id))
    try:
        delete_pending(qr, pending_id, deleted_by=admin)
        return "deleted"
    except PendingActionError:
        return "refused"


def _outcome(app):
    from portal.enrollment.models import Device, PendingEnrollment
    from portal.licensing.seats import figures
    states = dict(db.session.execute(sa.select(PendingEnrollment.state, sa.func.count())
                                     .group_by(PendingEnrollment.state)).all())
    devices = db.session.scalar(sa.select(sa.func.count()).select_from(Device))
    pool = figures()
    return states, devices, (pool.total, pool.used, pool.reserved)


def test_deletes_racing_redemptions_end_each_pending_enrollment_once(tmp_path):
    app = live_app(tmp_path, "pending_race")
    public_id, otp, ids = _in_app(app, _seed, app)
    start = threading.Barrier(RACERS * 2)

    def run(job):
        start.wait(timeout=30)
        return _in_app(app, *job)

    jobs = [(_redeem, public_id, otp, f"RACE{i:04d}") for i in range(RACERS)]
    jobs += [(_delete, public_id, pending_id) for pending_id in ids]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    enrolled, deleted = results.count("enrolled"), results.count("deleted")
    assert set(results) <= {"enrolled", "deleted", "refused", "UsageExhausted"}, results
    states, devices, (total, used, reserved) = _in_app(app, _outcome, app)
    assert states.get("used", 0) == enrolled == devices == used
    assert states.get("revoked", 0) == deleted
    assert enrolled + deleted == RACERS and states.get("pending", 0) == reserved == 0
    assert used + reserved <= total
    print(f"\n{enrolled} enrolled, {deleted} deleted of {RACERS} pending enrollments")
