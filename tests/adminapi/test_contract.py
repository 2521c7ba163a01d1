"""The Admin API as a client sees it: tokens and scopes, every endpoint, validation by field,
cursor pagination, throttling per token, the audit log, and tokens stored only hashed."""
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.accounts.api_tokens import authenticate, create_token, revoke_token
from portal.accounts.models import ApiToken
from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment.models import QrCode
from portal.settings.network_profiles import ProfileValues, save
from tests.adminapi.conftest import BASE, bearer, wifi_body
from tests.conftest import csrf_token_from
from tests.security.conftest import _enrolled_device
from tests.support.qr import decode_qr

EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"
INVALID_TOKEN = {"error": {"code": "invalid_token",
                           "message": "The token is missing, wrong, expired or revoked."}}


def create(client, headers, **overrides):
    return client.post(f"{BASE}/qr-codes", json=wifi_body(**overrides), headers=headers)


# --- tokens ---------------------------------------------------------------------------------

def test_a_missing_wrong_expired_or_revoked_token_gets_the_same_401(db, client, make_token):
    good = make_token("read", name="good")
    expired = make_token("read", name="expired")
    db.session.execute(sa.update(ApiToken).where(ApiToken.name == "expired")
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    revoked = make_token("read", name="revoked")
    revoke_token(db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "revoked")),
                 revoked_by="admin")
    prefix, public_id, secret = good.split("_", 2)
    wrong_secret = f"{prefix}_{public_id}_{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}"
    unknown_id = f"{prefix}_{'0' * 16}_{secret}"
    assert client.get(f"{BASE}/licenses", headers=bearer(good)).status_code == 200
    for headers in ({}, bearer(""), {"Authorization": f"Basic {good}"}, bearer("qrp_x_y"),
                    bearer(wrong_secret), bearer(unknown_id), bearer(expired),
                    bearer(revoked), bearer(good + "x")):
        response = client.get(f"{BASE}/licenses", headers=headers)
        assert response.status_code == 401, headers
        assert response.get_json() == INVALID_TOKEN
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_token_is_stored_only_as_a_keyed_hash(db, make_token):
    text = make_token("provision", name="hashed")
    secret = text.split("_", 2)[2]
    dump = []
    for table in db.metadata.sorted_tables:
        dump += [repr(row) for row in db.session.execute(sa.select(table)).all()]
    assert not any(secret in row or text in row for row in dump)
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "hashed"))
    assert len(token.secret_hash) == 64 and token.secret_hash not in text
    assert authenticate(text).id == token.id


def test_token_names_are_unique_and_one_line_and_the_expiry_is_a_choice(db):
    create_token("Nightly sync", "read", created_by="admin", days=30)
    from portal.accounts.api_tokens import ApiTokenError
    with pytest.raises(ApiTokenError) as refused:
        create_token("nightly SYNC", "root", created_by="admin", days=7)
    assert set(refused.value.errors) == {"name", "scope", "expires_in"}
    with pytest.raises(ApiTokenError) as refused:
        create_token("two\nlines", "read", created_by="admin", on=utcnow().date())
    assert set(refused.value.errors) == {"name", "expires_on"}
    on = create_token("dated", "read", created_by="admin",
                      on=utcnow().date() + timedelta(days=10)).token
    assert on.expires_at.date() == utcnow().date() + timedelta(days=11)


def test_a_read_token_reads_without_secrets_and_may_change_nothing(client, seeded, provision,
                                                                   read):
    qr = create(client, provision).get_json()
    assert client.get(f"{BASE}/qr-codes/{qr['id']}", headers=read).status_code == 200
    pending = client.get(f"{BASE}/qr-codes/{qr['id']}/pending", headers=read).get_json()
    assert pending["otp"] is None and len(pending["items"]) == 2
    forbidden = [client.post(f"{BASE}/qr-codes", json=wifi_body(), headers=read),
                 client.post(f"{BASE}/qr-codes/{qr['id']}/revoke", headers=read),
                 client.post(f"{BASE}/devices/abc/retire", headers=read)]
    forbidden += [client.get(f"{BASE}/qr-codes/{qr['id']}/{path}", headers=read)
                  for path in ("payload", "qr.png", "qr.svg")]
    for response in forbidden:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "insufficient_scope"
    assert client.get(f"{BASE}/qr-codes/{qr['id']}", headers=read).get_json()["state"] == \
        "active"


