"""The Admin API's `management` (issue 17): companion (the default) or adp in POST /qr-codes,
POST /batches and their rows; answers name it (and an ADP automatic QR code's enrollment token
with its expiry); Google's failure is 502 google_failed naming the field, nothing saved; an API
that is not set up is the 422 of field management. Google is the loopback stand-in, reached
through Google's own client libraries. Every answer is checked against the OpenAPI document."""
import json

import jsonschema_rs
import pytest
import sqlalchemy as sa

from portal.enrollment.models import QrCode
from portal.licensing.seats import figures
from portal.provisioning.device_policy import NOT_CONFIGURED
from portal.settings.network_profiles import ProfileValues, save
from tests.adminapi.conftest import BASE, wifi_body
from tests.support.amapi_standin import TOKEN_EXTRA

TOKENS = r"/v1/enterprises/LC0abc/enrollmentTokens$"
EXTRAS = "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"


@pytest.fixture
def document(client):
    return client.get(f"{BASE}/openapi.json").get_json()


def conforms(document, schema: str, answer: dict) -> dict:
    validator = jsonschema_rs.validator_for({"$ref": f"#/components/schemas/{schema}",
                                             "components": document["components"]})
    assert [error.message for error in validator.iter_errors(answer)] == []
    return answer


def create(client, headers, **overrides):
    return client.post(f"{BASE}/qr-codes", json=wifi_body(**overrides), headers=headers)


def saved():
    return figures().reserved, figures().remaining


def count_qr_codes(db):
    return db.session.scalar(sa.select(sa.func.count()).select_from(QrCode))


def test_companion_is_the_default_and_is_named(client, seeded, provision, document):
    answer = create(client, provision)
    assert answer.status_code == 201
    body = conforms(document, "QrCode", answer.get_json())
    assert (body["management"], body["enrollment_token"]) == ("companion", None)


def test_an_adp_qr_code_carries_google_s_token_and_names_it_with_its_expiry(
        db, client, seeded, provision, read, document, amapi_connected):
    before = saved()
    answer = create(client, provision, management="adp", otp_validity=48)
    assert answer.status_code == 201, answer.get_json()
    body = conforms(document, "QrCode", answer.get_json())
    qr = db.session.scalar(sa.select(QrCode).where(QrCode.public_id == body["id"]))
    token = amapi_connected.tokens[qr.enrollment_token_name]
    assert body["management"] == "adp"
    assert body["enrollment_token"] == {"name": qr.enrollment_token_name,
                                        "expires_at": body["otp_expires_at"]}
    assert body["otp_expires_at"] is not None
    (call,) = amapi_connected.calls("POST", TOKENS)
    assert call.json["duration"] == f"{48 * 3600}s" and call.json["oneTimeOnly"] is False
    assert json.loads(call.json["additionalData"]) == {"qr": body["id"]}
    payload = client.get(body["links"]["payload"], headers=provision).get_json()
    assert payload[EXTRAS][TOKEN_EXTRA] == token["value"]
    pending = client.get(body["links"]["pending"], headers=provision).get_json()
    assert pending["otp"] == token["value"]
    assert saved() == (before[0] + 2, before[1] - 2)
    got = client.get(body["links"]["self"], headers=read).get_json()
    assert (got["management"], got["enrollment_token"]) == ("adp", body["enrollment_token"])
    unlimited = create(client, provision, management="adp", otp_validity="unlimited",
                       user="pupil1", usage_count=1).get_json()
    assert unlimited["enrollment_token"]["expires_at"] is None


def test_an_adp_self_service_qr_code_has_no_enrollment_token(client, seeded, provision,
                                                             document, amapi_connected):
    answer = create(client, provision, option="ssp", user=None, usage_count=None,
                    management="adp")
    assert answer.status_code == 201, answer.get_json()
    body = conforms(document, "QrCode", answer.get_json())
    assert (body["management"], body["enrollment_token"]) == ("adp", None)


@pytest.mark.parametrize("management", ["ADP", "android_device_policy", "", 1, True])
def test_a_management_outside_the_enum_is_422(db, client, seeded, provision, management):
    answer = create(client, provision, management=management)
    assert answer.status_code == 422
    message = answer.get_json()["error"]["fields"]["management"]
    assert message in ("Must be one of: companion, adp.", "Must be a string.")
    assert count_qr_codes(db) == 1  # seeded's own


def test_adp_without_the_api_set_up_is_422_on_management(db, client, seeded, provision):
    answer = create(client, provision, management="adp")
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"] == {"management": NOT_CONFIGURED}


