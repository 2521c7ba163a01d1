"""In-process cost of one redemption: ms per request, SQL statements per request, a profile.

    .venv/bin/python -m bench.profile [--redemptions 500] [--database-url URL] [--profile]

Seeds a migrated database (an SQLite file unless --database-url is given) with one automatic
QR code, then posts the redemptions through Flask's test client, without HTTP or gunicorn, and
does the same for GET /healthz. With --profile it prints the top of a cProfile of the
redemptions. The figures guide work on the request path; the HTTP benchmark is bench.run.
"""
import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from bench.run import seed


class StatementCounter:
    """Counts the statements sent to the database, BEGIN and COMMIT/ROLLBACK included."""

    def __init__(self, engine):
        self.count = 0
        sa.event.listen(engine, "before_cursor_execute", self._count)
        # SQLite's BEGIN IMMEDIATE goes to the driver directly (portal.database.begin_immediate,
        # with a PRAGMA before and after it, not counted: they only set a field in SQLite).
        sa.event.listen(engine, "begin", self._count)
        sa.event.listen(engine, "commit", self._count)
        sa.event.listen(engine, "rollback", self._count)

    def _count(self, *args):
        self.count += 1


def _time(client, kind, count, qr_id=None, otp=None, offset=0):
    start = time.perf_counter()
    for n in range(count):
        if kind == "healthz":
            response = client.get("/healthz")
        else:
            response = client.post("/api/v1/enrollments", json={
                "qr_id": qr_id, "otp": otp, "device": {
                    "serial_number": f"PROF{offset + n:08d}", "manufacturer": "bench",
                    "model": "bench", "android_api_level": 34}})
        assert response.status_code in (200, 201), response.get_data(as_text=True)
    return (time.perf_counter() - start) / count * 1000


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redemptions", type=int, default=500)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args(argv)
    instance = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    uri = args.database_url or f"sqlite:///{instance}/portal.db"
    if args.database_url and args.database_url.startswith("postgresql"):
        from config import database_url
        from tests.conftest import _fresh_postgres_database
        uri = _fresh_postgres_database(database_url(args.database_url), "portal_profile")
    warm = 50
    app, qr_id, otp = seed(uri, instance, args.redemptions * 2 + warm + 1)
    client = app.test_client()
    with app.app_context():
        from portal.database import db
        counter = StatementCounter(db.engine)
    _time(client, "healthz", warm)
    _time(client, "redeem", warm, qr_id, otp, offset=10_000_000)
    healthz = _time(client, "healthz", args.redemptions)
    before = counter.count
    redeem = _time(client, "redeem", args.redemptions, qr_id, otp)
    statements = (counter.count - before) / args.redemptions
    print(f"database: {sa.make_url(uri).get_backend_name()}, {args.redemptions} requests each")
    print(f"  GET /healthz             {healthz:6.2f} ms")
    print(f"  POST /api/v1/enrollments {redeem:6.2f} ms   {statements:.1f} statements")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        _time(client, "redeem", args.redemptions, qr_id, otp, offset=20_000_000)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    print(json.dumps({"healthz_ms": healthz, "redeem_ms": redeem, "statements": statements}))


if __name__ == "__main__":
    main()
