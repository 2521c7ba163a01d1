"""Azure AD sign-in against a real OpenID provider (npm oidc-provider, Entra-shaped, over https)."""
import base64
import dataclasses
import hashlib
import hmac
import json
import socket
import time
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from portal.directory import azure
from portal.directory.azure import (AzureConfig, AzureRejected, AzureUnavailable, begin_sign_in,
                                    finish_sign_in, test_connection, verify_id_token)
from tests.support.oidc_provider import (USERS, browser_login, running_provider, write_ca_file)

# pytest drops the module's own filter (set at import, inside pytest's collection-time context).
pytestmark = pytest.mark.filterwarnings("ignore:response_mode='form_post' is recommended")
CALLBACK = "http://localhost/ssp/azure/callback"
FLOW_NONCE = "flow-nonce-of-this-sign-in"


def sign_in(config, provider, login="alice@example.org", *, redirect_uri=CALLBACK, **params):
    auth_uri, flow = begin_sign_in(config, redirect_uri)
    return finish_sign_in(config, flow, browser_login(auth_uri, login, ca_file=provider.ca_file,
                                                      **params))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def id_token_claims(provider, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": provider.client_id, "sub": "alice@example.org",
              "oid": USERS["alice@example.org"]["oid"], "tid": provider.tenant,
              "preferred_username": "alice@example.org", "name": "Alice Anderson",
              "iat": now, "nbf": now, "exp": now + 600,
              "nonce": hashlib.sha256(FLOW_NONCE.encode()).hexdigest()}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# ---- the whole flow


@pytest.mark.parametrize("kind", ["entra", "generic", "multi_tenant"])
def test_sign_in_returns_the_identity_from_the_id_token(kind, oidc_provider, request):
    config = request.getfixturevalue(f"{kind}_config")
    identity = sign_in(config, oidc_provider)
    assert identity == azure.AzureIdentity(
        oid="0a1b2c3d-0000-4000-8000-00000000a11c", tenant_id=oidc_provider.tenant,
        username="alice@example.org", display_name="Alice Anderson", email="alice@example.org")


def test_german_names_and_passwords_survive_the_round_trip(entra_config, oidc_provider):
    identity = sign_in(entra_config, oidc_provider, "juergen.mueller@example.org")
    assert identity.display_name == "Jürgen Größer-Müller"
    assert identity.oid == USERS["juergen.mueller@example.org"]["oid"]
    assert identity.email == "juergen.mueller@example.org"


def test_user_without_email_claim_has_no_email(generic_config, oidc_provider):
    identity = sign_in(generic_config, oidc_provider, "bob@example.org")
    assert (identity.username, identity.email) == ("bob@example.org", None)


def test_loopback_callback_on_any_port_is_accepted(entra_config, oidc_provider):
    redirect_uri = "http://127.0.0.1:5123/ssp/azure/callback"
    identity = sign_in(entra_config, oidc_provider, redirect_uri=redirect_uri)
    assert identity.username == "alice@example.org"


