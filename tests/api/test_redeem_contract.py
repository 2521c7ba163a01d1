"""POST /api/v1/enrollments as the Companion calls it (companion-api.md §2): exact JSON back."""
import io
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.database import utcnow
from portal.enrollment.models import Device, EnrollmentTicket, PendingEnrollment, QrCode
from portal.enrollment.pending import revoke_qr_code
from portal.enrollment.zero_touch import import_identifiers
from portal.licensing.seats import figures, set_total
from portal.otp import keyed_hash
from tests.api.conftest import (ENROLLMENTS, IMEI, altered, assert_figures_exact, auto_body,
                                bearer, device, error_of, otp_of, pending_states, redeem,
                                ssp_body)

ENROLLMENT_KEYS = {"device_id", "device_token", "state", "user", "lang"}


def assert_new_device(response, user, lang="en"):
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == ENROLLMENT_KEYS
    assert body["state"] == "provisioning" and body["lang"] == lang
    assert body["user"] == {"username": user.username,
                            "display_name": user.display_name or user.username,
                            "email": user.email}
    assert isinstance(body["device_id"], str) and body["device_id"]
    assert isinstance(body["device_token"], str) and len(body["device_token"]) >= 32
    return body


def expire_otp(db, qr):
    past = utcnow() - timedelta(minutes=1)
    db.session.execute(sa.update(QrCode).where(QrCode.id == qr.id).values(otp_expires_at=past))
    db.session.execute(sa.update(PendingEnrollment).where(PendingEnrollment.qr_code_id == qr.id)
                       .values(expires_at=past))
    db.session.commit()


