"""Benchmark: Devices → Devices at two sizes (default 10,000 and 100,000 devices), one run.

    .venv/bin/python -m bench.devices [--repeat 21] [--scales 100000,1000000] [--postgres URL]

For each size it builds a database with demo-data (an SQLite file in a temporary directory;
with --postgres, or TEST_DATABASE_URL set, also a PostgreSQL database, dropped afterwards),
signs in as an admin with Flask's test client and times, in process, the median of --repeat
requests, the sizes taking turns: the Devices list (first page, 20 pages in), its search (one
serial number, a model matching many, a user), its filters (failed, stuck), a device page with
its timeline. It prints each median, the SQL statements per request, and the ratio of the large
size to the small one (the target is at most 1.3). Then, in a fresh process per size, it
exports the whole list as CSV and prints rows per second and the process's resident memory
before the export and the most it reached during it, sampled every 10,000 rows (the target:
at least 20,000 rows/s, memory flat).
"""
import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import pages  # noqa: E402  (after the path: python -m bench.devices from anywhere)

DEEP = 20
TARGET_RATIO = 1.3


def sizes_for(rows: int):
    """rows devices; a QR code per hundred devices, a tenth as many pending enrollments and
    audit events (the timeline reads the audit log by index, whatever its size)."""
    from portal.demo_data import Sizes
    return Sizes(devices=rows, qr_codes=max(rows // 100, 10), pending=rows // 10,
                 audit=rows // 10)


def build(database_uri: str, rows: int, workdir: Path):
    return pages.build(database_uri, rows, workdir, sizes=sizes_for(rows))


def _samples(app) -> dict:
    """A device in the middle of the list, with its user, and a model."""
    import sqlalchemy as sa

    from portal.accounts.models import PortalUser
    from portal.database import db
    from portal.enrollment.models import Device
    with app.app_context():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Device))
        device = db.session.execute(
            sa.select(Device.public_id, Device.serial_number, PortalUser.username)
            .join(PortalUser, PortalUser.id == Device.user_id)
            .order_by(Device.id).offset(count // 2).limit(1)).one()
        db.session.remove()
    return {"device": device.public_id, "serial": device.serial_number,
            "user": device.username}


def cases(app, client) -> list[tuple[str, object]]:
    found = _samples(app)
    deep = pages._follow(client, "/admin/devices/", DEEP)
    return [
        ("Devices, first page", lambda: client.get("/admin/devices/")),
        (f"Devices, page {DEEP + 1}", lambda: client.get(deep)),
        ("Search: one serial number", lambda: client.get(
            f"/admin/devices/?q={found['serial'].lower()}")),
        ("Search: a model (many)", lambda: client.get("/admin/devices/?q=pixel")),
        ("Search: a user", lambda: client.get(f"/admin/devices/?q={found['user']}")),
        ("Filter: failed", lambda: client.get("/admin/devices/?state=failed")),
        ("Filter: stuck", lambda: client.get("/admin/devices/?state=stuck")),
        ("Device page", lambda: client.get(f"/admin/devices/{found['device']}")),
    ]


def prepare(database_uri: str, rows: int, workdir: Path) -> pages.Scale:
    from portal.database import db
    from tests.conftest import sign_in
    app = build(database_uri, rows, workdir)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    assert sign_in(client, "bench-admin", pages.PASSWORD).status_code == 303
    return pages.Scale(pages.Counter(engine), engine, cases(app, client))


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _export(database_uri: str, instance: str, results) -> None:
    """In a fresh process: sign in, stream the whole CSV export, report rows/s and memory."""
    sys.path.insert(0, str(ROOT))
    from config import TestConfig
    from portal import create_app
    from tests.conftest import sign_in
    app = create_app(type("BenchExport", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_uri, "INSTANCE_PATH": instance}))
    client = app.test_client()
    sign_in(client, "bench-admin", pages.PASSWORD)
    client.get("/admin/devices/")  # templates and statements warmed up
    before = _rss_kib("VmRSS")
    started = time.perf_counter()
    response = client.get("/admin/devices/export.csv", buffered=False)
    lines, peak = 0, before
    for number, chunk in enumerate(response.response):
        lines += chunk.count(b"\n") if isinstance(chunk, bytes) else chunk.count("\n")
        if number % 20 == 0:  # every 10,000 rows (the export yields 500 at a time)
            peak = max(peak, _rss_kib("VmRSS"))
    seconds = time.perf_counter() - started
    response.close()
    results.put({"rows": lines - 1, "seconds": seconds, "rss_before": before,
                 "rss_peak": max(peak, _rss_kib("VmRSS"))})


def export(database_uri: str, workdir: Path) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=_export, args=(database_uri, str(workdir), results))
    process.start()
    figures = results.get(timeout=1800)
    process.join()
    return figures


