"""Admin → Webhooks without a browser: add (the secret shown once, stored encrypted), errors
beside the fields with nothing lost, enable/disable, delete with confirmation, Send again
audited; Administrators only."""
import re

import sqlalchemy as sa

from portal.audit.models import AuditEvent
from portal.webhooks.endpoints import secret_of
from portal.webhooks.events import emit
from portal.webhooks.models import WebhookEndpoint
from tests.conftest import csrf_token, post_form
from tests.webhooks.conftest import deliveries

PAGE = "/admin/webhooks"


def _add(client, **data):
    values = {"url": "https://hooks.example.com/in", "description": "Assets",
              "events": ["device.enrolled", "qr_code.revoked"]}
    values.update(data)
    token = csrf_token(client, PAGE)  # not post_form: its own parameter is called url
    if "HTTP_HX_REQUEST" in client.environ_base:
        return client.post(PAGE, data=values, headers={"X-CSRFToken": token})
    return client.post(PAGE, data={"csrf_token": token, **values})


def test_an_added_endpoint_shows_its_secret_once_and_stores_it_encrypted(db, admin_client):
    response = _add(admin_client)
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    secret = re.search(r'id="webhook-secret-value">(whsec_[A-Za-z0-9+/=]+)<', html).group(1)
    endpoint = db.session.scalar(sa.select(WebhookEndpoint))
    assert endpoint.url == "https://hooks.example.com/in"
    assert endpoint.events == ["device.enrolled", "qr_code.revoked"] and endpoint.enabled
    assert secret not in endpoint.secret_enc and secret_of(endpoint) == secret
    page = admin_client.get(PAGE).get_data(as_text=True)
    assert "https://hooks.example.com/in" in page and secret not in page   # never again
    events = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "webhook.create")).all()
    assert len(events) == 1 and secret not in str(events[0].details)


def test_bad_input_is_refused_beside_its_field_and_nothing_is_lost(db, admin_client):
    response = _add(admin_client, url="http://hooks.example.com/in", events=[],
                    description="Kept")
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "only over https://" in html and "Choose at least one event" in html
    assert 'value="http://hooks.example.com/in"' in html and 'value="Kept"' in html
    assert 'id="url-error"' in html and 'id="events-error"' in html
    response = _add(admin_client, url="https://user:pw@hooks.example.com/",
                    events=["device.enrolled", "nonsense"])
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "no user name or password" in html and "Choose events from the list" in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0


def test_htmx_add_swaps_the_form_and_the_list(db, admin_htmx_client):
    response = _add(admin_htmx_client)
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and 'id="webhook-secret-value"' in html
    assert 'id="webhook-endpoints" class="settings-table" hx-swap-oob="true"' in html
    assert "<html" not in html


def test_disable_enable_and_delete(db, admin_client):
    _add(admin_client)
    endpoint = db.session.scalar(sa.select(WebhookEndpoint))
    assert post_form(admin_client, f"{PAGE}/{endpoint.id}/disable", page=PAGE).status_code == 303
    db.session.refresh(endpoint)
    assert not endpoint.enabled
    assert emit("device.enrolled", {"device": {"id": "x"}}) is None   # disabled: no event
    post_form(admin_client, f"{PAGE}/{endpoint.id}/enable", page=PAGE)
    db.session.refresh(endpoint)
    assert endpoint.enabled
    emit("device.enrolled", {"device": {"id": "x"}})
    db.session.commit()
    confirm = admin_client.get(f"{PAGE}/{endpoint.id}/delete").get_data(as_text=True)
    assert "Delete the webhook endpoint https://hooks.example.com/in?" in confirm
    response = post_form(admin_client, f"{PAGE}/{endpoint.id}/delete", page=PAGE)
    assert response.status_code == 303
    assert db.session.scalar(sa.select(sa.func.count()).select_from(WebhookEndpoint)) == 0
    assert deliveries() == []
    assert admin_client.get(f"{PAGE}/{endpoint.id}/delete").status_code == 404
    actions = set(db.session.scalars(sa.select(AuditEvent.action)))
    assert {"webhook.create", "webhook.disable", "webhook.enable", "webhook.delete"} <= actions


def test_send_again_queues_the_same_event_and_is_audited(db, admin_client):
    _add(admin_client)
    event_id = emit("qr_code.revoked", {"qr_code": {"id": "q1"}})
    db.session.commit()
    [row] = deliveries()
    refused = post_form(admin_client, f"{PAGE}/deliveries/{row.id}/resend", page=PAGE)
    assert refused.status_code == 303          # queued: nothing to send again
    assert "queued already" in admin_client.get(PAGE).get_data(as_text=True)
    db.session.execute(sa.text("UPDATE webhook_deliveries SET status = 'failed', attempts = 10"))
    db.session.commit()
    assert "Send again" in admin_client.get(PAGE).get_data(as_text=True)
    response = post_form(admin_client, f"{PAGE}/deliveries/{row.id}/resend", page=PAGE)
    assert response.status_code == 303
    [row] = deliveries()
    assert (row.status, row.attempts, row.event_id) == ("queued", 0, event_id)
    [audit] = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "webhook.resend")).all()
    assert audit.actor == admin_client.admin.username and audit.details["event_id"] == event_id


def test_helpdesk_may_not_open_webhooks(db, helpdesk_client):
    assert helpdesk_client.get(PAGE).status_code == 403
    assert "Webhooks" not in helpdesk_client.get("/admin/devices").get_data(as_text=True)


def test_addresses_that_cannot_receive_events_are_refused():
    from portal.webhooks.endpoints import url_problem
    assert url_problem("https://hooks.example.com:8443/in?x=1") is None
    for url, message in [("", "Enter the https:// address"),
                         ("ftp://hooks.example.com/", "only over https://"),
                         ("https:///path", "no host name"),
                         ("https://hooks.example.com:http/", "not a valid address"),
                         ("https://hooks.example.com/a b", "spaces or control characters"),
                         ("https://hooks.example.com/\x00", "spaces or control characters"),
                         ("https://" + "a" * 2050, "at most 2048 characters")]:
        assert message in url_problem(url), url
