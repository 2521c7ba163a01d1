"""Azure AD (Entra ID) sign-in: msal's authorization-code flow, with the ID token verified here.

Pure functions of an AzureConfig and the flow dict the caller keeps in its session; nothing here
reads Flask's request, session or the database. msal does not check the ID token's signature
(1.38+ leaves that to the app), so verify_id_token does, against the provider's published keys.
"""
import hashlib
import hmac
import re
import ssl
import threading
import time
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlparse

import certifi
import jwt
import msal
import requests

from portal.database import no_transaction_open

ENTRA_INSTANCE = "https://login.microsoftonline.com"
# msal adds openid and profile; "email" makes providers other than Entra send the email claim.
SCOPES = ["email"]
LEEWAY = 60  # seconds of clock skew allowed for exp, nbf and iat
CACHE_TTL = 3600  # discovery documents, signing keys and msal applications
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                "ES256", "ES384", "ES512"})
_TENANT_ID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")

# response_mode=query on purpose: the provider comes back with a top-level GET, which carries the
# SameSite=Lax session cookie holding the flow; form_post (a cross-site POST) would not.
warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended",
                        category=UserWarning, module=r"msal\.")


@dataclass(frozen=True)
class AzureConfig:
    client_id: str
    client_secret: str = field(repr=False)
    tenant: str | None = None      # Entra tenant id or domain, or organizations/common
    authority: str | None = None   # a generic OpenID issuer URL; wins over tenant when set
    ca_bundle: str | None = None   # CA file to trust; None = the system's trust store
    timeout: float = 10.0
    instance: str = ENTRA_INSTANCE  # Entra's host: national clouds, or a test provider

    @property
    def is_entra(self) -> bool:
        return not self.authority

    @property
    def discovery_url(self) -> str:
        """Where msal (and we) read the OpenID configuration; AzureError when misconfigured."""
        if self.authority:
            return _https_url(self.authority, "authority").rstrip("/") + \
                "/.well-known/openid-configuration"
        return f"{self._entra_authority()}/v2.0/.well-known/openid-configuration"

    def _entra_authority(self) -> str:
        tenant = (self.tenant or "").strip()
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.-]*", tenant):
            raise AzureError("Set the Azure AD tenant (its id or domain) "
                             "or an OpenID authority URL.")
        return f"{_https_url(self.instance, 'instance').rstrip('/')}/{tenant}"


@dataclass(frozen=True)
class AzureIdentity:
    oid: str            # the user's object id (sub for providers without oid)
    tenant_id: str      # tid (the issuer for providers without tid); key users by (tenant_id, oid)
    username: str
    display_name: str
    email: str | None


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


class AzureError(Exception):
    """`cause` is for administrators: precise, and never holds the client secret or a token.
    `error` is the provider's OAuth error code (access_denied, invalid_client, ...), if any."""

    def __init__(self, cause: str, *, error: str | None = None):
        super().__init__(cause)
        self.cause = cause
        self.error = error


class AzureUnavailable(AzureError):
    """The provider cannot be reached, its TLS certificate is not trusted, or discovery failed."""


class AzureRejected(AzureError):
    """The sign-in was refused: wrong state, an error from the provider, or an invalid ID token."""


def begin_sign_in(config: AzureConfig, redirect_uri: str, *, login_hint: str | None = None,
                  prompt: str | None = None) -> tuple[str, dict]:
    """(auth_uri, flow): send the browser to auth_uri and keep flow (small, JSON) in the session.
    State, nonce and the PKCE verifier are msal's. Raises AzureError."""
    application = _application(config)
    flow = application.initiate_auth_code_flow(SCOPES, redirect_uri=redirect_uri,
                                               login_hint=login_hint, prompt=prompt,
                                               response_mode="query")
    flow.pop("claims_challenge", None)
    return flow.pop("auth_uri"), flow


def finish_sign_in(config: AzureConfig, flow: dict, callback_params: Mapping) -> AzureIdentity:
    """The signed-in user, from the flow begin_sign_in returned and the callback's query
    parameters. Use a flow once: remove it from the session first. Raises AzureError."""
    if not isinstance(flow, dict) or not flow.get("state") or not flow.get("nonce"):
        raise AzureRejected("No Azure AD sign-in was started in this session (no flow).")
    params = {key: callback_params[key] for key in callback_params}
    application = _application(config)
    try:
        with _network_errors(config):
            result = application.acquire_token_by_auth_code_flow(dict(flow), params)
    except (ValueError, RuntimeError) as exc:  # msal: state mismatch, no code, nonce mismatch
        raise AzureRejected(_scrub(config, f"Sign-in response refused: {exc}")) from None
    if "error" in result:
        raise AzureRejected(_scrub(config, _describe(result)), error=result["error"])
    if not result.get("id_token"):
        raise AzureRejected("The provider's token response has no ID token.")
    return identity_from_claims(verify_id_token(config, result["id_token"], flow["nonce"]))