# --- QR codes -------------------------------------------------------------------------------

def test_create_a_qr_code_and_get_its_images_payload_and_pending_enrollments(client, seeded,
                                                                              provision):
    response = create(client, provision)
    assert response.status_code == 201, response.get_json()
    qr = response.get_json()
    assert response.headers["Location"] == f"{BASE}/qr-codes/{qr['id']}"
    assert qr["option"] == "auto" and qr["user"] == "pupil1" and qr["usage_count"] == 2
    assert qr["network"] == {"type": "wifi", "ssid": "School-WLAN", "security": "WPA",
                             "hidden": False}
    assert qr["pending"]["pending"] == 2 and qr["state"] == "active"
    assert "password" not in json.dumps(qr) and "correct-horse" not in json.dumps(qr)
    payload = client.get(qr["links"]["payload"], headers=provision)
    assert payload.status_code == 200 and payload.headers["Cache-Control"] == "no-store"
    payload = payload.get_json()
    assert payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"] == "correct-horse"
    png = client.get(qr["links"]["png"], headers=provision)
    assert png.mimetype == "image/png"
    assert json.loads(decode_qr(png.data)) == payload
    assert client.get(qr["links"]["svg"], headers=provision).data.startswith(b"<svg")
    pending = client.get(qr["links"]["pending"], headers=provision).get_json()
    assert pending["otp"] == payload[EXTRAS]["otp"]
    assert [item["state"] for item in pending["items"]] == ["pending", "pending"]
    assert client.get(f"{BASE}/licenses", headers=provision).get_json() == {
        "total": 100, "used": 0, "reserved": 2, "remaining": 98}


def test_a_qr_code_from_the_api_equals_the_wizards_for_the_same_input(db, app, seeded, provision,
                                                                      admin_client):
    client = app.test_client()  # no session: the API reads only the token
    page = admin_client.get("/admin/devices/pending/new").get_data(as_text=True)
    form = {"csrf_token": csrf_token_from(page), "option": "auto", "user_type": "local",
            "username": "pupil1", "lang": "de-CH", "usage_count": "3", "network": "wifi",
            "wifi_ssid": "School-WLAN", "wifi_security": "WPA", "wifi_password": "s3cret-pass",
            "wifi_hidden": "y", "name": "Cart 7", "otp_validity": "48", "define_otp": "y"}
    assert admin_client.post("/admin/devices/pending", data=form).status_code == 303
    wizard = db.session.scalar(sa.select(QrCode).order_by(QrCode.id.desc()).limit(1))
    api = create(client, provision, usage_count=3, localization="de-CH", name="Cart 7",
                 otp_validity=48, network={"type": "wifi", "ssid": "School-WLAN",
                                           "security": "WPA", "password": "s3cret-pass",
                                           "hidden": True}).get_json()
    made = client.get(f"{BASE}/qr-codes/{api['id']}/payload", headers=provision).get_json()
    png = admin_client.get(f"/admin/qr-codes/{wizard.public_id}/qr-code.png").data
    expected = json.loads(decode_qr(png))
    for payload in (made, expected):  # the values made for each code: its id and OTP
        payload[EXTRAS].pop("qr_id"), payload[EXTRAS].pop("otp")
    assert made == expected
    from_api = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == api["id"]))
    assert (from_api.usage_count, from_api.lang, from_api.name, from_api.wifi_hidden) == \
        (wizard.usage_count, wizard.lang, wizard.name, wizard.wifi_hidden)
    assert from_api.otp_expires_at - from_api.created_at == timedelta(hours=48)


def test_validation_errors_are_named_by_field(client, seeded, provision):
    response = create(client, provision, user="nobody", usage_count=0, localization="xx-YY",
                      alternative_address="not an address", colour="red",
                      network={"type": "wifi", "ssid": "", "security": "WPA"})
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert set(error["fields"]) == {"colour"}  # the shape first: an unknown field
    response = create(client, provision, user="nobody", usage_count=0, localization="xx-YY",
                      alternative_address="not an address",
                      network={"type": "wifi", "ssid": "", "security": "WPA"})
    fields = response.get_json()["error"]["fields"]
    assert {"user", "usage_count", "localization", "alternative_address",
            "network.ssid"} <= set(fields), fields
    assert fields["user"] == "No local user is named 'nobody'."
    for overrides, field in [({"usage_count": "2"}, "usage_count"),
                             ({"send_to_user": "yes"}, "send_to_user"),
                             ({"option": "both"}, "option"),
                             ({"name": "a\x00b"}, "name"),
                             ({"network_profile": "Office"}, "network"),
                             ({"network": None}, "network"),
                             ({"network": {"type": "wifi", "ssid": "x", "security": "WPA2"}},
                              "network.security"),
                             ({"otp_validity": "forever"}, "otp_validity"),
                             ({"usage_count": 5000}, "usage_count")]:
        response = create(client, provision, **overrides)
        assert response.status_code == 422, overrides
        assert field in response.get_json()["error"]["fields"], (overrides, response.json)


