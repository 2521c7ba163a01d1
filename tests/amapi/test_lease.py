"""One change to the sign-in details at a time (portal.amapi.lease) and one worker per owed
call (amapi.tasks' claim), against the loopback stand-in and the real database. The race of
real processes is in tests/concurrency/test_signin_details_race.py; two `flask amapi tasks`
workers at once are below."""
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from portal.amapi import calls, lease, tasks
from portal.amapi.client import AmapiError, longest_call_seconds
from portal.amapi.models import AmapiSettings, AmapiTask
from portal.database import db, end_transaction, utcnow
from portal.vocabulary import AmapiTaskKind
from tests.amapi.test_client import _create, connect
from tests.conftest import connect_portal_to_standin
from tests.mail.conftest import committed_db  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[2]
ENTERPRISE = r"^/v1/enterprises/LC0abc$"
URL = "https://portal.test/ssp/?qr_id="


def _hold(holder: str, seconds: float) -> None:
    """Another process holds the lease for `seconds` more (negative: it ran out)."""
    db.session.execute(sa.update(AmapiSettings).values(
        signin_lock_holder=holder, signin_lock_until=utcnow() + timedelta(seconds=seconds)))
    end_transaction()


def _lease() -> tuple:
    row = db.session.execute(sa.select(AmapiSettings.signin_lock_holder,
                                       AmapiSettings.signin_lock_until)).one()
    end_transaction()
    return tuple(row)


@pytest.fixture
def quick_wait(app):
    app.config["AMAPI_SIGNIN_WAIT"] = 0.3


def test_a_change_gives_the_lease_back_when_it_is_done(amapi_connected, quick_wait):
    calls.add_signin_detail(connect(), tag="QRone", signin_url=URL + "QRone")
    assert _lease() == (None, None)
    calls.remove_signin_detail(connect(), "QRone")
    assert _lease() == (None, None)
    assert amapi_connected.enterprises["enterprises/LC0abc"].get("signinDetails", []) == []


def test_a_change_waits_for_a_held_lease_then_says_to_try_again(amapi_connected, quick_wait):
    _hold("another-process", 60)
    with pytest.raises(AmapiError) as refused:
        calls.add_signin_detail(connect(), tag="QRone", signin_url=URL + "QRone")
    assert refused.value.errors == {"signin": lease.BUSY} and refused.value.transient
    assert amapi_connected.calls(path_regex=ENTERPRISE) == []   # Google was not asked
    assert _lease()[0] == "another-process"                     # and theirs is untouched


def test_a_lease_that_ran_out_is_taken_over(amapi_connected, quick_wait):
    _hold("a-process-that-died", -1)
    calls.add_signin_detail(connect(), tag="QRone", signin_url=URL + "QRone")
    assert [d["tokenTag"] for d in
            amapi_connected.enterprises["enterprises/LC0abc"]["signinDetails"]] == ["QRone"]
    assert _lease() == (None, None)


def test_the_lease_lasts_as_long_as_a_call_with_every_retry(app, amapi_connected):
    app.config.update(AMAPI_RETRIES=2, AMAPI_TIMEOUT=2.0, AMAPI_MAX_WAIT=0.5)
    assert longest_call_seconds() == 3 * 2.5
    before = utcnow()
    with lease.signin_details():
        holder, until = _lease()
        assert holder and before + timedelta(seconds=7) < until \
            <= utcnow() + timedelta(seconds=7.5)


def test_a_holder_whose_lease_was_taken_writes_nothing(amapi_connected, quick_wait):
    connection = connect()
    with pytest.raises(AmapiError) as lost:
        with lease.signin_details() as held:
            _hold("the-next-process", 60)   # ours ran out meanwhile and was taken over
            held.renew()
    assert lost.value.errors == {"signin": lease.LOST}
    assert _lease()[0] == "the-next-process"  # giving back ours leaves theirs alone
    assert amapi_connected.calls("PATCH") == [] and connection is not None


def test_a_failed_change_gives_the_lease_back(amapi_connected, quick_wait):
    amapi_connected.fail(ENTERPRISE, 403, method="PATCH")
    with pytest.raises(AmapiError):
        calls.add_signin_detail(connect(), tag="QRone", signin_url=URL + "QRone")
    assert _lease() == (None, None)
    calls.add_signin_detail(connect(), tag="QRone", signin_url=URL + "QRone")  # not BUSY


def test_an_owed_call_claimed_by_another_worker_is_left_to_it(amapi_connected):
    name = _create(connect())["name"]
    tasks.owe(AmapiTaskKind.DELETE_TOKEN, name)
    db.session.commit()
    task_id = db.session.scalar(sa.select(AmapiTask.id))
    now = utcnow()
    assert tasks._claim(task_id, now) is not None      # another worker has it now
    assert tasks._claim(task_id, now) is None
    assert tasks.run_due() == (0, 0)                   # not due for anyone else meanwhile
    tasks.try_now([task_id])
    assert amapi_connected.calls("DELETE") == [] and name in amapi_connected.tokens
    # Should that worker die in the call, the task is due again once the claim ran out.
    later = now + timedelta(seconds=longest_call_seconds() + 1)
    assert tasks.run_due(later) == (1, 0) and name not in amapi_connected.tokens


def test_two_workers_make_each_owed_call_once(committed_db, amapi):
    database = committed_db()
    database.run(connect_portal_to_standin, database.app, amapi)

    def owe_twelve():
        connection = connect()
        names = [_create(connection, additional_data=calls.token_data(f"QR{n:03d}"))["name"]
                 for n in range(12)]
        for name in names:
            tasks.owe(AmapiTaskKind.DELETE_TOKEN, name)
        db.session.commit()
        return names
    names = database.run(owe_twelve)
    # 12 × 0.4 s: the later worker starts while the first is still at it, even under load.
    amapi.delay(r"/enrollmentTokens/", 0.4, times=None, method="DELETE")
    env = dict(database.environment(), AMAPI_ENDPOINT=amapi.url)
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "amapi", "tasks"]
    workers = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0], outputs
    deleted = sorted(call.path.removeprefix("/v1/") for call in amapi.calls("DELETE"))
    assert deleted == sorted(names)                     # each once, none twice
    assert amapi.tokens == {}
    done = database.run(lambda: db.session.scalar(sa.select(sa.func.count()).where(
        AmapiTask.done_at.is_not(None))))
    assert done == 12