def test_flow_is_small_json_and_the_auth_uri_carries_pkce_state_and_nonce(entra_config,
                                                                            oidc_provider):
    auth_uri, flow = begin_sign_in(entra_config, CALLBACK, login_hint="alice@example.org",
                                   prompt="login")
    stored = json.dumps(flow)
    assert len(stored) < 2048
    assert oidc_provider.client_secret not in stored and "auth_uri" not in flow
    assert auth_uri.startswith(f"{oidc_provider.issuer}/oauth2/v2.0/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlparse(auth_uri).query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["state"] == flow["state"]
    assert query["nonce"] == hashlib.sha256(flow["nonce"].encode()).hexdigest()
    assert (query["login_hint"], query["prompt"], query["redirect_uri"]) == (
        "alice@example.org", "login", CALLBACK)
    assert set(query["scope"].split()) == {"openid", "profile", "email"}


def test_flow_survives_a_json_round_trip(entra_config, oidc_provider):
    auth_uri, flow = begin_sign_in(entra_config, CALLBACK)
    params = browser_login(auth_uri, "alice@example.org", ca_file=oidc_provider.ca_file)
    identity = finish_sign_in(entra_config, json.loads(json.dumps(flow)), params)
    assert identity.username == "alice@example.org"


# ---- refused sign-ins


def test_state_mismatch_is_rejected(entra_config, oidc_provider):
    auth_uri, flow = begin_sign_in(entra_config, CALLBACK)
    params = browser_login(auth_uri, "alice@example.org", ca_file=oidc_provider.ca_file)
    with pytest.raises(AzureRejected, match="state mismatch"):
        finish_sign_in(entra_config, flow, {**params, "state": "forged"})


def test_callback_without_a_flow_is_rejected(entra_config):
    with pytest.raises(AzureRejected, match="no flow"):
        finish_sign_in(entra_config, None, {"code": "x", "state": "y"})


def test_user_cancelling_at_the_provider_is_rejected_with_access_denied(entra_config,
                                                                         oidc_provider):
    auth_uri, flow = begin_sign_in(entra_config, CALLBACK)
    params = browser_login(auth_uri, "alice@example.org", ca_file=oidc_provider.ca_file,
                           action="cancel")
    with pytest.raises(AzureRejected) as raised:
        finish_sign_in(entra_config, flow, params)
    assert raised.value.error == "access_denied"
    assert "cancelled" in raised.value.cause


def test_wrong_password_is_refused_by_the_provider(entra_config, oidc_provider):
    auth_uri, _ = begin_sign_in(entra_config, CALLBACK)
    with pytest.raises(AssertionError, match="refused the login"):
        browser_login(auth_uri, "alice@example.org", "wrong", ca_file=oidc_provider.ca_file)


def test_wrong_client_secret_is_rejected_as_invalid_client(entra_config, oidc_provider):
    config = dataclasses.replace(entra_config, client_secret="not-the-secret")
    with pytest.raises(AzureRejected) as raised:
        sign_in(config, oidc_provider)
    assert raised.value.error == "invalid_client"
    assert "not-the-secret" not in raised.value.cause


def test_authorization_code_cannot_be_redeemed_twice(entra_config, oidc_provider):
    auth_uri, flow = begin_sign_in(entra_config, CALLBACK)
    params = browser_login(auth_uri, "alice@example.org", ca_file=oidc_provider.ca_file)
    finish_sign_in(entra_config, flow, params)
    with pytest.raises(AzureRejected) as raised:
        finish_sign_in(entra_config, flow, params)
    assert raised.value.error == "invalid_grant"


# ---- ID token verification


def test_token_signed_with_the_providers_key_is_accepted(entra_config, oidc_provider):
    token = oidc_provider.sign(id_token_claims(oidc_provider))
    claims = verify_id_token(entra_config, token, FLOW_NONCE)
    assert claims["oid"] == USERS["alice@example.org"]["oid"]


@pytest.mark.parametrize("overrides, reason", [
    ({"aud": "another-app"}, "audience 'another-app'"),
    ({"iss": "https://login.example.net/evil/v2.0"}, "issuer 'https://login.example.net"),
    ({"iat": int(time.time()) - 7200, "nbf": int(time.time()) - 7200,
      "exp": int(time.time()) - 3600}, "expired"),
    ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ({"nonce": hashlib.sha256(b"another sign-in").hexdigest()}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"exp": None}, "exp"),
], ids=["audience", "issuer", "expired", "not-yet-valid", "nonce", "no-nonce", "no-exp"])
def test_token_with_wrong_claims_is_rejected(overrides, reason, entra_config, oidc_provider):
    token = oidc_provider.sign(id_token_claims(oidc_provider, **overrides))
    with pytest.raises(AzureRejected, match=reason):
        verify_id_token(entra_config, token, FLOW_NONCE)


def test_token_signed_by_a_foreign_key_is_rejected(entra_config, oidc_provider):
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = oidc_provider.sign(id_token_claims(oidc_provider), key=foreign)  # the provider's kid
    with pytest.raises(AzureRejected, match="signature does not verify"):
        verify_id_token(entra_config, token, FLOW_NONCE)


