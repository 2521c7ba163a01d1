"""A stand-in for Google's Android Management API v1 and OAuth 2.0 token endpoint, on loopback.

The portal's tests drive the REAL google-api-python-client and google-auth against it:

    key = amapi.service_account_key()  # the JSON Google issues; token_uri = amapi.url + "/token"
    creds = service_account.Credentials.from_service_account_info(key, scopes=[SCOPE])
    http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=5))
    svc = build("androidmanagement", "v1", http=http, static_discovery=True,
                cache_discovery=False, client_options={"api_endpoint": amapi.url + "/"})
    svc.enterprises().enrollmentTokens().create(parent="enterprises/LC0abc", body={...}).execute()

(`amapi.build_service(key=None, timeout=5)` is exactly that snippet.)

Fixtures: `amapi_standin` (one server per xdist worker) and `amapi` (per test: reset, then the
enterprise "enterprises/LC0abc" with the policies "fully-managed" and "kiosk"). Both are imported
by tests/conftest.py, so every test directory has them.

What it checks, as Google does:
- POST /token: an RS256 JWT-bearer assertion signed by a key the stand-in issued
  (`service_account_key(email)`; `foreign_key(email)` has the same key id but another private
  key, like a deleted key: refused), iss == client_email, aud == token_uri or Google's token
  endpoint (google-auth always signs https://oauth2.googleapis.com/token), the androidmanagement
  scope, at most one hour, not expired. Answers {"access_token", "expires_in": 3599, ...}.
- /v1/...: `Authorization: Bearer <access token it issued>` (else 401); the enterprise must exist
  (404) and allow the key's email (403 when `add_enterprise(allowed_emails=[...])` leaves it out);
  request bodies are checked against the discovery document's schemas (unknown field, wrong JSON
  type, value outside an enum: 400 INVALID_ARGUMENT; fields must be camelCase); every error is
  Google's JSON {"error": {"code", "message", "status"}}.
- Resources: enterprises get/patch (signinDetails: each (signinUrl, allowPersonalUsage,
  tokenTag) gets a signinEnrollmentToken + qrCode, kept while that detail is sent again, gone
  when left out), policies get/list, enrollmentTokens create/get/list/delete (policy of this
  enterprise must exist, given as "kiosk" or its full name; duration "Ns" 60s..315576000000s,
  default 3600s; additionalData and user.accountIdentifier <= 1024 chars; `user` is deprecated:
  accepted, kept in .tokens, not echoed; get and list answer Google's partial view: name,
  expirationTimestamp, allowPersonalUsage, value, qrCode), devices get/list/delete (wipe
  recorded in `.wipes`), provisioningInfo get. Lists page with pageSize/pageToken ->
  nextPageToken; without pageSize at most 10 items, as Google (`.default_page_size`).
  Timestamps are RFC 3339 with "Z" and 6 fractional digits, except a token whose expiry passes
  Timestamps.MAX_VALUE, which gets Google's "9999-12-31T23:59:59.999999999Z" (9 digits).
- The enrollment token's qrCode is a JSON *string* of Android's provisioning extras (DPC_EXTRAS
  plus PROVISIONING_ADMIN_EXTRAS_BUNDLE {TOKEN_EXTRA: value}).

Test-side API (all thread-safe):
- add_enterprise(enterprise_id="LC0abc", display_name=..., allowed_emails=None) -> Enterprise dict
- add_policy(enterprise_id, policy_id, **fields) -> Policy dict (fields checked against the schema)
- add_provisioning_info(serial=..., model=..., brand=..., api_level=..., imei=None,
  enterprise_id="LC0abc") -> its id ("provisioningInfo/<id>" is the resource name)
- enroll(token_value, serial=..., model=..., brand=..., manufacturer=..., api_level=33, imei=None)
  -> the Device dict, as Google creates it when a phone enrolls with that enrollment token;
  ValueError when the token is unknown, deleted, expired or a used oneTimeOnly token.
- start_signin(signin_enrollment_token, serial=..., ...) -> the URL the phone opens: the
  enterprise's signinUrl + "?provisioningInfo=provisioningInfo/<id>" (the sign-in URL flow);
  enroll_from_url(url, **device) is the phone following the sign-in page's answer: ENROLL_URL
  + "?et=<token value>" enrolls (as enroll), ENROLL_INVALID_URL or anything else: ValueError.
- expire_token(name_or_value), revoke_access_tokens()
- pubsub_push_body(device, notification_type="ENROLLMENT") -> the JSON body Pub/Sub pushes
- push_id_token(audience, email=PUSH_EMAIL, expired=False, foreign=False) -> an OIDC ID token as
  Pub/Sub's push sends it (Authorization: Bearer ...); certificates at url + "/oauth2/v1/certs"
  (PUSH_CERTS_PATH) for google.oauth2.id_token.verify_token(..., certs_url=...). verify_token
  checks signature, aud and exp, not iss/email: the portal checks those itself.
  push_headers(audience, **same) -> the request headers of a push, token included.
  The certificates answer with Cache-Control: max-age=.push_certs_max_age (PUSH_CERTS_MAX_AGE,
  as Google's); rotate_push_key() publishes a new key beside the first and signs with it.
- fail(path_regex, status, times=1, method=None, retry_after=None, message=None): the next
  `times` requests whose URL path matches (re.search on e.g. "/v1/enterprises/LC0abc/devices"
  or "/token") (times=None: all) get that Google error (429 + Retry-After when
  given); /token gets OAuth's {"error", "error_description"} shape. Note the clients retry on
  their own: google-auth retries /token on 429/500/503 (3 attempts, ~1 s and ~2 s apart), so
  fail /token with 400 (or times=None) to make a refresh fail; googleapiclient retries /v1 calls
  only when the portal passes execute(num_retries=N). An expired or deleted enrollment token
  answers 404 to get and delete, as Google.
- delay(path_regex, seconds, times=1): the next matching requests sleep first (client timeouts).
- State to read: .requests (Recorded: method, path, query, query_lists, json, form, authorized,
  status), .calls(method=None, path_regex=None), .enterprises, .policies, .tokens (enrollment
  tokens by name), .devices (by name), .wipes, .provisioning_infos, .access_tokens.
- reset(): clears all of that and the failure rules; keeps the keys and issued access tokens.
"""
import base64
import datetime
import hashlib
import importlib.util
import json
import re
import secrets
import string
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SCOPE = "https://www.googleapis.com/auth/androidmanagement"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
PUSH_CERTS_PATH = "/oauth2/v1/certs"
PUSH_EMAIL = "amapi-push@proj.iam.gserviceaccount.com"
PUSH_CERTS_MAX_AGE = 21600  # seconds; Google's certificates say about six hours
ENROLL_URL = "https://enterprise.google.com/android/enroll"  # the sign-in page's success: ?et=
ENROLL_INVALID_URL = ENROLL_URL + "/invalid"  # ... and its failure
# google-auth always signs aud = Google's endpoint, whatever token_uri says; Google accepts these.
GOOGLE_TOKEN_AUDIENCES = ("https://oauth2.googleapis.com/token",
                          "https://www.googleapis.com/oauth2/v4/token")
