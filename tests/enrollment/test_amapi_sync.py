"""`flask --app wsgi amapi sync` (enterprises.devices.list, page by page) finds the devices the
notifications missed and retires ours that Google no longer lists; `amapi tasks` makes the calls
owed to Google. Retire deletes an Android Device Policy device at Google (wipe); Google failing
leaves the retirement done and the deletion owed, shown on the device's page and retried."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.amapi.models import AmapiTask
from portal.amapi.tasks import run_due
from portal.database import utcnow
from portal.enrollment.device_policy import record_device
from portal.enrollment.retirement import retire_device
from portal.licensing.seats import figures, set_total
from tests.conftest import csrf_token
from tests.enrollment.amapi_helpers import adp_qr_code, device_named, devices, enroll


@pytest.fixture
def run(app, db):
    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(args=list(args))
    return invoke


def _counts():
    now = figures()
    return now.used, now.reserved


def test_sync_records_what_the_notifications_missed_page_by_page(run, db, amapi_connected,
                                                                 make_qr_code):
    amapi = amapi_connected
    set_total(300)
    qr = adp_qr_code(make_qr_code, usage_count=110)
    used, reserved = _counts()
    phones = [enroll(amapi, qr, serial=f"SYNC{n:04d}") for n in range(104)]
    service = amapi.build_service()
    foreign = service.enterprises().enrollmentTokens().create(
        parent="enterprises/LC0abc", body={"policyName": "kiosk"}).execute()
    amapi.enroll(foreign["value"], serial="NOTOURS1")
    record_device(phones[0], source="push")  # this one's notification did arrive

    result = run("amapi", "sync")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == ("Listed 105 devices at Google: 103 new, 0 retired, "
                                     "1 not from this portal.")
    assert len(amapi.calls("GET", r"/devices$")) == 2       # Google's pages of at most 100
    assert sorted(d.serial_number for d in devices()) == [f"SYNC{n:04d}" for n in range(104)]
    assert _counts() == (used + 104, reserved - 104)
    assert run("amapi", "sync").output.strip() == \
        "Listed 105 devices at Google: 0 new, 0 retired, 1 not from this portal."
    assert _counts() == (used + 104, reserved - 104)


def test_sync_retires_ours_that_google_no_longer_lists_or_lists_as_deleted(
        run, db, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code, usage_count=3)
    kept, vanished, deleted = (enroll(amapi, qr, serial=s) for s in ("KEPT1", "GONE1", "DEL1"))
    for phone in (kept, vanished, deleted):
        record_device(phone, source="push")
    used, reserved = _counts()
    del amapi.devices[vanished["name"]]                 # deleted in Google's console
    amapi.devices[deleted["name"]]["state"] = "DELETED"

    result = run("amapi", "sync")

    assert result.exit_code == 0, result.output
    assert result.output.strip() == \
        "Listed 2 devices at Google: 0 new, 2 retired, 0 not from this portal."
    states = {d.serial_number: d.state for d in devices()}
    assert states == {"KEPT1": "enrolled", "GONE1": "retired", "DEL1": "retired"}
    assert _counts() == (used - 2, reserved)
    assert amapi.wipes == []                            # Google has them no more: nothing owed
    assert "0 retired" in run("amapi", "sync").output   # once


def test_sync_when_google_fails_says_so_in_one_line_and_retires_nothing(
        run, db, amapi_connected, make_qr_code):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="KEEP01")
    record_device(phone, source="push")
    used, reserved = _counts()
    amapi.fail(r"/devices$", 500, times=None)

    result = run("amapi", "sync")

    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().startswith("Error: The devices could not be listed at Google: "
                                            "Google had an internal error.")
    assert "PRIVATE KEY" not in result.output
    assert device_named(phone["name"]).state == "enrolled"
    assert _counts() == (used, reserved)


def test_sync_without_a_connection_says_what_to_do(run, db):
    result = run("amapi", "sync")
    assert result.exit_code == 1
    assert "Admin → Android Management API" in result.output and "Traceback" not in result.output


def test_retire_deletes_the_device_at_google_with_a_wipe(db, amapi_connected, make_qr_code,
                                                        admin_client):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="RETIRE01")
    record_device(phone, source="push")
    device = device_named(phone["name"])
    used, _ = _counts()
    url = f"/admin/devices/{device.public_id}"

    answer = admin_client.post(f"{url}/retire",
                               data={"csrf_token": csrf_token(admin_client, url)},
                               follow_redirects=True)

    assert "It was deleted at Google and wiped." in answer.get_data(as_text=True)
    assert device_named(phone["name"]).state == "retired"
    assert _counts()[0] == used - 1
    [wipe] = amapi.wipes
    assert wipe["device"] == phone["name"]
    assert wipe["wipeDataFlags"] == ["WIPE_DATA_FLAG_UNSPECIFIED"] and wipe["wipeReasonMessage"]
    assert phone["name"] not in amapi.devices
    page = admin_client.get(url).get_data(as_text=True)
    assert "Deleting at Google" not in page


def test_google_failing_to_delete_leaves_it_owed_shown_and_retried(
        run, db, amapi_connected, make_qr_code, admin_client):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="OWED01")
    record_device(phone, source="push")
    device = device_named(phone["name"])
    used, _ = _counts()
    amapi.fail(r"/devices/", 500, times=3, method="DELETE")   # every retry of the first try

    url = f"/admin/devices/{device.public_id}"
    answer = admin_client.post(f"{url}/retire", data={"csrf_token": csrf_token(admin_client, url)},
                               follow_redirects=True)

    assert "Deleting it at Google failed for now" in answer.get_data(as_text=True)
    assert device_named(phone["name"]).state == "retired"      # not undone
    assert _counts()[0] == used - 1
    assert phone["name"] in amapi.devices and amapi.wipes == []
    page = admin_client.get(f"/admin/devices/{device.public_id}").get_data(as_text=True)
    assert "Deleting at Google: attempt 1 failed: Google had an internal error." in page

    assert run_due() == (0, 0)                                 # not due yet (back-off)
    assert run_due(utcnow() + timedelta(minutes=2)) == (1, 0)
    assert phone["name"] not in amapi.devices
    assert [w["device"] for w in amapi.wipes] == [phone["name"]]
    task = db.session.scalar(sa.select(AmapiTask).where(AmapiTask.device_id == device.id))
    assert task.done_at is not None and task.attempts == 2
    assert "Deleting at Google" not in admin_client.get(
        f"/admin/devices/{device.public_id}").get_data(as_text=True)


def test_amapi_tasks_makes_the_owed_calls_and_counts_them(run, db, amapi_connected,
                                                         make_qr_code, make_admin):
    amapi = amapi_connected
    qr = adp_qr_code(make_qr_code)
    phone = enroll(amapi, qr, serial="TASKS01")
    record_device(phone, source="push")
    amapi.fail(r"/devices/", 503, times=3, method="DELETE")
    retire_device(device_named(phone["name"]), retired_by=make_admin())
    db.session.execute(sa.update(AmapiTask).values(next_attempt_at=utcnow()))
    db.session.commit()
    amapi.fail(r"/devices/", 503, times=3, method="DELETE")

    assert run("amapi", "tasks").output.strip() == "Done 0, still owed 1."
    db.session.execute(sa.update(AmapiTask).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert run("amapi", "tasks").output.strip() == "Done 1, still owed 0."
    assert phone["name"] not in amapi.devices
