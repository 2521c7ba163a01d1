"""Attempts past a limit and malformed requests are in the audit log, one row per address, kind
and 10-minute window with a count: a flood is visible without growing the log without bound."""
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import requests
import sqlalchemy as sa

from portal.audit import attempts
from portal.audit.models import AuditEvent
from portal.database import db as _db
from tests.api.conftest import auto_body
from tests.conftest import sign_in
from tests.support.gunicorn import gunicorn
from tests.support.live import live_app
from tests.support.pages import html_of

THREE_PER_MINUTE = {"API_FAILED_ATTEMPTS_LIMIT": "3 per minute"}
ENROLLMENTS = "/api/v1/enrollments"


def _rows(db, action=None):
    statement = sa.select(AuditEvent).order_by(AuditEvent.id)
    if action:
        statement = statement.where(AuditEvent.action == action)
    db.session.expire_all()
    return db.session.scalars(statement).all()


def _wrong(qr) -> dict:
    return {**auto_body(qr, serial_number="GUESSER"), "otp": "wrong-otp-" + "x" * 6}


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_a_flood_of_wrong_otps_is_three_refusals_and_one_counted_row(db, client,
                                                                     make_qr_code):
    qr = make_qr_code("auto")
    statuses = [client.post(ENROLLMENTS, json=_wrong(qr)).status_code for _ in range(50)]

    assert statuses == [401] * 3 + [429] * 47
    refusals = [e for e in _rows(db, "enrollment.redeem") if e.outcome == "refused"]
    assert len(refusals) == 3  # each attempt within the limit, with its serial number
    [row] = _rows(db, attempts.THROTTLED)
    assert (row.attempts, row.code, row.client_address, row.actor_type, row.target) == \
        (47, "rate_limited", "127.0.0.1", "device", "api.create_enrollment")
    assert row.outcome == "refused"
    assert row.occurred_at == attempts.window_start(row.occurred_at)
    assert row.details["last_at"].endswith("Z")


def test_malformed_api_requests_are_counted_per_code(db, client):
    for _ in range(20):
        client.post(ENROLLMENTS, data="{not json", content_type="application/json")
    for _ in range(5):
        client.post(ENROLLMENTS, data="otp=1", content_type="application/x-www-form-urlencoded")
    for n in range(7):
        client.get(f"/api/v1/no-such-thing-{n}")

    counted = {(row.code, row.target): row.attempts for row in _rows(db, attempts.MALFORMED)}
    assert counted == {("invalid_request", "api.create_enrollment"): 20,
                       ("unsupported_media_type", "api.create_enrollment"): 5,
                       ("not_found", "unknown URL"): 7}


@pytest.mark.parametrize("config_overrides", [{"ADMIN_LOGIN_LIMIT": "2 per minute"}],
                         indirect=True)
def test_throttled_and_forged_sign_ins_are_counted(db, app, client, make_admin):
    make_admin("ada")
    assert [sign_in(client, "ada", password="wrong-1").status_code for _ in range(6)] == \
        [422, 422, 429, 429, 429, 429]
    for _ in range(3):  # a script posting without the form's CSRF token
        assert app.test_client().post("/admin/login", data={
            "username": "ada", "password": "x"}).status_code == 400

    [throttled] = _rows(db, attempts.THROTTLED)
    assert (throttled.attempts, throttled.target, throttled.actor_type) == \
        (4, "admin.login", "user")
    [forged] = _rows(db, attempts.MALFORMED)
    assert (forged.attempts, forged.code, forged.target) == (3, "csrf_failed", "admin.login")


@pytest.mark.parametrize("config_overrides", [{"AUDIT_ATTEMPT_ADDRESSES": 5,
                                                "TRUSTED_PROXIES": 1}], indirect=True)
def test_many_addresses_in_one_window_share_one_row_beyond_the_cap(db, client):
    for n in range(12):
        for _ in range(2):
            client.post(ENROLLMENTS, data="[", content_type="application/json",
                        headers={"X-Forwarded-For": f"198.51.100.{n}"})

    rows = _rows(db, attempts.MALFORMED)
    assert len(rows) == 6
    by_address = {row.client_address: row.attempts for row in rows}
    assert by_address == {**{f"198.51.100.{n}": 2 for n in range(5)},
                          attempts.OTHER_ADDRESSES: 14}


def test_each_window_has_its_own_row(db, app):
    moments = [datetime(2026, 12, 3, 10, minute, second, tzinfo=timezone.utc)
               for minute, second in ((0, 0), (4, 30), (9, 59), (10, 0), (25, 1))]
    for moment in moments:
        attempts.note(attempts.THROTTLED, actor_type="device", client_address="192.0.2.1",
                      code="rate_limited", target="api.create_enrollment", now=moment)
    db.session.commit()

    rows = _rows(db, attempts.THROTTLED)
    assert [(row.occurred_at.strftime("%H:%M"), row.attempts) for row in rows] == \
        [("10:00", 3), ("10:10", 1), ("10:20", 1)]
    assert rows[0].details["last_at"] == "2026-12-03T10:09:59Z"


def test_the_audit_log_offers_and_shows_them(db, client, admin_client):
    for _ in range(4):
        client.post(ENROLLMENTS, data="{", content_type="application/json")

    page = html_of(admin_client.get("/admin/audit"))
    assert '<option value="attempt.malformed">' in page
    assert '<option value="attempt.throttled">' in page  # offered before the first one
    assert '<option value="attempt.*">' in page
    filtered = html_of(admin_client.get("/admin/audit?action=attempt.malformed"))
    assert "4 attempts</strong> from this time, the last at " in filtered
    assert "invalid_request" in filtered
    export = admin_client.get("/admin/audit/export.csv?action=attempt.malformed")
    assert '""attempts"": 4' in export.get_data(as_text=True)


# --- many processes add to one row ----------------------------------------------------------

def test_four_worker_processes_count_every_attempt_in_one_row(tmp_path):
    app = live_app(tmp_path, "attempts_race")
    with gunicorn(app, workers=4, threads=4) as url, ThreadPoolExecutor(32) as pool:
        def post(_):
            return requests.post(url + ENROLLMENTS, data="{", timeout=30,
                                 headers={"Content-Type": "application/json"}).status_code
        statuses = list(pool.map(post, range(400)))
    assert statuses == [400] * 400
    with app.app_context():
        rows = _db.session.execute(sa.select(AuditEvent.occurred_at, AuditEvent.attempts)
                                   .where(AuditEvent.action == attempts.MALFORMED)).all()
        _db.engine.dispose()
    # One row per window: two when the run crossed a 10-minute boundary.
    assert len(rows) in (1, 2) and sum(row.attempts for row in rows) == 400
