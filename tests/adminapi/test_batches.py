"""POST /api/admin/v1/batches: a bulk batch from JSON rows, checked by the bulk domain as a CSV
is (every problem named by row and field, nothing saved), made in one transaction, then found
again by GET /batches/{id} and GET /qr-codes?batch=."""
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.enrollment.models import Batch, QrCode
from portal.licensing.seats import figures
from portal.settings.network_profiles import ProfileValues, save
from tests.adminapi.conftest import BASE
from tests.support.qr import decode_qr


def _profile():
    return save(ProfileValues("School Wi-Fi", "wifi", "School", "WPA", "correct-horse"),
                actor="setup")


def _pupils(make_user, count):
    return [make_user(username=f"kid{index}").username for index in range(count)]


def test_a_batch_from_json_rows_is_made_and_found_again(db, client, seeded, make_user,
                                                        provision, read):
    _profile()
    names = _pupils(make_user, 3)
    before = figures().remaining
    response = client.post(f"{BASE}/batches", headers=provision, json={
        "network_profile": "school wi-fi", "name": "Class 4b", "otp_validity": 48,
        "rows": [{"user": names[0]}, {"user": names[1], "usage_count": 2,
                                      "localization": "de-CH"},
                 {"user": names[2], "send_to_user": True,
                  "alternative_address": "office@example.com"}]})

    assert response.status_code == 201, response.get_json()
    batch = response.get_json()
    assert (batch["state"], batch["rows"], batch["done"], batch["name"]) == \
        ("created", 3, 3, "Class 4b")
    assert batch["network_profile"] == "School Wi-Fi"
    assert batch["created_by"] == "API token HR system"
    assert response.headers["Location"] == f"{BASE}/batches/{batch['id']}"
    assert figures().remaining == before - 4
    assert client.get(batch["links"]["self"], headers=read).get_json() == batch

    listed = client.get(f"{BASE}/qr-codes?batch={batch['id']}&limit=2", headers=read).get_json()
    more = client.get(f"{BASE}/qr-codes?batch={batch['id']}&limit=2&after="
                      f"{listed['next_cursor']}", headers=read).get_json()
    items = listed["items"] + more["items"]
    assert sorted(item["user"] for item in items) == sorted(names)
    assert {item["network_profile"] for item in items} == {"School Wi-Fi"}
    assert more["next_cursor"] is None
    german = next(item for item in items if item["user"] == names[1])
    assert (german["localization"], german["usage_count"]) == ("de-CH", 2)
    png = client.get(german["links"]["png"], headers=provision)
    assert '"School"' in decode_qr(png.data)

    made = [item["id"] for item in items] + [batch["id"]]
    actors = db.session.execute(sa.select(AuditEvent.actor_type, AuditEvent.actor).where(
        AuditEvent.action.in_(("qr_code.create", "batch.create")),
        AuditEvent.target.in_(made))).all()
    assert len(actors) == 4 and set(actors) == {("api_token", "HR system")}


def test_every_bad_row_is_named_and_nothing_is_saved(db, client, seeded, make_user, provision):
    _profile()
    names = _pupils(make_user, 4)
    before = figures()
    response = client.post(f"{BASE}/batches", headers=provision, json={
        "network_profile": "School Wi-Fi",
        "rows": [{"user": names[0]}, {"user": "ghost"}, {"user": names[0]},
                 {"user": names[1], "usage_count": 0},
                 {"user": names[2], "alternative_address": "a@b"},
                 {"user": names[3], "localization": "xx-Nope"},
                 {"user": "=cmd|' /C calc'!A0"}]})

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    fields = error["fields"]
    assert fields["rows[1].user"].startswith("Unknown user 'ghost'")
    assert "already in row 1" in fields["rows[2].user"]
    assert "whole number, 1 or more" in fields["rows[3].usage_count"]
    assert "rows[4].alternative_address" in fields
    assert "rows[5].localization" in fields
    assert "formulas are refused" in fields["rows[6].user"]
    assert "rows[0].user" not in fields
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Batch)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(QrCode)) == 1  # seeded's
    assert figures() == before


def test_json_types_profile_and_row_count_are_checked_first(client, seeded, provision):
    _profile()
    cases = [
        ({"rows": [{"user": "x"}]}, "network_profile"),
        ({"network_profile": "Nope", "rows": [{"user": "x"}]}, "network_profile"),
        ({"network_profile": "School Wi-Fi", "rows": []}, "rows"),
        ({"network_profile": "School Wi-Fi", "rows": "x"}, "rows"),
        ({"network_profile": "School Wi-Fi", "rows": [5]}, "rows[0]"),
        ({"network_profile": "School Wi-Fi", "rows": [{"user": 5}]}, "rows[0].user"),
        ({"network_profile": "School Wi-Fi", "rows": [{"user": "x", "usage_count": "2"}]},
         "rows[0].usage_count"),
        ({"network_profile": "School Wi-Fi", "rows": [{"user": "x", "colour": "red"}]},
         "rows[0].colour"),
        ({"network_profile": "School Wi-Fi", "rows": [{"user": "x"}], "otp_validity": "soon"},
         "otp_validity"),
        ({"network_profile": "School Wi-Fi", "rows": [{"user": "x"}] * 5001}, "rows"),
    ]
    for body, field in cases:
        response = client.post(f"{BASE}/batches", headers=provision, json=body)
        assert response.status_code == 422, (body, response.get_json())
        assert field in response.get_json()["error"]["fields"], (field, response.get_json())


def test_too_many_licenses_for_the_batch_is_refused(db, client, seeded, make_user, provision):
    from portal.licensing.seats import set_total
    _profile()
    names = _pupils(make_user, 2)
    set_total(figures().used + figures().reserved + 2)
    response = client.post(f"{BASE}/batches", headers=provision, json={
        "network_profile": "School Wi-Fi",
        "rows": [{"user": names[0], "usage_count": 2}, {"user": names[1]}]})
    assert response.status_code == 422
    assert "3 licenses; 2 remain" in response.get_json()["error"]["fields"]["usage_count"]


def test_scope_unknown_batches_and_a_large_body(client, seeded, provision, read):
    _profile()
    assert client.post(f"{BASE}/batches", headers=read, json={
        "network_profile": "School Wi-Fi", "rows": [{"user": "pupil1"}]}).status_code == 403
    for url in (f"{BASE}/batches/nope-nope-nope", f"{BASE}/batches/{'x' * 40}",
                f"{BASE}/qr-codes?batch=nope-nope-nope"):
        response = client.get(url, headers=read)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == \
            "not_found"
    # Rows past 16 KiB are allowed here (the batch's limit is 1 MiB), and over 1 MiB refused.
    rows = [{"user": f"nobody{index:05}"} for index in range(1000)]
    response = client.post(f"{BASE}/batches", headers=provision,
                           json={"network_profile": "School Wi-Fi", "rows": rows})
    assert response.status_code == 422  # read and checked: unknown users
    huge = {"network_profile": "School Wi-Fi", "rows": [{"user": "x" * 200}] * 5000}
    response = client.post(f"{BASE}/batches", headers=provision, json=huge)
    assert response.status_code == 413
    assert response.get_json()["error"]["code"] == "payload_too_large"
