"""The processes of the race tests: real processes, each with its own app and engine.

The tests start POOL_SIZE processes once with multiprocessing's "spawn" method, so nothing
(least of all a pooled database connection) is inherited from pytest, and each pays for its
imports once. A job then builds its own app with create_app on that test's committed database,
waits at the pool's barrier so that every worker starts at the same moment as the others,
calls the same domain functions the admin console calls, disposes its engine, and puts one
report per round on the results queue: what succeeded, what was refused (by form field), and
the full text of anything unexpected, which the test turns into a failure.
"""
import random
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import NamedTuple

POOL_SIZE = 8
BARRIER_TIMEOUT = 60  # seconds; only reached when another process died or hung


@dataclass(frozen=True)
class Target:
    """Where the workers find the database, and the user their QR codes are for."""

    uri: str
    instance: str
    user_id: int


class Sync(NamedTuple):
    """The pool's primitives (spawned processes can only inherit them, never receive them)."""

    barrier: object        # POOL_SIZE workers + the test: every round starts here
    pair_barrier: object   # two savers meeting between the license check and the reservation
    stop: object           # Event: the savers are done, revokers finish their pass and report


@dataclass
class Report:
    worker: str
    round: int = 0
    ok: int = 0
    refused: dict = field(default_factory=dict)          # "usage_count" → how many
    refusal_texts: list = field(default_factory=list)
    refused_by_update: int = 0   # refusals by seats.reserve()'s conditional UPDATE
    revoked: int = 0
    already_revoked: int = 0
    released_by_revoke: int = 0
    released_by_expiry: int = 0
    unexpected: list = field(default_factory=list)       # tracebacks: each fails the test
    seconds: float = 0.0


def race_config(target: Target):
    from config import TestConfig
    return type("RaceConfig", (TestConfig,), {"SQLALCHEMY_DATABASE_URI": target.uri,
                                              "INSTANCE_PATH": target.instance})


def serve(index: int, jobs, results, sync: Sync) -> None:
    """A pool process: import the app once, then run jobs until it receives None."""
    from portal import create_app  # noqa: F401  (the expensive imports, paid once)
    from portal import models  # noqa: F401
    from portal.provisioning import qr_codes  # noqa: F401
    results.put({"worker": index, "ready": True})
    while (job := jobs.get()) is not None:
        function, name, kwargs = job
        try:
            JOBS[function](name, sync, results, **kwargs)
        except BaseException:
            sync.barrier.abort()  # nobody waits for a worker that gave up
            results.put({"worker": name, "fatal": traceback.format_exc()})
        finally:
            results.put({"worker": name, "done": True})


@contextmanager
def _app(target: Target, *, amapi_url: str | None = None):
    """The worker's app on the test's database (and, with amapi_url, the Android Management
    API stand-in)."""
    from portal import create_app
    from portal.database import db
    app = create_app(race_config(target))
    if amapi_url:
        app.config["AMAPI_ENDPOINT"] = amapi_url
    with app.app_context():
        try:
            yield db
        finally:
            db.session.remove()
            db.engine.dispose()


@contextmanager
def _patched(module, name: str, replacement):
    original = getattr(module, name)
    setattr(module, name, replacement(original))
    try:
        yield
    finally:
        setattr(module, name, original)


def _counting_refusals(counter: list):
    """Count the refusals that came from the conditional UPDATE rather than the form check."""
    def wrap(reserve):
        def counting_reserve(n):
            reserved = reserve(n)
            counter[0] += not reserved
            return reserved
        return counting_reserve
    return wrap


def _waiting_after_check(pair_barrier):
    """Let both savers pass "enough licenses remain" before either of them reserves."""
    def wrap(validate):
        def validate_then_wait(*args, **kwargs):
            errors = validate(*args, **kwargs)
            pair_barrier.wait(BARRIER_TIMEOUT)
            return errors
        return validate_then_wait
    return wrap


def idle(name: str, sync: Sync, results, *, rounds: int) -> None:
    """A pool process this race does not need: it only keeps the barrier's count."""
    for _ in range(rounds):
        sync.barrier.wait(BARRIER_TIMEOUT)