DEFAULT_EMAIL = "portal@proj.iam.gserviceaccount.com"
DEFAULT_ENTERPRISE = "LC0abc"
MIN_DURATION, MAX_DURATION = 60, 315576000000  # 1 minute .. protobuf Durations.MAX_VALUE
MAX_TIMESTAMP = "9999-12-31T23:59:59.999999999Z"  # protobuf Timestamps.MAX_VALUE
DPC_EXTRAS = {
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_COMPONENT_NAME":
        "com.google.android.apps.work.clouddpc/.receivers.CloudDeviceAdminReceiver",
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_SIGNATURE_CHECKSUM":
        "I5YvS0O5hXY46mb01BlRjq4oJJGs2kuUcHvVkAPEXlg",
    "android.app.extra.PROVISIONING_DEVICE_ADMIN_PACKAGE_DOWNLOAD_LOCATION":
        "https://play.google.com/managed/downloadManagingApp?identifier=setup",
}
TOKEN_EXTRA = "com.google.android.apps.work.clouddpc.EXTRA_ENROLLMENT_TOKEN"

# The discovery document google-api-python-client ships (found without importing the client, so
# that tests/conftest.py importing this module does not load google.api_core everywhere).
DISCOVERY = json.loads((Path(importlib.util.find_spec("googleapiclient").origin).parent
                        / "discovery_cache" / "documents" / "androidmanagement.v1.json"
                        ).read_text("utf-8"))
SCHEMAS = DISCOVERY["schemas"]

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                404: "NOT_FOUND", 409: "ALREADY_EXISTS", 429: "RESOURCE_EXHAUSTED",
                500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}
DEFAULT_MESSAGES = {
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
         "cookie or other valid authentication credential. See "
         "https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "Caller is not authorized to manage enterprise.",
    404: "Requested entity was not found.",
    429: "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute' of service "
         "'androidmanagement.googleapis.com'.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out.",
}


class GoogleError(Exception):
    """Answered as Google's error JSON (status code, message, status name)."""

    def __init__(self, code: int, message: str | None = None, field_name: str | None = None):
        super().__init__(message or DEFAULT_MESSAGES.get(code,
                                                         "Request contains an invalid argument."))
        self.code, self.message, self.field_name = code, str(self.args[0]), field_name

    def body(self) -> dict:
        error = {"code": self.code, "message": self.message,
                 "status": STATUS_NAMES.get(self.code, "UNKNOWN")}
        if self.code == 400 and self.field_name:
            error["details"] = [{"@type": "type.googleapis.com/google.rpc.BadRequest",
                                 "fieldViolations": [{"field": self.field_name,
                                                      "description": self.message}]}]
        return {"error": error}


class OAuthError(Exception):
    def __init__(self, error: str, description: str, code: int = 400):
        super().__init__(description)
        self.error, self.description, self.code = error, description, code


# ---------------------------------------------------------------- schema checks (discovery doc)

def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _invalid(where: str, type_name: str, value) -> GoogleError:
    return GoogleError(400, f"Invalid value at '{where}' ({type_name}), {json.dumps(value)}", where)


_DURATION = re.compile(r"^(\d+)(?:\.(\d{1,9}))?s$")
_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$")


