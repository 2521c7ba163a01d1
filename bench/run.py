"""Benchmark, one run: redemption vs /healthz, Pending page, QR rendering, worker memory.

Redemption against /healthz on one gunicorn instance and on two, the console's Pending page at
10,000 and 100,000 rows, QR rendering cold and cached, and the memory of a gunicorn worker.

    .venv/bin/python -m bench.run [--quick] [--clients 16] [--redemptions 2000] [--seconds 5]
                                  [--sqlite-only] [--pages-postgres] [--no-pages]

Redemption: for each database (an SQLite file, and PostgreSQL when TEST_DATABASE_URL or a local
server on 127.0.0.1:5432 answers) it seeds an automatic QR code, starts gunicorn with 2 workers,
and drives both endpoints with the same client: N concurrent keep-alive-less HTTP clients, one
process each. It prints requests/s, p50 and p99 for each, their ratio measured in the same run,
and the CPU time gunicorn spent per request. On PostgreSQL it then does the same with one and
with two gunicorn instances sharing the database and a Redis database (--redis: throttling is
shared there, as in a deployment of several instances); with two, each client sends its
requests to the instances in turn. Two instances sharing an SQLite file is not a supported
deployment, so there is no SQLite figure for them.

Memory: VmRSS of every gunicorn worker, from /proc, once right after the server first answers
/healthz (idle) and once after the load.

Pages and QR rendering: bench.pages and bench.qr (see bench/README.md).
"""
import argparse
import contextlib
import http.client
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

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
    ports, kind, qr_id, otp, count, seconds, offset, barrier = args
    barrier.wait()
    started = time.monotonic()  # system-wide on Linux: comparable between the clients
    latencies, statuses, deadline, sent = [], {}, started + seconds, 0
    while (count and sent < count) or (not count and time.monotonic() < deadline):
        # Round robin over the instances, each client starting on a different one.
        port = ports[(offset // 1_000_000 + sent) % len(ports)]
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
    """CPU seconds (user + system) the gunicorn master and workers on `port` (or on each of a
    list of ports) used so far.

    It moves much less than requests/s when other programs load the machine. PostgreSQL's own
    processes are not in it (Linux only)."""
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in _gunicorn_pids(port):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _gunicorn_pids(port) -> list[int]:
    """The gunicorn master and worker processes serving `port` (an int or a list of them)."""
    binds = [f"127.0.0.1:{p}".encode() for p in (port if isinstance(port, list) else [port])]
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            command = cmdline.read_bytes()
        except OSError:  # the process ended meanwhile
            continue
        if b"gunicorn" in command and any(bind + b"\0" in command for bind in binds):
            pids.append(int(cmdline.parent.name))
    return pids


class Memory(NamedTuple):
    pid: int
    rss: int   # VmRSS, kB: resident, shared pages (the interpreter, libraries) included
    anon: int  # RssAnon, kB: the worker's own heap, what one more worker adds
    peak: int  # VmHWM, kB: the highest VmRSS so far


def worker_memory(ports: list[int]) -> list[Memory]:
    """The memory of each gunicorn worker on `ports`, from /proc/<pid>/status: the gunicorn
    processes whose parent is a gunicorn master on them (the masters' parent is this one)."""
    statuses = {}
    for pid in _gunicorn_pids(ports):
        try:
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        except OSError:
            continue
        statuses[pid] = {key: value.split()[0] for key, _, value in
                         (line.partition(":") for line in lines) if value.strip()}
    return [Memory(pid, int(status["VmRSS"]), int(status["RssAnon"]), int(status["VmHWM"]))
            for pid, status in sorted(statuses.items()) if int(status["PPid"]) in statuses]


def settled_memory(ports: list[int], workers: int, timeout: float = 15.0) -> list[Memory]:
    """worker_memory() once every worker has booted: all there and no VmRSS moving for half
    a second (a worker imports the app after the fork, so right after /healthz first answers
    the other one may still be loading it)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        now = worker_memory(ports)
        if last and len(now) == workers and [m.rss for m in now] == [m.rss for m in last]:
            return now
        last = now
        time.sleep(0.5)
    return last


def drive(port, kind, clients, *, qr_id=None, otp=None, total=0, seconds=5.0):
    """Run `clients` concurrent clients against `port`, or round robin against a list of ports;
    returns (requests/s, p50 ms, p99 ms, statuses, server CPU ms per request, slowest ms). The
    clock runs from the clients' common start to the last answer, so starting the client
    processes is not counted."""
    ports = port if isinstance(port, list) else [port]
    per_client = -(-total // clients) if total else 0
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    barrier = manager.Barrier(clients + 1)
    work = [(ports, kind, qr_id, otp, per_client, seconds, i * 1_000_000, barrier)
            for i in range(clients)]
    with ctx.Pool(clients) as pool:
        pending = pool.map_async(_client, work)
        cpu = server_cpu(ports)
        barrier.wait()
        results = pending.get()
        cpu = server_cpu(ports) - cpu
    return tally(results, cpu)


def tally(results, cpu: float):
    """The clients' (latencies, statuses, start, end) as (requests/s, p50 ms, p99 ms,
    statuses, server CPU ms per request, slowest ms), from their common start to the last
    answer."""
    elapsed = max(end for *_, end in results) - min(start for *_, start, _ in results)
    latencies = sorted(x for lat, *_ in results for x in lat)
    statuses = {}
    for _, answers, *_ in results:
        for key, value in answers.items():
            statuses[key] = statuses.get(key, 0) + value
    q = statistics.quantiles(latencies, n=100)
    return (len(latencies) / elapsed, q[49] * 1000, q[98] * 1000, statuses,
            cpu * 1000 / len(latencies), latencies[-1] * 1000)


def seed(database_uri, instance, usage_count):
    """A migrated database with one automatic QR code of `usage_count`; (app, qr_id, otp)."""
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.accounts.users import add_local_user
    from portal.database import db
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
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
        extras = json.loads(qr.payload_text())["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
        db.engine.dispose()
    return app, extras["qr_id"], extras["otp"]


class Figures(NamedTuple):
    label: str
    health: tuple  # drive()'s answer
    redeem: tuple
    idle: list     # worker_memory() right after start
    loaded: list   # and after the load


def bench_database(name, database_uri, args, *, instances=1, redis_url=None) -> Figures:
    """Seed `database_uri`, serve it with `instances` gunicorn servers (sharing Redis at
    `redis_url`, if given), measure, print the block of figures and return them."""
    from tests.support.gunicorn import gunicorn
    instance = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    label = f"{name}, {instances} instance{'s' if instances > 1 else ''}" \
            + (" + Redis" if redis_url else "")
    env = {"API_FAILED_ATTEMPTS_LIMIT": "1000000 per minute"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    try:
        # Enough for every request the clients send (they split the total evenly), so each
        # is a redemption that succeeds.
        usage = -(-args.redemptions // args.clients) * args.clients
        app, qr_id, otp = seed(database_uri, instance, usage)
        with contextlib.ExitStack() as servers:
            ports = [int(servers.enter_context(gunicorn(
                app, workers=args.workers, threads=args.threads, env=env)).rsplit(":", 1)[1])
                for _ in range(instances)]
            idle = settled_memory(ports, args.workers * instances)
            drive(ports, "healthz", 4, seconds=1)  # warm up
            health = drive(ports, "healthz", args.clients, seconds=args.seconds)
            redeem = drive(ports, "redeem", args.clients, qr_id=qr_id, otp=otp,
                           total=args.redemptions)
            loaded = worker_memory(ports)
    finally:
        shutil.rmtree(instance, ignore_errors=True)
    figures = Figures(label, health, redeem, idle, loaded)
    _print_block(figures, args)
    return figures


def _print_block(f: Figures, args) -> None:
    print(f"\n[{f.label}] {args.clients} concurrent clients, gunicorn {args.workers} workers "
          f"x {args.threads} threads per instance")
    for label, (rps, p50, p99, statuses, cpu, slowest) in (("GET /healthz", f.health),
                                                           ("POST /api/v1/enrollments", f.redeem)):
        print(f"  {label:26} {rps:8.1f} req/s   p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   "
              f"max {slowest:6.1f} ms   server CPU {cpu:5.2f} ms/request   "
              f"statuses {dict(sorted(statuses.items()))}")
    print(f"  redemption / healthz throughput ratio: {f.redeem[0] / f.health[0]:.2f}   "
          f"(server CPU per request: {f.health[4] / f.redeem[4]:.2f})")
    print(f"  worker memory, MiB VmRSS (RssAnon): idle after start {_mib(f.idle)}; after "
          f"the load {_mib(f.loaded)}; peak VmHWM {max(m.peak for m in f.loaded) / 1024:.1f}")


def _mib(workers: list[Memory]) -> str:
    return ", ".join(f"{m.rss / 1024:.1f} ({m.anon / 1024:.1f})" for m in workers)


def machine() -> str:
    """Cores, memory, CPU model, load average and the versions the figures depend on."""
    import sqlite3

    import gunicorn
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                  if line.startswith("model name")), "unknown CPU")
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 ** 2
    return (f"machine: {os.cpu_count()} cores ({model}), {memory:.1f} GiB, load average "
            f"{load_average()}; Python {sys.version.split()[0]}, SQLite "
            f"{sqlite3.sqlite_version}, gunicorn {gunicorn.__version__}")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _postgres_server() -> tuple[str | None, str | None]:
    """(URL, version) of the PostgreSQL server to bench on; (None, None), said why, when none
    answers."""
    import sqlalchemy as sa

    from config import database_url
    base = database_url(os.environ.get("TEST_DATABASE_URL",
                                       "postgresql://postgres@127.0.0.1:5432/postgres"))
    try:
        engine = sa.create_engine(base)
        with engine.connect() as connection:
            version = connection.exec_driver_sql("SHOW server_version").scalar()
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 -- no PostgreSQL: say so, keep the SQLite figures
        print(f"\n[postgresql] skipped: {exc.__class__.__name__}: {exc}")
        return None, None
    print(f"PostgreSQL {version} at {sa.make_url(base).render_as_string(hide_password=True)}")
    return base, version


def _drop_database(server: str, name: str) -> None:
    import sqlalchemy as sa
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextlib.contextmanager
def _redis(url: str):
    """Yields `url` if Redis answers there and its database is empty (so that what is in it
    afterwards is ours, and deleted on exit), else None."""
    import redis
    client = redis.Redis.from_url(url)
    try:
        keys = client.dbsize()
    except redis.RedisError as exc:
        print(f"\n[two instances] skipped: Redis at {url}: {exc}")
        yield None
        return
    if keys:
        print(f"\n[two instances] skipped: Redis database {url} holds {keys} keys that are "
              "not ours; choose another with --redis")
        yield None
        return
    try:
        yield url
    finally:
        for key in client.scan_iter(match="LIMITS*"):  # Flask-Limiter's prefix
            client.delete(key)
        client.close()


def bench_postgres(server: str, args) -> list[Figures]:
    """One instance as in a single-server deployment; one and two instances sharing Redis.
    Each configuration on a fresh database, dropped afterwards."""
    from tests.conftest import _fresh_postgres_database
    results = []
    with _redis(args.redis) as redis_url:
        configurations = [(1, None)] + ([(1, redis_url), (2, redis_url)] if redis_url else [])
        for instances, shared in configurations:
            name = "portal_bench" if instances == 1 and not shared else \
                f"portal_bench_{instances}_redis"
            uri = _fresh_postgres_database(server, name)
            try:
                results.append(bench_database("postgresql", uri, args, instances=instances,
                                              redis_url=shared))
            finally:
                _drop_database(server, name)
    return results


def summary(redemption: list[Figures], pages: dict | None, qr: dict, args,
            postgres_version: str | None, load_at_start: str) -> None:
    version = f", PostgreSQL {postgres_version}" if postgres_version else ""
    print(f"\n{'=' * 100}\nSummary   {machine()}{version}\n"
          f"          load average at the start {load_at_start} (1, 5, 15 minutes; the "
          f"benchmark's own load is in the one above)\n")
    print(f"Redemption against /healthz: {args.clients} clients, {args.redemptions} redemptions, "
          f"gunicorn {args.workers} workers per instance; target ratio >= 0.33 and p99 < 50 ms")
    print(f"  {'configuration':34} {'healthz/s':>9} {'p99':>6} {'redeem/s':>9} {'p50':>6} "
          f"{'p99':>6} {'max':>6} {'ratio':>6}  target")
    for f in redemption:
        ratio, p99 = f.redeem[0] / f.health[0], f.redeem[2]
        verdict = "met" if ratio >= 0.33 and p99 < 50 else \
            "not met (" + ", ".join(filter(None, ["ratio" if ratio < 0.33 else "",
                                                   "p99" if p99 >= 50 else ""])) + ")"
        print(f"  {f.label:34} {f.health[0]:9.0f} {f.health[2]:6.1f} {f.redeem[0]:9.0f} "
              f"{f.redeem[1]:6.1f} {f.redeem[2]:6.1f} {f.redeem[5]:6.1f} {ratio:6.2f}  "
              f"{verdict}")
    print("\nWorker memory, MiB per worker, VmRSS (RssAnon): idle after start -> after the load")
    for f in redemption:
        print(f"  {f.label:34} {_mib(f.idle)} -> {_mib(f.loaded)}")
    if pages:
        for database, by_scale in pages.items():
            small, large = sorted(by_scale)
            print(f"\nPending page, {database}, in process: median of {args.pages_repeat} "
                  f"requests, ms, at {small:,} and {large:,} rows (target ratio <= 1.5)")
            for case in by_scale[small]:
                if case.startswith("Pending"):
                    a, b = by_scale[small][case][0], by_scale[large][case][0]
                    print(f"  {case:34} {a:7.1f} {b:7.1f}   ratio {b / a:4.2f}")
            ratios = {case: by_scale[large][case][0] / by_scale[small][case][0]
                      for case in by_scale[small]}
            worst = max(ratios, key=ratios.get)
            print(f"  (all {len(ratios)} pages of bench.pages, worst ratio: {ratios[worst]:.2f}, "
                  f"{worst})")
    print(f"\nQR rendering, typical automatic Wi-Fi payload ({qr['bytes']} bytes, version "
          f"{qr['version']}), median of {args.qr_repeat}")
    for kind in ("png", "svg"):
        print(f"  render_{kind}: cold {qr[kind]['cold']:6.1f} ms, cached "
              f"{qr[kind]['cached'] * 1000:5.1f} µs")


QUICK = {"redemptions": 320, "seconds": 1.5, "pages_scales": "10000,20000", "pages_repeat": 3,
         "qr_repeat": 5}
DEFAULTS = {"redemptions": 2000, "seconds": 5.0, "pages_scales": "10000,100000",
            "pages_repeat": 31, "qr_repeat": 21}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--redemptions", type=int, help="per configuration (default 2000)")
    parser.add_argument("--seconds", type=float, help="of /healthz load (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="per gunicorn instance")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sqlite-only", action="store_true",
                        help="no PostgreSQL, hence no two-instance figures")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13",
                        help="an empty Redis database for the instances to share")
    parser.add_argument("--no-pages", action="store_true", help="skip the Pending page")
    parser.add_argument("--pages-postgres", action="store_true",
                        help="the Pending page on PostgreSQL too")
    parser.add_argument("--pages-scales", help="default 10000,100000")
    parser.add_argument("--pages-repeat", type=int, help="default 31")
    parser.add_argument("--qr-repeat", type=int, help="default 21")
    parser.add_argument("--all", action="store_true",
                        help="then the other parts, each printing its own ratios: bench.devices, "
                             "bench.bulk, bench.pdf, bench.amapi and bench.adminapi (issues 13, 16, 17)")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke test: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    from bench import pages as bench_pages
    from bench import qr as bench_qr
    try:
        scales = bench_pages.parse_scales(args.pages_scales)
    except ValueError as exc:
        parser.error(str(exc))
    started, load_at_start = time.monotonic(), load_average()
    print(machine())
    server, postgres_version = (None, None) if args.sqlite_only else _postgres_server()
    sqlite_dir = tempfile.mkdtemp(prefix="bench-db-")
    try:
        redemption = [bench_database("sqlite", f"sqlite:///{sqlite_dir}/portal.db", args)]
    finally:
        shutil.rmtree(sqlite_dir, ignore_errors=True)
    if server:
        redemption += bench_postgres(server, args)
    else:
        print("\n[two instances] skipped: they share a PostgreSQL database (an SQLite file "
              "shared by two servers is not a supported deployment)")
    pages = None
    if not args.no_pages:
        pages = bench_pages.run(scales, args.pages_repeat,
                                postgres=server if args.pages_postgres else None)
    qr = bench_qr.measure(args.qr_repeat)
    bench_qr.report(qr, args.qr_repeat)
    summary(redemption, pages, qr, args, postgres_version, load_at_start)
    if args.all:
        _the_other_parts(args)
    print(f"\n(the whole run: {time.monotonic() - started:.0f} s)")


def _the_other_parts(args) -> None:
    """bench.devices, bench.bulk, bench.pdf, bench.amapi and bench.adminapi in this run, at
    their defaults (--quick: small sizes); --sqlite-only keeps them off PostgreSQL where they can be."""
    from bench import adminapi, amapi, bulk, devices, pdf
    quick, postgres = args.quick, not args.sqlite_only
    for name, part, argv in (
            ("bench.devices", devices.main,
             (["--scales", "1000,10000", "--repeat", "5"] if quick else [])
             + ["--postgres", (os.environ.get("TEST_DATABASE_URL")
                               or "postgresql://postgres@127.0.0.1:5432/postgres")
                if postgres else ""]),
            ("bench.bulk", bulk.main,
             (["--rows", "200", "--directory-names", "50", "--directory-repeat", "1"]
              if quick else []) + ([] if postgres else ["--sqlite-only"])),
            ("bench.pdf", pdf.main, ["--qr-codes", "20", "--repeat", "1"] if quick else []),
            ("bench.amapi", amapi.main, ["--qr-codes", "20", "--devices", "50"] if quick else []),
            ("bench.adminapi", adminapi.main,
             (["--creations", "100", "--seconds", "2"] if quick else [])
             + (["--postgres"] if postgres else []))):
        print(f"\n===== {name} {' '.join(argv)}".rstrip())
        part(argv)


if __name__ == "__main__":
    main()
