"""The stand-in speaks Google's protocol: driven here by the real google-api-python-client and
google-auth, built exactly as the portal builds them (see tests/support/amapi_standin.py)."""
import base64
import datetime
import json
import re
from urllib.parse import parse_qs, urlparse

import google_auth_httplib2
import httplib2
import pytest
from google.auth.exceptions import RefreshError
from google.auth.transport.requests import Request as AuthRequest
from google.oauth2 import id_token, service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from tests.support.amapi_standin import (DPC_EXTRAS, ENROLL_INVALID_URL, ENROLL_URL,
                                         MAX_TIMESTAMP, PUSH_CERTS_PATH, SCOPE, TOKEN_EXTRA,
                                         check_body)

PARENT = "enterprises/LC0abc"


def service(amapi, key=None, timeout=5, scopes=(SCOPE,)):
    creds = service_account.Credentials.from_service_account_info(
        key or amapi.service_account_key(), scopes=list(scopes))
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=timeout))
    return build("androidmanagement", "v1", http=http, static_discovery=True,
                 cache_discovery=False, client_options={"api_endpoint": amapi.url + "/"})


def tokens(svc):
    return svc.enterprises().enrollmentTokens()


def create_token(svc, **body):
    body = {"policyName": "fully-managed", **body}
    return tokens(svc).create(parent=PARENT, body=body).execute()


def error_of(call) -> HttpError:
    with pytest.raises(HttpError) as caught:
        call.execute()
    return caught.value


def google_error(error: HttpError) -> dict:
    return json.loads(error.content)["error"]


# ---------------------------------------------------------------- OAuth and authentication

def test_the_key_is_the_json_google_issues(amapi):
    key = amapi.service_account_key("robot@acme.iam.gserviceaccount.com")
    assert key["type"] == "service_account" and key["project_id"] == "acme"
    assert key["client_email"] == "robot@acme.iam.gserviceaccount.com"
    assert key["token_uri"] == amapi.url + "/token"
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert re.fullmatch(r"[0-9a-f]{40}", key["private_key_id"])


def test_a_token_is_obtained_once_and_sent_as_bearer(amapi):
    svc = service(amapi)
    svc.enterprises().get(name=PARENT).execute()
    svc.enterprises().policies().list(parent=PARENT).execute()
    assert len(amapi.calls("POST", "^/token$")) == 1
    api_calls = amapi.calls(path_regex="^/v1/")
    assert [c.status for c in api_calls] == [200, 200] and all(c.authorized for c in api_calls)
    assert len(amapi.access_tokens) >= 1


def test_a_key_the_standin_never_issued_is_refused_at_the_token_endpoint(amapi):
    svc = service(amapi, key=amapi.foreign_key())
    with pytest.raises(RefreshError, match="Invalid JWT Signature"):
        svc.enterprises().get(name=PARENT).execute()
    assert amapi.calls(path_regex="^/v1/") == []


def test_a_key_whose_email_was_edited_is_refused(amapi):
    key = {**amapi.service_account_key(), "client_email": "intruder@proj.iam.gserviceaccount.com"}
    with pytest.raises(RefreshError, match="invalid_grant"):
        service(amapi, key=key).enterprises().get(name=PARENT).execute()


def test_a_token_without_the_androidmanagement_scope_is_refused(amapi):
    svc = service(amapi, scopes=["https://www.googleapis.com/auth/cloud-platform"])
    with pytest.raises(RefreshError, match="invalid_scope"):
        svc.enterprises().get(name=PARENT).execute()


def test_missing_or_wrong_bearer_is_401_in_googles_shape(amapi):
    bare = build("androidmanagement", "v1", http=httplib2.Http(timeout=5), static_discovery=True,
                 cache_discovery=False, client_options={"api_endpoint": amapi.url + "/"})
    error = error_of(bare.enterprises().get(name=PARENT))
    assert error.resp.status == 401
    assert google_error(error)["status"] == "UNAUTHENTICATED"
    assert "invalid authentication credentials" in google_error(error)["message"]
    request = bare.enterprises().get(name=PARENT)
    request.headers["Authorization"] = "Bearer ya29.not-one-we-issued"
    assert error_of(request).resp.status == 401
    assert [c.authorized for c in amapi.calls()] == [False, True]


def test_revoked_access_tokens_make_the_client_refresh(amapi):
    svc = service(amapi)
    svc.enterprises().get(name=PARENT).execute()
    amapi.revoke_access_tokens()
    svc.enterprises().get(name=PARENT).execute()
    assert [c.status for c in amapi.calls()] == [200, 200, 401, 200, 200]


