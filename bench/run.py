"""Benchmark: redemption throughput and latency against /healthz's, on gunicorn, one run.

    .venv/bin/python -m bench.run [--clients 16] [--redemptions 2000] [--seconds 5] [--sqlite-only]

For each database (an SQLite file, and PostgreSQL when TEST_DATABASE_URL or a local server on
127.0.0.1:5432 answers) it seeds an automatic QR code, starts gunicorn with 2 workers, and drives
both endpoints with the same client: N concurrent keep-alive-less HTTP clients, one process
each. It prints requests/s, p50 and p99 for each, their ratio measured in the same run, and the
CPU time gunicorn spent per request.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _request(port, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    start = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, time.perf_counter() - start


def _client(args):
    port, kind, qr_id, otp, count, seconds, offset, barrier = args
    barrier.wait()
    started = time.monotonic()  # system-wide on Linux: comparable between the clients
    latencies, statuses, deadline, sent = [], {}, started + seconds, 0
    while (count and sent < count) or (not count and time.monotonic() < deadline):
        if kind == "healthz":
            status, took = _request(port, "GET", "/healthz")
        else:
            body = json.dumps({"qr_id": qr_id, "otp": otp, "device": {
                "serial_number": f"BENCH{offset + sent:08d}", "manufacturer": "bench",
                "model": "bench", "android_api_level": 34}})
            status, took = _request(port, "POST", "/api/v1/enrollments", body)
        latencies.append(took)
        statuses[status] = statuses.get(status, 0) + 1
        sent += 1
    return latencies, statuses, started, time.monotonic()


def server_cpu(port) -> float:
    """CPU seconds (user + system) the gunicorn master and workers on `port` used so far.

    It moves much less than requests/s when other programs load the machine. PostgreSQL's own
    processes are not in it (Linux only)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"gunicorn" not in (command := cmdline.read_bytes()) \
                    or f"127.0.0.1:{port}".encode() not in command:
                continue
            fields = (cmdline.parent / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def drive(port, kind, clients, *, qr_id=None, otp=None, total=0, seconds=5.0):
    """Run `clients` concurrent clients; returns (requests/s, p50 ms, p99 ms, statuses,
    server CPU ms per request). The clock runs from the clients' common start to the last
    answer, so starting the client processes is not counted."""
    per_client = -(-total // clients) if total else 0
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(clients + 1)
    work = [(port, kind, qr_id, otp, per_client, seconds, i * 1_000_000, barrier)
            for i in range(clients)]
    with ctx.Pool(clients) as pool:
        pending = pool.map_async(_client, work)
        cpu = server_cpu(port)
        barrier.wait()
        results = pending.get()
        cpu = server_cpu(port) - cpu
    elapsed = max(end for *_, end in results) - min(start for *_, start, _ in results)
    latencies = sorted(x for lat, *_ in results for x in lat)
    statuses = {}
    for _, s, *_ in results:
        for key, value in s.items():
            statuses[key] = statuses.get(key, 0) + value
    q = statistics.quantiles(latencies, n=100)
    return (len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, statuses,
            cpu * 1000 / len(latencies))


def seed(database_uri, instance, usage_count):
    """A migrated database with one automatic QR code of `usage_count`; (app, qr_id, otp)."""
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.accounts.users import add_local_user
    from portal.database import db
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code, payload_text
    from portal.settings.companion import seed_example_companion
    config = type("Bench", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": database_uri,
                                           "INSTANCE_PATH": str(instance),
                                           "PASSWORD_HASH_PROFILE": "default"})
    app = create_app(config)
    with app.app_context():
        upgrade()
        seed_example_companion()
        set_total(usage_count)
        add_local_user("bench", "bench@example.com", "bench-password")
        qr = create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile",
                                          username="bench", usage_count=usage_count,
                                          otp_validity="unlimited"),
                            created_by=None, server_url="https://bench.example")
        extras = json.loads(payload_text(qr))["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
        db.engine.dispose()
    return app, extras["qr_id"], extras["otp"]


def bench_database(name, database_uri, args):
    from tests.gunicorn import gunicorn
    instance = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    app, qr_id, otp = seed(database_uri, instance, args.redemptions)
    with gunicorn(app, workers=args.workers, threads=args.threads,
                  env={"API_FAILED_ATTEMPTS_LIMIT": "1000000 per minute"}) as url:
        port = int(url.rsplit(":", 1)[1])
        drive(port, "healthz", 4, seconds=1)  # warm up
        health = drive(port, "healthz", args.clients, seconds=args.seconds)
        redeem = drive(port, "redeem", args.clients, qr_id=qr_id, otp=otp,
                       total=args.redemptions)
    print(f"\n[{name}] {args.clients} concurrent clients, gunicorn {args.workers} workers "
          f"x {args.threads} threads")
    for label, (rps, p50, p99, statuses, cpu) in (("GET /healthz", health),
                                                  ("POST /api/v1/enrollments", redeem)):
        print(f"  {label:26} {rps:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
              f"server CPU {cpu:5.2f} ms/request   statuses {dict(sorted(statuses.items()))}")
    print(f"  redemption / healthz throughput ratio: {redeem[0] / health[0]:.2f}   "
          f"(server CPU per request: {health[4] / redeem[4]:.2f})")
    return health, redeem


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--redemptions", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args(argv)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    bench_database("sqlite", f"sqlite:///{tempfile.mkdtemp(prefix='bench-db-')}/portal.db", args)
    if not args.sqlite_only:
        base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
        from config import database_url
        from tests.conftest import _fresh_postgres_database
        try:
            uri = _fresh_postgres_database(database_url(base), "portal_bench")
        except Exception as exc:  # noqa: BLE001 -- no PostgreSQL: say so, keep the SQLite figures
            print(f"\n[postgresql] skipped: {exc.__class__.__name__}: {exc}")
            return
        bench_database("postgresql", uri, args)


if __name__ == "__main__":
    main()