def test_a_network_profile_by_name(client, seeded, provision):
    save(ProfileValues(name="School Wi-Fi", network="wifi", wifi_ssid="School-WLAN",
                       wifi_security="WPA", wifi_password="profile-pass"), actor="admin")
    body = wifi_body(network_profile="school wi-fi")
    del body["network"]
    response = client.post(f"{BASE}/qr-codes", json=body, headers=provision)
    assert response.status_code == 201, response.get_json()
    qr = response.get_json()
    assert qr["network_profile"] == "School Wi-Fi" and qr["network"]["ssid"] == "School-WLAN"
    payload = client.get(qr["links"]["payload"], headers=provision).get_json()
    assert payload["android.app.extra.PROVISIONING_WIFI_PASSWORD"] == "profile-pass"
    body["network_profile"] = "Nope"
    assert client.post(f"{BASE}/qr-codes", json=body, headers=provision).get_json()[
        "error"]["fields"] == {"network_profile": "No network profile is named 'Nope'."}


def test_malformed_bodies_and_urls_get_the_shape_never_html(client, seeded, provision):
    cases = [
        (client.post(f"{BASE}/qr-codes", data=b"{", content_type="application/json",
                     headers=provision), 400, "invalid_request"),
        (client.post(f"{BASE}/qr-codes", data=b"option=auto", headers=provision,
                     content_type="application/x-www-form-urlencoded"), 415,
         "unsupported_media_type"),
        (client.post(f"{BASE}/qr-codes", data=b'{"name": "' + b"x" * 20000 + b'"}',
                     content_type="application/json", headers=provision), 413,
         "payload_too_large"),
        (client.get(f"{BASE}/nothing-here", headers=provision), 404, "not_found"),
        (client.get(f"{BASE}/qr-codes/a%00b", headers=provision), 404, "not_found"),
        (client.get("/api/admin/v2/qr-codes"), 404, "not_found"),
        (client.delete(f"{BASE}/qr-codes", headers=provision), 405, "method_not_allowed"),
        (client.get(f"{BASE}/qr-codes/nope", headers=provision), 404, "not_found"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, (status, response.data[:200])
        assert response.mimetype == "application/json"
        assert response.get_json()["error"]["code"] == code
    assert cases[6][0].headers["Allow"]


def test_list_qr_codes_by_cursor_with_the_pending_lists_filters(client, seeded, provision):
    made = [create(client, provision, name=f"Cart {n}", usage_count=1).get_json()["id"]
            for n in range(3)]
    first = client.get(f"{BASE}/qr-codes?option=auto&limit=2", headers=provision).get_json()
    assert [item["id"] for item in first["items"]] == made[::-1][:2]
    second = client.get(f"{BASE}/qr-codes?option=auto&limit=2&after={first['next_cursor']}",
                        headers=provision).get_json()
    assert [item["id"] for item in second["items"]] == made[:1]
    assert second["next_cursor"] is None
    found = client.get(f"{BASE}/qr-codes?q=Cart 1", headers=provision).get_json()
    assert [item["id"] for item in found["items"]] == [made[1]]
    for query, field in [("limit=0", "limit"), ("limit=101", "limit"), ("limit=x", "limit"),
                         ("after=garbage", "after"), ("state=lost", "state"),
                         ("q=%00", "q"), ("q=" + "x" * 65, "q")]:
        response = client.get(f"{BASE}/qr-codes?{query}", headers=provision)
        assert response.status_code == 422, query
        assert field in response.get_json()["error"]["fields"]


def test_revoke_then_409_and_no_image_or_payload(client, seeded, provision):
    qr = create(client, provision).get_json()
    revoked = client.post(f"{BASE}/qr-codes/{qr['id']}/revoke", headers=provision)
    assert revoked.status_code == 200
    assert revoked.get_json()["licenses_released"] == 2
    assert revoked.get_json()["qr_code"]["state"] == "revoked"
    again = client.post(f"{BASE}/qr-codes/{qr['id']}/revoke", headers=provision)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_revoked"
    for link in ("png", "svg", "payload"):
        gone = client.get(qr["links"][link], headers=provision)
        assert gone.status_code == 410 and gone.get_json()["error"]["code"] == "qr_revoked"
    pending = client.get(qr["links"]["pending"], headers=provision).get_json()
    assert pending["otp"] is None and pending["counts"]["revoked"] == 2


# --- devices and licenses -------------------------------------------------------------------

def test_devices_list_search_get_and_retire(client, seeded, make_qr_code, provision, read):
    qr = make_qr_code("auto", usage_count=1)
    device_id = _enrolled_device(qr)
    listed = client.get(f"{BASE}/devices", headers=read).get_json()
    assert [item["id"] for item in listed["items"]] == [device_id]
    assert listed["items"][0]["serial_number"] == "R58N000KNOWN"
    for query in ("q=r58n", "q=SM-G99", f"q={qr.public_id}", "state=provisioning"):
        found = client.get(f"{BASE}/devices?{query}", headers=read).get_json()
        assert [item["id"] for item in found["items"]] == [device_id], query
    assert client.get(f"{BASE}/devices?q=zzz", headers=read).get_json()["items"] == []
    assert client.get(f"{BASE}/devices?state=nope", headers=read).status_code == 422
    device = client.get(f"{BASE}/devices/{device_id}", headers=read).get_json()
    assert device["qr_id"] == qr.public_id and device["state"] == "provisioning"
    retired = client.post(f"{BASE}/devices/{device_id}/retire", headers=provision)
    assert retired.status_code == 200
    assert retired.get_json()["device"]["state"] == "retired"
    assert retired.get_json()["license_released"] is True
    again = client.post(f"{BASE}/devices/{device_id}/retire", headers=provision)
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_retired"
    assert client.get(f"{BASE}/devices/unknown", headers=read).status_code == 404


# --- audit and throttling -------------------------------------------------------------------

def test_every_call_is_audited_by_the_tokens_name_without_secrets(db, client, seeded,
                                                                  provision):
    qr = create(client, provision).get_json()
    client.get(f"{BASE}/qr-codes/{qr['id']}/payload", headers=provision)
    client.get(f"{BASE}/licenses", headers=provision)
    client.get(f"{BASE}/licenses")  # no token: nobody to name, no row
    rows = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.actor_type == "api_token")
                              .order_by(AuditEvent.id)).all()
    assert [(row.action, row.actor) for row in rows] == [
        ("qr_code.create", "HR system"), ("api.call", "HR system"),
        ("api.call", "HR system"), ("api.call", "HR system")]
    assert [row.details["path"] for row in rows[1:]] == [
        f"{BASE}/qr-codes", f"{BASE}/qr-codes/{qr['id']}/payload", f"{BASE}/licenses"]
    assert [row.code for row in rows[1:]] == ["201", "200", "200"]
    token_text = provision["Authorization"].split()[1]
    otp = client.get(f"{BASE}/qr-codes/{qr['id']}/pending", headers=provision).get_json()["otp"]
    every_row = " ".join(repr((row.details, row.target, row.code)) for row in
                         db.session.scalars(sa.select(AuditEvent)))
    for secret in (token_text, token_text.split("_", 2)[2], otp, "correct-horse"):
        assert secret not in every_row
    token = db.session.scalar(sa.select(ApiToken).where(ApiToken.name == "HR system"))
    assert token.last_used_at is not None


@pytest.mark.parametrize("config_overrides", [{"ADMIN_API_LIMIT": "3 per minute"}],
                         indirect=True)
def test_each_token_has_its_own_budget(client, make_token):
    first, second = bearer(make_token("read")), bearer(make_token("read"))
    answers = [client.get(f"{BASE}/licenses", headers=first).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]
    throttled = client.get(f"{BASE}/licenses", headers=first)
    assert throttled.get_json()["error"]["code"] == "rate_limited"
    assert int(throttled.headers["Retry-After"]) >= 1
    assert [client.get(f"{BASE}/licenses", headers=second).status_code
            for _ in range(3)] == [200, 200, 200]


def test_the_openapi_document_is_public(client):
    response = client.get(f"{BASE}/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"] == "3.1.0"