def save_qr_codes(name: str, sync: Sync, results, *, target: Target, rounds: int = 1,
                  saves: int = 1, usage_count: int, validities=(None,),
                  pause_after_check: bool = False) -> None:
    """Each round: wait at the barrier, save `saves` Automatic Provisioning QR codes, report."""
    from portal.accounts.models import PortalUser
    from portal.licensing import seats
    from portal.provisioning import qr_codes
    from portal.provisioning.qr_codes import ProvisioningError, QrCodeRequest, create_qr_code
    update_refusals = [0]
    with _app(target) as db, _patched(seats, "reserve", _counting_refusals(update_refusals)), \
            _patched(qr_codes, "validate_request",
                     _waiting_after_check(sync.pair_barrier) if pause_after_check
                     else lambda original: original):
        for round_no in range(rounds):
            report, before = Report(name, round_no), update_refusals[0]
            sync.barrier.wait(BARRIER_TIMEOUT)
            started = time.perf_counter()
            for i in range(saves):
                try:
                    user = db.session.get(PortalUser, target.user_id)
                    create_qr_code(QrCodeRequest(
                        option="auto", lang="en", network="mobile", user=user,
                        usage_count=usage_count, send_to_user=True,
                        otp_validity=validities[i % len(validities)]),
                        created_by=None, server_url="https://portal.test")
                    report.ok += 1
                except ProvisioningError as error:
                    key = ",".join(sorted(error.errors))
                    report.refused[key] = report.refused.get(key, 0) + 1
                    report.refusal_texts.append(str(error))
                except Exception:
                    report.unexpected.append(traceback.format_exc())
                finally:
                    db.session.remove()  # SQLite: never hold the write lock between saves
            report.seconds = time.perf_counter() - started
            report.refused_by_update = update_refusals[0] - before
            results.put(asdict(report))


def revoke_and_expire(name: str, sync: Sync, results, *, target: Target, seed: int) -> None:
    """Until `stop` is set (then once more): revoke a random live QR code, then expire every
    pending enrollment whose OTP will have run out two hours from now."""
    import sqlalchemy as sa
    from portal.database import utcnow
    from portal.enrollment.pending import AlreadyRevoked, expire_due, revoke_qr_code
    from portal.enrollment.models import QrCode
    rng, report = random.Random(seed), Report(name)
    with _app(target) as db:
        sync.barrier.wait(BARRIER_TIMEOUT)
        started = time.perf_counter()
        while True:
            last = sync.stop.is_set()
            try:
                live = db.session.scalars(sa.select(QrCode.id).where(
                    QrCode.revoked_at.is_(None))).all()
                if live:
                    qr_code = db.session.get(QrCode, rng.choice(live))
                    report.released_by_revoke += revoke_qr_code(qr_code, revoked_by=None)
                    report.revoked += 1
            except AlreadyRevoked:
                report.already_revoked += 1  # the other revoker was first: expected
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
            try:
                report.released_by_expiry += expire_due(now=utcnow() + timedelta(hours=2))
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
            if last:
                break
            time.sleep(rng.uniform(0.01, 0.05))
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def retire_devices(name: str, sync: Sync, results, *, target: Target,
                   device_ids: list[str]) -> None:
    """Retire each device (by public id) through the domain function, as the console does."""
    import sqlalchemy as sa
    from portal.enrollment.models import Device
    from portal.enrollment.retirement import AlreadyRetired, retire_device
    report = Report(name)
    with _app(target) as db:
        sync.barrier.wait(BARRIER_TIMEOUT)
        started = time.perf_counter()
        for device_id in device_ids:
            try:
                device = db.session.scalar(sa.select(Device).where(Device.public_id == device_id))
                report.ok += retire_device(device, retired_by=None)
            except AlreadyRetired:
                report.refused["already_retired"] = report.refused.get("already_retired", 0) + 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def redeem_devices(name: str, sync: Sync, results, *, target: Target, qr_id: str,
                   serials: list[str], otp: str | None = None,
                   tickets: list[str] | None = None) -> None:
    """Each serial redeems the QR code (its OTP, or one ticket each) as the API does."""
    from portal.enrollment.errors import EnrollmentError
    from portal.enrollment.redeem import DeviceInfo, redeem
    report = Report(name)
    with _app(target) as db:
        sync.barrier.wait(BARRIER_TIMEOUT)
        started = time.perf_counter()
        for index, serial in enumerate(serials):
            try:
                redeem(qr_id, otp=otp, ticket=tickets[index] if tickets else None,
                       client_address="127.0.0.1",
                       device=DeviceInfo(serial, "samsung", "SM-G991B", 33))
                report.ok += 1
            except EnrollmentError as error:
                report.refused[error.code] = report.refused.get(error.code, 0) + 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def record_amapi_devices(name: str, sync: Sync, results, *, target: Target,
                        resources: list[dict], amapi_url: str) -> None:
    """Record each Android Device Policy device as a push or the sync does (AMAPI_ENDPOINT:
    the test's stand-in, for the calls owed to Google); report.refused counts the outcomes."""
    from portal.enrollment.device_policy import record_device
    report = Report(name)
    with _app(target, amapi_url=amapi_url) as db:
        sync.barrier.wait(BARRIER_TIMEOUT)
        started = time.perf_counter()
        for resource in resources:
            try:
                outcome = record_device(resource, source="push").outcome
                report.ok += outcome == "new"
                report.refused[outcome] = report.refused.get(outcome, 0) + 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def _waiting_after_google(pair_barrier):
    """Let both resets have Google's new token before either of them swaps it in."""
    def wrap(obtain):
        def obtain_then_wait(*args, **kwargs):
            made = obtain(*args, **kwargs)
            pair_barrier.wait(BARRIER_TIMEOUT)
            return made
        return obtain_then_wait
    return wrap


