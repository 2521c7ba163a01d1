"""POST /api/amapi/notifications: Google's Pub/Sub push of Android Management API notifications.

Pub/Sub authenticates its pushes with an OIDC ID token (Authorization: Bearer …) that Google
signs for the push subscription's service account; the portal checks Google's signature (the
certificates at AMAPI_PUSH_CERTS_URL), the audience (this URL under PORTAL_PUBLIC_URL), the
issuer, and that the account is the one saved under Admin → Android Management API (push
account) with a verified email. No cookie is involved, so there is nothing for CSRF to protect
(the blueprint is exempt). Answers are the API's one JSON error shape; 204 acknowledges.
Google's certificates are cached for as long as they say (Cache-Control max-age), so a push
is checked without a fetch, and a fetch that gets no answer within AMAPI_PUSH_CERTS_TIMEOUT is
a 503 unavailable (Pub/Sub pushes again); AMAPI_PUSH_LIMIT pushes per address, past it 429
rate_limited.

ENROLLMENT and STATUS_REPORT carry a Device (recorded by portal.enrollment.device_policy);
anything else (COMMAND, USAGE_LOGS, Google's test message without data) is acknowledged and
ignored. Pub/Sub delivers at least once: a redelivery records nothing twice.
"""
import base64
import binascii
import functools
import json
import logging
import threading

import cachecontrol
import google.auth.exceptions
import google.auth.transport.requests
import requests
from cachecontrol.cache import DictCache
from flask import Blueprint, current_app, request
from google.oauth2 import id_token

from portal.amapi.client import current
from portal.enrollment.device_policy import NotADevice, record_device
from portal.extensions import client_address, limiter
from portal.web.json_errors import error_response

bp = Blueprint("amapi_push", __name__)
log = logging.getLogger(__name__)

PATH = "/api/amapi/notifications"
MAX_BODY = 1024 * 1024  # a STATUS_REPORT's Device can be large; Pub/Sub allows far more
ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEVICE_TYPES = ("ENROLLMENT", "STATUS_REPORT")


# Google's certificates are kept as long as its Cache-Control max-age says (hours), as
# google-auth's docs advise (a CacheControl session behind google.auth.transport.requests):
# one cache per process, shared by its threads (DictCache locks its writes); a requests
# session per thread, since a Session is not meant to be shared across threads.
_certificates = DictCache()
_sessions = threading.local()


def _certificate_transport() -> google.auth.transport.requests.Request:
    transport = getattr(_sessions, "transport", None)
    if transport is None:
        session = cachecontrol.CacheControl(requests.Session(), cache=_certificates)
        transport = _sessions.transport = google.auth.transport.requests.Request(session)
    return transport


def forget_certificates() -> None:
    """Drop the cached certificates (the next push fetches them again)."""
    for key in list(_certificates.data):
        _certificates.delete(key)


def _refused(status: int, message: str, why: str):
    log.warning("Android Management API notification refused (%d): %s", status, why)
    code = {401: "invalid_credentials", 403: "forbidden", 503: "unavailable"}[status]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return error_response(status, code, message, headers)


def _authenticate():
    """None when Google sent it, else the error response. The token is never logged."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return _refused(401, "A Pub/Sub OIDC token (Authorization: Bearer) is required.",
                        "no bearer token")
    settings = current()
    if settings is None or not settings.push_email:
        return _refused(403, "This portal accepts no notifications: no push account is set "
                        "under Admin → Android Management API.", "no push account saved")
    audience = current_app.config["PORTAL_PUBLIC_URL"].rstrip("/") + PATH
    # google-auth's own timeout is 120 s: a certificate server that does not answer would hold
    # this request's worker that long (a cached answer needs no time at all).
    fetch = functools.partial(_certificate_transport(),
                              timeout=current_app.config["AMAPI_PUSH_CERTS_TIMEOUT"])
    try:
        claims = id_token.verify_token(
            token, fetch, audience=audience,
            certs_url=current_app.config["AMAPI_PUSH_CERTS_URL"])
    except google.auth.exceptions.TransportError as error:
        return _refused(503, "Google's certificates could not be fetched; try again.",
                        f"certificates not fetched: {type(error).__name__}")
    except (ValueError, google.auth.exceptions.GoogleAuthError) as error:
        # The library's messages name the claims (audience, expiry), never the token itself.
        return _refused(401, "The OIDC token is not valid (signature, audience or expiry).",
                        " ".join(str(error).split())[:200])
    if claims.get("iss") not in ISSUERS:
        return _refused(401, "The OIDC token was not issued by Google.",
                        f"issuer {str(claims.get('iss'))[:100]!r}")
    if claims.get("email") != settings.push_email or claims.get("email_verified") is not True:
        return _refused(403, "The OIDC token is not the push account's.",
                        f"account {str(claims.get('email'))[:100]!r}")
    return None


def _invalid(message: str):
    return error_response(400, "invalid_request", message)


@bp.errorhandler(429)
def _too_many(error):
    """Past AMAPI_PUSH_LIMIT: Pub/Sub treats a 429 as not delivered and pushes again later."""
    headers = {"Retry-After": value} if (value := error.get_response().headers.get(
        "Retry-After")) else None
    return error_response(429, "rate_limited", "Too many notifications; Pub/Sub delivers "
                          "this one again later.", headers)


@bp.post("/notifications")
@limiter.limit(lambda: current_app.config["AMAPI_PUSH_LIMIT"])
def notifications():
    request.max_content_length = MAX_BODY
    if (refused := _authenticate()) is not None:
        return refused
    body = request.get_json(force=True, silent=True)
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, dict):
        return _invalid("The body is not a Pub/Sub push message: no \"message\" object.")
    attributes = message.get("attributes")
    kind = attributes.get("notificationType") if isinstance(attributes, dict) else None
    data = message.get("data")
    if kind not in DEVICE_TYPES or not data:
        return "", 204  # COMMAND, USAGE_LOGS, Google's test message: nothing to record
    try:
        resource = json.loads(base64.b64decode(data, validate=True))
    except (TypeError, binascii.Error, ValueError):
        return _invalid("The message's data is not base64-encoded JSON.")
    try:
        record_device(resource, source="push", client_address=client_address())
    except NotADevice as error:
        return _invalid(error.message)
    return "", 204