def test_unsigned_token_alg_none_is_rejected(entra_config, oidc_provider):
    header = {"alg": "none", "typ": "JWT", "kid": oidc_provider.signing_kid}
    token = ".".join([b64url(json.dumps(header).encode()),
                      b64url(json.dumps(id_token_claims(oidc_provider)).encode()), ""])
    with pytest.raises(AzureRejected, match="algorithm 'none'"):
        verify_id_token(entra_config, token, FLOW_NONCE)


def test_hs256_token_keyed_with_the_public_key_is_rejected(entra_config, oidc_provider):
    public_pem = oidc_provider.signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = {"alg": "HS256", "typ": "JWT", "kid": oidc_provider.signing_kid}
    signing_input = ".".join([b64url(json.dumps(header).encode()),
                              b64url(json.dumps(id_token_claims(oidc_provider)).encode())])
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(AzureRejected, match="algorithm 'HS256'"):
        verify_id_token(entra_config, f"{signing_input}.{b64url(signature)}", FLOW_NONCE)


def test_unknown_kid_refetches_the_keys_exactly_once(entra_config, oidc_provider):
    verify_id_token(entra_config, oidc_provider.sign(id_token_claims(oidc_provider)), FLOW_NONCE)
    before = oidc_provider.stats()["jwks"]
    foreign = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = oidc_provider.sign(id_token_claims(oidc_provider), key=foreign, kid="rotated-away")
    with pytest.raises(AzureRejected, match="kid 'rotated-away'"):
        verify_id_token(entra_config, token, FLOW_NONCE)
    assert oidc_provider.stats()["jwks"] == before + 1
    verify_id_token(entra_config, oidc_provider.sign(id_token_claims(oidc_provider)), FLOW_NONCE)
    assert oidc_provider.stats()["jwks"] == before + 1  # known kids come from the cache


def test_key_missing_from_a_stale_key_set_is_found_by_the_refetch(entra_config, oidc_provider,
                                                                  monkeypatch):
    fetch, calls = azure._fetch_jwks, []

    def stale_then_current(*args):  # the cached set predates the provider's current key
        calls.append(args)
        return {} if len(calls) == 1 else fetch(*args)

    monkeypatch.setattr(azure, "_fetch_jwks", stale_then_current)
    before = oidc_provider.stats()["jwks"]
    verify_id_token(entra_config, oidc_provider.sign(id_token_claims(oidc_provider)), FLOW_NONCE)
    assert len(calls) == 2 and oidc_provider.stats()["jwks"] == before + 1


def test_multi_tenant_issuer_is_filled_with_the_tokens_tenant(multi_tenant_config,
                                                              oidc_provider):
    other_tenant = "99999999-8888-7777-6666-555555555555"
    token = oidc_provider.sign(id_token_claims(oidc_provider, tid=other_tenant))
    with pytest.raises(AzureRejected, match=f"is not 'https://localhost:{oidc_provider.port}/"
                                            f"{other_tenant}/v2.0'"):
        verify_id_token(multi_tenant_config, token, FLOW_NONCE)
    with pytest.raises(AzureRejected, match="tenant id"):
        verify_id_token(multi_tenant_config,
                        oidc_provider.sign(id_token_claims(oidc_provider, tid=None)), FLOW_NONCE)


# ---- the provider unreachable or not trusted


def test_provider_down_is_unavailable_quickly(entra_config):
    config = dataclasses.replace(entra_config, instance=f"https://localhost:{closed_port()}")
    started = time.monotonic()
    with pytest.raises(AzureUnavailable, match="Connection refused"):
        begin_sign_in(config, CALLBACK)
    # No retry loop: far from a timeout, with room for a loaded machine.
    assert time.monotonic() - started < 5


def test_provider_going_down_during_sign_in_is_unavailable(oidc_provider, tmp_path):
    with running_provider(tmp_path) as provider:
        config = AzureConfig(client_id=provider.client_id, client_secret=provider.client_secret,
                             authority=provider.issuer, ca_bundle=provider.ca_file, timeout=5)
        auth_uri, flow = begin_sign_in(config, CALLBACK)
        params = browser_login(auth_uri, "alice@example.org", ca_file=provider.ca_file)
    with pytest.raises(AzureUnavailable, match="Connection refused"):
        finish_sign_in(config, flow, params)