def expire_ticket(db, ticket_qr):
    db.session.execute(sa.update(EnrollmentTicket)
                       .where(EnrollmentTicket.qr_code_id == ticket_qr.id)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    db.session.commit()


# --- success paths -------------------------------------------------------------------------

def test_automatic_redeem_creates_a_provisioning_device_for_the_qr_user(db, client, make_qr_code,
                                                                         make_user):
    user = make_user(display_name="Anna Muster")
    qr = make_qr_code("auto", usage_count=2, user=user, lang="de-CH")
    before = figures()

    body = assert_new_device(redeem(client, auto_body(qr)), user, lang="de-CH")

    stored = db.session.scalar(sa.select(Device).where(Device.public_id == body["device_id"]))
    assert (stored.serial_number, stored.imei, stored.manufacturer, stored.model,
            stored.android_api_level) == ("R58N123ABC", IMEI, "samsung", "SM-G991B", 33)
    assert pending_states(db, qr) == ["pending", "used"]
    assert (figures().used, figures().reserved) == (before.used + 1, before.reserved - 1)
    assert_figures_exact(db)


def test_same_device_again_gets_same_id_fresh_token_and_spends_nothing(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    first = redeem(client, auto_body(qr)).get_json()
    spent, states = figures(), pending_states(db, qr)

    again = redeem(client, auto_body(qr))

    assert again.status_code == 200
    body = again.get_json()
    assert set(body) == ENROLLMENT_KEYS and body["state"] == "provisioning"
    assert body["device_id"] == first["device_id"]
    assert body["device_token"] != first["device_token"]
    assert (figures(), pending_states(db, qr)) == (spent, states)
    path = f"/api/v1/devices/{first['device_id']}"
    error_of(client.get(path, headers=bearer(first["device_token"])), 401, "invalid_token")
    new = client.get(path, headers=bearer(body["device_token"]))
    assert new.status_code == 200
    assert_figures_exact(db)


def test_self_service_redeem_with_a_ticket_uses_one_license(db, client, make_qr_code, make_user,
                                                            issue):
    qr = make_qr_code("ssp", licenses=5)
    user = make_user()
    before = figures()

    assert_new_device(redeem(client, ssp_body(qr, issue(qr, user))), user)

    assert (figures().used, figures().reserved) == (before.used + 1, before.reserved)
    assert_figures_exact(db)


def test_same_ticket_and_serial_again_is_the_same_device_with_nothing_spent(db, client,
                                                                            make_qr_code,
                                                                            make_user, issue):
    qr = make_qr_code("ssp", licenses=5)
    ticket = issue(qr, make_user())
    first = redeem(client, ssp_body(qr, ticket)).get_json()
    spent = figures()

    again = redeem(client, ssp_body(qr, ticket))

    assert again.status_code == 200
    assert again.get_json()["device_id"] == first["device_id"]
    assert again.get_json()["device_token"] != first["device_token"]
    assert figures() == spent
    assert_figures_exact(db)


def test_same_device_with_a_second_ticket_is_the_same_device_with_nothing_spent(
        db, client, make_qr_code, make_user, issue):
    qr = make_qr_code("ssp", licenses=5)
    user = make_user()
    first = redeem(client, ssp_body(qr, issue(qr, user))).get_json()
    spent = figures()
    second_ticket = issue(qr, user)  # the user pressed Start again on the same device

    again = redeem(client, ssp_body(qr, second_ticket))

    assert again.status_code == 200, again.get_data(as_text=True)
    assert again.get_json()["device_id"] == first["device_id"]
    assert redeem(client, ssp_body(qr, second_ticket)).status_code == 200
    assert figures() == spent
    assert_figures_exact(db)


def test_usage_count_ten_enrolls_ten_different_devices(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=10)
    ids = {redeem(client, auto_body(qr, serial_number=f"SN{n}", imei=None)).get_json()["device_id"]
           for n in range(10)}
    assert len(ids) == 10
    assert pending_states(db, qr) == ["used"] * 10
    assert_figures_exact(db)


def test_json_with_charset_parameter_is_accepted(client, make_qr_code):
    qr = make_qr_code("auto")
    response = client.post(ENROLLMENTS, data=json.dumps(auto_body(qr)),
                           content_type="application/json; charset=utf-8")
    assert response.status_code == 201


def test_imei_is_optional(client, make_qr_code):
    qr = make_qr_code("auto")
    assert redeem(client, auto_body(qr, imei=None)).status_code == 201


# --- 400 invalid_request: the message names the field -------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"qr_id": None}, "qr_id"),
    ({"device": None}, "device"),
    ({"ticket": "a-ticket"}, "ticket"),          # otp and ticket both
    ({"otp": None}, "ticket"),                   # neither
    ({"qr_id": 12345678}, "qr_id"),
    ({"qr_id": ["x"]}, "qr_id"),
    ({"qr_id": ""}, "qr_id"),
    ({"qr_id": "q" * 65}, "qr_id"),
    ({"otp": 123456}, "otp"),
    ({"otp": ""}, "otp"),
    ({"otp": "1" * 257}, "otp"),
    ({"otp": None, "ticket": 7}, "ticket"),
    ({"otp": None, "ticket": {"t": 1}}, "ticket"),
    # JSON can carry these; PostgreSQL text and UTF-8 cannot (a 500 before the fix).
    ({"qr_id": "qr\x00code00"}, "qr_id"),
    ({"qr_id": "qr\ud800code0"}, "qr_id"),
    ({"otp": "12\x003456"}, "otp"),
    ({"otp": "12\udfff3456"}, "otp"),
    ({"otp": None, "ticket": "ticket\ud83d"}, "ticket"),
    ({"otp": None, "ticket": "ticket\x00"}, "ticket"),
    ({"device": device(serial_number="R58N\x00")}, "device.serial_number"),
    ({"device": device(model="SM\ud800")}, "device.model"),
    ({"device": "R58N123ABC"}, "device"),
    ({"device": ["R58N123ABC"]}, "device"),
    ({"device": device(serial_number=None)}, "device.serial_number"),
    ({"device": device(serial_number=12345)}, "device.serial_number"),
    ({"device": device(serial_number="")}, "device.serial_number"),
    ({"device": device(serial_number="R58N 123ABC")}, "device.serial_number"),
    ({"device": device(serial_number="S" * 65)}, "device.serial_number"),
    ({"device": device(serial_number="R58N/123")}, "device.serial_number"),
    ({"device": device(serial_number="R58Nß123")}, "device.serial_number"),
    ({"device": device(imei=356938035643809)}, "device.imei"),
    ({"device": device(imei="356938035643808")}, "device.imei"),     # Luhn check digit wrong
    ({"device": device(imei="35693803564380")}, "device.imei"),      # 14 digits
    ({"device": device(imei="3569380356438090")}, "device.imei"),    # 16 digits
    ({"device": device(imei="35693803564380a")}, "device.imei"),
    ({"device": device(imei="٣٥٦٩٣٨٠٣٥٦٤٣٨٠٩")}, "device.imei"),      # non-ASCII digits
    ({"device": device(imei="")}, "device.imei"),
    ({"device": device(manufacturer=None)}, "device.manufacturer"),
    ({"device": device(manufacturer=7)}, "device.manufacturer"),
    ({"device": device(manufacturer="")}, "device.manufacturer"),
    ({"device": device(manufacturer="m" * 65)}, "device.manufacturer"),
    ({"device": device(manufacturer="sam\nsung")}, "device.manufacturer"),
    ({"device": device(manufacturer="sam\x00sung")}, "device.manufacturer"),
    ({"device": device(model=None)}, "device.model"),
    ({"device": device(model=["SM-G991B"])}, "device.model"),
    ({"device": device(model="SM\x1bG991B")}, "device.model"),
    ({"device": device(model="SM\x7fG991B")}, "device.model"),
    ({"device": device(model="SM-G991B\u2028")}, "device.model"),
    ({"device": device(model="SM-G991B\u202e")}, "device.model"),    # right-to-left override
    ({"device": device(model="SM\u00adG991B")}, "device.model"),     # soft hyphen (invisible)
    ({"device": device(manufacturer="sam\x85sung")}, "device.manufacturer"),  # C1 control
    ({"device": device(android_api_level=None)}, "device.android_api_level"),
    ({"device": device(android_api_level="33")}, "device.android_api_level"),
    ({"device": device(android_api_level=33.5)}, "device.android_api_level"),
    ({"device": device(android_api_level=True)}, "device.android_api_level"),
    ({"device": device(android_api_level=-1)}, "device.android_api_level"),
    ({"device": device(android_api_level=0)}, "device.android_api_level"),
    ({"device": device(android_api_level=10**30)}, "device.android_api_level"),
    ({"device": device(android_api_level=1e30)}, "device.android_api_level"),
    ({"device": device(android_api_level=float("nan"))}, "device.android_api_level"),
    ({"device": device(android_api_level=float("inf"))}, "device.android_api_level"),
    ({"device": device(android_api_level=[33])}, "device.android_api_level"),
])
def test_invalid_field_is_400_naming_the_field(client, change, field):
    body = {"qr_id": "qr-id-that-does-not-exist", "otp": "123456", "device": device()}
    body.update(change)
    body = {name: value for name, value in body.items() if value is not None}

    message = error_of(redeem(client, body), 400, "invalid_request")

    assert f"'{field}'" in message