def check(value, schema: dict, where: str) -> None:
    """Raise GoogleError(400) where `value` does not fit `schema` (a discovery-document schema)."""
    if value is None:
        return
    if "$ref" in schema:
        return check_object(value, SCHEMAS[schema["$ref"]], where)
    kind = schema.get("type")
    if kind == "any":
        return
    if kind == "object":
        if "properties" in schema:
            return check_object(value, schema, where)
        if not isinstance(value, dict):
            raise _invalid(where, "TYPE_MESSAGE", value)
        if "additionalProperties" in schema:
            for key, item in value.items():
                check(item, schema["additionalProperties"], f"{where}[{key}]")
        return
    if kind == "array":
        if not isinstance(value, list):
            raise _invalid(where, "TYPE_LIST", value)
        for index, item in enumerate(value):
            check(item, schema.get("items", {"type": "any"}), f"{where}[{index}]")
        return
    if kind == "boolean":
        if not isinstance(value, bool):
            raise _invalid(where, "TYPE_BOOL", value)
        return
    if kind == "integer" or schema.get("format") in ("int64", "uint64"):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value))
        if not ok:
            raise _invalid(where, "TYPE_INT64" if kind == "string" else "TYPE_INT32", value)
        return
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise _invalid(where, "TYPE_DOUBLE", value)
        return
    if kind == "string":
        if not isinstance(value, str):
            raise _invalid(where, "TYPE_STRING", value)
        if "enum" in schema and value not in schema["enum"]:
            raise _invalid(where, "TYPE_ENUM", value)
        fmt = schema.get("format")
        if fmt == "google-duration" and not _DURATION.match(value):
            raise GoogleError(400, f"Invalid value at '{where}' (type.googleapis.com/"
                                   f"google.protobuf.Duration), Field '{where}', Illegal duration "
                                   f"format; duration must end with 's'", where)
        if fmt == "google-datetime" and not _DATETIME.match(value):
            raise _invalid(where, "type.googleapis.com/google.protobuf.Timestamp", value)
        if fmt == "byte":
            try:
                base64.b64decode(value.replace("-", "+").replace("_", "/") + "==", validate=False)
            except ValueError:
                raise _invalid(where, "TYPE_BYTES", value) from None


def check_object(value, schema: dict, where: str) -> None:
    if not isinstance(value, dict):
        raise _invalid(where, "TYPE_MESSAGE", value)
    properties = schema.get("properties", {})
    for key, item in value.items():
        if key not in properties:
            raise GoogleError(400, f'Invalid JSON payload received. Unknown name "{key}" at '
                                   f"'{where}': Cannot find field.", where)
        check(item, properties[key], f"{where}.{_snake(key)}")


def check_body(value, schema_name: str) -> dict:
    if not isinstance(value, dict):
        raise GoogleError(400, "Invalid JSON payload received. Expected an object.")
    check_object(value, SCHEMAS[schema_name], _snake(schema_name))
    return value


# ------------------------------------------------------------------------------ small helpers

def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _parse_rfc3339(text: str) -> datetime.datetime:
    if text == MAX_TIMESTAMP:
        return datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def _new_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _upper_letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(n))


def _qr_code(token_value: str) -> str:
    bundle = {TOKEN_EXTRA: token_value}
    return json.dumps({**DPC_EXTRAS, "android.app.extra.PROVISIONING_ADMIN_EXTRAS_BUNDLE": bundle})


def _parse_duration(text: str) -> float:
    match = _DURATION.match(text)
    return int(match.group(1)) + float("0." + (match.group(2) or "0"))


@dataclass
class Recorded:
    """One request that arrived (query: last value of each parameter; query_lists: all)."""
    method: str
    path: str
    query: dict
    query_lists: dict
    json: object
    form: dict
    authorized: bool  # an Authorization header was present
    status: int = 0   # what the stand-in answered


