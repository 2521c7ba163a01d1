"""Mail tests talk to a real SMTP server on loopback (aiosmtpd) with STARTTLS, a test CA and
AUTH. The app's SMTP_* settings point at it; tests move the outbox's clock instead of sleeping.
"""
import os
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from config import TestConfig, database_url
from portal import create_app
from portal.database import db as _db, utcnow
from tests.support.certs import make_certs
from tests.support.smtp_sink import SmtpSink

SMTP_USER, SMTP_PASSWORD = "mailer", "s3cret-smtp-Pw!"
SENDER = "QR-Code Provisioning <portal@example.org>"


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """(ca, crt, key) of a test CA and a certificate for localhost and 127.0.0.1."""
    return make_certs(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def smtp_server(tls_files):
    """A started server that requires STARTTLS and accepts SMTP_USER / SMTP_PASSWORD."""
    _ca, crt, key = tls_files
    sink = SmtpSink(starttls_cert=(crt, key), require_starttls=True,
                    auth={SMTP_USER: SMTP_PASSWORD}).start()
    yield sink
    sink.stop()


def smtp_environment(sink, tls_files, **overrides) -> dict:
    """The SMTP_* settings (as config.py reads them) for a server on loopback."""
    settings = {"SMTP_HOST": "localhost", "SMTP_PORT": sink.port, "SMTP_STARTTLS": True,
                "SMTP_TLS": False, "SMTP_USERNAME": SMTP_USER, "SMTP_PASSWORD": SMTP_PASSWORD,
                "SMTP_CA_FILE": tls_files[0], "SMTP_TIMEOUT": 2.0, "MAIL_FROM": SENDER}
    settings.update(overrides)
    return settings


@pytest.fixture
def config_overrides(request, smtp_server, tls_files) -> dict:
    """The app of every mail test sends through `smtp_server`; parametrize to change it."""
    return smtp_environment(smtp_server, tls_files, **getattr(request, "param", {}))


@pytest.fixture
def deliver(db):
    """Run the worker's pass once, `minutes` from now (the back-off is a clock, not a sleep)."""
    from portal.mail.delivery import deliver_due

    def run(minutes: float = 0, **kwargs):
        return deliver_due(now=utcnow() + timedelta(minutes=minutes), **kwargs)
    return run


@pytest.fixture
def mail_admins(make_admin):
    """Two admins marked Mail recipient and one who is not."""
    return [make_admin("boss", email="boss@example.com", mail_recipient=True),
            make_admin("deputy", email="deputy@example.com", mail_recipient=True),
            make_admin("quiet", email="quiet@example.com")]


def outbox_rows(**where):
    from portal.mail.models import OutboxMessage
    statement = sa.select(OutboxMessage).order_by(OutboxMessage.id)
    for name, value in where.items():
        statement = statement.where(getattr(OutboxMessage, name) == value)
    return list(_db.session.scalars(statement.execution_options(populate_existing=True)))


# A database other processes can use (workers, a live server): committed, of its own.

class CommittedDatabase:
    def __init__(self, uri: str, instance: str, **overrides):
        self.uri, self.instance = uri, instance
        attrs = {"SQLALCHEMY_DATABASE_URI": uri, "INSTANCE_PATH": instance, **overrides}
        self.app = create_app(type("CommittedConfig", (TestConfig,), attrs))

    def run(self, fn, *args, **kwargs):
        with self.app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                _db.session.remove()

    def environment(self, **settings) -> dict:
        """The environment a `flask --app wsgi …` process needs to use this database."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "MAIL_"))}
        env.update({"DATABASE_URL": self.uri, "SECRET_KEY": TestConfig.SECRET_KEY,
                    "PORTAL_INSTANCE_DIR": self.instance, "PORTAL_ENV": "test"})
        env.update({k: str(v) for k, v in settings.items() if v is not None})
        env["SMTP_STARTTLS"] = "1" if settings.get("SMTP_STARTTLS") else "0"
        env["SMTP_TLS"] = "1" if settings.get("SMTP_TLS") else "0"
        return env


@pytest.fixture
def committed_db(request, tmp_path):
    """A migrated database of its own for one test (SQLite file or PostgreSQL), with the
    example Companion and 1000 licenses. Call it with the app's config overrides."""
    from flask_migrate import upgrade

    from tests.conftest import _fresh_postgres_database, drop_postgres_database
    base = os.environ.get("TEST_DATABASE_URL")
    name = f"portal_mail_{os.getpid()}_" + re.sub(r"\W", "_", request.node.name)[:30].lower()
    uri = _fresh_postgres_database(database_url(base), name) if base \
        else f"sqlite:///{tmp_path / 'mail.db'}"
    made = []

    def make(**overrides) -> CommittedDatabase:
        database = CommittedDatabase(uri, str(tmp_path / "instance"), **overrides)
        if not made:
            def prepare():
                from portal.licensing.seats import set_total
                from portal.settings.companion import seed_example_companion
                upgrade()
                seed_example_companion()
                set_total(1000)
            database.run(prepare)
        made.append(database)
        return database
    yield make
    for database in made:
        with database.app.app_context():
            _db.engine.dispose()
    if base:
        drop_postgres_database(uri)
