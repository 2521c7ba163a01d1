"""A portal served on a loopback port with a committed database, for tests that need a real
server: browsers, the Companion simulator, anything another process talks to."""
import os
import threading
from contextlib import contextmanager
from pathlib import Path

from flask_migrate import upgrade
from werkzeug.serving import make_server

from config import TestConfig, database_url
from portal import create_app
from portal.database import db


def live_app(root: Path, name: str = "live", **overrides):
    """An app on a fresh, migrated database: an SQLite file in root, or a PostgreSQL
    database of its own when TEST_DATABASE_URL is set."""
    base = os.environ.get("TEST_DATABASE_URL")
    if base:
        from tests.conftest import _fresh_postgres_database
        uri = _fresh_postgres_database(database_url(base), f"portal_{name}_"
                                       + os.environ.get("PYTEST_XDIST_WORKER", "main"))
    else:
        uri = f"sqlite:///{root / 'portal.db'}"
    config = type("LiveConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": uri,
                                                "INSTANCE_PATH": str(root), **overrides})
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


@contextmanager
def serving(app):
    """The app on a free loopback port in a daemon thread; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)
        with app.app_context():
            db.engine.dispose()


class CommittedSession:
    """The test process's side of a database other processes use. Every call opens and closes
    its own session, so the test never holds SQLite's write lock while they run."""

    app = None

    def _run(self, fn, *args, **kwargs):
        with self.app.app_context():
            try:
                return fn(*args, **kwargs)
            finally:
                db.session.remove()

    def set_total(self, total: int) -> None:
        from portal.licensing.seats import set_total
        self._run(set_total, total)
