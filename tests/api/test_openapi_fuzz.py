"""GET /api/v1/openapi.json is valid OpenAPI 3.1, and the API answers as it documents, also to
a fuzzer (schemathesis over WSGI, a bounded and derandomized run)."""
import copy
import io
import sys
import unicodedata

import jsonschema_rs
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS as CHECK_REGISTRY
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.engine import events, from_schema
from schemathesis.specs.openapi import checks as openapi_checks
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

from portal.api import schemas
from portal.enrollment.pending import revoke_qr_code
from portal.enrollment.zero_touch import import_identifiers, luhn_valid
from portal.licensing.seats import figures, set_total
from tests.api.conftest import (ENROLLMENTS, IMEI, altered, auto_body, bearer, otp_of, redeem,
                                ssp_body)
from tests.api.test_redeem_contract import expire_otp

SPEC = "/api/v1/openapi.json"
CONFORMANCE = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
               openapi_checks.response_schema_conformance,
               openapi_checks.response_headers_conformance]
CHECKS = CHECK_REGISTRY.get_all()  # every check: what `schemathesis run --checks all` runs
FUZZ_EXAMPLES = 700


def _with_check_digit(digits: str) -> str:
    """14 digits and their Luhn check digit: an IMEI."""
    doubled = (int(d) * 2 if i % 2 == 0 else int(d) for i, d in enumerate(reversed(digits)))
    total = sum(value - 9 if value > 9 else value for value in doubled)
    return digits + str(-total % 10)


# The document's own string format (no pattern can say "a valid Luhn check digit"): the
# fuzzer learns it as a Companion developer would, from the format's description.
schemathesis.openapi.format("imei", st.from_regex(r"\A[0-9]{14}\Z").map(_with_check_digit))


def test_openapi_document_is_valid_openapi_3_1(client):
    response = client.get(SPEC)

    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"] == [{"url": "https://portal.test/api/v1"}]
    assert list(OPENAPI_31_VALIDATOR.iter_errors(doc)) == []
    broken = {**doc, "paths": {"/enrollments": {"post": {"responses": {"201": {}}}}}}
    assert list(OPENAPI_31_VALIDATOR.iter_errors(broken))  # the validator does reject
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                     **schema})


def test_openapi_document_describes_every_contract_operation_and_error_code(client):
    doc = client.get(SPEC).get_json()
    operations = {(path, method): op for path, item in doc["paths"].items()
                  for method, op in item.items()}
    assert set(operations) == {("/enrollments", "post"),
                               ("/devices/{device_id}/provisioning-complete", "post"),
                               ("/devices/{device_id}", "get")}
    redeem_codes = {status for status in operations["/enrollments", "post"]["responses"]}
    assert redeem_codes == {"200", "201", "400", "401", "403", "409", "410", "413", "415",
                            "422", "429"}
    complete_codes = set(operations["/devices/{device_id}/provisioning-complete", "post"]
                         ["responses"])
    assert {"200", "400", "401", "409", "413", "415"} <= complete_codes
    assert doc["components"]["securitySchemes"]["deviceToken"] == {"type": "http",
                                                                   "scheme": "bearer"}