@pytest.mark.parametrize("raw", [b"[]", b'[{"qr_id": "x"}]', b"null", b"42", b'"text"', b"true",
                                 b"", b"{", b'{"qr_id": "x",}', b"\xff\xfe{}",
                                 b'{"a":' * 2000 + b"1" + b"}" * 2000,
                                 b"[" * 8000 + b"]" * 8000])
def test_body_that_is_not_a_json_object_is_400(client, raw):
    response = client.post(ENROLLMENTS, data=raw, content_type="application/json")
    message = error_of(response, 400, "invalid_request")
    assert "body" in message


def test_validation_comes_before_credentials(client, make_qr_code):
    qr = make_qr_code("auto")
    body = auto_body(qr, serial_number="has space")
    body["otp"] = "wrong-otp"
    error_of(redeem(client, body), 400, "invalid_request")
    body["qr_id"] = "no-such-qr-code"
    error_of(redeem(client, body), 400, "invalid_request")


# --- 401 invalid_credentials: never saying which -------------------------------------------

def test_every_credential_failure_is_the_same_401(db, client, make_qr_code, make_user, issue):
    auto = make_qr_code("auto", usage_count=2)
    ssp, other_ssp = make_qr_code("ssp"), make_qr_code("ssp")
    user = make_user()
    used_ticket = issue(ssp, user)
    assert redeem(client, ssp_body(ssp, used_ticket, serial_number="FIRST")).status_code == 201
    spent = figures()

    attempts = {
        "unknown qr_id with an otp": {"qr_id": "no-such-qr-id", "otp": otp_of(auto),
                                      "device": device()},
        "unknown qr_id with a ticket": {"qr_id": "no-such-qr-id", "ticket": issue(ssp, user),
                                        "device": device()},
        "wrong otp": {**auto_body(auto), "otp": altered(otp_of(auto))},
        "otp on an ssp qr": {"qr_id": ssp.public_id, "otp": otp_of(auto), "device": device()},
        "ticket on an auto qr": {"qr_id": auto.public_id, "ticket": issue(ssp, user),
                                 "device": device()},
        "wrong ticket": ssp_body(ssp, "not-a-ticket-" + "x" * 30),
        "used ticket, another serial": ssp_body(ssp, used_ticket, serial_number="SECOND"),
        "ticket of another qr": ssp_body(ssp, issue(other_ssp, user)),
    }
    messages = {name: error_of(redeem(client, body), 401, "invalid_credentials")
                for name, body in attempts.items()}

    assert len(set(messages.values())) == 1, messages
    assert figures() == spent
    assert pending_states(db, auto) == ["pending", "pending"]
    assert_figures_exact(db)


