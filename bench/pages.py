"""Benchmark: the console's long lists at 10,000 and at 100,000 rows, one run.

    .venv/bin/python -m bench.pages [--repeat 31] [--postgres URL] [--scales 10000,100000]

For each size it builds a database with demo-data (an SQLite file in a temporary directory;
with --postgres also a PostgreSQL database, dropped afterwards), signs in as an admin with
Flask's test client and times, in process, the median of --repeat requests, the sizes taking
turns, of: the Pending page (first page, 35 pages in through the cursor, a search that matches
few QR codes and one that matches many), View OTP of the largest QR code (first page, 4 pages
in), and the audit log (first page, 50 pages in, two filters). It prints each page's median,
the SQL statements it ran, and the ratio of the 100,000-row time to the 10,000-row one (the
target is at most 1.5). run() does the work and returns the figures; bench.run calls it.
"""
import argparse
import html
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench admin password"
# "A deep page": this many pages in, following the Older links (the 10,000 scale has 1,000
# QR codes, 40 pages of Pending).
PENDING_DEEP, AUDIT_DEEP = 35, 50


def sizes_for(rows: int):
    """The demo-data sizes of one scale: rows devices, pending enrollments and audit events,
    and a tenth as many QR codes (the default demo-data is the 100,000 scale)."""
    from portal.demo_data import Sizes
    return Sizes(devices=rows, qr_codes=rows // 10, pending=rows, audit=rows)


def build(database_uri: str, rows: int, workdir: Path, sizes=None):
    """A migrated database with demo data of `rows` (or of `sizes`, a demo_data.Sizes);
    returns the app."""
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.accounts.admins import create_admin
    from portal.database import db
    from portal.demo_data import analyze, generate
    instance = tempfile.mkdtemp(prefix=f"instance-{rows}-", dir=workdir)
    app = create_app(type("BenchPages", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": database_uri, "INSTANCE_PATH": instance}))
    with app.app_context():
        upgrade()
        create_admin("bench-admin", "bench-admin@example.com", PASSWORD)
        started = time.perf_counter()
        generate(sizes or sizes_for(rows))
        analyze()
        print(f"  demo-data {rows:,}: {time.perf_counter() - started:.1f} s", flush=True)
        db.engine.dispose()
    return app


class Scale(NamedTuple):
    counter: "Counter"
    engine: object
    requests: list  # [(case, request)]


class Counter:
    """Counts the SQL statements the app sends."""

    def __init__(self, engine):
        import sqlalchemy as sa
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args):
        self.count += 1


def _link(body: str, pattern: str) -> str:
    match = re.search(pattern, body)
    assert match, f"no link matching {pattern}"
    return html.unescape(match.group(1))


def _token(body: str) -> str:
    return _link(body, r'name="csrf_token" type="hidden" value="([^"]+)"')


def _follow(client, url: str, pages: int) -> str:
    for _ in range(pages):
        url = _link(client.get(url).get_data(as_text=True), r'<a href="([^"]+)"[^>]*rel="next"')
    return url


def cases(app, client) -> list[tuple[str, object]]:
    """(name, request) pairs; each request returns a response."""
    import sqlalchemy as sa

    from portal.accounts.models import PortalUser
    from portal.audit.models import AuditEvent
    from portal.database import db
    from portal.enrollment.models import QrCode
    with app.app_context():
        bulk = db.session.scalar(sa.select(QrCode.public_id).order_by(
            QrCode.usage_count.desc().nulls_last()).limit(1))
        user = db.session.scalar(sa.select(PortalUser.username).join(
            QrCode, QrCode.user_id == PortalUser.id).order_by(QrCode.id).limit(1))
        serial = db.session.scalar(sa.select(AuditEvent.serial_number).where(
            AuditEvent.serial_number.is_not(None)).order_by(AuditEvent.id).limit(1))
    token = _token(client.get(f"/admin/qr-codes/{bulk}").get_data(as_text=True))
    otp_url = f"/admin/qr-codes/{bulk}/otp"
    otp_deep = otp_url
    for _ in range(3):
        otp_deep = _link(client.post(otp_deep, data={"csrf_token": token}).get_data(
            as_text=True), r'formaction="([^"]+)"[^>]*>Next page')
    pending_deep = _follow(client, "/admin/devices/pending", PENDING_DEEP)
    audit_deep = _follow(client, "/admin/audit", AUDIT_DEEP)
    return [
        ("Pending, first page", lambda: client.get("/admin/devices/pending")),
        (f"Pending, page {PENDING_DEEP + 1}", lambda: client.get(pending_deep)),
        ("Pending, search: one user", lambda: client.get(f"/admin/devices/pending?q={user}")),
        ("Pending, search: an SSID", lambda: client.get("/admin/devices/pending?q=warehouse")),
        # Demo data makes no stale QR code: the filter reads the whole list to find none.
        ("Pending, filter: stale (none)", lambda: client.get(
            "/admin/devices/pending?state=stale")),
        ("View OTP, largest QR code", lambda: client.post(otp_url, data={"csrf_token": token})),
        ("View OTP, page 4", lambda: client.post(otp_deep, data={"csrf_token": token})),
        ("Audit log, first page", lambda: client.get("/admin/audit")),
        (f"Audit log, page {AUDIT_DEEP + 1}", lambda: client.get(audit_deep)),
        ("Audit log, refused redemptions", lambda: client.get(
            "/admin/audit?action=enrollment.redeem&outcome=refused")),
        ("Audit log, one serial number", lambda: client.get(
            f"/admin/audit?serial_number={serial}")),
    ]


def prepare(database_uri: str, rows: int, workdir: Path) -> Scale:
    """A signed-in admin's requests on a database of `rows`. No app context is held around
    the requests: each one opens and closes its own, with its own session, as on a server."""
    from portal.database import db
    from tests.conftest import sign_in
    app = build(database_uri, rows, workdir)
    with app.app_context():
        engine = db.engine
    client = app.test_client()
    response = sign_in(client, "bench-admin", PASSWORD)
    assert response.status_code == 303, "the bench admin cannot sign in"
    return Scale(Counter(engine), engine, cases(app, client))


def measure(scales: dict[int, Scale], repeat: int) -> dict[int, dict[str, tuple[float, int]]]:
    """{rows: {case: (median ms, statements per request)}}. The sizes take turns request by
    request, so that a busy moment on the (shared) machine hits both alike."""
    results = {rows: {} for rows in scales}
    names = [name for name, _ in next(iter(scales.values())).requests]
    for index, name in enumerate(names):
        times = {rows: [] for rows in scales}
        for scale in scales.values():
            for _ in range(2):  # warm-up: templates compiled, caches filled
                assert scale.requests[index][1]().status_code == 200, name
        before = {rows: scale.counter.count for rows, scale in scales.items()}
        for turn in range(repeat):
            for rows in sorted(scales, reverse=turn % 2 == 1):
                request = scales[rows].requests[index][1]
                started = time.perf_counter()
                request()
                times[rows].append((time.perf_counter() - started) * 1000)
        for rows, scale in scales.items():
            results[rows][name] = (statistics.median(times[rows]),
                                   (scale.counter.count - before[rows]) // repeat)
    return results


def report(label: str, by_scale: dict[int, dict]) -> None:
    small, large = sorted(by_scale)
    print(f"\n[{label}] median of the requests, ms (SQL statements per request)")
    print(f"  {'page':34} {small:>10,} {large:>10,}   ratio")
    for name in by_scale[small]:
        (a, qa), (b, qb) = by_scale[small][name], by_scale[large][name]
        flag = "" if b / a <= 1.5 else "  > 1.5"
        print(f"  {name:34} {a:7.1f} ({qa:2d}) {b:7.1f} ({qb:2d})   {b / a:4.2f}{flag}")


def main(argv=None) -> dict[str, dict[int, dict[str, tuple[float, int]]]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--scales", default="10000,100000")
    parser.add_argument("--postgres", metavar="URL",
                        help="also on PostgreSQL (a server URL; databases are created on it)")
    args = parser.parse_args(argv)
    try:
        sizes = parse_scales(args.scales)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    return run(sizes, args.repeat, postgres=args.postgres)


def parse_scales(text: str) -> list[int]:
    """"10000,100000" -> [10000, 100000]; ValueError unless two sizes of 10,000 or more."""
    sizes = [int(value) for value in text.split(",")]
    if len(sizes) != 2 or len(set(sizes)) != 2 or min(sizes) < 10_000:
        raise ValueError("--scales takes two different sizes of 10,000 rows or more (the deep "
                         f"pages need {PENDING_DEEP + 1} pages of QR codes)")
    return sizes


def run(sizes: list[int], repeat: int, postgres: str | None = None
        ) -> dict[str, dict[int, dict[str, tuple[float, int]]]]:
    """Build, measure and report each database (SQLite; PostgreSQL on the server `postgres`
    too, when given); removes what it built. {database: {rows: {case: (ms, statements)}}}."""
    workdir = Path(tempfile.mkdtemp(prefix="bench-pages-"))
    databases = [("sqlite", lambda rows: f"sqlite:///{workdir}/portal-{rows}.db")]
    if postgres:
        databases.append(("postgresql", lambda rows: _postgres(postgres, rows)))
    figures = {}
    try:
        for label, uri_for in databases:
            print(f"\n[{label}] building the databases", flush=True)
            scales = {rows: prepare(uri_for(rows), rows, workdir) for rows in sizes}
            figures[label] = measure(scales, repeat)
            report(label, figures[label])
            for scale in scales.values():
                scale.engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if postgres:
            _drop_postgres(postgres, sizes)
    return figures


def _postgres(server: str, rows: int, prefix: str = "portal_bench_pages") -> str:
    """A fresh database for one size on the PostgreSQL server, named after the bench."""
    from config import database_url
    from tests.conftest import _fresh_postgres_database
    return _fresh_postgres_database(database_url(server), f"{prefix}_{rows}")


def _drop_postgres(server: str, sizes: list[int], prefix: str = "portal_bench_pages") -> None:
    import sqlalchemy as sa

    from config import database_url
    admin = sa.create_engine(database_url(server), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        for rows in sizes:
            connection.execute(sa.text(
                f'DROP DATABASE IF EXISTS "{prefix}_{rows}" WITH (FORCE)'))
    admin.dispose()


if __name__ == "__main__":
    main()