def verify_id_token(config: AzureConfig, id_token: str, nonce: str) -> dict:
    """The claims of an ID token whose signature, issuer, audience, times and nonce are right.
    `nonce` is the flow's; the token carries its SHA-256 (msal's convention). Raises AzureError."""
    discovery = _discovery(config)
    try:
        header = jwt.get_unverified_header(id_token)
        unverified = jwt.decode(id_token, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise AzureRejected(f"The ID token is not a valid JWT: {exc}") from None
    key = _signing_key(config, discovery["jwks_uri"], header.get("kid"))
    issuer = _expected_issuer(discovery["issuer"], unverified)
    try:
        claims = jwt.decode(id_token, key.key, algorithms=[key.algorithm_name],
                            audience=config.client_id, issuer=issuer, leeway=LEEWAY,
                            options={"require": ["iss", "aud", "exp", "iat", "sub"]})
    except jwt.InvalidTokenError as exc:
        raise AzureRejected(_token_problem(exc, header, unverified, issuer, config)) from None
    if not hmac.compare_digest(str(claims.get("nonce", "")), _nonce_claim(nonce)):
        raise AzureRejected("ID token rejected: its nonce is not this sign-in's.")
    return claims


def identity_from_claims(claims: dict) -> AzureIdentity:
    """Entra's oid and tid; for other providers sub and the issuer stand in for them."""
    username = (claims.get("preferred_username") or claims.get("upn") or claims.get("email")
                or claims["sub"])
    return AzureIdentity(oid=claims.get("oid") or claims["sub"],
                         tenant_id=claims.get("tid") or claims["iss"],
                         username=username, display_name=claims.get("name") or username,
                         email=claims.get("email") or None)


def test_connection(config: AzureConfig) -> list[Check]:
    """Discovery, Signing keys, Client credentials, in order, stopping at the first failure.
    Fetches afresh (no caches); never raises for provider problems."""
    checks = []
    steps = (("Discovery", _check_discovery), ("Signing keys", _check_signing_keys),
             ("Client credentials", _check_client_credentials))
    state = {}
    for name, step in steps:
        try:
            detail = step(config, state)
        except AzureError as exc:
            return [*checks, Check(name, False, _scrub(config, exc.cause))]
        except Exception as exc:  # an admin's diagnosis beats a 500 on odd provider answers
            return [*checks, Check(name, False, _scrub(config, f"{type(exc).__name__}: {exc}"))]
        checks.append(Check(name, True, _scrub(config, detail)))
    return checks


test_connection.__test__ = False  # not a pytest test, whatever imports it


def forget_caches() -> None:
    """Drop cached discovery documents, signing keys and msal applications (e.g. after the
    settings changed, or between tests)."""
    with _cache_lock:
        _cache.clear()


def _check_discovery(config, state) -> str:  # each step returns its detail or raises
    state["discovery"] = _fetch_discovery(config)
    return f"Issuer {state['discovery']['issuer']}"


def _check_signing_keys(config, state) -> str:
    jwks_uri = state["discovery"]["jwks_uri"]
    keys = _fetch_jwks(config, jwks_uri)
    if not keys:
        raise AzureUnavailable(f"No RSA or EC signing keys at {jwks_uri}")
    return f"{len(keys)} signing key{'s' if len(keys) != 1 else ''} at {jwks_uri}"


def _check_client_credentials(config, state) -> str:
    if config.is_entra:
        application = _new_application(config)
        with _network_errors(config):
            result = application.acquire_token_for_client(scopes=[f"{config.client_id}/.default"])
    else:
        result = _client_credentials_grant(config, state["discovery"]["token_endpoint"])
    if "access_token" in result:
        return f"The provider accepted client {config.client_id} and its secret."
    if not config.is_entra and result.get("error") in ("unauthorized_client",
                                                       "unsupported_grant_type"):
        return (f"Client {config.client_id} is known, but the provider does not allow it the "
                f"client_credentials grant ({result['error']}), so the secret is checked only "
                "at the first sign-in.")
    raise AzureRejected(_describe(result), error=result.get("error"))


def _client_credentials_grant(config, token_endpoint) -> dict:
    with _network_errors(config), _session(config) as session:
        response = session.post(token_endpoint, data={
            "grant_type": "client_credentials", "client_id": config.client_id,
            "client_secret": config.client_secret})
    try:
        return response.json()
    except ValueError:
        raise AzureUnavailable(
            f"HTTP {response.status_code} at {token_endpoint}, not JSON") from None


def _discovery(config) -> dict:
    return _cached(("discovery", config.discovery_url, config.ca_bundle),
                   lambda: _fetch_discovery(config))


def _fetch_discovery(config) -> dict:
    document = _get_json(config, config.discovery_url)
    missing = [name for name in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
               if not isinstance(document.get(name), str)]
    if missing:
        raise AzureUnavailable(f"The OpenID configuration at {config.discovery_url} lacks "
                               + ", ".join(missing))
    _https_url(document["jwks_uri"], "jwks_uri")
    return document


def _signing_key(config, jwks_uri, kid) -> jwt.PyJWK:
    """The key named by kid; the key set is fetched again once when kid is unknown (rotation)."""
    for refresh in (False, True):
        keys = _cached(("jwks", jwks_uri, config.ca_bundle),
                       lambda: _fetch_jwks(config, jwks_uri), refresh=refresh)
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        if kid is not None and kid in keys:
            return keys[kid]
    raise AzureRejected(f"ID token rejected: it is signed with a key the provider does not "
                        f"publish (kid {kid!r}).")


def _fetch_jwks(config, jwks_uri) -> dict:
    """kid -> PyJWK for the asymmetric signing keys only (never oct/HS*, never 'none')."""
    keys = {}
    for data in _get_json(config, jwks_uri).get("keys", []):
        if not _is_signing_key(data):
            continue
        try:
            keys[data.get("kid")] = jwt.PyJWK(data)  # without "alg": RS256, or ES* by curve
        except jwt.PyJWTError:
            continue
    return keys


def _is_signing_key(data) -> bool:
    return (isinstance(data, dict) and data.get("kty") in ("RSA", "EC")
            and data.get("use", "sig") == "sig"
            and data.get("alg", "RS256") in SIGNING_ALGORITHMS)


def _expected_issuer(discovered: str, unverified: dict) -> str:
    """The discovered issuer; Entra's multi-tenant one is a template filled with the token's tid."""
    if "{tenantid}" not in discovered:
        return discovered
    tid = unverified.get("tid")
    if not isinstance(tid, str) or not _TENANT_ID.fullmatch(tid):
        raise AzureRejected("ID token rejected: no valid tenant id (tid) "
                            "for a multi-tenant issuer.")
    return discovered.replace("{tenantid}", tid)


def _token_problem(exc, header, unverified, issuer, config) -> str:
    if isinstance(exc, jwt.InvalidAlgorithmError):
        reason = f"its algorithm {header.get('alg')!r} is not the signing key's"
    elif isinstance(exc, jwt.InvalidSignatureError):
        reason = "its signature does not verify with the provider's key"
    elif isinstance(exc, jwt.ExpiredSignatureError):
        reason = "it has expired"
    elif isinstance(exc, jwt.ImmatureSignatureError):
        reason = "it is not valid yet (nbf or iat in the future)"
    elif isinstance(exc, jwt.InvalidAudienceError):
        reason = f"its audience {unverified.get('aud')!r} is not the client id {config.client_id!r}"
    elif isinstance(exc, jwt.InvalidIssuerError):
        reason = f"its issuer {unverified.get('iss')!r} is not {issuer!r}"
    else:
        reason = str(exc)
    return f"ID token rejected: {reason}."


def _nonce_claim(nonce: str) -> str:
    return hashlib.sha256(str(nonce).encode("utf-8")).hexdigest()


def _application(config) -> msal.ConfidentialClientApplication:
    return _cached(("msal", config), lambda: _new_application(config))


def _new_application(config) -> msal.ConfidentialClientApplication:
    if config.authority:
        where = {"oidc_authority": _https_url(config.authority, "authority").rstrip("/")}
    else:
        where = {"authority": config._entra_authority()}
        if config.instance.rstrip("/") != ENTRA_INSTANCE:
            # else msal asks login.microsoftonline.com whether it knows this host
            where["instance_discovery"] = False
    try:
        with _network_errors(config):
            return msal.ConfidentialClientApplication(
                config.client_id, client_credential=config.client_secret,
                http_client=_session(config), token_cache=_NoTokenCache(),
                exclude_scopes=["offline_access"], **where)
    except ValueError as exc:  # msal: discovery answered 4xx, not JSON, or a foreign issuer
        raise AzureUnavailable(_scrub(config, f"OpenID discovery failed: {exc}"[:500])) from None


class _NoTokenCache(msal.TokenCache):
    """We want the ID token once, not a growing per-process cache of users' tokens."""

    def add(self, event, now=None):
        pass


class _Session(requests.Session):
    """Trusts config.ca_bundle or the system store, never REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE:
    requests lets those replace a session's verify=, but not a request's explicit CA path."""

    def __init__(self, verify: str, timeout: float):
        super().__init__()
        self._verify_path = verify
        self._timeout = timeout

    def request(self, method, url, **kwargs):
        no_transaction_open("Azure AD")
        kwargs.setdefault("timeout", self._timeout)
        kwargs["verify"] = self._verify_path
        return super().request(method, url, **kwargs)


def _session(config) -> _Session:
    return _Session(config.ca_bundle or _system_trust(), config.timeout)


def _system_trust() -> str:
    paths = ssl.get_default_verify_paths()
    return paths.cafile or paths.capath or certifi.where()


def _get_json(config, url) -> dict:
    with _network_errors(config), _session(config) as session:
        response = session.get(url)
    if response.status_code != 200:
        raise AzureUnavailable(f"HTTP {response.status_code} at {url}{_oauth_error(response)}")
    try:
        document = response.json()
    except ValueError:
        raise AzureUnavailable(f"The answer at {url} is not JSON.") from None
    if not isinstance(document, dict):
        raise AzureUnavailable(f"The answer at {url} is not a JSON object.")
    return document


def _oauth_error(response) -> str:
    """": error: description" when the body is an OAuth error (Entra: unknown tenant)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    return f": {_describe(body)}" if isinstance(body, dict) and body.get("error") else ""


@contextmanager
def _network_errors(config):
    """Turn requests' exceptions (all OSErrors) into AzureUnavailable with a precise cause."""
    try:
        yield
    except OSError as exc:
        raise AzureUnavailable(_scrub(config, _network_problem(exc, config))) from None


def _network_problem(exc: OSError, config) -> str:
    request = getattr(exc, "request", None)
    where = f" at {request.url}" if request is not None and request.url else ""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        reason = re.search(r"certificate verify failed: ([^(]+?)\s*\(", text)
        if reason or "CERTIFICATE_VERIFY_FAILED" in text:
            detail = reason.group(1) if reason else "not trusted"
            return f"TLS certificate verify failed{where}: {detail} (check the CA file setting)"
        return f"TLS handshake failed{where}: {text[:200]}"
    if isinstance(exc, requests.exceptions.Timeout):
        return f"No answer within {config.timeout:g} s{where}"
    if "Connection refused" in text:
        return f"Connection refused{where}"
    if "NameResolution" in text or "Name or service not known" in text:
        return f"Host name not found{where}"
    if "invalid path" in text or "TLS CA certificate bundle" in text:
        return f"The CA file {config.ca_bundle!r} cannot be read"
    return f"Connection failed{where}: {text[:200]}"


def _describe(result: dict) -> str:
    error = result.get("error") or "error"
    description = result.get("error_description")
    return f"{error}: {description}"[:500] if description else str(error)


def _scrub(config, text: str) -> str:
    secret = config.client_secret or ""
    return text.replace(secret, "[secret]") if len(secret) >= 4 else text


def _https_url(value: str, what: str) -> str:
    parsed = urlparse(value or "")
    if parsed.scheme != "https" or not parsed.hostname:
        raise AzureError(f"The {what} must be an https:// URL, not {value!r}.")
    return value


_cache: dict = {}
_cache_lock = threading.Lock()


def _cached(key, load, *, refresh: bool = False):
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None and not refresh and hit[0] > now:
        return hit[1]
    value = load()
    with _cache_lock:
        for stale in [k for k, (expires, _) in _cache.items() if expires <= now]:
            del _cache[stale]
        _cache[key] = (now + CACHE_TTL, value)
    return value
