"""The portal under gunicorn, as production runs it: real worker processes on a loopback port,
for the tests and benchmarks that need more than one process serving the same database.

    app = live_app(tmp_path, "race")          # seeds the data, with TestConfig's SECRET_KEY
    with gunicorn(app, workers=2) as url:     # the same database, key and instance folder
        requests.post(f"{url}/api/v1/enrollments", json=...)

Call it twice on one app for two instances side by side (each has its own port and no control
socket, so they never meet). The server's output goes to a temporary file that is quoted when
it does not come up.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # where wsgi.py is
CONFIG = ROOT / "gunicorn.conf.py"  # the one ./dev run and production use
# Seconds until /healthz must answer 200. Only a guard against a server that hangs: one that
# exits is seen at once, and how long a start takes is nobody's test (on a loaded 2-core
# machine the master and each worker importing the app took over 20 s).
START_TIMEOUT = 120.0
STOP_TIMEOUT = 10.0   # seconds for a graceful stop before the process group is killed


def free_port() -> int:
    """A loopback port nobody listens on right now (the OS may hand it out again later,
    so use it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(app, **overrides) -> dict[str, str]:
    """The environment under which `wsgi:app` (config.Config) sees what `app` sees: its
    database, its SECRET_KEY (or encrypted OTPs and payloads would not decrypt), its instance
    folder and public URL. Overrides are more variables, e.g. API_FAILED_ATTEMPTS_LIMIT."""
    config = app.config
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": config["SQLALCHEMY_DATABASE_URI"],
        "SECRET_KEY": config["SECRET_KEY"],
        "PORTAL_INSTANCE_DIR": app.instance_path,
        "PORTAL_PUBLIC_URL": config["PORTAL_PUBLIC_URL"],
        "REDIS_URL": config.get("REDIS_URL") or "",  # "" means none, as in TestConfig
        "TRUSTED_PROXIES": str(config.get("TRUSTED_PROXIES", 0)),
        "PYTHONUNBUFFERED": "1",
    })
    env.update({name: str(value) for name, value in overrides.items()})
    return env


@contextmanager
def gunicorn(app, *, workers: int = 2, threads: int = 1, env: dict | None = None,
             log: Path | None = None, start_timeout: float = START_TIMEOUT):
    """`gunicorn -c gunicorn.conf.py --workers N wsgi:app` on a free loopback port, on `app`'s
    database; yields the base URL once /healthz answers 200, and stops the server (and waits
    for it) on exit.
    The server's output (tracebacks of 500s included) goes to `log`, or a temporary file."""
    with (open(log, "w+") if log else tempfile.TemporaryFile("w+")) as output:
        # The listening socket is bound here and handed over (gunicorn's fd://): a port picked
        # free and bound later by the server could be taken meanwhile by another process.
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = listener.getsockname()[1]
            command = [sys.executable, "-m", "gunicorn", "wsgi:app", "--config", str(CONFIG),
                       "--bind", f"fd://{listener.fileno()}",
                       "--workers", str(workers), "--threads", str(threads),
                       "--graceful-timeout", "5", "--no-control-socket", "--log-level", "warning"]
            # A session of its own: the server and its workers form one process group, which
            # is this process's to end and nobody else's.
            process = subprocess.Popen(command, cwd=ROOT, env=environment(app, **(env or {})),
                                       stdin=subprocess.DEVNULL, stdout=output,
                                       stderr=subprocess.STDOUT, start_new_session=True,
                                       pass_fds=(listener.fileno(),))
        # (the server holds its own copy of the socket; ours is closed)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_healthy(process, url, start_timeout, output)
            yield url
        finally:
            _stop(process)


def _wait_until_healthy(process, url: str, timeout: float, output) -> None:
    deadline, last = time.monotonic() + timeout, "no answer yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last = f"gunicorn exited with status {process.returncode}"
            break
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
                last = f"/healthz answered {response.status}"
        except urllib.error.HTTPError as error:
            last = f"/healthz answered {error.code}"
        except OSError as error:  # not listening yet
            last = f"/healthz: {error}"
        time.sleep(0.1)
    else:
        last += f" after {timeout:.0f} s"
    output.seek(0)
    raise RuntimeError(f"gunicorn at {url} did not come up: {last}\n"
                       f"--- its output ---\n{output.read()[-8000:]}")


def _stop(process) -> None:
    """SIGTERM to the master, which stops its workers gracefully; if the server is still there
    after STOP_TIMEOUT, SIGKILL to its process group (it has not been reaped, so the group id
    is still its own)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
