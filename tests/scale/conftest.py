"""Several instances of the portal, as a deployment behind a load balancer runs them: gunicorn
servers on different ports that share one PostgreSQL database, one Redis and one SECRET_KEY,
and the faults such a deployment meets (PostgreSQL restarted, Redis gone).

SQLite is for one machine, so this folder belongs to the PostgreSQL pass of `./dev test`
(TEST_DATABASE_URL) and is skipped, at no cost, in the SQLite pass. The servers use a fresh
database on that PostgreSQL and the machine's Redis (database REDIS_DB, which the rest of the
suite leaves alone); the fault tests start a PostgreSQL cluster and a redis-server of their own.
Nothing here restarts or flushes what other runs use: a run deletes only its own Redis keys.

The instances sit behind a "load balancer" that the clients play themselves: they pick the
instance, and send the X-Forwarded-For header a balancer adds (TRUSTED_PROXIES=1). Every test
takes client addresses and user names of its own from this run, so the throttling state in
Redis never carries from one test, or one run, to another.
"""
import html
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import redis
import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from config import TestConfig, database_url
from portal import create_app
from portal.database import db
from tests.concurrency.test_redeem_race import Portal
from tests.conftest import ADMIN_PASSWORD, csrf_token_from
from tests.support.gunicorn import free_port, gunicorn
from tests.support.live import live_app

HERE = Path(__file__).resolve().parent
REDIS_DB = 13
SHARED_REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
USER_PASSWORD = "user-password-1"
TIMEOUT = 30  # seconds for one HTTP request; only reached when something hangs
# Low enough to reach in a test; every test counts from a client address of its own.
SERVER_ENV = {"API_FAILED_ATTEMPTS_LIMIT": "6 per 10 minutes"}
PG_BIN = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                key=lambda path: int(path.parent.parent.name)
                if path.parent.parent.name.isdigit() else 0)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("TEST_DATABASE_URL"):
        return
    skip = pytest.mark.skip(reason="several instances need PostgreSQL: SQLite is for one "
                                   "machine only (these run in the TEST_DATABASE_URL pass)")
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


class Deployment(Portal):
    """The test's side of the deployment: the shared database (with the race tests' helpers),
    the instances' base URLs, and names and client addresses that belong to this run only."""

    def __init__(self, app, user_id: int | None, run: str):
        super().__init__(app, user_id)
        self.run, self.urls = run, []
        self.username = f"alice-{run}"
        self.admins = [f"admin-a-{run}", f"admin-b-{run}"]
        self._network = f"10.{random.randrange(256)}.{random.randrange(256)}"
        self._addresses = 0

    def address(self) -> str:
        """A client address no other test of this run (or earlier run) has used."""
        self._addresses += 1
        assert self._addresses < 255
        return f"{self._network}.{self._addresses}"

    def leave_remaining(self, remaining: int) -> None:
        """Set the license total so that exactly `remaining` licenses are free."""
        figures = self.snapshot()
        self.set_total(figures["used"] + figures["reserved"] + remaining)

    def forget_throttling(self) -> None:
        """Remove this run's throttling keys (they expire on their own anyway)."""
        client = redis.Redis.from_url(SHARED_REDIS_URL)
        for pattern in (f"*{self._network}.*", f"*{self.run}*"):
            keys = list(client.scan_iter(match=pattern, count=500))
            if keys:
                client.delete(*keys)
        client.close()


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    """Two gunicorn servers (two workers each) on one fresh PostgreSQL database and the
    machine's Redis, with one user, two admins and the example Companion."""
    _require_redis(SHARED_REDIS_URL)
    run = secrets.token_hex(3)
    app = live_app(tmp_path_factory.mktemp("scale"), f"scale_{os.getpid()}",
                   REDIS_URL=SHARED_REDIS_URL, TRUSTED_PROXIES=1,
                   # Plain HTTP on loopback: a Secure session cookie would never be sent back.
                   PORTAL_PUBLIC_URL="http://portal.test")
    deployment = Deployment(app, None, run)
    try:
        deployment.user_id = _seed(app, run)
        with instances(app, 2, env=SERVER_ENV) as urls:
            deployment.urls = urls
            yield deployment
        deployment.check_counters()
    finally:
        deployment.forget_throttling()
        _drop_database(app)


def _seed(app, run: str) -> int:
    """The run's user and two admins, and the example Companion; the user's id."""
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.settings.companion import seed_example_companion
    with app.app_context():
        user_id = add_local_user(f"alice-{run}", "alice@example.com", USER_PASSWORD).id
        for name in (f"admin-a-{run}", f"admin-b-{run}"):
            create_admin(name, f"{name}@example.com", ADMIN_PASSWORD)
        seed_example_companion()
        db.session.remove()
    return user_id


@contextmanager
def instances(app, count: int, **options):
    """`count` gunicorn servers on `app`'s database, started side by side; their base URLs.
    Every server that came up is stopped on exit, even when another one did not come up."""
    servers = [gunicorn(app, **options) for _ in range(count)]
    with ExitStack() as stack:
        with ThreadPoolExecutor(count) as pool:
            futures = [pool.submit(server.__enter__) for server in servers]
        for server, future in zip(servers, futures):
            if future.exception() is None:
                stack.push(server.__exit__)
        yield [future.result() for future in futures]


