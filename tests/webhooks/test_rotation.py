"""Rotate secret: the new secret signs at once; kept, the old one signs beside it (two
signatures in one header, each verified by the standardwebhooks library) until the overlap
ends; not kept (a leak), the old one stops at once. The console shows the new secret once,
confirms first, audits without the secret, and is for Administrators only."""
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.audit.models import AuditEvent
from portal.database import db, utcnow
from portal.webhooks.endpoints import WebhookError, rotate_secret, secret_of
from portal.webhooks.events import emit
from portal.webhooks.models import WebhookEndpoint
from tests.conftest import csrf_token
from tests.webhooks.conftest import audit_as

PAGE = "/admin/webhooks"


def _event(serial="SN-1"):
    emit("device.enrolled", {"device": {"id": "dev1", "serial_number": serial}})
    db.session.commit()


def _verifies(secret, seen) -> bool:
    try:
        Webhook(secret).verify(seen.body, seen.headers)
    except WebhookVerificationError:
        return False
    return True


def test_a_kept_old_secret_signs_beside_the_new_one_until_the_overlap_ends(
        app, receiver, make_endpoint, deliver):
    app.config["WEBHOOK_SECRET_OVERLAP_HOURS"] = 24
    endpoint = make_endpoint()
    old = receiver.secret

    endpoint, new = rotate_secret(endpoint.id, keep_previous=True, audit=audit_as())

    assert new != old and new.startswith("whsec_") and secret_of(endpoint) == new
    until = endpoint.previous_secret_until
    assert timedelta(hours=23, minutes=59) < until - utcnow() <= timedelta(hours=24)
    _event()
    assert deliver().delivered == 1           # the receiver still holds the old secret
    seen = receiver.requests[-1]
    assert len(seen.headers["webhook-signature"].split(" ")) == 2
    assert _verifies(old, seen) and _verifies(new, seen)

    receiver.secret = new                      # the receiver switched: delivered as well
    _event("SN-2")
    assert deliver().delivered == 1

    endpoint.previous_secret_until = utcnow() - timedelta(seconds=1)   # the overlap is over
    db.session.commit()
    _event("SN-3")
    assert deliver().delivered == 1
    seen = receiver.requests[-1]
    assert seen.headers["webhook-signature"].count("v1,") == 1
    assert _verifies(new, seen) and not _verifies(old, seen)


def test_a_leaked_secret_stops_signing_at_once(receiver, make_endpoint, deliver):
    endpoint = make_endpoint()
    old = receiver.secret
    rotate_secret(endpoint.id, keep_previous=True, audit=audit_as())   # an earlier overlap…
    endpoint, new = rotate_secret(endpoint.id, keep_previous=False, audit=audit_as())
    assert endpoint.previous_secret_enc is None and endpoint.previous_secret_until is None

    _event()
    counts = deliver()
    assert (counts.delivered, counts.retrying) == (0, 1)   # the receiver has the old one: 401
    seen = receiver.requests[-1]
    assert seen.status == 401 and not _verifies(old, seen) and _verifies(new, seen)
    receiver.secret = new
    assert deliver(minutes=600).delivered == 1               # the same event, now verified


def test_rotating_an_endpoint_that_is_gone_is_refused(db):
    with pytest.raises(WebhookError, match="no webhook endpoint 999"):
        rotate_secret(999, keep_previous=True, audit=audit_as())


def _rotate(client, endpoint_id, keep: bool):
    page = f"{PAGE}/{endpoint_id}/rotate"
    data = {"csrf_token": csrf_token(client, PAGE)}
    if keep:
        data["keep_previous"] = "y"
    return client.post(page, data=data)


def test_the_console_confirms_then_shows_the_new_secret_once(db, admin_client, make_endpoint):
    endpoint = make_endpoint()
    old_enc = endpoint.secret_enc
    row = admin_client.get(PAGE).get_data(as_text=True)
    assert f'action="/admin/webhooks/{endpoint.id}/rotate"' in row and "Rotate secret" in row

    confirm = admin_client.get(f"{PAGE}/{endpoint.id}/rotate")
    html = confirm.get_data(as_text=True)
    assert confirm.status_code == 200 and "Rotate the signing secret of" in html
    assert re.search(r'<input[^>]*checked[^>]*name="keep_previous"|'
                     r'<input[^>]*name="keep_previous"[^>]*checked', html)
    assert "For 24 hours" in html
    db.session.refresh(endpoint)
    assert endpoint.secret_enc == old_enc             # a GET writes nothing

    response = _rotate(admin_client, endpoint.id, keep=True)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "has a new signing secret" in html
    secret = re.search(r'id="webhook-secret-value">(whsec_[A-Za-z0-9+/=]+)<', html).group(1)
    db.session.refresh(endpoint)
    assert secret_of(endpoint) == secret and endpoint.previous_secret_enc == old_enc
    assert 'id="webhook-secret-overlap"' in html and "two signatures" in html
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert secret not in page and "Old secret signs too until" in page
    [event] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "webhook.rotate_secret")).all()
    assert event.actor_type == "admin" and event.target == str(endpoint.id)
    assert secret not in str(event.details) and event.details["previous_signs_until"]


def test_the_console_can_stop_the_old_secret_at_once(db, admin_client, make_endpoint):
    endpoint = make_endpoint()
    html = _rotate(admin_client, endpoint.id, keep=False).get_data(as_text=True)
    assert "The old secret no longer signs" in html
    db.session.refresh(endpoint)
    assert endpoint.previous_secret_enc is None
    assert "Old secret signs too" not in admin_client.get(PAGE).get_data(as_text=True)
    [event] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "webhook.rotate_secret")).all()
    assert event.details["previous_signs_until"] is None


def test_unknown_endpoint_missing_csrf_and_helpdesk_are_refused(db, admin_client, helpdesk_client,
                                                                 make_endpoint):
    endpoint = make_endpoint()
    before = endpoint.secret_enc
    assert admin_client.get(f"{PAGE}/999/rotate").status_code == 404
    assert admin_client.get(f"{PAGE}/abc/rotate").status_code == 404
    assert admin_client.post(f"{PAGE}/{endpoint.id}/rotate").status_code == 400
    assert helpdesk_client.get(f"{PAGE}/{endpoint.id}/rotate").status_code == 403
    assert helpdesk_client.post(f"{PAGE}/{endpoint.id}/rotate").status_code in (400, 403)
    response = _rotate(admin_client, 999, keep=True)
    assert response.status_code == 303                         # back to the list, with a sentence
    assert "no webhook endpoint 999" in admin_client.get(PAGE).get_data(as_text=True)
    assert db.session.scalar(sa.select(WebhookEndpoint.secret_enc)) == before
