"""Regenerate racing itself and redemptions, on a committed database (an SQLite file, or
PostgreSQL with TEST_DATABASE_URL), each racer on its own connection: one Regenerate wins and
the others get the clear message; every pending enrollment is either used by a device on the
old QR code or moved to the new one, and the license figures stay exact."""
import threading
from concurrent.futures import ThreadPoolExecutor

import sqlalchemy as sa

from tests.admin.test_pending_race import _in_app, _redeem
from tests.support.live import live_app

PENDING = 10     # devices redeeming the stale QR code
SPARE = 5        # its pending enrollments beyond them: some are always left for Regenerate to
                 # move, however fast the devices are (on PostgreSQL all ten once came first)
REGENERATORS = 4  # admins pressing Regenerate at the same moment


def _seed(app) -> tuple[str, str]:
    from tests.api.conftest import otp_of
    from tests.provisioning.test_regenerate import change_companion, checksum_of
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    from portal.settings.companion import seed_example_companion

    seed_example_companion()
    set_total(PENDING * 2)
    for n in range(REGENERATORS):
        create_admin(f"admin{n}", f"admin{n}@example.com", "race admin password 1")
    user = add_local_user("racer", "racer@example.com", "racer password 1234")
    qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile", user=user,
                                      usage_count=PENDING + SPARE), created_by=None,
                        server_url="https://portal.test")
    change_companion(checksum=checksum_of("rotated signing key"))
    return qr.public_id, otp_of(qr)


def _regenerate(public_id, n):
    from portal.accounts.models import AdminUser
    from portal.database import db
    from portal.enrollment.models import QrCode
    from portal.provisioning.regenerate import TAKEN, RegenerateError, regenerate_qr_code
    admin = db.session.scalar(sa.select(AdminUser).where(AdminUser.username == f"admin{n}"))
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == public_id))
    try:
        regenerate_qr_code(qr, regenerated_by=admin, server_url="https://portal.test")
        return "regenerated"
    except RegenerateError as error:
        return "taken" if error.message == TAKEN else error.message


def _outcome(public_id):
    from portal.database import db
    from portal.enrollment.models import Device, PendingEnrollment, QrCode
    from portal.licensing.seats import figures
    old = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == public_id))
    new = db.session.scalars(sa.select(QrCode).where(QrCode.id != old.id)).all()

    def states(qr):
        return dict(db.session.execute(
            sa.select(PendingEnrollment.state, sa.func.count())
            .where(PendingEnrollment.qr_code_id == qr.id).group_by(PendingEnrollment.state)).all())
    devices = db.session.scalar(sa.select(sa.func.count()).select_from(Device))
    pool = figures()
    return (old.revoked_at is not None, states(old), [(qr.usage_count, states(qr)) for qr in new],
            devices, (pool.used, pool.reserved))


def test_one_regenerate_wins_and_every_pending_enrollment_is_used_or_moved_once(tmp_path):
    app = live_app(tmp_path, "regenerate_race")
    public_id, otp = _in_app(app, _seed, app)
    start = threading.Barrier(PENDING + REGENERATORS)

    def run(job):
        start.wait(timeout=30)
        return _in_app(app, *job)

    jobs = [(_regenerate, public_id, n) for n in range(REGENERATORS)]
    jobs += [(_redeem, public_id, otp, f"RACE{i:04d}") for i in range(PENDING)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        results = list(pool.map(run, jobs))
    regenerated, redeemed = results[:REGENERATORS], results[REGENERATORS:]
    assert sorted(regenerated) == ["regenerated"] + ["taken"] * (REGENERATORS - 1), regenerated
    assert set(redeemed) <= {"enrolled", "QrRevoked", "UsageExhausted"}, redeemed
    enrolled = redeemed.count("enrolled")
    revoked, old_states, new, devices, (used, reserved) = _in_app(app, _outcome, public_id)
    [(usage_count, new_states)] = new
    assert revoked and devices == enrolled == used == old_states.get("used", 0)
    assert old_states.get("revoked", 0) == usage_count == new_states["pending"] == reserved
    assert enrolled + usage_count == PENDING + SPARE and "pending" not in old_states
    print(f"\n{enrolled} enrolled on the old QR code, {usage_count} moved to the new one")