# The answers the contract gives to a request the document calls valid: besides 2xx, the
# refusals that depend on what the server holds (companion-api.md §2): unknown or wrong
# credential, revoked, used up or no license, expired, Android too old or Zero-Touch, throttled.
CONFIG = {"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "401", "403", "404", "409", "410", "422", "429"]}}}


@pytest.mark.parametrize("component, instance", [
    ("EnrollmentRequest", {"qr_id": "qr\x00", "otp": "x", "device": {}}),
    ("EnrollmentRequest", {"qr_id": "qr", "ticket": "t\x00", "device": {}}),
    ("CompletionRequest", {"result": "failure", "reason": "no\x00"}),
])
def test_the_document_refuses_a_nul_as_the_server_does(client, component, instance):
    """A NUL is refused by the server in every string it stores (400); the document says so."""
    doc = client.get(SPEC).get_json()
    schema = {**doc["components"]["schemas"][component], "components": doc["components"]}
    errors = jsonschema_rs.validator_for(schema).iter_errors(instance)
    assert any(error.kind.__class__.__name__.endswith("Pattern") for error in errors)


def test_the_imei_format_makes_imeis():
    assert _with_check_digit(IMEI[:14]) == IMEI and luhn_valid(_with_check_digit("49015420323751"))


def test_printable_is_unicodes_control_format_and_separator_categories():
    """The server's and the document's one rule (portal.api.schemas) lists exactly the
    characters of categories Cc, Cf, Zl and Zp that this Python's Unicode database knows."""
    listed = {code for low, high in schemas._NOT_PRINTABLE for code in range(low, high + 1)}
    by_category = {code for code in range(sys.maxunicode + 1)
                   if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp")}
    assert listed == by_category
    assert schemas.PRINTABLE.fullmatch("SM-G991B ✨") and not schemas.PRINTABLE.fullmatch("a\u202eb")


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi(SPEC, app, config=SchemathesisConfig.from_dict(CONFIG))


# --- every answer of the contract conforms to the document ---------------------------------

@pytest.mark.parametrize("config_overrides", [{"API_FAILED_ATTEMPTS_LIMIT": "2 per minute"}],
                         indirect=True)
def test_every_contract_answer_conforms_to_the_document(db, client, api_schema, make_qr_code,
                                                        make_user, issue):
    import_identifiers(["ZT-LISTED"], actor_type="operator", actor="test")
    auto, revoked, expired = (make_qr_code("auto") for _ in range(3))
    revoke_qr_code(revoked, revoked_by=None)
    expire_otp(db, expired)
    no_license = make_qr_code("ssp")
    user = make_user()
    ticket = issue(no_license, user)
    redeem_op = api_schema["/enrollments"]["POST"]
    answers = []

    def send(body, **kwargs):
        response = client.post(ENROLLMENTS, **kwargs) if kwargs else redeem(client, body)
        answers.append((redeem_op.Case(body=body, media_type="application/json"), response))
        return response

    send(auto_body(auto))                                               # 201
    created = send(auto_body(auto)).get_json()                          # 200, a fresh token
    send({"qr_id": auto.public_id})                                     # 400
    send(auto_body(revoked))                                            # 403
    send(auto_body(auto, serial_number="SECOND"))                       # 409 usage_exhausted
    set_total(figures().used + figures().reserved)
    send(ssp_body(no_license, ticket))                                  # 409 no_license
    send(auto_body(expired))                                            # 410
    send(None, data=b"{" + b" " * 17000 + b"}", content_type="application/json")  # 413
    send(None, data=b"qr_id=x", content_type="application/x-www-form-urlencoded")  # 415
    send(auto_body(auto, serial_number="OLD", android_api_level=23))    # 422
    send(auto_body(auto, serial_number="ZT-LISTED"))                    # 422
    send({**auto_body(auto), "otp": altered(otp_of(auto))})             # 401
    send({**auto_body(auto), "otp": altered(otp_of(auto))})             # 401
    send({**auto_body(auto), "otp": altered(otp_of(auto))})             # 429

    device = {"device_id": created["device_id"]}
    get_op = api_schema["/devices/{device_id}"]["GET"]
    complete_op = api_schema["/devices/{device_id}/provisioning-complete"]["POST"]
    path = f"/api/v1/devices/{created['device_id']}"
    token = bearer(created["device_token"])
    for response in (client.get(path, headers=token), client.get(path),
                     client.get("/api/v1/devices/a%2Fb", headers=token)):
        answers.append((get_op.Case(path_parameters=device), response))
    for body in ({"result": "failure"}, {"result": "success"}, {"result": "maybe"}):
        answers.append((complete_op.Case(path_parameters=device, body=body),
                        client.post(f"{path}/provisioning-complete", json=body, headers=token)))
    answers.append((complete_op.Case(path_parameters=device, body={"result": "failure"}),
                    client.post(f"{path}/provisioning-complete",
                                input_stream=io.BytesIO(b'{"result": "failure"}'),
                                content_type="text/plain", headers=token)))

    assert [response.status_code for _, response in answers] == [
        201, 200, 400, 403, 409, 409, 410, 413, 415, 422, 422, 401, 401, 429,
        200, 401, 404, 200, 409, 400, 415]
    for case, response in answers:
        case.validate_response(response, checks=CONFORMANCE)


def test_an_answer_off_the_document_fails_the_conformance_checks(client, api_schema):
    """The checks above can fail: an undocumented status or a body off the schema is caught."""
    case = api_schema["/devices/{device_id}"]["GET"].Case(path_parameters={"device_id": "abc"})
    teapot = client.get("/api/v1/devices/abc")
    teapot.status_code = 418
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        case.validate_response(teapot, checks=CONFORMANCE)
    off_schema = client.get("/api/v1/devices/abc")
    off_schema.set_data(b'{"error": "invalid_token"}')
    with pytest.raises(FailureGroup, match="Response violates schema"):
        case.validate_response(off_schema, checks=CONFORMANCE)


# --- the fuzzer -----------------------------------------------------------------------------

@pytest.fixture
def seeded(db, client, make_qr_code, make_user, issue):
    """Real credentials the fuzzer may use, so that its requests also reach the deep paths:
    a fresh, a revoked, an expired and an exhausted automatic QR, a Self Service QR with
    tickets, and two devices with known tokens."""
    import_identifiers(["ZT-LISTED"], actor_type="operator", actor="fuzz")
    auto, ssp = make_qr_code("auto", usage_count=5), make_qr_code("ssp", licenses=50)
    revoked, expired, exhausted = (make_qr_code("auto") for _ in range(3))
    revoke_qr_code(revoked, revoked_by=None)
    expire_otp(db, expired)
    device = redeem(client, auto_body(auto, serial_number="SEEDED")).get_json()
    other = redeem(client, auto_body(auto, serial_number="OTHER")).get_json()
    assert redeem(client, auto_body(exhausted, serial_number="SEEDED")).status_code == 201
    return {"auto": [(qr.public_id, otp_of(qr)) for qr in (auto, revoked, expired, exhausted)],
            "ssp": (ssp.public_id, [issue(ssp, make_user()) for _ in range(3)]),
            "device": (device["device_id"], device["device_token"]),
            "other_token": other["device_token"]}


def _seed_enrollment(body, seeded, draw):
    """Real credentials (auto or ssp) in place of the generated ones, some of the time, and
    device fields that pass validation or hit one of the device checks."""
    if not isinstance(body, dict) or draw(st.booleans()):
        return body
    body = copy.deepcopy(body)
    body.pop("otp", None), body.pop("ticket", None)
    if draw(st.booleans()):
        body["qr_id"], body["otp"] = draw(st.sampled_from(seeded["auto"]))
    else:
        body["qr_id"], tickets = seeded["ssp"]
        body["ticket"] = draw(st.sampled_from(tickets))
    device = body.get("device")
    if isinstance(device, dict):
        tweak = draw(st.sampled_from(["none", "valid-imei", "no-imei", "seeded-serial",
                                      "listed-serial", "android-6"]))
        if tweak != "none":
            device.pop("imei", None)
        if tweak == "valid-imei":
            device["imei"] = IMEI
        elif tweak == "seeded-serial":
            device["serial_number"] = "SEEDED"
        elif tweak == "listed-serial":
            device["serial_number"] = "ZT-LISTED"
        elif tweak == "android-6":
            device["android_api_level"] = 23
    return body


def _seed_device(case, seeded, draw) -> dict | None:
    """The seeded device's id and/or its token, another device's token, or what was generated.
    A real token is returned as the request's explicit headers, so that the ignored_auth check
    knows it for a real one and sends the request again without it and with a wrong one."""
    choice = draw(st.sampled_from(["generated", "mine", "id-only", "token-only", "other-token"]))
    device_id, token = seeded["device"]
    if choice in ("mine", "id-only", "other-token"):
        case.path_parameters = {**(case.path_parameters or {}), "device_id": device_id}
    if choice in ("mine", "token-only", "other-token"):
        mine = choice != "other-token"
        return {"Authorization": f"Bearer {token if mine else seeded['other_token']}"}
    return None


def _follow_a_retry(response, seeded) -> None:
    """A retried redemption of the seeded device (its serial on its QR code: 200) hands out a
    fresh token and the old one stops working, as the contract says: keep using the new one,
    as the Companion would, so the device paths go on reaching 200 whatever the fuzzer drew."""
    if response.status_code != 200 or not response.request.url.endswith("/enrollments"):
        return
    body = response.json()
    if isinstance(body, dict) and body.get("device_id") == seeded["device"][0]:
        seeded["device"] = (body["device_id"], body["device_token"])


@pytest.mark.parametrize("config_overrides", [{"API_FAILED_ATTEMPTS_LIMIT": "10000 per minute"}],
                         indirect=True)
def test_fuzzed_requests_get_no_5xx_and_only_documented_answers(api_schema, seeded):
    redeem_op = api_schema["/enrollments"]["POST"]
    strategies = [operation.as_strategy(generation_mode=mode)
                  for operation in (redeem_op, redeem_op,  # twice: it has the most to explore
                                    api_schema["/devices/{device_id}"]["GET"],
                                    api_schema["/devices/{device_id}/provisioning-complete"]
                                    ["POST"])
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    reached = {}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=st.one_of(strategies), data=st.data())
    def fuzz(case, data):
        # Only valid requests get real credentials: the API checks the shape first, so an
        # invalid one is refused before credentials anyway (and stays the negative case
        # that negative_data_rejection judges).
        headers, valid = None, case.meta.generation.mode.is_positive
        if valid and case.operation.path == "/enrollments":
            case.body = _seed_enrollment(case.body, seeded, data.draw)
        elif valid:
            headers = _seed_device(case, seeded, data.draw)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        _follow_a_retry(response, seeded)
        key = (case.operation.path, response.status_code)
        reached[key] = reached.get(key, 0) + 1

    fuzz()
    print("\nschemathesis answers by (path, status):", dict(sorted(reached.items())))
    # The seeding works: besides refusals, fuzzed requests enrolled and reported devices.
    assert {("/enrollments", status) for status in (201, 400, 401)} <= set(reached)
    assert {("/devices/{device_id}", 200), ("/devices/{device_id}", 401),
            ("/devices/{device_id}/provisioning-complete", 200),
            ("/devices/{device_id}/provisioning-complete", 401)} <= set(reached)


# --- schemathesis's own run: every phase, every check -----------------------------------------

def test_a_schemathesis_run_with_every_check_finds_nothing(app, db):
    """What `schemathesis run --checks all` does (the CLI's engine, over WSGI): the coverage
    phase (boundaries, an undeclared method and a missing Authorization header per operation),
    fuzzing and the stateful phase, every answer judged by every check."""
    # A fixed seed and no example database: each run sends the same requests.
    config = SchemathesisConfig.from_dict({**CONFIG, "seed": 14, "generation": {
        "max-examples": 30, "database": "none"}})
    config.projects.default.checks.update(included_check_names=["all"])
    schema = schemathesis.openapi.from_wsgi(SPEC, app, config=config)
    failures, checked, phases = set(), set(), {}

    for event in from_schema(schema).execute():
        if isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.add(("error", repr(event)))
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.ScenarioFinished):
            for check in (c for checks in event.recorder.checks.values() for c in checks):
                checked.add(check.name)
                if check.failure_info is not None:
                    failures.add((check.name, str(check.failure_info.failure)[:300],
                              str(check.failure_info.code_sample)[:700]))

    assert sorted(failures) == []
    assert checked >= {check.__name__ for check in CHECKS}
    assert {phases[name] for name in ("coverage", "fuzzing", "stateful")} == {"success"}