@dataclass
class _Rule:
    pattern: re.Pattern
    times: int | None
    method: str | None = None
    status: int = 0
    retry_after: int | None = None
    message: str | None = None
    seconds: float = 0.0

    def take(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        if not self.pattern.search(path) or self.times == 0:
            return False
        if self.times is not None:
            self.times -= 1
        return True


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


# ------------------------------------------------------------------------------ the stand-in

class AmapiStandIn:
    def __init__(self, host: str = "127.0.0.1"):
        self.host = host
        self._lock = threading.RLock()
        self._secret = secrets.token_bytes(16)
        self._sa_key = _new_rsa_key()          # every issued service-account key uses this one
        self._push_key = _new_rsa_key()        # Google's ID-token signing key, for Pub/Sub pushes
        self._push_kid = secrets.token_hex(20)
        self._push_cert = _self_signed(self._push_key, "accounts.google.com")
        self._push_first = (self._push_key, self._push_kid, self._push_cert)
        self._foreign = None                   # made on first use
        self._issued_kids: dict[str, str] = {}  # private_key_id -> client_email
        self.access_tokens: dict[str, dict] = {}  # token -> {"email", "expires_at"}
        self._server = None
        self._thread = None
        self.url = ""
        self.reset()

    # -- lifecycle

    def start(self) -> "AmapiStandIn":
        self._server = make_server(self.host, 0, self._wsgi, threaded=True,
                                   request_handler=_QuietHandler)
        self.url = f"http://{self.host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        daemon=True, name="amapi-standin")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._wake.set()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def reset(self) -> None:
        """Forget enterprises, policies, tokens, devices, requests and failure rules."""
        with self._lock:
            old_wake = getattr(self, "_wake", None)
            if old_wake:
                old_wake.set()  # delayed requests of the previous test answer at once
            self._wake = threading.Event()
            self.enterprises: dict[str, dict] = {}     # "enterprises/LC0abc" -> Enterprise
            self._allowed: dict[str, list | None] = {}
            self.policies: dict[str, dict] = {}        # full name -> Policy
            self.tokens: dict[str, dict] = {}          # full name -> EnrollmentToken (live)
            self._token_state: dict[str, dict] = {}    # value -> {"name", "deleted", "uses"}
            self.devices: dict[str, dict] = {}
            self.wipes: list[dict] = []
            self.provisioning_infos: dict[str, dict] = {}
            self.requests: list[Recorded] = []
            self._rules: list[_Rule] = []
            self.default_page_size = 10  # Google: "If unspecified, at most 10 ... returned"
            # Pub/Sub's signing key as first made; its certificates' Cache-Control max-age
            self._push_key, self._push_kid, self._push_cert = self._push_first
            self._push_certs = {self._push_kid: self._push_cert}
            self.push_certs_max_age = PUSH_CERTS_MAX_AGE

    # -- keys

    def _kid(self, email: str) -> str:
        return hashlib.sha1(self._secret + email.encode()).hexdigest()

    def service_account_key(self, email: str = DEFAULT_EMAIL) -> dict:
        """The key JSON Google would issue for `email`; its private key is the stand-in's."""
        kid = self._kid(email)
        with self._lock:
            self._issued_kids[kid] = email
        return self._key_dict(email, kid, self._sa_key)

    def foreign_key(self, email: str = DEFAULT_EMAIL) -> dict:
        """A well-formed key the stand-in never issued (same key id, other private key)."""
        with self._lock:
            if self._foreign is None:
                self._foreign = _new_rsa_key()
        return self._key_dict(email, self._kid(email), self._foreign)

    def _key_dict(self, email: str, kid: str, key: rsa.RSAPrivateKey) -> dict:
        project = email.split("@", 1)[1].split(".", 1)[0] if "@" in email else "proj"
        client_id = str(int(hashlib.sha1(email.encode()).hexdigest()[:15], 16))
        return {
            "type": "service_account",
            "project_id": project,
            "private_key_id": kid,
            "private_key": _pem(key),
            "client_email": email,
            "client_id": client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.url + "/token",
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
                                    + email.replace("@", "%40"),
            "universe_domain": "googleapis.com",
        }

    def revoke_access_tokens(self) -> None:
        """Every access token issued so far stops working (the client refreshes on 401)."""
        with self._lock:
            self.access_tokens.clear()

    def build_service(self, key: dict | None = None, timeout: float = 5):
        """The portal's way of building the client (see the module docstring), for tests."""
        import google_auth_httplib2
        import httplib2
        from google.oauth2 import service_account
        from googleapiclient.discovery import build
        creds = service_account.Credentials.from_service_account_info(
            key or self.service_account_key(), scopes=[SCOPE])
        http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=timeout))
        return build("androidmanagement", "v1", http=http, static_discovery=True,
                     cache_discovery=False, client_options={"api_endpoint": self.url + "/"})

    # -- test-side setup

    def add_enterprise(self, enterprise_id: str = DEFAULT_ENTERPRISE,
                       display_name: str = "Example Corp",
                       allowed_emails: list[str] | None = None) -> dict:
        """allowed_emails=None: any key the stand-in issued may manage it."""
        name = f"enterprises/{enterprise_id}"
        enterprise = {"name": name, "enterpriseDisplayName": display_name,
                      "enabledNotificationTypes": ["ENROLLMENT"],
                      "pubsubTopic": "projects/proj/topics/amapi",
                      "enterpriseType": "MANAGED_GOOGLE_PLAY_ACCOUNTS_ENTERPRISE"}
        with self._lock:
            self.enterprises[name] = enterprise
            self._allowed[name] = list(allowed_emails) if allowed_emails is not None else None
        return enterprise

    def add_policy(self, enterprise_id: str, policy_id: str, **fields) -> dict:
        """fields: the Policy's fields (camelCase), checked like a request body (ValueError)."""
        try:
            check_body(fields, "Policy")
        except GoogleError as error:
            raise ValueError(error.message) from None
        enterprise = f"enterprises/{enterprise_id}"
        if enterprise not in self.enterprises:
            raise ValueError(f"unknown enterprise {enterprise}")
        name = f"{enterprise}/policies/{policy_id}"
        policy = {"name": name, "version": "1", **fields}
        with self._lock:
            self.policies[name] = policy
        return policy

    def add_provisioning_info(self, serial: str = "R58N00000A", model: str = "SM-G991B",
                              brand: str = "samsung", api_level: int = 33,
                              imei: str | None = None,
                              enterprise_id: str = DEFAULT_ENTERPRISE) -> str:
        """Register what a phone in the sign-in URL flow reports; returns the id."""
        info_id = secrets.token_hex(12)
        info = {"name": f"provisioningInfo/{info_id}", "apiLevel": api_level, "brand": brand,
                "model": model, "serialNumber": serial,
                "enterprise": f"enterprises/{enterprise_id}",
                "managementMode": "DEVICE_OWNER", "ownership": "COMPANY_OWNED"}
        if imei:
            info["imei"] = imei
        with self._lock:
            self.provisioning_infos[info["name"]] = info
        return info_id

    def expire_token(self, name_or_value: str) -> None:
        with self._lock:
            state = self._token_state.get(name_or_value)
            name = state["name"] if state else name_or_value
            if name not in self.tokens:
                raise ValueError(f"no live enrollment token {name_or_value}")
            past = utcnow() - datetime.timedelta(seconds=1)
            self.tokens[name]["expirationTimestamp"] = rfc3339(past)

    # -- what a phone does

    def enroll(self, token_value: str, serial: str = "R58N00000A", model: str = "SM-G991B",
               brand: str = "samsung", manufacturer: str = "samsung", api_level: int = 33,
               imei: str | None = None) -> dict:
        """A phone enrolls with an enrollment token's value; returns the Device Google creates."""
        with self._lock:
            state = self._token_state.get(token_value)
            if state is None:
                raise ValueError("unknown enrollment token")
            if state["deleted"]:
                raise ValueError("enrollment token deleted")
            token = self.tokens[state["name"]]
            if _parse_rfc3339(token["expirationTimestamp"]) <= utcnow():
                raise ValueError("enrollment token expired")
            if token.get("oneTimeOnly") and state["uses"]:
                raise ValueError("one-time enrollment token already used")
            state["uses"] += 1
            enterprise = token["name"].rsplit("/enrollmentTokens/", 1)[0]
            user_id = secrets.token_hex(10)  # token.user is deprecated and ignored by Google
            now = rfc3339(utcnow())
            device = {
                "name": f"{enterprise}/devices/{secrets.token_hex(8)}",
                "userName": f"{enterprise}/users/{user_id}",
                "managementMode": "DEVICE_OWNER",
                "state": "ACTIVE",
                "appliedState": "ACTIVE",
                "ownership": "COMPANY_OWNED",
                "policyName": token.get("policyName", f"{enterprise}/policies/default"),
                "appliedPolicyName": token.get("policyName", f"{enterprise}/policies/default"),
                "appliedPolicyVersion": "1",
                "apiLevel": api_level,
                "enrollmentTime": now,
                "lastStatusReportTime": now,
                "lastPolicySyncTime": now,
                "enrollmentTokenName": token["name"],
                "hardwareInfo": {"serialNumber": serial, "brand": brand, "model": model,
                                 "manufacturer": manufacturer, "hardware": model.lower()},
                "softwareInfo": {"androidVersion": str(api_level - 20)},
            }
            if "additionalData" in token:
                device["enrollmentTokenData"] = token["additionalData"]
            if imei:
                device["networkInfo"] = {"imei": imei}
            self.devices[device["name"]] = device
            return device

    def start_signin(self, signin_enrollment_token: str, serial: str = "R58N00000A",
                     model: str = "SM-G991B", brand: str = "samsung", api_level: int = 33,
                     imei: str | None = None) -> str:
        """A phone scanned a sign-in QR: the URL it opens (signinUrl?provisioningInfo=...)."""
        with self._lock:
            for enterprise in self.enterprises.values():
                for detail in enterprise.get("signinDetails", []):
                    if detail.get("signinEnrollmentToken") == signin_enrollment_token:
                        info_id = self.add_provisioning_info(
                            serial, model, brand, api_level, imei,
                            enterprise_id=enterprise["name"].split("/", 1)[1])
                        url = detail["signinUrl"]
                        sep = "&" if urlparse(url).query else "?"
                        query = urlencode({"provisioningInfo": f"provisioningInfo/{info_id}"})
                        return url + sep + query
        raise ValueError("unknown sign-in enrollment token")

    def enroll_from_url(self, url: str, **device) -> dict:
        """The phone follows the portal's redirect to Google's enrollment URL (?et=<token>)."""
        parsed = urlparse(url)
        if f"{parsed.scheme}://{parsed.netloc}{parsed.path}" == ENROLL_INVALID_URL:
            raise ValueError("the sign-in page answered that the sign-in failed")
        if f"{parsed.scheme}://{parsed.netloc}{parsed.path}" != ENROLL_URL:
            raise ValueError(f"not Google's enrollment URL: {url}")
        values = parse_qs(parsed.query).get("et")
        if not values:
            raise ValueError("no et= in the enrollment URL")
        return self.enroll(values[0], **device)

    # -- Pub/Sub push

    def pubsub_push_body(self, device, notification_type: str = "ENROLLMENT",
                         subscription: str = "projects/proj/subscriptions/amapi-push") -> dict:
        """The JSON Pub/Sub pushes for `device` (a Device dict or its name)."""
        if isinstance(device, str):
            device = self.devices[device]
        message_id = str(secrets.randbelow(10**16))
        published = rfc3339(utcnow())
        return {"message": {"attributes": {"notificationType": notification_type},
                            "data": base64.b64encode(json.dumps(device).encode()).decode(),
                            "messageId": message_id, "message_id": message_id,
                            "publishTime": published, "publish_time": published},
                "subscription": subscription}

    def push_id_token(self, audience: str, email: str = PUSH_EMAIL, expired: bool = False,
                      foreign: bool = False) -> str:
        """The OIDC ID token a push subscription sends (Authorization: Bearer <this>)."""
        now = int(time.time())
        if expired:
            now -= 7200
        claims = {"iss": "https://accounts.google.com", "aud": audience, "azp": "1" * 21,
                  "sub": "1" * 21, "email": email, "email_verified": True,
                  "iat": now, "exp": now + 3600}
        key = self._push_key
        if foreign:
            self.foreign_key()
            key = self._foreign
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": self._push_kid})

    def rotate_push_key(self) -> str:
        """Google's next signing key: published beside the current one (as Google publishes
        a key before it signs with it), and every push_id_token from now on is signed with
        it. Returns its kid. reset() goes back to the first key."""
        with self._lock:
            self._push_key, self._push_kid = _new_rsa_key(), secrets.token_hex(20)
            self._push_cert = _self_signed(self._push_key, "accounts.google.com")
            self._push_certs[self._push_kid] = self._push_cert
            return self._push_kid

    def push_headers(self, audience: str, **kwargs) -> dict:
        """The headers of a push: Authorization: Bearer <push_id_token(audience, **kwargs)>."""
        return {"Authorization": f"Bearer {self.push_id_token(audience, **kwargs)}",
                "Content-Type": "application/json", "User-Agent": "APIs-Google"}

    # -- failure injection

    def fail(self, path_regex: str, status: int, times: int | None = 1, method: str | None = None,
             retry_after: int | None = None, message: str | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(re.compile(path_regex), times, method, status=status,
                                     retry_after=retry_after, message=message))

    def delay(self, path_regex: str, seconds: float, times: int | None = 1,
              method: str | None = None) -> None:
        with self._lock:
            self._rules.append(_Rule(re.compile(path_regex), times, method, seconds=seconds))

    def calls(self, method: str | None = None, path_regex: str | None = None) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests
                    if (method is None or r.method == method.upper())
                    and (path_regex is None or re.search(path_regex, r.path))]

    # ------------------------------------------------------------------ the HTTP side

    def _wsgi(self, environ, start_response):
        request = Request(environ)
        body = None
        if request.mimetype == "application/json":
            try:
                body = json.loads(request.get_data(as_text=True) or "null")
            except ValueError:
                body = ValueError
        record = Recorded(request.method, request.path, request.args.to_dict(flat=True),
                          request.args.to_dict(flat=False),
                          None if body is ValueError else body,
                          request.form.to_dict() if request.mimetype ==
                          "application/x-www-form-urlencoded" else {},
                          "Authorization" in request.headers)
        with self._lock:
            self.requests.append(record)
            delay = next((r for r in self._rules if r.seconds and r.take(request.method,
                                                                         request.path)), None)
            wake = self._wake
        if delay:
            wake.wait(delay.seconds)
        with self._lock:
            response = self._answer(request, body)
        record.status = response.status_code
        return response(environ, start_response)

    def _answer(self, request: Request, body) -> Response:
        rule = next((r for r in self._rules if r.status and r.take(request.method, request.path)),
                    None)
        is_token = request.path == "/token"
        try:
            if rule:
                raise GoogleError(rule.status, rule.message)
            return self._dispatch(request, body)
        except OAuthError as error:
            return _json({"error": error.error, "error_description": error.description},
                         error.code)
        except GoogleError as error:
            if is_token:
                payload = {"error": STATUS_NAMES.get(error.code, "error").lower(),
                           "error_description": error.message}
            else:
                payload = error.body()
            response = _json(payload, error.code)
            if rule and rule.retry_after is not None:
                response.headers["Retry-After"] = str(rule.retry_after)
            return response
        except Exception as error:  # a bug here: said through the client, traceback on stderr
            traceback.print_exc()
            return _json(GoogleError(500, f"Stand-in bug: {error!r}").body(), 500)

    def _dispatch(self, request: Request, body) -> Response:
        path = request.path
        if path == "/token" and request.method == "POST":
            return _json(self._token(request))
        if path == PUSH_CERTS_PATH and request.method == "GET":
            response = _json(dict(self._push_certs))
            # As Google's: clients keep the certificates for max-age seconds.
            response.headers["Cache-Control"] = (f"public, max-age={self.push_certs_max_age}, "
                                                 "must-revalidate, no-transform")
            return response
        if path.startswith("/v1/"):
            if body is ValueError:
                raise GoogleError(400, "Invalid JSON payload received.")
            email = self._authenticate(request)
            return _json(self._route(request.method, path[len("/v1/"):], request.args, body,
                                     email))
        raise GoogleError(404, f"The stand-in does not serve {request.method} {path}.")

    def _token(self, request: Request) -> dict:
        if request.form.get("grant_type") != JWT_BEARER:
            raise OAuthError("unsupported_grant_type",
                             f"Invalid grant_type: {request.form.get('grant_type', '')}")
        assertion = request.form.get("assertion", "")
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.") from None
        email = self._issued_kids.get(kid)
        if email is None:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        try:
            claims = jwt.decode(assertion, self._sa_key.public_key(), algorithms=["RS256"],
                                options={"verify_aud": False, "verify_exp": False,
                                         "require": ["iss", "aud", "iat", "exp"]})
        except jwt.PyJWTError:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.") from None
        if claims["iss"] != email:
            raise OAuthError("invalid_grant", "Invalid JWT Signature.")
        if claims["aud"] not in (self.url + "/token", *GOOGLE_TOKEN_AUDIENCES):
            raise OAuthError("invalid_grant", "Invalid JWT: Failed audience check.")
        now = time.time()
        if not (claims["exp"] - claims["iat"] <= 3600 and claims["exp"] > now
                and claims["iat"] <= now + 300):
            raise OAuthError("invalid_grant", "Invalid JWT: Token must be a short-lived token "
                             "(60 minutes) and in a reasonable timeframe. Check your iat and exp "
                             "values in the JWT claim.")
        if SCOPE not in str(claims.get("scope", "")).split():
            raise OAuthError("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29." + secrets.token_urlsafe(48)
        self.access_tokens[token] = {"email": email, "expires_at": now + 3599}
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("Authorization", "")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        issued = self.access_tokens.get(token)
        if not issued or issued["expires_at"] < time.time():
            raise GoogleError(401)
        return issued["email"]

    def _enterprise(self, enterprise_id: str, email: str) -> dict:
        name = f"enterprises/{enterprise_id}"
        enterprise = self.enterprises.get(name)
        if enterprise is None:
            raise GoogleError(404, f"Enterprise {name} not found.")
        allowed = self._allowed.get(name)
        if allowed is not None and email not in allowed:
            raise GoogleError(403)
        return enterprise

    def _route(self, method: str, rest: str, args, body, email: str) -> dict:
        parts = rest.split("/")
        if parts[0] == "provisioningInfo" and len(parts) == 2 and method == "GET":
            return self._provisioning_info("/".join(parts), email)
        if parts[0] != "enterprises" or len(parts) < 2 or not parts[1]:
            raise GoogleError(404, f"The stand-in does not serve {method} /v1/{rest}.")
        enterprise = self._enterprise(parts[1], email)
        kind, item = (parts[2] if len(parts) > 2 else None), (parts[3] if len(parts) > 3 else None)
        if len(parts) > 4:
            raise GoogleError(404, f"The stand-in does not serve {method} /v1/{rest}.")
        handler = {
            (None, False, "GET"): lambda: enterprise,
            (None, False, "PATCH"): lambda: self._patch_enterprise(enterprise, args, body),
            ("policies", False, "GET"): lambda: self._list(
                args, self._children(enterprise, self.policies, "policies"), "policies"),
            ("policies", True, "GET"): lambda: self._get(self.policies, rest, "Policy"),
            ("enrollmentTokens", False, "POST"): lambda: self._create_token(enterprise, body),
            ("enrollmentTokens", False, "GET"): lambda: self._list_tokens(enterprise, args),
            ("enrollmentTokens", True, "GET"): lambda: self._get_token(rest),
            ("enrollmentTokens", True, "DELETE"): lambda: self._delete_token(rest),
            ("devices", False, "GET"): lambda: self._list(
                args, self._children(enterprise, self.devices, "devices"), "devices"),
            ("devices", True, "GET"): lambda: self._get(self.devices, rest, "Device"),
            ("devices", True, "DELETE"): lambda: self._delete_device(rest, args),
        }.get((kind, item is not None, method))
        if handler is None:
            raise GoogleError(404, f"The stand-in does not serve {method} /v1/{rest}.")
        return handler()

    # -- resources

    def _patch_enterprise(self, enterprise: dict, args, body) -> dict:
        check_body(body, "Enterprise")
        properties = SCHEMAS["Enterprise"]["properties"]
        mask = [m for m in ",".join(args.getlist("updateMask")).split(",") if m]
        for path in mask:
            if path.split(".")[0] not in properties:
                raise GoogleError(400, f"Invalid field mask path: {path}.", "update_mask")
        fields = {p.split(".")[0] for p in mask} or {
            k for k in body if not properties[k].get("readOnly")}
        for key in fields:
            if key == "name":
                continue
            if key == "signinDetails":
                details = self._signin_details(enterprise.get(key, []), body.get(key) or [])
                enterprise[key] = details
                if not details:
                    del enterprise[key]
            elif key in body:
                enterprise[key] = body[key]
            else:
                enterprise.pop(key, None)
        return enterprise

    @staticmethod
    def _signin_key(detail: dict) -> tuple:
        return (detail.get("signinUrl"), detail.get("allowPersonalUsage",
                                                    "ALLOW_PERSONAL_USAGE_UNSPECIFIED"),
                detail.get("tokenTag", ""))

    def _signin_details(self, stored: list, sent: list) -> list:
        """Google's rule: a detail is (signinUrl, allowPersonalUsage, tokenTag); one stored
        before keeps its token and QR code, a new one gets new ones, one left out is gone."""
        kept = {self._signin_key(d): d for d in stored}
        details, seen = [], set()
        for detail in sent:
            if not detail.get("signinUrl"):
                raise GoogleError(400, "signinUrl is required.",
                                  "enterprise.signin_details.signin_url")
            key = self._signin_key(detail)
            if key in seen:
                raise GoogleError(400, "Duplicate sign-in details in the request.",
                                  "enterprise.signin_details")
            seen.add(key)
            fresh = {k: v for k, v in detail.items()
                     if k not in ("signinEnrollmentToken", "qrCode")}
            old = kept.get(key)
            token = old["signinEnrollmentToken"] if old else _upper_letters(20)
            details.append({**fresh, "signinEnrollmentToken": token, "qrCode": _qr_code(token)})
        return details

    def _children(self, enterprise: dict, store: dict, kind: str) -> list:
        prefix = f"{enterprise['name']}/{kind}/"
        return [v for k, v in store.items() if k.startswith(prefix)]

    def _list(self, args, items: list, key: str) -> dict:
        try:
            size = int(args.get("pageSize") or self.default_page_size)
        except ValueError:
            raise GoogleError(400, "Invalid value for pageSize.", "page_size") from None
        size = min(max(size, 1), 100)
        start = 0
        if args.get("pageToken"):
            try:
                start = int(base64.urlsafe_b64decode(args["pageToken"].encode()).decode())
            except ValueError:
                raise GoogleError(400, "Invalid page token.", "page_token") from None
        page = {key: items[start:start + size]} if items[start:start + size] else {}
        if start + size < len(items):
            page["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return page

    def _get(self, store: dict, name: str, kind: str) -> dict:
        if name not in store:
            raise GoogleError(404, f"{kind} {name} not found.")
        return store[name]

    def _policy_name(self, enterprise: dict, policy_name: str) -> str:
        full = policy_name if "/" in policy_name else f"{enterprise['name']}/policies/{policy_name}"
        if not full.startswith(enterprise["name"] + "/policies/") or full not in self.policies:
            raise GoogleError(400, f"Policy {policy_name} not found.",
                              "enrollment_token.policy_name")
        return full

    def _create_token(self, enterprise: dict, body) -> dict:
        body = check_body(body if body is not None else {}, "EnrollmentToken")
        token = {k: v for k, v in body.items()
                 if k not in ("name", "value", "qrCode", "expirationTimestamp") and v is not None}
        if "policyName" in token:
            token["policyName"] = self._policy_name(enterprise, token["policyName"])
        seconds = _parse_duration(token.get("duration", "3600s"))
        if not MIN_DURATION <= seconds <= MAX_DURATION:
            raise GoogleError(400, "Enrollment token duration must be between 1 minute and "
                                   "Durations.MAX_VALUE.", "enrollment_token.duration")
        token["duration"] = token.get("duration", "3600s")
        if len(token.get("additionalData", "")) > 1024:
            raise GoogleError(400, "additionalData must be 1024 characters or less.",
                              "enrollment_token.additional_data")
        if len((token.get("user") or {}).get("accountIdentifier") or "") > 1024:
            raise GoogleError(400, "accountIdentifier must be 1024 characters or less.",
                              "enrollment_token.user.account_identifier")
        try:
            expires = rfc3339(utcnow() + datetime.timedelta(seconds=seconds))
        except OverflowError:
            expires = MAX_TIMESTAMP
        value = _upper_letters(20)
        name = f"{enterprise['name']}/enrollmentTokens/{secrets.token_hex(16)}"
        token.update(name=name, value=value, expirationTimestamp=expires, qrCode=_qr_code(value))
        self.tokens[name] = token
        self._token_state[value] = {"name": name, "deleted": False, "uses": 0}
        return {k: v for k, v in token.items() if k != "user"}  # deprecated: "value is ignored"

    def _live_token(self, name: str) -> dict:
        token = self.tokens.get(name)
        if token is None or _parse_rfc3339(token["expirationTimestamp"]) <= utcnow():
            raise GoogleError(404, f"Enrollment token {name} not found.")
        return token

    @staticmethod
    def _partial(token: dict) -> dict:
        """What get and list answer: "Only the following fields are populated: name,
        expirationTimestamp, allowPersonalUsage, value, qrCode"."""
        return {k: token[k] for k in ("name", "expirationTimestamp", "allowPersonalUsage",
                                      "value", "qrCode") if k in token}

    def _get_token(self, name: str) -> dict:
        return self._partial(self._live_token(name))

    def _list_tokens(self, enterprise: dict, args) -> dict:
        live = [self._partial(t)
                for t in self._children(enterprise, self.tokens, "enrollmentTokens")
                if _parse_rfc3339(t["expirationTimestamp"]) > utcnow()]
        return self._list(args, live, "enrollmentTokens")

    def _delete_token(self, name: str) -> dict:
        token = self._live_token(name)
        del self.tokens[name]
        self._token_state[token["value"]]["deleted"] = True
        return {}

    def _delete_device(self, name: str, args) -> dict:
        param = DISCOVERY["resources"]["enterprises"]["resources"]["devices"]["methods"][
            "delete"]["parameters"]["wipeDataFlags"]
        flags = args.getlist("wipeDataFlags")
        for flag in flags:
            if flag not in param["enum"]:
                raise GoogleError(400, f"Invalid value at 'wipe_data_flags' (TYPE_ENUM), "
                                       f"\"{flag}\"", "wipe_data_flags")
        message = args.get("wipeReasonMessage")
        if message is not None and len(message) > 200:
            raise GoogleError(400, "wipeReasonMessage must be 200 characters or less.",
                              "wipe_reason_message")
        self._get(self.devices, name, "Device")
        del self.devices[name]
        self.wipes.append({"device": name, "wipeDataFlags": flags, "wipeReasonMessage": message})
        return {}

    def _provisioning_info(self, name: str, email: str) -> dict:
        info = self._get(self.provisioning_infos, name, "ProvisioningInfo")
        if info["enterprise"] in self.enterprises:
            self._enterprise(info["enterprise"].split("/", 1)[1], email)
        return info


def _json(payload, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="session")
def amapi_standin():
    """One stand-in per test process (xdist worker), started once."""
    standin = AmapiStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def amapi(amapi_standin):
    """The stand-in reset, with enterprises/LC0abc and its policies fully-managed and kiosk."""
    amapi_standin.reset()
    amapi_standin.add_enterprise(DEFAULT_ENTERPRISE, display_name="Example Corp")
    amapi_standin.add_policy(DEFAULT_ENTERPRISE, "fully-managed",
                             statusReportingSettings={"hardwareStatusEnabled": True,
                                                      "softwareInfoEnabled": True})
    amapi_standin.add_policy(DEFAULT_ENTERPRISE, "kiosk", kioskCustomLauncherEnabled=True)
    yield amapi_standin
    amapi_standin.reset()
