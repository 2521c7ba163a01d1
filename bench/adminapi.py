"""Benchmark, one run: the Admin API's QR-code creation against /healthz on the same server.

    .venv/bin/python -m bench.adminapi [--clients 8] [--creations 1000] [--seconds 5]
                                       [--workers 2] [--postgres]

It seeds a database (an SQLite file; with --postgres also a fresh PostgreSQL database, from
TEST_DATABASE_URL or 127.0.0.1:5432), makes a provision token, starts gunicorn (2 workers, the
production gunicorn.conf.py) and drives, with the same N concurrent clients (one process each,
a new connection per request): GET /healthz for --seconds, then --creations
POST /api/admin/v1/qr-codes, each an Automatic Provisioning QR code with Usage Count 1 for a
local user and inline Wi-Fi settings (the wizard's validation, the payload, the pending
enrollment and its license, the audit rows). It prints requests/s, p50 and p99 of each, their
ratio, and the server's CPU time per request (see bench/README.md).
"""
import argparse
import http.client
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import _drop_database, _postgres_server, machine, server_cpu, tally  # noqa: E402

BODY = {"option": "auto", "user": "bench", "usage_count": 1, "localization": "en",
        "network": {"type": "wifi", "ssid": "Bench-WLAN", "security": "WPA",
                    "password": "bench-password-1"}}


def _client(args):
    port, kind, token, count, seconds, offset, barrier = args
    barrier.wait()
    started = time.monotonic()
    latencies, statuses, sent, deadline = [], {}, 0, started + seconds
    while (count and sent < count) or (not count and time.monotonic() < deadline):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        begin = time.perf_counter()
        if kind == "healthz":
            conn.request("GET", "/healthz")
        else:
            body = json.dumps({**BODY, "name": f"bench {offset + sent}"})
            conn.request("POST", "/api/admin/v1/qr-codes", body=body,
                         headers={"Content-Type": "application/json",
                                  "Authorization": f"Bearer {token}"})
        response = conn.getresponse()
        response.read()
        conn.close()
        latencies.append(time.perf_counter() - begin)
        statuses[response.status] = statuses.get(response.status, 0) + 1
        sent += 1
    return latencies, statuses, started, time.monotonic()


def drive(port, kind, clients, *, token=None, total=0, seconds=5.0):
    """(requests/s, p50 ms, p99 ms, statuses, server CPU ms per request)."""
    per_client = -(-total // clients) if total else 0
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(clients + 1)
    work = [(port, kind, token, per_client, seconds, i * 1_000_000, barrier)
            for i in range(clients)]
    with ctx.Pool(clients) as pool:
        pending = pool.map_async(_client, work)
        cpu = server_cpu(port)
        barrier.wait()
        results = pending.get()
        cpu = server_cpu(port) - cpu
    return tally(results, cpu)[:5]


def seed(database_uri: str, instance: Path, licenses: int):
    """A migrated database with the example Companion, licenses, the user bench and a
    provision token; (app, token)."""
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.accounts.api_tokens import create_token
    from portal.accounts.users import add_local_user
    from portal.database import db
    from portal.licensing.seats import set_total
    from portal.settings.companion import seed_example_companion
    config = type("Bench", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_uri,
                                           "INSTANCE_PATH": str(instance),
                                           "PASSWORD_HASH_PROFILE": "default"})
    app = create_app(config)
    with app.app_context():
        upgrade()
        seed_example_companion()
        set_total(licenses)
        add_local_user("bench", "bench@example.com", "bench-password")
        token = create_token("bench", "provision", created_by="bench", days=30).text
        db.engine.dispose()
    return app, token


def bench(name: str, database_uri: str, args) -> dict:
    from tests.support.gunicorn import gunicorn
    instance = Path(tempfile.mkdtemp(prefix=f"bench-adminapi-{name}-"))
    env = {"ADMIN_API_LIMIT": "1000000 per minute", "MAIL_SEND_AFTER_COMMIT": "0"}
    try:
        app, token = seed(database_uri, instance, args.creations + args.clients)
        with gunicorn(app, workers=args.workers, env=env) as url:
            port = int(url.rsplit(":", 1)[1])
            drive(port, "healthz", 4, seconds=1)  # warm up
            health = drive(port, "healthz", args.clients, seconds=args.seconds)
            create = drive(port, "create", args.clients, token=token, total=args.creations)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    print(f"\n[{name}] {args.clients} concurrent clients, gunicorn {args.workers} workers")
    for label, (rate, p50, p99, statuses, cpu) in (("GET /healthz", health),
                                                   ("POST /qr-codes", create)):
        print(f"  {label:<15} {rate:8.1f} req/s  p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  "
              f"server CPU {cpu:6.2f} ms/req  statuses {statuses}")
    ratio = create[0] / health[0]
    print(f"  ratio QR creation / healthz: {ratio:.3f}")
    return {"name": name, "health": health, "create": create, "ratio": ratio}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--creations", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args(argv)
    print(machine())
    root = Path(tempfile.mkdtemp(prefix="bench-adminapi-"))
    try:
        results = [bench("sqlite", f"sqlite:///{root / 'portal.db'}", args)]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if args.postgres:
        server, _ = _postgres_server()
        if server is not None:
            from tests.conftest import _fresh_postgres_database
            name = "portal_bench_adminapi"
            try:
                results.append(bench("postgresql", _fresh_postgres_database(server, name),
                                     args))
            finally:
                _drop_database(server, name)
    print("\nSummary: Admin API QR creation vs /healthz (same server, same clients)")
    for result in results:
        print(f"  {result['name']:<11} creation {result['create'][0]:7.1f}/s "
              f"(p99 {result['create'][2]:.0f} ms), healthz {result['health'][0]:7.1f}/s, "
              f"ratio {result['ratio']:.3f}")


if __name__ == "__main__":
    main()
