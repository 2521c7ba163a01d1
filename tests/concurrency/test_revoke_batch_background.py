"""Revoke batch with BULK_IN_BACKGROUND (as served): the deletions owed to Google are made by a
thread of the process after the admin's request has its answer, with its own session on the
committed database (the rolled-back `db` fixture of the other tests cannot show that)."""
import sqlalchemy as sa

from portal.database import db
from tests.concurrency.test_amapi_record_race import _adp_qr_code, _tasks


def test_the_deletions_a_revoked_batch_owes_are_made_by_a_background_thread(race_db, amapi):
    from portal.enrollment.models import QrCode
    from portal.enrollment.pending import revoke_qr_code
    from portal.provisioning.bulk import pay_google_after
    race_db.set_total(20)
    made = [_adp_qr_code(race_db, amapi) for _ in range(3)]
    ids = [qr["id"] for qr in made]

    def revoke_and_pay():
        race_db.app.config["BULK_IN_BACKGROUND"] = True
        for qr_code in db.session.scalars(sa.select(QrCode).where(QrCode.id.in_(ids))):
            revoke_qr_code(qr_code, revoked_by=None, commit=False)
        db.session.commit()
        return pay_google_after(ids)
    thread = race_db._run(revoke_and_pay)
    assert thread is not None
    thread.join(timeout=60)
    assert not thread.is_alive()

    assert not {qr["token_name"] for qr in made} & set(amapi.tokens)
    tasks = _tasks(race_db)
    assert len(tasks) == 3 and all(done for _, _, done in tasks)
