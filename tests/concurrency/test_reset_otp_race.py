"""Two admins press Reset OTP on the same Android Device Policy QR code at the same instant, in
two real processes against the stand-in, on one committed database (SQLite, or PostgreSQL with
TEST_DATABASE_URL). Both have Google's new token in hand before either swaps it in (they meet
at a barrier after Google answered), so without a conditional swap both would save and one
token would stay live at Google, owned by no QR code. With it: one wins, the other gives its
token back (deleted at Google) and is shown the winner's, with a sentence."""
import os

import sqlalchemy as sa

from portal.database import db
from tests.concurrency.test_amapi_record_race import _adp_qr_code, _tasks

BACKEND = "PostgreSQL" if os.environ.get("TEST_DATABASE_URL") else "SQLite"


def _admin(race_db) -> int:
    from portal.accounts.admins import create_admin
    return race_db._run(lambda: create_admin("ada", "ada@example.com",
                                             "admin-password-1").id)


def _qr_code(race_db, qr_id: int) -> dict:
    from portal import vault
    from portal.enrollment.models import QrCode

    def read():
        qr = db.session.get(QrCode, qr_id)
        return {"token_name": qr.enrollment_token_name, "otp": vault.decrypt(qr.otp_enc),
                "payload": qr.payload_text()}
    return race_db._run(read)


def _audited(race_db, action: str) -> int:
    from portal.audit.models import AuditEvent
    return race_db._run(lambda: db.session.scalar(sa.select(sa.func.count()).select_from(
        AuditEvent).where(AuditEvent.action == action)))


def test_two_resets_at_once_leave_one_token_at_google(race_db, race, amapi):
    race_db.set_total(10)
    qr = _adp_qr_code(race_db, amapi)
    admin_id = _admin(race_db)
    jobs = [("reset_adp_otp", f"reset{i}", {"target": race_db.target, "qr_id": qr["id"],
                                            "admin_id": admin_id, "amapi_url": amapi.url})
            for i in range(2)]
    race.start(jobs)
    race.go()
    reports = race.collect(len(jobs))
    race.finish()

    winners = [r for r in reports if r["ok"]]
    losers = [r for r in reports if r["refused"]]
    assert len(winners) == 1 and len(losers) == 1, reports
    assert losers[0]["refused"] == {"reset_meanwhile": 1}
    shown_to_loser, sentence = losers[0]["refusal_texts"]
    assert sentence == "The OTP was just reset by someone else; showing the new one."
    now = _qr_code(race_db, qr["id"])
    assert winners[0]["refusal_texts"] == [now["otp"]] and shown_to_loser == now["otp"]
    assert now["otp"] in now["payload"]
    # Google made two tokens; only the winner's lives, the old one and the loser's are gone.
    assert len(amapi.calls("POST", r"/enrollmentTokens$")) == 3  # the QR code's, then two
    assert list(amapi.tokens) == [now["token_name"]]
    # (The old token's deletion may be tried by both: the winner after its commit, the loser's
    # worker pass; Google's 404 to the second counts as deleted.)
    deleted = {call.path for call in amapi.calls("DELETE", "/enrollmentTokens/")}
    assert len(deleted) == 2 and f"/v1/{qr['token_name']}" in deleted
    assert all(done for _, _, done in _tasks(race_db))
    assert _audited(race_db, "qr_code.reset_otp") == 1
    assert _audited(race_db, "qr_code.view_otp") == 1  # the loser saw the winner's OTP
    print(f"\n{BACKEND}: two resets at once, one token left at Google")
