"""Benchmark: a bulk batch's preview and commit, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bulk [--rows 2000] [--sqlite-only] [--postgres URL]

For each database: a fresh one, migrated, with the example Companion, a Wi-Fi network
profile, enough licenses and `rows` local users; then a CSV of `rows` rows (every fourth with
send_to_user=yes, every fifth with usage_count 2) goes through the same domain functions as
Devices → Pending → Bulk provisioning:

- preview: parse_csv + preview_rows (every row through validate_request; writes nothing);
- prepare: run_batch's first part, each QR code's payload, encryption, OTP and version made
  outside any transaction, batch.done committed every 50 rows;
- insert: run_batch's one transaction (one seats.reserve, every QR, pending enrollment, mail
  and audit row) — the time between the last progress report and run_batch's return;
- commit: prepare + insert, what the admin waits for after Confirm.

It prints each figure, its time per row, and the ratios measured in this one run (commit to
preview, insert to commit, PostgreSQL to SQLite).
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _csv(rows: int) -> bytes:
    lines = ["username,usage_count,send_to_user"]
    lines += [f"bench{index:05},{2 if index % 5 == 0 else 1},{'yes' if index % 4 == 0 else 'no'}"
              for index in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _app(uri: str, instance: str):
    from config import TestConfig
    from portal import create_app
    config = type("BenchConfig", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": uri, "INSTANCE_PATH": instance, "TESTING": False,
        "BULK_IN_BACKGROUND": False})
    return create_app(config)


def _seed(rows: int):
    import sqlalchemy as sa

    from portal.accounts.models import PortalUser
    from portal.accounts.passwords import hash_password
    from portal.database import db
    from portal.licensing.seats import set_total
    from portal.settings import network_profiles
    from portal.settings.companion import seed_example_companion
    from portal.vocabulary import UserSource
    seed_example_companion()
    set_total(rows * 2)
    profile = network_profiles.save(network_profiles.ProfileValues(
        name="Bench Wi-Fi", network="wifi", wifi_ssid="Bench", wifi_security="WPA",
        wifi_password="correct-horse"), actor="bench")
    # The users straight into the table, sharing one password hash: not what is measured.
    password_hash = hash_password("bench password 1")
    db.session.execute(sa.insert(PortalUser), [
        {"username": f"bench{index:05}", "email": f"bench{index:05}@example.com",
         "source": UserSource.LOCAL, "active": True, "password_hash": password_hash}
        for index in range(rows)])
    db.session.commit()
    return profile.id


def measure(uri: str, rows: int) -> dict:
    from flask_migrate import upgrade

    from portal.database import db
    from portal.provisioning import bulk
    with tempfile.TemporaryDirectory() as instance:
        app = _app(uri, instance)
        with app.app_context():
            upgrade()
            profile_id = _seed(rows)
            data = _csv(rows)
            options = {"network_profile_id": profile_id, "otp_validity": None,
                       "created_by": None, "server_url": "https://portal.example.com"}
            started = time.perf_counter()
            preview = bulk.preview_rows(bulk.parse_csv(data), **options)
            preview_s = time.perf_counter() - started
            assert preview.ok, preview.problems[:5]
            staged = bulk.stage(preview, name="bench.csv", network_profile_id=profile_id,
                                otp_validity=None, created_by=None)
            batch = bulk.start_batch(staged, created_by=None)
            prepared_at = []
            started = time.perf_counter()
            batch = bulk.run_batch(batch.id, server_url=options["server_url"],
                                   progress=lambda done, total: prepared_at.append(
                                       time.perf_counter()))
            ended = time.perf_counter()
            assert batch.state == "created", batch.error
            figures = {"rows": rows, "licenses": preview.total, "preview": preview_s,
                       "prepare": prepared_at[-1] - started, "insert": ended - prepared_at[-1],
                       "commit": ended - started}
            db.session.remove()
            db.engine.dispose()
    return figures


def _postgres_database(base: str, name: str) -> str:
    import sqlalchemy as sa

    from config import database_url
    url = sa.make_url(database_url(base))
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres(base: str, name: str) -> None:
    import sqlalchemy as sa

    from config import database_url
    admin = sa.create_engine(sa.make_url(database_url(base)), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _print(name: str, figures: dict) -> None:
    rows = figures["rows"]
    print(f"{name}: {rows:,} rows, {figures['licenses']:,} licenses")
    for part in ("preview", "prepare", "insert", "commit"):
        seconds = figures[part]
        print(f"  {part:<8} {seconds:7.2f} s  {seconds / rows * 1000:6.2f} ms per row")
    print(f"  commit / preview {figures['commit'] / figures['preview']:.2f}; "
          f"insert / commit {figures['insert'] / figures['commit']:.2f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--postgres", default=os.environ.get("TEST_DATABASE_URL")
                        or DEFAULT_POSTGRES)
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as root:
        results["sqlite"] = measure(f"sqlite:///{root}/bench-bulk.db", args.rows)
    _print("SQLite", results["sqlite"])
    if not args.sqlite_only:
        name = f"bench_bulk_{os.getpid()}"
        try:
            results["postgresql"] = measure(_postgres_database(args.postgres, name), args.rows)
        finally:
            _drop_postgres(args.postgres, name)
        _print("PostgreSQL", results["postgresql"])
        sqlite, postgres = results["sqlite"], results["postgresql"]
        print("PostgreSQL / SQLite: " + ", ".join(
            f"{part} {postgres[part] / sqlite[part]:.2f}"
            for part in ("preview", "prepare", "insert", "commit")))


if __name__ == "__main__":
    main()
