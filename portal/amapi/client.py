"""The one way the portal talks to Google's Android Management API.

Google's own libraries do the talking: google-auth signs the service-account JWT and gets the
access token from the key's token_uri; google-api-python-client builds each call from the
discovery document it ships (static_discovery: nothing is fetched). AMAPI_ENDPOINT (config)
points both at another server of the same protocol (the tests' loopback stand-in).

Every failure becomes an AmapiError that names the step (key, token, enterprise, policy, or
the call's own) and says what happened in a plain sentence, never with the key in it. 429 and
503 (and 500/502/504 for calls that are safe to repeat) are retried, waiting what Google's
Retry-After says, or a growing back-off, within AMAPI_RETRIES and AMAPI_MAX_WAIT.
"""
import json
import logging
import random
import socket
import threading
import time
from dataclasses import dataclass

import google_auth_httplib2
import httplib2
import sqlalchemy as sa
from flask import current_app
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from portal import vault
from portal.amapi.models import AmapiSettings
from portal.database import db, no_transaction_open
from portal.errors import DomainError

SCOPE = "https://www.googleapis.com/auth/androidmanagement"
# Where Android Device Policy continues after our sign-in page (SigninDetail.signinUrl).
ENROLL_URL = "https://enterprise.google.com/android/enroll"
# Durations.MAX_VALUE, the longest enrollment token Google issues (about 10,000 years).
MAX_DURATION_SECONDS = 315_576_000_000
_KEY_FIELDS = ("type", "client_email", "private_key", "private_key_id", "token_uri")
_RETRY_ALWAYS = {429, 503}          # Google did not act on the request: safe to send again
_RETRY_IDEMPOTENT = {500, 502, 504}  # it may have: only reads and deletes are repeated
_STATUS_WORDS = {
    400: "refused the request as invalid",
    401: "did not accept the portal's credentials",
    403: "refused permission",
    404: "does not know",
    409: "reported a conflict",
    429: "asked the portal to slow down (quota exceeded)",
    500: "had an internal error",
    502: "could not be reached (bad gateway)",
    503: "is unavailable for the moment",
    504: "did not answer in time (gateway timeout)",
}
log = logging.getLogger(__name__)


class AmapiError(DomainError):
    """A call to Google failed; .errors = {step: sentence}, .status the HTTP status (None when
    Google was not reached or refused the key), .transient when trying again later may work."""

    def __init__(self, step: str, message: str, *, status: int | None = None,
                 transient: bool = False):
        super().__init__({step: message})
        self.step, self.status, self.transient = step, status, transient


def current() -> AmapiSettings | None:
    """The saved connection, or None before an admin saved one."""
    return db.session.get(AmapiSettings, 1)


def is_configured(settings: AmapiSettings | None = None) -> bool:
    settings = settings if settings is not None else current()
    return bool(settings and settings.enterprise_name and settings.key_enc)


def parse_key(text: str) -> dict:
    """The service-account key file's JSON, checked as Google's libraries need it.

    Raises AmapiError("key", ...) naming what is wrong (never echoing the key)."""
    try:
        info = json.loads(text)
    except (ValueError, TypeError):
        raise AmapiError("key", "The service-account key is not JSON: upload the key file "
                         "Google Cloud made for the service account (a .json file).") from None
    if not isinstance(info, dict):
        raise AmapiError("key", "The service-account key must be a JSON object.")
    missing = [name for name in _KEY_FIELDS if not isinstance(info.get(name), str)
               or not info.get(name)]
    if missing:
        raise AmapiError("key", "The service-account key lacks " + ", ".join(missing)
                         + ": upload the key file of a service account, as Google Cloud "
                         "made it.")
    if info["type"] != "service_account":
        raise AmapiError("key", f"The key is of type \"{info['type'][:40]}\", not a "
                         "service-account key.")
    try:
        service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    except (ValueError, TypeError):
        raise AmapiError("key", "The service-account key's private key cannot be read: the "
                         "file is damaged or was edited.") from None
    return info


@dataclass
class Connection:
    """A connection to one enterprise with one key: build once, call many times."""
    settings: AmapiSettings
    service: object
    credentials: service_account.Credentials
    http: google_auth_httplib2.AuthorizedHttp

    @property
    def enterprise(self) -> str:
        return self.settings.enterprise_name

    def call(self, step: str, request, *, idempotent: bool = True) -> dict:
        """Execute a googleapiclient request; retry what Google asks to retry. Raises
        AmapiError(step, ...)."""
        no_transaction_open(f"Google ({step})")
        config = current_app.config
        attempts = max(1, int(config.get("AMAPI_RETRIES", 3)) + 1)
        for attempt in range(attempts):
            try:
                return request.execute() or {}
            except HttpError as error:
                status = int(error.resp.status)
                retry = status in _RETRY_ALWAYS or (idempotent and status in _RETRY_IDEMPOTENT)
                failure = AmapiError(step, _http_sentence(step, error, self.settings),
                                     status=status, transient=status in _RETRY_ALWAYS
                                     | _RETRY_IDEMPOTENT)
                wait = _retry_after(error)
            except auth_exceptions.RefreshError as error:
                raise AmapiError("token", _refresh_sentence(error)) from None
            except (auth_exceptions.TransportError, httplib2.HttpLib2Error, socket.timeout,
                    TimeoutError, OSError) as error:
                retry = idempotent
                failure = AmapiError(step, _transport_sentence(error), transient=True)
                wait = None
            if not retry or attempt == attempts - 1:
                raise failure
            time.sleep(_wait(wait, attempt))
        raise AssertionError("unreachable")  # pragma: no cover


