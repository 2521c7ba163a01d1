"""Benchmark: Android Device Policy against the Companion (issue 17), in one run.

    .venv/bin/python -m bench.amapi [--qr-codes 200] [--devices 500]

Builds an SQLite database (migrated, a temporary folder) and starts the tests' loopback
stand-in for Google's Android Management API (tests/support/amapi_standin.py: the real
google-api-python-client and google-auth talk HTTP to it, as to Google). Then, in process:

- creates --qr-codes automatic QR codes with the Companion, then as many with Android Device
  Policy (each asks the stand-in for an enrollment token first): QR codes per second of each,
  and their ratio. Google itself answers in tens of milliseconds more than loopback does, so
  the figure is the portal's own cost of the second stack, not what an admin waits for at
  Google;
- enrolls --devices phones at the stand-in with those tokens and records them with
  `amapi sync` (enterprises.devices.list, 100 a page): devices recorded per second, against
  the same sync when every device is already known (the reconciliation's steady state).
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(workdir: Path, standin, licenses: int):
    from flask_migrate import upgrade

    from config import TestConfig
    from portal import create_app
    from portal.licensing.seats import set_total
    from portal.settings.companion import seed_example_companion
    from tests.conftest import connect_portal_to_standin
    app = create_app(type("BenchAmapi", (TestConfig,), {
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{workdir}/portal.db",
        "INSTANCE_PATH": str(workdir)}))
    with app.app_context():
        upgrade()
        seed_example_companion()
        set_total(licenses)
        connect_portal_to_standin(app, standin)
    return app


def _create(count: int, management: str, users) -> float:
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    started = time.perf_counter()
    for user in users[:count]:
        create_qr_code(QrCodeRequest(
            option="auto", lang="de-CH", network="wifi", wifi_ssid="Corp-Guest-5G",
            wifi_security="WPA", wifi_password="Tr0ub4dor&3-horse-77", usage_count=1,
            user=user, management=management), created_by=None,
            server_url="https://portal.example.com")
    return time.perf_counter() - started


def measure(qr_codes: int = 200, devices: int = 500) -> dict:
    from portal.accounts.users import add_local_user
    from portal.database import db
    from tests.support.amapi_standin import AmapiStandIn
    standin = AmapiStandIn().start()
    workdir = Path(tempfile.mkdtemp(prefix="bench-amapi-"))
    try:
        standin.reset()
        standin.add_enterprise()
        for policy in ("fully-managed", "kiosk"):
            standin.add_policy("LC0abc", policy)
        devices = max(devices, 0)
        app = build(workdir, standin, licenses=2 * qr_codes + devices + 10)
        with app.app_context():
            users = [add_local_user(f"user{n}", f"user{n}@example.com", "user-password-1")
                     for n in range(max(qr_codes, devices))]
            db.session.commit()
            _create(5, "adp", users[:5])  # warm up: imports, the client, the access token
            _create(5, "companion", users[:5])
            companion = _create(qr_codes, "companion", users)
            adp = _create(qr_codes, "adp", users)
            result = {"qr_codes": qr_codes, "companion_per_s": qr_codes / companion,
                      "adp_per_s": qr_codes / adp}
            result.update(_sync(app, standin, devices, users))
            db.engine.dispose()
        return result
    finally:
        standin.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _sync(app, standin, count: int, users) -> dict:
    """Enroll `count` phones with fresh one-device tokens, then time `amapi sync` twice."""
    try:
        from portal.enrollment import device_policy as recording
    except ImportError:  # the enrollment side is not there: no sync to time
        return {}
    if not hasattr(recording, "sync") or count == 0:
        return {}
    from portal.amapi.client import connect
    from portal.amapi import calls
    from portal.database import end_transaction
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    for n in range(count):
        qr = create_qr_code(QrCodeRequest(
            option="auto", lang="en", network="mobile", usage_count=1, user=users[n],
            management="adp"), created_by=None, server_url="https://portal.example.com")
        token = standin.tokens[qr.enrollment_token_name]["value"]
        standin.enroll(token, serial=f"R58N{n:06d}")
    connection = connect()
    end_transaction()  # as the portal does before it asks Google
    list(calls.list_devices(connection))  # warm
    started = time.perf_counter()
    recording.sync()
    first = time.perf_counter() - started
    started = time.perf_counter()
    recording.sync()
    again = time.perf_counter() - started
    return {"devices": count, "sync_new_per_s": count / first, "sync_known_per_s": count / again}


def report(result: dict) -> None:
    print(f"\n[Android Device Policy vs Companion] {result['qr_codes']} automatic QR codes "
          "each, SQLite, Google = the loopback stand-in")
    print(f"  Companion:              {result['companion_per_s']:8.1f} QR codes/s")
    print(f"  Android Device Policy:  {result['adp_per_s']:8.1f} QR codes/s "
          f"(ratio {result['adp_per_s'] / result['companion_per_s']:.2f})")
    if "sync_new_per_s" in result:
        print(f"  amapi sync, {result['devices']} new devices:   "
              f"{result['sync_new_per_s']:8.1f} devices/s")
        print(f"  amapi sync, all already known: {result['sync_known_per_s']:8.1f} devices/s "
              f"(ratio new/known {result['sync_new_per_s'] / result['sync_known_per_s']:.2f})")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--qr-codes", type=int, default=200)
    parser.add_argument("--devices", type=int, default=500)
    args = parser.parse_args(argv)
    report(measure(args.qr_codes, args.devices))


if __name__ == "__main__":
    main()