def test_an_enterprise_that_does_not_allow_the_account_is_403_unknown_is_404(amapi):
    amapi.add_enterprise("LC0other", allowed_emails=["someone@else.iam.gserviceaccount.com"])
    svc = service(amapi)
    denied = error_of(svc.enterprises().get(name="enterprises/LC0other"))
    assert (denied.resp.status, google_error(denied)["status"]) == (403, "PERMISSION_DENIED")
    missing = error_of(svc.enterprises().get(name="enterprises/LC0nope"))
    assert (missing.resp.status, google_error(missing)["status"]) == (404, "NOT_FOUND")
    allowed = service(amapi, amapi.service_account_key("someone@else.iam.gserviceaccount.com"))
    assert allowed.enterprises().get(name="enterprises/LC0other").execute()["name"] == \
        "enterprises/LC0other"


# ---------------------------------------------------------------- enterprise and policies

def test_signin_details_get_a_token_and_qr_code_and_removed_ones_are_gone(amapi):
    svc = service(amapi)
    body = {"signinDetails": [{"signinUrl": "https://portal.test/ssp/amapi/signin",
                               "allowPersonalUsage": "PERSONAL_USAGE_DISALLOWED"}]}
    patched = svc.enterprises().patch(name=PARENT, updateMask="signinDetails", body=body).execute()
    detail = patched["signinDetails"][0]
    assert re.fullmatch(r"[A-Z]{20}", detail["signinEnrollmentToken"])
    assert json.loads(detail["qrCode"])["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"] == \
        {TOKEN_EXTRA: detail["signinEnrollmentToken"]}
    assert patched["enterpriseDisplayName"] == "Example Corp"  # outside the mask: kept
    url = amapi.start_signin(detail["signinEnrollmentToken"], serial="R58N1")
    assert url.startswith("https://portal.test/ssp/amapi/signin?provisioningInfo=")
    assert parse_qs(urlparse(url).query)["provisioningInfo"][0].startswith("provisioningInfo/")
    again = svc.enterprises().patch(name=PARENT, updateMask="signinDetails", body=body).execute()
    assert again["signinDetails"] == [detail]  # the same detail keeps its token
    svc.enterprises().patch(name=PARENT, updateMask="signinDetails",
                            body={"signinDetails": []}).execute()
    assert "signinDetails" not in svc.enterprises().get(name=PARENT).execute()
    with pytest.raises(ValueError):
        amapi.start_signin(detail["signinEnrollmentToken"])


def test_enterprise_patch_checks_the_body_and_the_mask(amapi):
    svc = service(amapi)
    bad_field = error_of(svc.enterprises().patch(name=PARENT, body={"signinDetail": []}))
    assert bad_field.resp.status == 400 and 'Unknown name "signinDetail"' in str(bad_field)
    bad_mask = error_of(svc.enterprises().patch(name=PARENT, updateMask="nonsense", body={}))
    assert bad_mask.resp.status == 400


def test_policies_get_and_list(amapi):
    svc = service(amapi)
    kiosk = svc.enterprises().policies().get(name=f"{PARENT}/policies/kiosk").execute()
    assert kiosk["kioskCustomLauncherEnabled"] is True
    listed = svc.enterprises().policies().list(parent=PARENT).execute()["policies"]
    names = [p["name"] for p in listed]
    assert names == [f"{PARENT}/policies/fully-managed", f"{PARENT}/policies/kiosk"]
    missing = error_of(svc.enterprises().policies().get(name=f"{PARENT}/policies/x"))
    assert missing.resp.status == 404
    with pytest.raises(ValueError, match="TYPE_BOOL"):  # add_policy checks the fields too
        amapi.add_policy("LC0abc", "bad", cameraDisabled="yes")


# ---------------------------------------------------------------- enrollment tokens

