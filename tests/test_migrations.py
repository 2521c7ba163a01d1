"""Alembic migrations: upgrade from empty, match the models, seed the rows the portal needs."""
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade

from config import TestConfig
from portal import create_app
from portal.database import db
from portal.provisioning import search
from tests.conftest import _fresh_postgres_database


def _fresh_app(tmp_path, database_uri):
    if database_uri.startswith("postgresql"):
        uri = _fresh_postgres_database(database_uri, "portal_test_migrations")
    else:
        uri = f"sqlite:///{tmp_path / 'migrations.db'}"
    config = type("Fresh", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": uri,
                                           "INSTANCE_PATH": str(tmp_path)})
    return create_app(config)


def test_upgrade_from_empty_matches_the_models_and_downgrades_cleanly(tmp_path, database_uri):
    app = _fresh_app(tmp_path, database_uri)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_object": search.include_object})
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {"admin_users", "portal_users", "qr_codes", "pending_enrollments", "devices",
                "enrollment_tickets", "license_pool", "otp_policy", "companion_settings",
                "localizations", "zero_touch_entries", "audit_events",
                "outbox_messages"} <= tables
        downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}, \
            sa.inspect(db.engine).get_table_names()
        upgrade()  # and back up again, from empty
        db.engine.dispose()


def test_upgrade_seeds_the_license_pool_otp_defaults_and_builtin_localizations(db):
    pool = db.session.execute(sa.text("SELECT total, used, reserved FROM license_pool")).all()
    assert [tuple(row) for row in pool] == [(0, 0, 0)]
    otp = db.session.execute(sa.text(
        "SELECT length, alphabet, validity_hours FROM otp_policy")).all()
    assert [tuple(row) for row in otp] == [(12, "alnum", 72)]
    tags = db.session.scalars(sa.text(
        "SELECT tag FROM localizations WHERE builtin ORDER BY tag")).all()
    assert tags == ["de-CH", "en", "it"]
