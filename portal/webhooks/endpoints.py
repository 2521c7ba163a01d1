"""Webhook endpoints (Admin → Webhooks): add with a secret shown once, enable, disable,
rotate the secret, delete, and the deliveries' list with "Send again". Every change commits with its audit event
(never the secret). portal.webhooks sits beside portal.audit and may not import it, so the
caller passes `audit`: portal.audit.log.record with the actor bound (Audit below)."""
import base64
import secrets
import unicodedata
from datetime import timedelta
from typing import Protocol
from urllib.parse import urlsplit

import sqlalchemy as sa
import sqlalchemy.orm  # noqa: F401  (joinedload)
from flask import current_app

from portal import vault
from portal.database import db, utcnow
from portal.errors import WHOLE, DomainError
from portal.webhooks import addresses
from portal.webhooks.events import EVENT_TYPES
from portal.webhooks.models import STATUSES, WebhookDelivery, WebhookEndpoint

MAX_URL_LENGTH = 2048
MAX_DESCRIPTION_LENGTH = 200
SECRET_BYTES = 24


class Audit(Protocol):
    """record(action, target=…, **details) with actor_type and actor already given."""
    def __call__(self, action: str, /, **details) -> object: ...


class WebhookError(DomainError):
    """An endpoint or delivery action was refused; .errors names the field."""


def new_secret() -> str:
    """A Standard Webhooks secret: whsec_ and base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_of(endpoint: WebhookEndpoint) -> str:
    return vault.decrypt(endpoint.secret_enc)


def url_problem(url: str) -> str | None:
    if not url:
        return "Enter the https:// address that receives the events."
    if len(url) > MAX_URL_LENGTH:
        return f"The address must be at most {MAX_URL_LENGTH} characters."
    if any(unicodedata.category(char) in ("Cc", "Zs") for char in url):
        return "The address must not contain spaces or control characters."
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  (raises ValueError when the port is not a number)
    except ValueError:
        return "This is not a valid address; enter it as https://host/path."
    if parts.scheme.lower() != "https":
        return "Webhooks are sent only over https://; enter an https:// address."
    if not host:
        return "The address has no host name; enter it as https://host/path."
    if parts.username or parts.password:
        return "Put no user name or password in the address; events are signed instead."
    return addresses.literal_problem(host)


def validate(url: str, description: str, events: list[str]) -> dict[str, str]:
    errors = {}
    if problem := url_problem(url):
        errors["url"] = problem
    if len(description) > MAX_DESCRIPTION_LENGTH \
            or any(unicodedata.category(char) == "Cc" for char in description):
        errors["description"] = (f"The description must be at most {MAX_DESCRIPTION_LENGTH} "
                                 "characters without line breaks.")
    if not events:
        errors["events"] = "Choose at least one event to send to this endpoint."
    elif any(event not in EVENT_TYPES for event in events):
        errors["events"] = "Choose events from the list."
    return errors


def create_endpoint(url: str, description: str, events: list[str], *,
                    actor: str, audit: Audit) -> tuple[WebhookEndpoint, str]:
    """Add an enabled endpoint and commit; returns it with its secret (shown once).
    Raises WebhookError with every problem, nothing written."""
    url, description, events = (url or "").strip(), (description or "").strip(), list(events or [])
    if errors := validate(url, description, events):
        raise WebhookError(errors)
    events = [event for event in EVENT_TYPES if event in events]  # in the list's order, once
    secret = new_secret()
    endpoint = WebhookEndpoint(url=url, description=description, events=events, enabled=True,
                               secret_enc=vault.encrypt(secret), created_by=actor)
    db.session.add(endpoint)
    db.session.flush()
    audit("webhook.create", target=str(endpoint.id), url=url,
           events=events)
    db.session.commit()
    return endpoint, secret


def get(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookError({WHOLE: f"There is no webhook endpoint {endpoint_id} (any more)."})
    return endpoint


def set_enabled(endpoint_id: int, enabled: bool, *, audit: Audit) -> WebhookEndpoint:
    """Enable or disable the endpoint and commit. A disabled endpoint gets no new events; what
    is queued for it already is still delivered."""
    endpoint = get(endpoint_id)
    if endpoint.enabled != enabled:
        endpoint.enabled = enabled
        audit("webhook.enable" if enabled else "webhook.disable", target=str(endpoint.id),
              url=endpoint.url)
    db.session.commit()
    return endpoint


def rotate_secret(endpoint_id: int, *, keep_previous: bool,
                  audit: Audit) -> tuple[WebhookEndpoint, str]:
    """A new signing secret for the endpoint, committed; returns it (shown once). keep_previous:
    the secret it replaces signs too (a second signature in the same header) for
    WEBHOOK_SECRET_OVERLAP_HOURS, so the receiver can switch without losing events; otherwise
    (a leaked secret) it stops signing at once. An older previous secret is dropped either way."""
    endpoint = get(endpoint_id)
    secret = new_secret()
    until = None
    if keep_previous:
        until = utcnow() + timedelta(hours=current_app.config["WEBHOOK_SECRET_OVERLAP_HOURS"])
        endpoint.previous_secret_enc, endpoint.previous_secret_until = endpoint.secret_enc, until
    else:
        endpoint.previous_secret_enc = endpoint.previous_secret_until = None
    endpoint.secret_enc = vault.encrypt(secret)
    audit("webhook.rotate_secret", target=str(endpoint.id), url=endpoint.url,
          previous_signs_until=until.isoformat() if until else None)
    db.session.commit()
    return endpoint, secret


def delete_endpoint(endpoint_id: int, *, audit: Audit) -> str:
    """Delete the endpoint with its deliveries and commit; returns its URL."""
    endpoint = get(endpoint_id)
    url = endpoint.url
    db.session.execute(sa.delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    db.session.delete(endpoint)
    audit("webhook.delete", target=str(endpoint_id), url=url)
    db.session.commit()
    return url


def all_endpoints() -> list[WebhookEndpoint]:
    return list(db.session.scalars(sa.select(WebhookEndpoint).order_by(WebhookEndpoint.id)))


def deliveries(status: str | None = None) -> sa.Select:
    """Deliveries with their endpoint, newest first, optionally of one status."""
    statement = (sa.select(WebhookDelivery).options(sa.orm.joinedload(WebhookDelivery.endpoint))
                 .order_by(WebhookDelivery.id.desc()))
    if status in STATUSES:
        statement = statement.where(WebhookDelivery.status == status)
    return statement


def resend(delivery_id: int, *, audit: Audit) -> WebhookDelivery:
    """Queue a delivered or failed delivery again, due now, attempts reset, with the same
    event id and body (the receiver may recognise it), and commit. The conditional UPDATE
    makes two admins pressing Send again at once queue it only once."""
    result = db.session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id,
               WebhookDelivery.status.in_(("delivered", "failed")))
        .values(status="queued", attempts=0, next_attempt_at=utcnow(), locked_until=None,
                claim_token=None, updated_at=utcnow())
        .execution_options(synchronize_session=False))
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    if result.rowcount != 1:
        db.session.rollback()
        if delivery is None:
            raise WebhookError({WHOLE: f"There is no webhook delivery {delivery_id}."})
        raise WebhookError({WHOLE: f"Delivery {delivery_id} is {delivery.status} already; "
                                   "it will be sent without Send again."})
    audit("webhook.resend", target=str(delivery_id), event_id=delivery.event_id,
          event_type=delivery.event_type, url=delivery.endpoint.url)
    db.session.commit()
    return delivery