def test_create_enrollment_token(amapi):
    svc = service(amapi)
    before = datetime.datetime.now(datetime.timezone.utc)
    token = create_token(svc, duration="86400s", oneTimeOnly=True, additionalData="qr:42",
                         allowPersonalUsage="PERSONAL_USAGE_DISALLOWED",
                         user={"accountIdentifier": "alice"})
    assert re.fullmatch(rf"{PARENT}/enrollmentTokens/\w+", token["name"])
    assert re.fullmatch(r"[A-Z]{20}", token["value"])
    assert token["policyName"] == f"{PARENT}/policies/fully-managed"
    assert (token["oneTimeOnly"], token["additionalData"]) == (True, "qr:42")
    assert "user" not in token  # deprecated, "the value is ignored"; kept for tests in .tokens
    assert amapi.tokens[token["name"]]["user"] == {"accountIdentifier": "alice"}
    expires = datetime.datetime.strptime(token["expirationTimestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    expires = expires.replace(tzinfo=datetime.timezone.utc)
    assert 86400 - 60 < (expires - before).total_seconds() < 86400 + 60
    extras = json.loads(token["qrCode"])  # a JSON string of the provisioning extras
    assert {k: extras[k] for k in DPC_EXTRAS} == DPC_EXTRAS
    bundle = extras["android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE"]
    assert bundle == {TOKEN_EXTRA: token["value"]}
    assert amapi.tokens[token["name"]]["value"] == token["value"]


def test_the_longest_duration_gives_googles_max_timestamp(amapi):
    token = create_token(service(amapi), duration="315576000000s")
    assert token["expirationTimestamp"] == MAX_TIMESTAMP


@pytest.mark.parametrize("body, where", [
    ({"policyName": "no-such-policy"}, "Policy no-such-policy not found"),
    ({"policyName": "enterprises/LC0other/policies/kiosk"}, "not found"),
    ({"duration": "59s"}, "duration"),
    ({"duration": "315576000001s"}, "duration"),
    ({"duration": "10m"}, "duration"),
    ({"duration": 3600}, "TYPE_STRING"),
    ({"oneTimeOnly": "yes"}, "TYPE_BOOL"),
    ({"allowPersonalUsage": "PERSONAL_USAGE_MAYBE"}, "TYPE_ENUM"),
    ({"additionalData": "x" * 1025}, "additionalData"),
    ({"user": {"accountIdentifier": "a" * 1025}}, "accountIdentifier"),
    ({"user": {"accountId": "alice"}}, 'Unknown name "accountId"'),
    ({"one_time_only": True}, 'Unknown name "one_time_only"'),
])
def test_create_refuses_what_google_refuses(amapi, body, where):
    amapi.add_enterprise("LC0other")
    amapi.add_policy("LC0other", "kiosk")
    body = {"policyName": "kiosk", **body}
    error = error_of(tokens(service(amapi)).create(parent=PARENT, body=body))
    assert error.resp.status == 400
    assert google_error(error)["status"] == "INVALID_ARGUMENT"
    assert where in google_error(error)["message"]
    assert amapi.tokens == {}


def test_get_and_list_give_googles_partial_views_and_delete_makes_it_404(amapi):
    svc = service(amapi)
    token = create_token(svc, additionalData="qr:1")
    got = tokens(svc).get(name=token["name"]).execute()
    assert got == {k: token[k] for k in ("name", "expirationTimestamp", "value", "qrCode")}
    assert tokens(svc).list(parent=PARENT).execute()["enrollmentTokens"] == [got]
    assert tokens(svc).delete(name=token["name"]).execute() == {}
    assert error_of(tokens(svc).get(name=token["name"])).resp.status == 404
    assert error_of(tokens(svc).delete(name=token["name"])).resp.status == 404
    with pytest.raises(ValueError, match="deleted"):
        amapi.enroll(token["value"])


# ---------------------------------------------------------------- devices

def test_enrolling_creates_the_device_google_reports(amapi):
    svc = service(amapi)
    token = create_token(svc, additionalData="qr:7", user={"accountIdentifier": "alice"})
    device = amapi.enroll(token["value"], serial="R58N7", model="Pixel 8", brand="google",
                          manufacturer="Google", api_level=34, imei="490154203237518")
    assert re.fullmatch(rf"{PARENT}/devices/[0-9a-f]+", device["name"])
    got = svc.enterprises().devices().get(name=device["name"]).execute()
    assert got["enrollmentTokenName"] == token["name"] and got["enrollmentTokenData"] == "qr:7"
    assert got["hardwareInfo"]["serialNumber"] == "R58N7" and got["apiLevel"] == 34
    assert (got["state"], got["managementMode"], got["ownership"]) == \
        ("ACTIVE", "DEVICE_OWNER", "COMPANY_OWNED")
    assert got["policyName"] == f"{PARENT}/policies/fully-managed"
    assert got["userName"].startswith(f"{PARENT}/users/")


def test_enroll_refuses_used_one_time_expired_and_unknown_tokens(amapi):
    svc = service(amapi)
    once = create_token(svc, oneTimeOnly=True)
    amapi.enroll(once["value"])
    with pytest.raises(ValueError, match="already used"):
        amapi.enroll(once["value"])
    reusable = create_token(svc)
    amapi.enroll(reusable["value"], serial="A")
    amapi.enroll(reusable["value"], serial="B")
    amapi.expire_token(reusable["name"])
    with pytest.raises(ValueError, match="expired"):
        amapi.enroll(reusable["value"])
    assert error_of(tokens(svc).get(name=reusable["name"])).resp.status == 404
    with pytest.raises(ValueError, match="unknown"):
        amapi.enroll("ABCDEFGHIJKLMNOPQRST")
    assert len(amapi.devices) == 3


def test_device_listing_pages(amapi):
    svc = service(amapi)
    token = create_token(svc)
    serials = [f"R58N{i}" for i in range(12)]
    for serial in serials:
        amapi.enroll(token["value"], serial=serial)
    devices = svc.enterprises().devices()
    request, seen, pages = devices.list(parent=PARENT, pageSize=5), [], 0
    while request is not None:
        page = request.execute()
        pages += 1
        seen += [d["hardwareInfo"]["serialNumber"] for d in page["devices"]]
        request = devices.list_next(request, page)
    assert (seen, pages) == (serials, 3)
    first = devices.list(parent=PARENT).execute()  # no pageSize: at most 10, as Google
    assert len(first["devices"]) == 10 and first["nextPageToken"]
    assert error_of(devices.list(parent=PARENT, pageToken="garbage!")).resp.status == 400


def test_deleting_a_device_records_the_wipe(amapi):
    svc = service(amapi)
    device = amapi.enroll(create_token(svc)["value"])
    devices = svc.enterprises().devices()
    bad = devices.delete(name=device["name"], wipeDataFlags=["WIPE_ESIMS"])
    bad.uri = bad.uri.replace("WIPE_ESIMS", "WIPE_EVERYTHING")  # the client checks enums itself
    bad = error_of(bad)
    assert bad.resp.status == 400 and amapi.wipes == []
    flags = ["WIPE_EXTERNAL_STORAGE", "WIPE_ESIMS"]
    assert devices.delete(name=device["name"], wipeDataFlags=flags,
                          wipeReasonMessage="Retired").execute() == {}
    assert amapi.wipes == [{"device": device["name"], "wipeReasonMessage": "Retired",
                            "wipeDataFlags": flags}]
    assert amapi.calls("DELETE")[-1].query_lists["wipeDataFlags"] == flags
    assert error_of(devices.get(name=device["name"])).resp.status == 404


def test_provisioning_info_and_the_signin_url_flow(amapi):
    svc = service(amapi)
    info_id = amapi.add_provisioning_info(serial="R58N9", model="SM-A556B", brand="samsung",
                                          api_level=34, imei="490154203237518")
    info = svc.provisioningInfo().get(name=f"provisioningInfo/{info_id}").execute()
    assert (info["serialNumber"], info["model"], info["apiLevel"], info["enterprise"]) == \
        ("R58N9", "SM-A556B", 34, PARENT)
    assert error_of(svc.provisioningInfo().get(name="provisioningInfo/nope")).resp.status == 404
    token = create_token(svc, oneTimeOnly=True, user={"accountIdentifier": "bob"})
    device = amapi.enroll_from_url(f"{ENROLL_URL}?et={token['value']}", serial="R58N9")
    assert device["hardwareInfo"]["serialNumber"] == "R58N9"
    with pytest.raises(ValueError, match="sign-in failed"):
        amapi.enroll_from_url(ENROLL_INVALID_URL)


def test_every_answer_has_the_discovery_documents_shape(amapi):
    svc = service(amapi)
    body = {"signinDetails": [{"signinUrl": "https://portal.test/ssp/amapi/signin"}]}
    token = create_token(svc, oneTimeOnly=True, additionalData="qr:1", duration="3600.5s")
    device = amapi.enroll(token["value"], imei="490154203237518")
    info_id = amapi.add_provisioning_info()
    answers = [
        ("Enterprise", svc.enterprises().get(name=PARENT)),
        ("Enterprise", svc.enterprises().patch(name=PARENT, updateMask="signinDetails", body=body)),
        ("Policy", svc.enterprises().policies().get(name=f"{PARENT}/policies/kiosk")),
        ("ListPoliciesResponse", svc.enterprises().policies().list(parent=PARENT)),
        ("EnrollmentToken", tokens(svc).get(name=token["name"])),
        ("ListEnrollmentTokensResponse", tokens(svc).list(parent=PARENT)),
        ("Device", svc.enterprises().devices().get(name=device["name"])),
        ("ListDevicesResponse", svc.enterprises().devices().list(parent=PARENT)),
        ("ProvisioningInfo", svc.provisioningInfo().get(name=f"provisioningInfo/{info_id}")),
    ]
    check_body(token, "EnrollmentToken")
    for schema, request in answers:
        check_body(request.execute(), schema)  # raises on a field or type the schema lacks


# ---------------------------------------------------------------- failures on demand

def test_429_carries_retry_after_and_fails_only_as_often_as_asked(amapi):
    svc = service(amapi)
    amapi.fail(r"/enrollmentTokens$", 429, times=1, method="POST", retry_after=7)
    error = error_of(tokens(svc).create(parent=PARENT, body={"policyName": "kiosk"}))
    assert error.resp.status == 429 and error.resp["retry-after"] == "7"
    assert google_error(error)["status"] == "RESOURCE_EXHAUSTED"
    assert tokens(svc).list(parent=PARENT).execute() == {}  # GET: not matched by method="POST"
    assert create_token(svc)["value"]


@pytest.mark.parametrize("status, name", [(500, "INTERNAL"), (503, "UNAVAILABLE"),
                                          (403, "PERMISSION_DENIED")])
def test_injected_errors_use_googles_shape(amapi, status, name):
    amapi.fail(r"^/v1/enterprises/LC0abc$", status, message="Something went wrong.")
    error = error_of(service(amapi).enterprises().get(name=PARENT))
    assert (error.resp.status, google_error(error)) == \
        (status, {"code": status, "message": "Something went wrong.", "status": name})


def test_the_token_endpoint_fails_on_demand(amapi):
    amapi.fail("^/token$", 400, times=None)
    with pytest.raises(RefreshError):
        service(amapi).enterprises().get(name=PARENT).execute()


def test_a_delay_makes_the_client_time_out(amapi):
    svc = service(amapi, timeout=0.3)
    svc.enterprises().get(name=PARENT).execute()  # the token first, without delay
    amapi.delay(r"^/v1/enterprises/LC0abc$", 2)
    with pytest.raises(TimeoutError):
        svc.enterprises().get(name=PARENT).execute()
    assert svc.enterprises().get(name=PARENT).execute()["name"] == PARENT


def test_reset_forgets_state_and_rules_but_not_keys(amapi):
    svc = service(amapi)
    create_token(svc)
    amapi.fail(".*", 500, times=None)
    amapi.default_page_size = 2
    amapi.reset()
    assert (amapi.tokens, amapi.enterprises, amapi.requests) == ({}, {}, [])
    assert amapi.default_page_size == 10
    amapi.add_enterprise()
    assert svc.enterprises().get(name=PARENT).execute()["name"] == PARENT
    assert amapi.calls("POST", "/token") == []  # the access token issued before still works


# ---------------------------------------------------------------- Pub/Sub push

def test_push_body_carries_the_device_as_base64_json(amapi):
    device = amapi.enroll(create_token(service(amapi), additionalData="qr:3")["value"])
    body = amapi.pubsub_push_body(device["name"])
    assert body["message"]["attributes"] == {"notificationType": "ENROLLMENT"}
    assert json.loads(base64.b64decode(body["message"]["data"])) == device
    assert body["message"]["messageId"] and body["subscription"].startswith("projects/")


def test_push_id_tokens_verify_with_google_auth(amapi):
    audience = "https://portal.test/amapi/pubsub"
    certs_url = amapi.url + PUSH_CERTS_PATH
    bearer = amapi.push_headers(audience)["Authorization"].removeprefix("Bearer ")
    claims = id_token.verify_token(bearer, AuthRequest(), audience, certs_url=certs_url)
    assert (claims["iss"], claims["aud"], claims["email_verified"]) == \
        ("https://accounts.google.com", audience, True)
    for bad in (amapi.push_id_token("https://elsewhere.test/"),
                amapi.push_id_token(audience, expired=True),
                amapi.push_id_token(audience, foreign=True)):
        with pytest.raises(ValueError):
            id_token.verify_token(bad, AuthRequest(), audience, certs_url=certs_url)