def test_wrong_otp_is_401_even_when_the_qr_is_also_revoked_expired_or_exhausted(db, client,
                                                                                make_qr_code):
    revoked, expired, exhausted = (make_qr_code("auto") for _ in range(3))
    revoke_qr_code(revoked, revoked_by=None)
    expire_otp(db, expired)
    assert redeem(client, auto_body(exhausted, serial_number="A")).status_code == 201
    for qr in (revoked, expired, exhausted):
        body = {**auto_body(qr, serial_number="B"), "otp": "wrong-otp"}
        error_of(redeem(client, body), 401, "invalid_credentials")


@pytest.mark.parametrize("bad_device", [{"android_api_level": 23}, {"serial_number": "ZT-LISTED"}])
def test_wrong_otp_is_401_before_device_checks(db, client, make_qr_code, bad_device):
    import_identifiers(["ZT-LISTED"], actor_type="operator", actor="test")
    qr = make_qr_code("auto")
    body = {**auto_body(qr, **bad_device), "otp": "wrong-otp"}
    error_of(redeem(client, body), 401, "invalid_credentials")


# --- 403 qr_revoked -------------------------------------------------------------------------

def test_revoked_auto_qr_with_the_right_otp_is_403(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    revoke_qr_code(qr, revoked_by=None)
    error_of(redeem(client, auto_body(qr)), 403, "qr_revoked")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0
    assert_figures_exact(db)


def test_revoked_ssp_qr_with_a_valid_ticket_is_403_and_a_wrong_ticket_401(db, client,
                                                                          make_qr_code,
                                                                          make_user, issue):
    qr = make_qr_code("ssp")
    ticket = issue(qr, make_user())
    revoke_qr_code(qr, revoked_by=None)
    error_of(redeem(client, ssp_body(qr, ticket)), 403, "qr_revoked")
    error_of(redeem(client, ssp_body(qr, "x" * 43)), 401, "invalid_credentials")


# --- 409 usage_exhausted / no_license -------------------------------------------------------

def test_usage_count_two_refuses_the_third_device(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    for serial in ("ONE", "TWO"):
        assert redeem(client, auto_body(qr, serial_number=serial)).status_code == 201

    error_of(redeem(client, auto_body(qr, serial_number="THREE")), 409, "usage_exhausted")

    serials = db.session.scalars(sa.select(Device.serial_number).where(Device.qr_code_id == qr.id))
    assert sorted(serials) == ["ONE", "TWO"]
    assert redeem(client, auto_body(qr, serial_number="TWO")).status_code == 200  # still retries
    assert_figures_exact(db)


def test_ssp_without_a_remaining_license_is_409_and_keeps_the_ticket(db, client, make_qr_code,
                                                                     make_user, issue):
    qr = make_qr_code("ssp", licenses=0)
    user = make_user()
    ticket = issue(qr, user)

    error_of(redeem(client, ssp_body(qr, ticket)), 409, "no_license")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0
    assert_figures_exact(db)

    set_total(1)
    assert_new_device(redeem(client, ssp_body(qr, ticket)), user)
    assert_figures_exact(db)


# --- 410 expired ----------------------------------------------------------------------------

def test_expired_otp_is_410_only_with_the_right_otp(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    expire_otp(db, qr)
    spent = figures()

    error_of(redeem(client, auto_body(qr)), 410, "expired")
    error_of(redeem(client, {**auto_body(qr), "otp": "wrong"}), 401, "invalid_credentials")
    assert figures() == spent
    assert_figures_exact(db)


def test_expired_ticket_is_410_and_a_wrong_ticket_still_401(db, client, make_qr_code, make_user,
                                                           issue):
    qr = make_qr_code("ssp")
    ticket = issue(qr, make_user())
    expire_ticket(db, qr)
    error_of(redeem(client, ssp_body(qr, ticket)), 410, "expired")
    error_of(redeem(client, ssp_body(qr, altered(ticket))), 401, "invalid_credentials")
    assert_figures_exact(db)


# --- 413 payload_too_large ------------------------------------------------------------------

def _padded_body(qr, size: int) -> bytes:
    text = json.dumps({**auto_body(qr), "padding": ""})
    return text.replace('"padding": ""', '"padding": "' + "x" * (size - len(text)) + '"').encode()


def test_body_of_exactly_16_kib_is_accepted_and_one_byte_more_is_413(client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    at_limit, over = _padded_body(qr, 16 * 1024), _padded_body(qr, 16 * 1024 + 1)
    assert (len(at_limit), len(over)) == (16384, 16385)

    error_of(client.post(ENROLLMENTS, data=over, content_type="application/json"),
             413, "payload_too_large")
    assert client.post(ENROLLMENTS, data=at_limit,
                       content_type="application/json").status_code == 201


def _chunked(client, data: bytes):
    # A server that de-chunks (gunicorn) sets wsgi.input_terminated; Werkzeug then ignores
    # Content-Length, so the application sees a body of unknown length.
    response = client.post(ENROLLMENTS, input_stream=io.BytesIO(data),
                           content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.request.content_length is None
    return response


def test_chunked_body_without_content_length_over_16_kib_is_413(client, make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    error_of(_chunked(client, _padded_body(qr, 16 * 1024 + 1)), 413, "payload_too_large")
    error_of(_chunked(client, _padded_body(qr, 64 * 1024)), 413, "payload_too_large")
    assert _chunked(client, _padded_body(qr, 16 * 1024)).status_code == 201


# --- 415 unsupported_media_type -------------------------------------------------------------

@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/xml",
                                          None])
def test_body_that_is_not_application_json_is_415(client, make_qr_code, content_type):
    qr = make_qr_code("auto")
    kwargs = {"content_type": content_type} if content_type else {}
    response = client.post(ENROLLMENTS, data=json.dumps(auto_body(qr)), **kwargs)
    assert response.request.headers.get("Content-Type") == content_type
    error_of(response, 415, "unsupported_media_type")


def test_form_fields_are_415_not_400(client, make_qr_code):
    qr = make_qr_code("auto")
    response = client.post(ENROLLMENTS, data={"qr_id": qr.public_id, "otp": otp_of(qr)})
    error_of(response, 415, "unsupported_media_type")


@pytest.mark.parametrize("name", ["Pixel 8\u00a0Pro", "Galaxy ✨", "Xperia \U000e0100",
                                  "Ōppō Find X7"])
def test_a_printable_model_name_is_accepted_as_the_document_says(db, client, make_qr_code, name):
    """What the OpenAPI document's pattern allows (a no-break space, an emoji, a variation
    selector, accents), the server accepts."""
    qr = make_qr_code("auto")

    assert redeem(client, auto_body(qr, model=name)).status_code == 201


def test_an_android_api_level_written_30_0_is_the_integer_30(db, client, make_qr_code):
    """JSON Schema's integer (the OpenAPI document's) holds 30.0: a device that sends it is
    accepted as 30, and stored as the integer 30."""
    qr = make_qr_code("auto")

    response = redeem(client, auto_body(qr, android_api_level=30.0))

    assert response.status_code == 201, response.get_data(as_text=True)
    stored = db.session.scalar(sa.select(Device).where(Device.public_id ==
                                                       response.get_json()["device_id"]))
    assert stored.android_api_level == 30 and type(stored.android_api_level) is int


# --- 422 ------------------------------------------------------------------------------------

def test_android_api_level_23_is_refused_and_24_accepted(db, client, make_qr_code):
    qr = make_qr_code("auto")
    message = error_of(redeem(client, auto_body(qr, android_api_level=23)),
                       422, "unsupported_android_version")
    assert "24" in message
    assert pending_states(db, qr) == ["pending"]
    assert redeem(client, auto_body(qr, android_api_level=24)).status_code == 201


@pytest.mark.parametrize("listed, sent", [
    ("R58N123ABC", {"serial_number": "r58n123abc"}),     # serial in another case
    ("R58N123ABC", {"serial_number": "R58N123ABC"}),
    (IMEI, {"serial_number": "NOT-LISTED", "imei": IMEI}),
])
def test_device_on_the_zero_touch_list_is_422(db, client, make_qr_code, make_user, issue,
                                              listed, sent):
    import_identifiers([listed], actor_type="operator", actor="test")
    auto, ssp = make_qr_code("auto"), make_qr_code("ssp")

    error_of(redeem(client, auto_body(auto, **sent)), 422, "zero_touch_conflict")
    error_of(redeem(client, ssp_body(ssp, issue(ssp, make_user()), **sent)),
             422, "zero_touch_conflict")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0
    assert_figures_exact(db)


# --- 429 rate_limited -----------------------------------------------------------------------

THREE_PER_MINUTE = {"API_FAILED_ATTEMPTS_LIMIT": "3 per minute"}


def _wrong(qr) -> dict:
    return {**auto_body(qr, serial_number="GUESSER"), "otp": "wrong-otp"}


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_wrong_otps_past_the_limit_get_429_and_the_right_otp_still_enrolls(db, client,
                                                                          make_qr_code):
    qr = make_qr_code("auto", usage_count=2)
    for _ in range(3):
        error_of(redeem(client, _wrong(qr)), 401, "invalid_credentials")

    limited = redeem(client, _wrong(qr))

    error_of(limited, 429, "rate_limited")
    assert 0 < int(limited.headers["Retry-After"]) <= 60
    # One broken device behind the school's NAT must not stop the tablet beside it: a right
    # OTP is checked and enrolls, however many wrong ones came from the same address.
    enrolled = redeem(client, auto_body(qr, serial_number="TABLET-NEXT-TO-IT"))
    assert enrolled.status_code == 201 and enrolled.get_json()["state"] == "provisioning"
    error_of(redeem(client, _wrong(qr)), 429, "rate_limited")
    # Also a right OTP that is refused for another reason after being checked gets its answer.
    assert redeem(client, auto_body(qr, serial_number="TABLET-TWO")).status_code == 201
    error_of(redeem(client, auto_body(qr, serial_number="TABLET-THREE")), 409, "usage_exhausted")


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_a_short_otp_from_before_96_bits_is_refused_unchecked_past_the_limit(db, client,
                                                                            make_qr_code):
    qr = make_qr_code("auto")
    # A QR code made when the OTP policy's six digits went into QR codes too.
    db.session.execute(sa.update(QrCode).where(QrCode.id == qr.id)
                       .values(otp_hash=keyed_hash("314159")))
    db.session.commit()
    legacy = {**auto_body(qr, serial_number="OLD-TABLET"), "otp": "314159"}
    for guess in ("000001", "000002", "000003"):
        error_of(redeem(client, {**legacy, "otp": guess}), 401, "invalid_credentials")

    error_of(redeem(client, legacy), 429, "rate_limited")  # guessable: not checked any more
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Device)) == 0


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_wrong_tickets_past_the_limit_get_429_and_a_right_ticket_still_enrolls(
        db, client, make_qr_code, make_user, issue):
    qr, user = make_qr_code("ssp"), make_user()
    for _ in range(4):
        redeem(client, ssp_body(qr, "not-a-ticket-" + "x" * 30, serial_number="GUESSER"))
    error_of(redeem(client, ssp_body(qr, "not-a-ticket-" + "y" * 30, serial_number="GUESSER")),
             429, "rate_limited")

    assert redeem(client, ssp_body(qr, issue(qr, user), serial_number="PUPIL-1")).status_code \
        == 201


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_successful_redemptions_are_not_counted_as_failed_attempts(client, make_qr_code):
    qr = make_qr_code("auto", usage_count=10)
    for n in range(10):
        assert redeem(client, auto_body(qr, serial_number=f"TABLET{n}")).status_code == 201
        assert redeem(client, auto_body(qr, serial_number=f"TABLET{n}")).status_code == 200

    for _ in range(3):
        error_of(redeem(client, _wrong(qr)), 401, "invalid_credentials")
    error_of(redeem(client, _wrong(qr)), 429, "rate_limited")


@pytest.mark.parametrize("config_overrides", [THREE_PER_MINUTE], indirect=True)
def test_refusals_after_the_right_credential_are_not_counted(db, client, make_qr_code):
    qr = make_qr_code("auto", usage_count=1)
    assert redeem(client, auto_body(qr, serial_number="FIRST")).status_code == 201
    for n in range(5):
        error_of(redeem(client, auto_body(qr, serial_number=f"OTHER{n}")), 409, "usage_exhausted")
        error_of(redeem(client, auto_body(qr, serial_number="x y")), 400, "invalid_request")
    error_of(redeem(client, _wrong(qr)), 401, "invalid_credentials")


def _from(address: str) -> dict:
    return {"headers": {"X-Forwarded-For": address}}


@pytest.mark.parametrize("config_overrides", [{**THREE_PER_MINUTE, "TRUSTED_PROXIES": 1}],
                         indirect=True)
def test_forwarded_addresses_have_their_own_budgets_behind_a_trusted_proxy(db, client,
                                                                           make_qr_code):
    qr = make_qr_code("auto")
    for _ in range(3):
        error_of(redeem(client, _wrong(qr), **_from("198.51.100.7")), 401, "invalid_credentials")
    error_of(redeem(client, _wrong(qr), **_from("198.51.100.7")), 429, "rate_limited")

    error_of(redeem(client, _wrong(qr), **_from("198.51.100.8")), 401, "invalid_credentials")
    # Only the right-most entry is the trusted proxy's: a spoofed left part changes nothing.
    error_of(redeem(client, _wrong(qr), **_from("203.0.113.9, 198.51.100.7")),
             429, "rate_limited")
    addresses = db.session.scalars(sa.select(AuditEvent.client_address)
                                   .where(AuditEvent.action == "enrollment.redeem"))
    assert set(addresses) == {"198.51.100.7", "198.51.100.8"}


@pytest.mark.parametrize("config_overrides", [{**THREE_PER_MINUTE, "TRUSTED_PROXIES": 0}],
                         indirect=True)
def test_forwarded_for_is_ignored_without_trusted_proxies(db, client, make_qr_code):
    qr = make_qr_code("auto")
    for n in range(3):
        error_of(redeem(client, _wrong(qr), **_from(f"198.51.100.{n}")),
                 401, "invalid_credentials")
    error_of(redeem(client, _wrong(qr), **_from("198.51.100.99")), 429, "rate_limited")
    addresses = db.session.scalars(sa.select(AuditEvent.client_address)
                                   .where(AuditEvent.action == "enrollment.redeem"))
    assert set(addresses) == {"127.0.0.1"}


# --- audit ----------------------------------------------------------------------------------

def _redeem_events(db):
    return db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "enrollment.redeem")
                              .order_by(AuditEvent.id)).all()


