"""Benchmark: Print batch, the batch's printable sheets as one PDF (pages per second).

    .venv/bin/python -m bench.pdf [--qr-codes 200] [--repeat 3]

Builds an SQLite database (migrated, a temporary folder) with a batch of N automatic Wi-Fi QR
codes for N users (the typical payload: version 23), then times, in process:

- sheets_pdf of the whole batch (portal.provisioning.printing): pages per second, and the
  cost of one page in the batch against a PDF of one page alone (the ratio: what a batch saves
  by reading the fonts once);
- the same batch with Unicode names (a third Chinese, a third Arabic, renamed in the session
  only: Droid Sans Fallback and the shaping engine are loaded for it);
- GET /admin/batches/<id>/print.pdf through Flask's test client (loading the rows, decrypting
  the payloads, the response): what an admin waits for.

Medians of --repeat runs of each; the first PDF in the process (imports) is not counted.
"""
import argparse
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench admin password"
NAMES = ("Zoë Łukasiewicz", "李小龙", "محمد العلي")


def build(workdir: Path, count: int):
    """The app and the public id of a batch of `count` QR codes (de-CH, it, en in turn)."""
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.accounts.admins import create_admin
    from portal.accounts.users import add_local_user
    from portal.database import db
    from portal.enrollment.models import Batch
    from portal.licensing.seats import set_total
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    from portal.settings.companion import seed_example_companion
    app = create_app(type("BenchPdf", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/portal.db",
        "INSTANCE_PATH": str(workdir)}))
    with app.app_context():
        upgrade()
        create_admin("bench-admin", "bench-admin@example.com", PASSWORD)
        seed_example_companion()
        set_total(count + 10)
        batch = Batch(public_id=secrets.token_urlsafe(12), name="pupils.csv",
                      state="created", row_count=count, done=count)
        db.session.add(batch)
        db.session.commit()
        public_id = batch.public_id
        for n in range(count):
            user = add_local_user(f"pupil{n}", f"pupil{n}@example.com", "user-password-1",
                                  display_name=f"Pupil {n}")
            qr = create_qr_code(QrCodeRequest(
                option="auto", lang=("de-CH", "it", "en")[n % 3], network="wifi",
                wifi_ssid="Corp-Guest-5G", wifi_security="WPA",
                wifi_password="Tr0ub4dor&3-horse-77", usage_count=1, user=user),
                created_by=None, server_url="https://portal.example.com")
            qr.batch_id = batch.id
        db.session.commit()
        db.engine.dispose()
    return app, public_id


def _seconds(work) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


def measure(count: int = 200, repeat: int = 3) -> dict:
    import sqlalchemy as sa

    from portal.database import db
    from portal.enrollment.models import Batch, QrCode
    from portal.provisioning.printing import print_sheets
    workdir = Path(tempfile.mkdtemp(prefix="bench-pdf-"))
    try:
        started = time.perf_counter()
        app, latin = build(workdir, count)
        print(f"  {count} QR codes created in {time.perf_counter() - started:.1f} s",
              flush=True)
        with app.app_context():
            def codes(public_id):
                batch = db.session.scalar(sa.select(Batch).where(Batch.public_id == public_id))
                return db.session.scalars(sa.select(QrCode).where(QrCode.batch_id == batch.id)
                                          .order_by(QrCode.id)).all()
            latin_codes = codes(latin)
            print_sheets(latin_codes[:1])  # imports: not counted
            one = statistics.median(_seconds(lambda: print_sheets(latin_codes[:1]))
                                    for _ in range(max(repeat, 5)))
            sheets = print_sheets(latin_codes)
            batch = statistics.median(_seconds(lambda: print_sheets(latin_codes))
                                      for _ in range(repeat))
            cpu_started = time.process_time()  # moves much less with the machine's load
            print_sheets(latin_codes)
            cpu = time.process_time() - cpu_started
            for n, qr in enumerate(latin_codes):  # renamed in the session only, not saved
                qr.user.display_name = NAMES[n % len(NAMES)]
            wide = statistics.median(_seconds(lambda: print_sheets(latin_codes))
                                     for _ in range(repeat))
            db.session.rollback()
            client = app.test_client()
            from tests.conftest import sign_in
            assert sign_in(client, "bench-admin", PASSWORD).status_code == 303

            def download():
                response = client.get(f"/admin/batches/{latin}/print.pdf")
                assert response.status_code == 200 and len(response.data) > 1000
            http = statistics.median(_seconds(download) for _ in range(repeat))
            db.engine.dispose()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {"count": count, "one": one, "batch": batch, "cpu": cpu, "unicode": wide, "http": http,
            "bytes": len(sheets.pdf), "pages": sheets.pages}


def report(figures: dict, repeat: int) -> None:
    count = figures["count"]
    per_page = figures["batch"] / count
    print(f"\n[Print batch PDF] {count} automatic Wi-Fi QR codes (version 23), one A4 page "
          f"each; median of {repeat}")
    print(f"  sheets_pdf, 1 page         {figures['one'] * 1000:8.1f} ms")
    print(f"  sheets_pdf, {count} pages     {figures['batch']:8.2f} s   "
          f"{count / figures['batch']:6.1f} pages/s   {per_page * 1000:6.1f} ms a page "
          f"({figures['bytes'] / 1024:,.0f} KiB)")
    print(f"  CPU time, {count} pages       {figures['cpu']:8.2f} s   "
          f"{count / figures['cpu']:6.1f} pages/s   (process time: what one free core would do)")
    print(f"  per page, batch : alone    {per_page / figures['one']:8.2f}")
    print(f"  Unicode names ({count})      {figures['unicode']:8.2f} s   "
          f"{count / figures['unicode']:6.1f} pages/s   (CJK fallback font and Arabic shaping)")
    print(f"  GET print.pdf ({count})      {figures['http']:8.2f} s   "
          f"{count / figures['http']:6.1f} pages/s   (test client: rows, decryption, PDF)")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qr-codes", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    figures = measure(args.qr_codes, args.repeat)
    report(figures, args.repeat)
    return figures


if __name__ == "__main__":
    main()
