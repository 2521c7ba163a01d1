"""Migration 0014_stale fills each QR code's Companion from its encrypted, frozen payload."""
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from portal.database import db
from tests.test_migrations import _fresh_app


def test_0014_fills_the_companion_from_each_payload_and_leaves_an_unreadable_one_null(
        tmp_path, database_uri):
    app = _fresh_app(tmp_path, database_uri)
    with app.app_context():
        upgrade()
        from portal.accounts.users import add_local_user
        from portal.licensing.seats import set_total
        from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
        from portal.settings.companion import EXAMPLE_CHECKSUM, EXAMPLE_COMPONENT
        from portal.settings.companion import seed_example_companion
        seed_example_companion()
        set_total(5)
        user = add_local_user("mia", "mia@example.com", "mia password 1234")
        ids = [create_qr_code(QrCodeRequest(option=option, lang="en", network="mobile",
                                            user=user, usage_count=1 if option == "auto"
                                            else None), created_by=None,
                              server_url="https://portal.test").id
               for option in ("auto", "ssp", "ssp")]
        # The third one's payload was encrypted with another SECRET_KEY.
        db.session.execute(sa.text("UPDATE qr_codes SET payload_enc = 'gAAAAnot-fernet' "
                                   "WHERE id = :id"), {"id": ids[2]})
        db.session.commit()
        downgrade(revision="0013_apk")
        upgrade()
        rows = db.session.execute(sa.text(
            "SELECT id, companion_component, companion_checksum FROM qr_codes ORDER BY id"))
        assert [tuple(row) for row in rows] == [
            (ids[0], EXAMPLE_COMPONENT, EXAMPLE_CHECKSUM),
            (ids[1], EXAMPLE_COMPONENT, EXAMPLE_CHECKSUM), (ids[2], None, None)]
        db.session.remove()
        db.engine.dispose()