def migrated_app(uri: str, instance: Path, **overrides):
    """An app (TestConfig) on a migrated database at `uri`."""
    config = type("ScaleConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_url(uri),
                                                 "INSTANCE_PATH": str(instance), **overrides})
    app = create_app(config)
    with app.app_context():
        upgrade()
    return app


def _drop_database(app) -> None:
    with app.app_context():
        db.engine.dispose()
    name = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database
    admin = sa.create_engine(database_url(os.environ["TEST_DATABASE_URL"]),
                             isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _require_redis(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as error:
        pytest.fail(f"these tests need Redis at {url} (./dev test starts it): {error}")
    finally:
        client.close()


# --- the browsers and devices behind the load balancer -------------------------------------

class Browser(requests.Session):
    """One browser: one cookie jar and one client address (the X-Forwarded-For header the load
    balancer adds), whichever instance answers."""

    def __init__(self, address: str):
        super().__init__()
        self.headers["X-Forwarded-For"] = address

    def form_token(self, url: str) -> str:
        """GET a page and return the CSRF token of its form."""
        page = self.get(url, timeout=TIMEOUT)
        assert page.status_code == 200, (url, page.status_code, page.text[:500])
        return csrf_token_from(page.text)

    def submit(self, url: str, data: dict, *, token_from: str | None = None):
        """POST a form with the CSRF token of the page at `token_from` (default: `url`)."""
        data = {"csrf_token": self.form_token(token_from or url), **data}
        return self.post(url, data=data, allow_redirects=False, timeout=TIMEOUT)


def sign_in_admin(browser: Browser, instance: str, username: str):
    return browser.submit(f"{instance}/admin/login",
                          {"username": username, "password": ADMIN_PASSWORD})


def sign_in_ssp(browser: Browser, instance: str, qr_id: str, username: str,
                password: str = USER_PASSWORD):
    return browser.submit(f"{instance}/ssp/sign-in?qr_id={qr_id}",
                          {"username": username, "password": password},
                          token_from=f"{instance}/ssp/?qr_id={qr_id}")


def press_start(browser: Browser, instance: str, qr_id: str) -> str:
    """Press Start on the Self Service Portal; the ticket of the enrollment link."""
    response = browser.submit(f"{instance}/ssp/start?qr_id={qr_id}", {})
    assert response.status_code == 200, (response.status_code, response.text[:500])
    link = re.search(r'<a id="enrollment-link"[^>]*href="([^"]+)"', response.text)
    assert link, response.text[:2000]
    return parse_qs(urlsplit(html.unescape(link.group(1))).query)["ticket"][0]


def device(serial: str) -> dict:
    return {"serial_number": serial, "manufacturer": "samsung", "model": "SM-G991B",
            "android_api_level": 33}


def redeem(instance: str, body: dict, *, address: str | None = None):
    headers = {"X-Forwarded-For": address} if address else {}
    return requests.post(f"{instance}/api/v1/enrollments", json=body, headers=headers,
                         timeout=TIMEOUT)


def contract_error(response, status: int, code: str) -> None:
    """A contract error: this status, JSON {"error": {"code", "message"}}, no page or trace."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert "Traceback" not in response.text and "<html" not in response.text.lower()


# --- throw-away servers for the fault tests --------------------------------------------------

class Cluster:
    """A PostgreSQL cluster of our own: trust authentication on loopback, no fsync."""

    def __init__(self, directory: Path, port: int):
        self.directory, self.port = directory, port
        self.bin = PG_BIN[-1].parent

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *args: str) -> None:
        _as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.directory / "data"), *args])

    def start(self) -> None:
        self._pg_ctl("-l", str(self.directory / "server.log"), "-w", "-t", "60", "start", "-o",
                     f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} "
                     "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-t", "60", "stop", "-m", mode)


@contextmanager
def throwaway_postgres():
    """initdb into a temporary directory and start it on a free port; stopped and deleted on
    exit, whatever happened."""
    if not PG_BIN:
        pytest.skip("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
    directory = Path(tempfile.mkdtemp(prefix="portal-scale-pg-"))
    cluster = Cluster(directory, free_port())
    try:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(directory, "postgres", "postgres")
        _as_postgres([str(cluster.bin / "initdb"), "-D", str(directory / "data"), "-U",
                      "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                      "--no-sync"])
        cluster.start()
        yield cluster
    finally:
        if (directory / "data" / "postmaster.pid").exists():
            try:
                cluster.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(directory, ignore_errors=True)


def _as_postgres(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=90)


class RedisServer:
    """A redis-server of our own in the foreground, without persistence."""

    def __init__(self, directory: Path):
        self.directory, self.port = directory, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {self.port} did not start")
                time.sleep(0.05)
        client.close()

    def kill(self) -> None:
        """SIGKILL: gone at once, as when its machine fails."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_connect_timeout=1)


@contextmanager
def own_redis():
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    directory = Path(tempfile.mkdtemp(prefix="portal-scale-redis-"))
    server = RedisServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.kill()
        shutil.rmtree(directory, ignore_errors=True)
