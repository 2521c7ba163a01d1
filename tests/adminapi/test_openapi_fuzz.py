"""GET /api/admin/v1/openapi.json is valid OpenAPI 3.1, it names every route of the blueprint,
every real answer conforms to it, and a schemathesis run with every check (what
`schemathesis run --checks all` does, over WSGI, seeded) finds nothing: no 5xx, no answer off
the document, no ignored token, no accepted invalid request."""
import jsonschema_rs
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.engine import events, from_schema
from schemathesis.specs.openapi import checks as openapi_checks
from schemathesis.specs.openapi.definitions import OPENAPI_31_VALIDATOR

import pytest

from portal.licensing.seats import set_total
from portal.settings.network_profiles import ProfileValues, save
from portal.database import db
from tests.adminapi.conftest import BASE, bearer, token_factory, wifi_body
from tests.conftest import qr_code_factory, user_factory
from tests.security.conftest import _enrolled_device
from tests.support.live import live_app, serving

SPEC = f"{BASE}/openapi.json"
CONFORMANCE = [openapi_checks.status_code_conformance, openapi_checks.content_type_conformance,
               openapi_checks.response_schema_conformance,
               openapi_checks.response_headers_conformance]
# Answers to a request the document calls valid that depend on what the server holds: an
# unknown id, a field the domain refuses (an unknown user, too few licenses), a cursor not
# from this list, revoked or retired already.
CONFIG = {"checks": {"positive_data_acceptance": {
    "expected-statuses": ["2xx", "401", "403", "404", "409", "410", "422", "429"]}}}


