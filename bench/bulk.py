"""Benchmark: a bulk batch's preview and commit, on SQLite and PostgreSQL.

    .venv/bin/python -m bench.bulk [--rows 2000] [--sqlite-only] [--postgres URL]
                                   [--directory-names 500] [--directory-repeat 3]
                                   [--directory-only]

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

Then (--directory-names, 500; 0: skip) the preview of a CSV naming that many directory users
(no local ones), on SQLite, against the tests' real slapd over LDAPS with those users added:
bulk's old look-up (a prefix search per name on a connection and bind of its own, the code
before find_users_named, copied below) against the batched one (one connection and bind, 50
exact names a search), taking turns, the median of --directory-repeat (3) each; it prints both,
their ratio and the binds, searches and connections slapd counted for each.
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


def _seed(rows: int, licenses: int | None = None):
    import sqlalchemy as sa

    from portal.accounts.models import PortalUser
    from portal.accounts.passwords import hash_password
    from portal.database import db
    from portal.licensing.seats import set_total
    from portal.settings import network_profiles
    from portal.settings.companion import seed_example_companion
    from portal.vocabulary import UserSource
    seed_example_companion()
    set_total(licenses or rows * 2)
    profile = network_profiles.save(network_profiles.ProfileValues(
        name="Bench Wi-Fi", network="wifi", wifi_ssid="Bench", wifi_security="WPA",
        wifi_password="correct-horse"), actor="bench")
    if not rows:
        db.session.commit()
        return profile.id
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


def _old_directory_users(rows, directory, problems):
    """bulk._directory_users as it was before find_users_named (commit ac67e98): a prefix
    search cut to 5 per name, each on a connection and bind of its own."""
    from portal.accounts.directory import pick_token
    from portal.accounts.users import find_local_user
    from portal.database import end_transaction
    from portal.directory import ldap
    from portal.provisioning.bulk import Problem
    if directory is None or directory.config is None:
        return {}, {}
    names = {str(raw.get("username") or "").strip() for raw in rows}
    names = sorted(name for name in names if name and find_local_user(name) is None)
    end_transaction()
    found = {}
    try:
        for name in names:
            for user in ldap.find_users(directory.config, directory.bind, directory.password,
                                        name, limit=5):
                if user.username.lower() == name.lower():
                    found[name.lower()] = pick_token(user)
    except ldap.DirectoryError as error:
        problems.append(Problem(0, "ldap_bind", f"The directory search failed: {error.cause}"))
    return found, {}


def measure_directory(names: int, repeat: int) -> dict:
    """The preview of `names` directory users' rows with the old and the batched look-up."""
    import statistics

    from flask_migrate import upgrade

    from portal.database import db
    from portal.provisioning import bulk
    from tests.support.ldap_server import add_users, counted, start_slapd, stop_slapd
    with tempfile.TemporaryDirectory() as root:
        server = start_slapd(Path(root) / "slapd")
        try:
            add_users(server, [(f"dir{n:05}", f"dir{n:05}", f"Directory User {n:05}", 512)
                               for n in range(names)])
            app = _app(f"sqlite:///{root}/bench-directory.db", root)
            with app.app_context():
                upgrade()
                profile_id = _seed(0, licenses=names * 2)
                data = ("username\n" + "".join(f"dir{n:05}\n" for n in range(names))).encode()
                typed = bulk.Directory(server.config("ldaps"), server.admin_dn,
                                       server.admin_password)
                options = {"network_profile_id": profile_id, "otp_validity": None,
                           "created_by": None, "server_url": "https://portal.example.com",
                           "directory": typed}
                batched = bulk._directory_users
                times, operations = {"old": [], "batched": []}, {}
                for _ in range(repeat):
                    for variant, look_up in (("old", _old_directory_users),
                                             ("batched", batched)):
                        bulk._directory_users = look_up
                        try:
                            with counted(server) as seen:
                                started = time.perf_counter()
                                preview = bulk.preview_rows(bulk.parse_csv(data), **options)
                                times[variant].append(time.perf_counter() - started)
                        finally:
                            bulk._directory_users = batched
                        assert preview.ok and all(row.ldap_user for row in preview.rows), \
                            (variant, preview.problems[:3])
                        operations[variant] = seen
                db.session.remove()
                db.engine.dispose()
        finally:
            stop_slapd(server)
    return {"names": names, "repeat": repeat, "operations": operations,
            **{variant: statistics.median(values) for variant, values in times.items()}}


def _print_directory(figures: dict) -> None:
    names = figures["names"]
    print(f"Bulk preview of {names:,} directory names (SQLite, slapd over LDAPS, median of "
          f"{figures['repeat']}):")
    for variant, label in (("old", "old per-name lookup"), ("batched", "batched")):
        seconds, seen = figures[variant], figures["operations"][variant]
        print(f"  {label:<20} {seconds:7.2f} s  {seconds / names * 1000:6.2f} ms per row  "
              f"({seen['connections']} connections, {seen['binds']} binds, "
              f"{seen['searches']} searches)")
    print(f"  old / batched {figures['old'] / figures['batched']:.1f}")


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
    parser.add_argument("--directory-names", type=int, default=500)
    parser.add_argument("--directory-repeat", type=int, default=3)
    parser.add_argument("--directory-only", action="store_true")
    args = parser.parse_args(argv)
    if args.directory_only:
        _print_directory(measure_directory(args.directory_names, args.directory_repeat))
        return
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
    if args.directory_names:
        _print_directory(measure_directory(args.directory_names, args.directory_repeat))


if __name__ == "__main__":
    main()