def report(label: str, by_scale: dict, exports: dict) -> None:
    small, large = sorted(by_scale)
    print(f"\n[{label}] median of the requests, ms (SQL statements per request)")
    print(f"  {'page':30} {small:>12,} {large:>12,}   ratio")
    for name in by_scale[small]:
        (a, qa), (b, qb) = by_scale[small][name], by_scale[large][name]
        flag = "" if b / a <= TARGET_RATIO else f"  > {TARGET_RATIO}"
        print(f"  {name:30} {a:7.1f} ({qa:2d}) {b:7.1f} ({qb:2d})   {b / a:4.2f}{flag}")
    print(f"[{label}] CSV export of the whole list")
    for rows, figures in sorted(exports.items()):
        print(f"  {rows:>12,} devices: {figures['rows']:,} rows in {figures['seconds']:.1f} s "
              f"= {figures['rows'] / figures['seconds']:,.0f} rows/s; worker RSS "
              f"{figures['rss_before'] / 1024:.0f} MiB before, "
              f"{figures['rss_peak'] / 1024:.0f} MiB at most during the export")


def run(sizes: list[int], repeat: int, postgres: str | None = None,
        postgres_only: bool = False) -> dict:
    import shutil
    workdir = Path(tempfile.mkdtemp(prefix="bench-devices-"))
    databases = [] if postgres_only and postgres else [
        ("sqlite", lambda rows: f"sqlite:///{workdir}/devices-{rows}.db")]
    if postgres:
        databases.append(("postgresql", lambda rows: _postgres(postgres, rows)))
    figures = {}
    try:
        for label, uri_for in databases:
            print(f"\n[{label}] building the databases", flush=True)
            uris = {rows: uri_for(rows) for rows in sizes}
            scales = {rows: prepare(uris[rows], rows, workdir) for rows in sizes}
            measured = pages.measure(scales, repeat)
            for scale in scales.values():
                scale.engine.dispose()
            exports = {rows: export(uris[rows], workdir) for rows in sizes}
            report(label, measured, exports)
            figures[label] = {"pages": measured, "exports": exports}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if postgres:
            _drop_postgres(postgres, sizes)
    return figures


PREFIX = "portal_bench_devices"


def _postgres(server: str, rows: int) -> str:
    return pages._postgres(server, rows, PREFIX)


def _drop_postgres(server: str, sizes: list[int]) -> None:
    pages._drop_postgres(server, sizes, PREFIX)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--scales", default="10000,100000",
                        help="two device counts; the issue's are 100000,1000000")
    parser.add_argument("--postgres", metavar="URL", default=os.environ.get("TEST_DATABASE_URL"),
                        help="also on PostgreSQL (default: TEST_DATABASE_URL)")
    parser.add_argument("--postgres-only", action="store_true",
                        help="only on PostgreSQL (with --postgres or TEST_DATABASE_URL)")
    args = parser.parse_args(argv)
    sizes = sorted(int(value) for value in args.scales.split(","))
    if len(set(sizes)) != 2 or sizes[0] < 1_000:
        parser.error("--scales takes two different device counts of 1,000 or more")
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return run(sizes, args.repeat, postgres=args.postgres, postgres_only=args.postgres_only)


if __name__ == "__main__":
    main()