@pytest.mark.parametrize("status, sentence", [
    (500, "Google had an internal error."),
    (403, "Google refused permission: the service account may not manage enterprises/LC0abc."),
])
def test_google_s_failure_is_502_on_management_and_saves_nothing(
        db, client, seeded, provision, document, amapi_connected, status, sentence):
    before, qr_codes = saved(), count_qr_codes(db)
    amapi_connected.fail(TOKENS, status, method="POST")
    answer = create(client, provision, management="adp")
    assert answer.status_code == 502
    body = conforms(document, "Error", answer.get_json())
    assert body["error"]["code"] == "google_failed"
    assert body["error"]["message"].startswith(sentence)
    assert body["error"]["fields"] == {"management": body["error"]["message"]}
    assert "private_key" not in answer.get_data(as_text=True)
    assert saved() == before and count_qr_codes(db) == qr_codes


def test_the_given_management_wins_over_the_profile_s(db, client, seeded, provision,
                                                      amapi_connected):
    save(ProfileValues("Kiosk Wi-Fi", "wifi", "Kiosk", "WPA", "correct-horse",
                       management="adp"), actor="setup")
    by_profile = create(client, provision, network=None, network_profile="Kiosk Wi-Fi")
    given = create(client, provision, network=None, network_profile="Kiosk Wi-Fi",
                   management="companion")
    assert by_profile.get_json()["management"] == "adp"
    assert given.get_json()["management"] == "companion"
    assert len(amapi_connected.calls("POST", TOKENS)) == 1


# POST /batches

def _profile():
    return save(ProfileValues("School Wi-Fi", "wifi", "School", "WPA", "correct-horse"),
                actor="setup")


def _batch(client, headers, rows, **fields):
    return client.post(f"{BASE}/batches", headers=headers,
                       json={"network_profile": "School Wi-Fi", "rows": rows, **fields})


def test_a_batch_with_adp_rows_makes_their_tokens(db, client, seeded, make_user, provision,
                                                  read, document, amapi_connected):
    _profile()
    kids = [make_user(username=f"kid{index}").username for index in range(3)]
    answer = _batch(client, provision, [{"user": kids[0]},
                                        {"user": kids[1], "management": "companion"},
                                        {"user": kids[2], "management": "adp"}],
                    management="adp")
    assert answer.status_code == 201, answer.get_json()
    batch = conforms(document, "Batch", answer.get_json())
    items = client.get(f"{BASE}/qr-codes?batch={batch['id']}", headers=read).get_json()["items"]
    for item in items:
        conforms(document, "QrCode", item)
    managements = {item["user"]: item["management"] for item in items}
    assert managements == {kids[0]: "adp", kids[1]: "companion", kids[2]: "adp"}
    assert len(amapi_connected.tokens) == 2 == len(amapi_connected.calls("POST", TOKENS))


def test_batch_rows_refused_by_field_without_the_api(db, client, seeded, make_user, provision):
    _profile()
    make_user(username="kid0")
    make_user(username="kid1")
    typed = _batch(client, provision, [{"user": "kid0"}, {"user": "kid1",
                                                          "management": "intune"}])
    assert typed.status_code == 422
    assert typed.get_json()["error"]["fields"] == {
        "rows[1].management": "Must be one of: companion, adp."}
    answer = _batch(client, provision, [{"user": "kid0"}, {"user": "kid1",
                                                           "management": "adp"}])
    assert answer.status_code == 422
    assert answer.get_json()["error"]["fields"] == {"rows[1].management": NOT_CONFIGURED}
    assert count_qr_codes(db) == 1


def test_google_s_failure_in_a_batch_is_502_naming_the_row(db, client, seeded, make_user,
                                                           provision, document,
                                                           amapi_connected):
    _profile()
    kids = [make_user(username=f"kid{index}").username for index in range(2)]
    before, qr_codes = saved(), count_qr_codes(db)
    amapi_connected.fail(TOKENS, 500, method="POST")
    answer = _batch(client, provision, [{"user": kids[0]}, {"user": kids[1]}],
                    management="adp")
    assert answer.status_code == 502
    error = conforms(document, "Error", answer.get_json())["error"]
    assert error["code"] == "google_failed"
    assert list(error["fields"]) == ["rows[0].management"]
    assert error["fields"]["rows[0].management"].startswith("Google had an internal error.")
    assert "Nothing was saved" in error["message"]
    assert saved() == before and count_qr_codes(db) == qr_codes


def test_the_document_names_management_and_the_502(document):
    schemas = document["components"]["schemas"]
    assert schemas["QrCodeRequest"]["properties"]["management"]["enum"] == \
        ["companion", "adp", None]
    assert schemas["QrCode"]["properties"]["management"]["enum"] == ["companion", "adp"]
    rows = schemas["BatchRequest"]["properties"]["rows"]["items"]["properties"]
    assert rows["management"]["enum"] == ["companion", "adp", None]
    for path in ("/qr-codes", "/batches"):
        answer = document["paths"][path]["post"]["responses"]["502"]
        assert answer["content"]["application/json"]["example"]["error"]["code"] == \
            "google_failed"