def test_every_redeem_attempt_is_audited_with_serial_address_and_code(db, client, make_qr_code,
                                                                      make_user, issue):
    import_identifiers(["ZT-LISTED"], actor_type="operator", actor="test")
    auto = make_qr_code("auto", usage_count=1)
    expired, revoked = make_qr_code("auto"), make_qr_code("auto")
    expire_otp(db, expired)
    revoke_qr_code(revoked, revoked_by=None)
    ssp_empty = make_qr_code("ssp")
    user = make_user()
    empty_ticket = issue(ssp_empty, user)
    set_total(figures().used + figures().reserved)
    address = {"environ_base": {"REMOTE_ADDR": "192.0.2.44"}}

    attempts = [
        (auto_body(auto, serial_number="SN-CREATED"), 201, "created"),
        (auto_body(auto, serial_number="SN-CREATED"), 200, "retried"),
        ({**auto_body(auto, serial_number="SN-WRONG"), "otp": "wrong"}, 401,
         "invalid_credentials"),
        (auto_body(revoked, serial_number="SN-REVOKED"), 403, "qr_revoked"),
        (auto_body(auto, serial_number="SN-EXHAUSTED"), 409, "usage_exhausted"),
        (ssp_body(ssp_empty, empty_ticket, serial_number="SN-NOLICENSE"), 409, "no_license"),
        (auto_body(expired, serial_number="SN-EXPIRED"), 410, "expired"),
        (auto_body(auto, serial_number="SN-OLD", android_api_level=23), 422,
         "unsupported_android_version"),
        (auto_body(auto, serial_number="ZT-LISTED"), 422, "zero_touch_conflict"),
    ]
    for body, status, _ in attempts:
        assert redeem(client, body, **address).status_code == status

    events = _redeem_events(db)
    assert [(e.serial_number, e.client_address, e.code, e.outcome, e.actor_type)
            for e in events] == [
        (body["device"]["serial_number"], "192.0.2.44", code,
         "success" if status < 300 else "refused", "device")
        for body, status, code in attempts]
    assert [e.target for e in events] == [body["qr_id"] for body, _, _ in attempts]