def reset_adp_otp(name: str, sync: Sync, results, *, target: Target, qr_id: int,
                  admin_id: int, amapi_url: str) -> None:
    """Reset OTP of an Android Device Policy QR code as the console does, both resets holding
    Google's new token at the same moment; report.ok: the OTP this admin is shown,
    report.refused: {"reset_meanwhile": 1} for the one that lost."""
    from portal.accounts.models import AdminUser
    from portal.enrollment.models import QrCode
    from portal.provisioning import device_policy
    from portal.provisioning.pending_actions import ResetMeanwhile, reset_otp
    report = Report(name)
    with _app(target, amapi_url=amapi_url) as db:
        with _patched(device_policy, "obtain", _waiting_after_google(sync.pair_barrier)):
            sync.barrier.wait(BARRIER_TIMEOUT)
            started = time.perf_counter()
            try:
                qr_code, admin = db.session.get(QrCode, qr_id), db.session.get(AdminUser,
                                                                                admin_id)
                report.refusal_texts.append(reset_otp(qr_code, reset_by=admin))
                report.ok += 1
            except ResetMeanwhile as lost:
                report.refused["reset_meanwhile"] = 1
                report.refusal_texts += [lost.otp, lost.message]
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def create_adp_qr_code(name: str, sync: Sync, results, *, target: Target,
                       amapi_url: str) -> None:
    """Create an Android Device Policy QR code as the wizard does, pausing inside Google's
    token create: meets the test at the pair barrier (Google is answering now), then waits there
    again until the test has written to the database meanwhile."""
    from portal.accounts.models import PortalUser
    from portal.amapi import calls
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    report = Report(name)

    def paused(create):
        def create_while_the_test_writes(*args, **kwargs):
            sync.pair_barrier.wait(BARRIER_TIMEOUT)
            sync.pair_barrier.wait(BARRIER_TIMEOUT)
            return create(*args, **kwargs)
        return create_while_the_test_writes

    with _app(target, amapi_url=amapi_url) as db:
        with _patched(calls, "create_enrollment_token", paused):
            sync.barrier.wait(BARRIER_TIMEOUT)
            started = time.perf_counter()
            try:
                user = db.session.get(PortalUser, target.user_id)
                create_qr_code(QrCodeRequest(option="auto", lang="en", network="mobile",
                                             user=user, usage_count=2, management="adp"),
                               created_by=None, server_url="https://portal.test")
                report.ok += 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


def change_signin_details(name: str, sync: Sync, results, *, target: Target, amapi_url: str,
                          create: int = 0, revoke_ids: tuple = ()) -> None:
    """Save `create` Self Service QR codes with Android Device Policy (each adds its sign-in
    details at Google) and revoke the QR codes `revoke_ids` (each removes its own), as the
    console does, all starting at the barrier; report.refusal_texts: the public ids made."""
    from portal.accounts.models import PortalUser
    from portal.enrollment.models import QrCode
    from portal.enrollment.pending import revoke_qr_code
    from portal.provisioning.qr_codes import QrCodeRequest, create_qr_code
    report = Report(name)
    with _app(target, amapi_url=amapi_url) as db:
        sync.barrier.wait(BARRIER_TIMEOUT)
        started = time.perf_counter()
        for n in range(create):
            try:
                qr = create_qr_code(QrCodeRequest(
                    option="ssp", lang="en", network="mobile", management="adp",
                    user=db.session.get(PortalUser, target.user_id)),
                    created_by=None, server_url="https://portal.test")
                report.refusal_texts.append(qr.public_id)
                report.ok += 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        for qr_id in revoke_ids:
            try:
                revoke_qr_code(db.session.get(QrCode, qr_id), revoked_by=None)
                report.revoked += 1
            except Exception:
                report.unexpected.append(traceback.format_exc())
            finally:
                db.session.remove()
        report.seconds = time.perf_counter() - started
        results.put(asdict(report))


JOBS = {"idle": idle, "change_signin_details": change_signin_details, "reset_adp_otp": reset_adp_otp, "save_qr_codes": save_qr_codes,
        "revoke_and_expire": revoke_and_expire, "retire_devices": retire_devices,
        "redeem_devices": redeem_devices, "record_amapi_devices": record_amapi_devices,
        "create_adp_qr_code": create_adp_qr_code}