def test_untrusted_ca_is_unavailable_mentioning_the_certificate(entra_config, tmp_path):
    config = dataclasses.replace(entra_config, ca_bundle=str(write_ca_file(tmp_path / "ca.crt")))
    with pytest.raises(AzureUnavailable, match="certificate verify failed"):
        begin_sign_in(config, CALLBACK)


def test_system_trust_does_not_trust_the_test_ca_even_via_requests_ca_bundle(
        entra_config, oidc_provider, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", oidc_provider.ca_file)
    monkeypatch.setenv("CURL_CA_BUNDLE", oidc_provider.ca_file)
    with pytest.raises(AzureUnavailable, match="certificate verify failed"):
        begin_sign_in(dataclasses.replace(entra_config, ca_bundle=None), CALLBACK)


def test_requests_ca_bundle_pointing_elsewhere_changes_nothing(entra_config, oidc_provider,
                                                              monkeypatch, tmp_path):
    unrelated = str(write_ca_file(tmp_path / "unrelated.crt"))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", unrelated)
    monkeypatch.setenv("CURL_CA_BUNDLE", unrelated)
    assert sign_in(entra_config, oidc_provider).username == "alice@example.org"
    assert [check.ok for check in test_connection(entra_config)] == [True, True, True]


def test_unreadable_ca_file_is_unavailable(entra_config, tmp_path):
    config = dataclasses.replace(entra_config, ca_bundle=str(tmp_path / "missing.crt"))
    with pytest.raises(AzureUnavailable, match="cannot be read"):
        begin_sign_in(config, CALLBACK)


# ---- Test connection


@pytest.mark.parametrize("kind", ["entra", "generic", "multi_tenant"])
def test_connection_passes_all_steps(kind, request):
    checks = test_connection(request.getfixturevalue(f"{kind}_config"))
    assert [(c.name, c.ok) for c in checks] == [
        ("Discovery", True), ("Signing keys", True), ("Client credentials", True)], checks
    assert "1 signing key at" in checks[1].detail


@pytest.mark.parametrize("kind", ["entra", "generic"])
def test_connection_with_wrong_secret_fails_at_client_credentials(kind, request, oidc_provider):
    config = dataclasses.replace(request.getfixturevalue(f"{kind}_config"),
                                 client_secret="wrong-secret-value")
    checks = test_connection(config)
    assert [(c.name, c.ok) for c in checks] == [
        ("Discovery", True), ("Signing keys", True), ("Client credentials", False)]
    assert checks[2].detail.startswith("invalid_client")
    details = " ".join(c.detail for c in checks)
    assert "wrong-secret-value" not in details and oidc_provider.client_secret not in details


def test_connection_to_a_provider_that_is_down_fails_at_discovery(entra_config):
    config = dataclasses.replace(entra_config, instance=f"https://localhost:{closed_port()}")
    [check] = test_connection(config)
    assert (check.name, check.ok) == ("Discovery", False)
    assert "Connection refused" in check.detail


def test_connection_with_the_wrong_ca_fails_at_discovery(generic_config, tmp_path):
    config = dataclasses.replace(generic_config, ca_bundle=str(write_ca_file(tmp_path / "x.crt")))
    [check] = test_connection(config)
    assert (check.name, check.ok) == ("Discovery", False)
    assert "certificate verify failed" in check.detail


def test_connection_to_an_unknown_tenant_names_the_url(entra_config, oidc_provider):
    [check] = test_connection(dataclasses.replace(entra_config, tenant="contoso.example"))
    assert not check.ok
    assert check.detail == (f"HTTP 404 at {oidc_provider.origin}/contoso.example/v2.0"
                            "/.well-known/openid-configuration")


def test_connection_refuses_a_plain_http_authority(generic_config):
    [check] = test_connection(dataclasses.replace(generic_config,
                                                  authority="http://localhost/tenant/v2.0"))
    assert (check.name, check.ok) == ("Discovery", False)
    assert "https://" in check.detail


def test_config_repr_hides_the_secret(entra_config):
    assert entra_config.client_secret not in repr(entra_config)