def longest_call_seconds() -> float:
    """How long one call to Google may take with every retry (AMAPI_TIMEOUT and AMAPI_MAX_WAIT
    per attempt): a lease or a task's claim (amapi.lease, amapi.tasks) lasts that long."""
    config = current_app.config
    attempts = max(1, int(config.get("AMAPI_RETRIES", 3)) + 1)
    return attempts * (float(config.get("AMAPI_TIMEOUT", 20))
                       + float(config.get("AMAPI_MAX_WAIT", 30)))


def connect(settings: AmapiSettings | None = None, *, key_text: str | None = None) -> Connection:
    """A Connection with the saved settings (or the given ones and key, for Test connection).
    Raises AmapiError("settings"/"key", ...) when there is nothing to connect with."""
    settings = settings if settings is not None else current()
    if settings is None or not settings.enterprise_name:
        raise AmapiError("settings", "The Android Management API is not set up: an "
                         "Administrator enters it under Admin → Android Management API.")
    config = current_app.config
    endpoint, timeout = config.get("AMAPI_ENDPOINT"), float(config.get("AMAPI_TIMEOUT", 20))
    if key_text is None:
        if not settings.key_enc:
            raise AmapiError("key", "No service-account key is saved.")
        # The saved key's client, built once per thread: building it reads the discovery
        # document (about 10 ms), and its access token is good for an hour.
        cache_key = (settings.key_enc, endpoint, timeout)
        cached = getattr(_clients, "entry", None)
        if cached is None or cached[0] != cache_key:
            cached = (cache_key, _client(vault.decrypt(settings.key_enc), endpoint, timeout))
            _clients.entry = cached
        return Connection(_snapshot(settings), *cached[1])
    return Connection(_snapshot(settings), *_client(key_text, endpoint, timeout))


def _snapshot(settings: AmapiSettings) -> AmapiSettings:
    """A copy outside the session: a commit does not expire it, so the calls made with the
    connection never read the database (nor start a transaction) between Google's answers."""
    columns = sa.inspect(AmapiSettings).column_attrs
    return AmapiSettings(**{column.key: getattr(settings, column.key) for column in columns})


_clients = threading.local()  # httplib2.Http is not thread-safe: one client per thread


def _client(key_text: str, endpoint: str | None, timeout: float):
    """(service, credentials, http) for a key: Google's client, pointed at `endpoint`."""
    info = parse_key(key_text)
    credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    http = google_auth_httplib2.AuthorizedHttp(credentials, http=httplib2.Http(timeout=timeout))
    options = {"api_endpoint": endpoint.rstrip("/") + "/"} if endpoint else None
    service = build("androidmanagement", "v1", http=http, static_discovery=True,
                    cache_discovery=False, client_options=options)
    return service, credentials, http


def fetch_access_token(connection: Connection) -> None:
    """Ask the key's token_uri for an access token now (Test connection's "token" step).
    Raises AmapiError("token", ...)."""
    try:
        connection.credentials.refresh(google_auth_httplib2.Request(connection.http.http))
    except auth_exceptions.RefreshError as error:
        raise AmapiError("token", _refresh_sentence(error)) from None
    except (auth_exceptions.TransportError, httplib2.HttpLib2Error, OSError) as error:
        raise AmapiError("token", _transport_sentence(error), transient=True) from None


def duration(seconds: int | None) -> str:
    """An enrollment token's duration as the API writes it ("3600s"); None (Unlimited) is the
    longest Google issues."""
    if seconds is None:
        return f"{MAX_DURATION_SECONDS}s"
    return f"{max(60, min(int(seconds), MAX_DURATION_SECONDS))}s"


def _wait(retry_after: float | None, attempt: int) -> float:
    config = current_app.config
    most = float(config.get("AMAPI_MAX_WAIT", 30))
    if retry_after is not None:
        return min(retry_after, most)
    base = float(config.get("AMAPI_RETRY_BASE", 1.0))
    return min(base * (2 ** attempt) * (0.5 + random.random() / 2), most)


def _retry_after(error: HttpError) -> float | None:
    value = error.resp.get("retry-after") if error.resp is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _google_message(error: HttpError) -> str:
    """Google's own message from its error JSON ({"error": {"message": ...}}), one line."""
    try:
        body = json.loads(error.content.decode("utf-8", "replace"))
        message = body["error"]["message"]
    except (ValueError, KeyError, TypeError, AttributeError):
        message = ""
    message = " ".join(str(message).split())
    return message[:300]


def _http_sentence(step: str, error: HttpError, settings: AmapiSettings) -> str:
    status = int(error.resp.status)
    words = _STATUS_WORDS.get(status, f"answered HTTP {status}")
    if status == 404 and step in ("enterprise", "settings"):
        sentence = f"Google does not know the enterprise {settings.enterprise_name}."
    elif status == 403:
        sentence = (f"Google refused permission: the service account may not manage "
                    f"{settings.enterprise_name}.")
    else:
        sentence = f"Google {words}."
    if message := _google_message(error):
        sentence += f" Google said: \"{message}\""
    return sentence


def _refresh_sentence(error: auth_exceptions.RefreshError) -> str:
    # RefreshError's args: (message, response body); neither holds the key, but keep it short.
    detail = " ".join(str(error.args[0] if error.args else "").split())[:200]
    return ("Google refused the service-account key when the portal asked for an access "
            f"token (the key was deleted, or belongs to another project): {detail}").rstrip(": ")


def _transport_sentence(error: Exception) -> str:
    if isinstance(error, (socket.timeout, TimeoutError)) or "timed out" in str(error):
        return "Google did not answer in time; the portal will try again."
    return "Google could not be reached (network error); the portal will try again."