def test_the_document_is_valid_openapi_3_1_and_covers_every_route(app, client):
    doc = client.get(SPEC).get_json()
    assert list(OPENAPI_31_VALIDATOR.iter_errors(doc)) == []
    for schema in doc["components"]["schemas"].values():
        jsonschema_rs.meta.validate({"$schema": "https://json-schema.org/draft/2020-12/schema",
                                     **schema})
    documented = {(BASE + path.replace("{", "<").replace("}", ">"), method.upper())
                  for path, operations in doc["paths"].items() for method in operations}
    routed = {(rule.rule, method) for rule in app.url_map.iter_rules()
              if rule.endpoint.startswith("adminapi.") and rule.endpoint != "adminapi.openapi"
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert documented == routed
    assert doc["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            assert {"401", "429"} <= set(operation["responses"]), path


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi(SPEC, app, config=SchemathesisConfig.from_dict(CONFIG))


@pytest.fixture
def world(db, make_qr_code, make_user, make_token):
    """A Companion, licenses, a local user, a profile, a QR code with a device, and tokens."""
    qr = make_qr_code("auto", usage_count=2)
    set_total(200)
    make_user(username="pupil1")
    save(ProfileValues(name="Office", network="mobile"), actor="setup")
    return {"qr": qr, "device": _enrolled_device(qr),
            "provision": make_token("provision"), "read": make_token("read")}


def test_every_kind_of_answer_conforms_to_the_document(client, api_schema, world):
    provision, read = bearer(world["provision"]), bearer(world["read"])
    qr_id, device_id = world["qr"].public_id, world["device"]
    answers = []

    def call(method, path, operation_path, headers, body=None, **path_parameters):
        kwargs = {"json": body} if body is not None else {}
        response = client.open(BASE + path, method=method, headers=headers, **kwargs)
        operation = api_schema[operation_path][method]
        extra = {"body": body, "media_type": "application/json"} if body is not None else {}
        case = operation.Case(path_parameters=path_parameters or None, **extra)
        answers.append((case, response))
        return response

    created = call("POST", "/qr-codes", "/qr-codes", provision, wifi_body()).get_json()
    call("POST", "/qr-codes", "/qr-codes", provision, wifi_body(user="nobody"))     # 422
    call("POST", "/qr-codes", "/qr-codes", read, wifi_body())                       # 403
    call("POST", "/qr-codes", "/qr-codes", {}, wifi_body())                         # 401
    body = wifi_body(network_profile="Office")
    del body["network"]
    call("POST", "/qr-codes", "/qr-codes", provision, body)                         # 201
    call("GET", "/qr-codes?limit=1", "/qr-codes", read)
    call("GET", "/qr-codes?limit=0", "/qr-codes", read)                             # 422
    for path in ("", "/qr.png", "/qr.svg", "/payload", "/pending"):
        call("GET", f"/qr-codes/{qr_id}{path}", "/qr-codes/{public_id}" + path, provision,
             public_id=qr_id)
        call("GET", f"/qr-codes/nope{path}", "/qr-codes/{public_id}" + path, provision,
             public_id="nope")                                                      # 404
    call("POST", f"/qr-codes/{created['id']}/revoke", "/qr-codes/{public_id}/revoke",
         provision, public_id=created["id"])
    call("POST", f"/qr-codes/{created['id']}/revoke", "/qr-codes/{public_id}/revoke",
         provision, public_id=created["id"])                                        # 409
    call("GET", f"/qr-codes/{created['id']}/qr.png", "/qr-codes/{public_id}/qr.png",
         provision, public_id=created["id"])                                        # 410
    call("GET", "/devices?q=R58", "/devices", read)
    call("GET", f"/devices/{device_id}", "/devices/{device_id}", read, device_id=device_id)
    call("POST", f"/devices/{device_id}/retire", "/devices/{device_id}/retire", provision,
         device_id=device_id)
    call("POST", f"/devices/{device_id}/retire", "/devices/{device_id}/retire", provision,
         device_id=device_id)                                                       # 409
    call("GET", "/licenses", "/licenses", read)
    assert [response.status_code for _, response in answers] == [
        201, 422, 403, 401, 201, 200, 422, 200, 404, 200, 404, 200, 404, 200, 404, 200, 404,
        200, 409, 410, 200, 200, 200, 409, 200]
    for case, response in answers:
        case.validate_response(response, checks=CONFORMANCE)


def test_an_answer_off_the_document_fails_the_checks(client, api_schema, world):
    case = api_schema["/licenses"]["GET"].Case()
    response = client.get(f"{BASE}/licenses", headers=bearer(world["read"]))
    response.set_data(b'{"total": "many"}')
    with pytest.raises(FailureGroup, match="Response violates schema"):
        case.validate_response(response, checks=CONFORMANCE)


def test_a_schemathesis_run_with_every_check_finds_nothing(tmp_path):
    """The coverage phase (boundaries, undeclared methods, a missing or wrong token), fuzzing
    and the stateful phase, every answer judged by every check, with a provision token, over
    HTTP against a served portal (as `schemathesis run URL --checks all` would)."""
    app = live_app(tmp_path, "adminapi_fuzz")
    with app.app_context():
        qr = qr_code_factory(user_factory())("auto", usage_count=2)
        set_total(200)
        user_factory()(username="pupil1")
        _enrolled_device(qr)
        token = token_factory()("provision")
        db.session.remove()
    config = SchemathesisConfig.from_dict({
        **CONFIG, "seed": 16, "headers": {"Authorization": f"Bearer {token}"},
        "generation": {"max-examples": 25, "database": "none"}})
    config.projects.default.checks.update(included_check_names=["all"])
    with serving(app) as url:
        schema = schemathesis.openapi.from_url(url + SPEC, config=config)
        return _run_finds_nothing(schema)


def _run_finds_nothing(schema):
    failures, checked, phases, statuses = set(), set(), {}, set()

    for event in from_schema(schema).execute():
        if isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.add(("error", str(getattr(event, "info", event))[:1500]))
        elif isinstance(event, events.PhaseFinished):
            phases[event.phase.name.value] = event.status.value
        elif isinstance(event, events.ScenarioFinished):
            for interaction in event.recorder.interactions.values():
                if interaction.response is not None:
                    statuses.add(interaction.response.status_code)
            for check in (c for checks in event.recorder.checks.values() for c in checks):
                checked.add(check.name)
                if check.failure_info is not None:
                    failures.add((check.name, str(check.failure_info.failure)[:300],
                                  str(check.failure_info.code_sample)[:700]))

    print("\nschemathesis: statuses", sorted(statuses), "phases", phases, "checks",
          len(checked))
    assert sorted(failures) == []
    assert {"not_a_server_error", "ignored_auth", "negative_data_rejection",
            "response_schema_conformance", "unsupported_method"} <= checked
    assert {phases[name] for name in ("coverage", "fuzzing")} == {"success"}
    assert {200, 401, 404, 405, 422} <= statuses
    assert not {status for status in statuses if status >= 500}
