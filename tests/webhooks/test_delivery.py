"""Delivery to a real HTTPS receiver: signed per Standard Webhooks and verified with the
library, retried with a growing back-off after 500s and while the receiver is down, given up
after the maximum and sent again by hand with the same webhook-id, never following a
redirect, refusing an untrusted certificate."""
import json
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from portal.database import db, utcnow
from portal.webhooks.delivery import deliver_due
from portal.webhooks.endpoints import resend
from portal.webhooks.events import emit
from tests.webhooks.conftest import audit_as, deliveries


def _event(kind="device.enrolled", serial="SN-1"):
    event_id = emit(kind, {"device": {"id": "dev1", "serial_number": serial}})
    db.session.commit()
    return event_id


def test_an_event_arrives_signed_and_the_library_verifies_it(receiver, make_endpoint, deliver):
    make_endpoint()
    event_id = _event()

    counts = deliver()

    assert (counts.delivered, counts.retrying, counts.failed) == (1, 0, 0)
    [seen] = receiver.requests
    assert seen.verified and seen.status == 200 and seen.webhook_id == event_id
    assert event_id.startswith("msg_")
    assert seen.headers["webhook-signature"].startswith("v1,")
    body = json.loads(seen.body)
    assert body["type"] == "device.enrolled" and body["data"]["device"]["serial_number"] == "SN-1"
    assert body["timestamp"].endswith("Z")
    [row] = deliveries()
    assert (row.status, row.attempts, row.last_status) == ("delivered", 1, 200)
    assert row.last_answer == '{"ok": true}' and row.delivered_at is not None
    assert deliver(minutes=600).total == 0            # delivered once, never again


def test_a_tampered_body_or_a_wrong_secret_fails_verification(receiver, make_endpoint, deliver):
    make_endpoint()
    _event()
    deliver()
    [seen] = receiver.requests
    hook = Webhook(receiver.secret)
    assert hook.verify(seen.body, seen.headers)["type"] == "device.enrolled"
    tampered = seen.body.replace(b"SN-1", b"SN-2")
    with pytest.raises(WebhookVerificationError):
        hook.verify(tampered, seen.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJD" * 8).verify(seen.body, seen.headers)
    # and the receiver refuses what it cannot verify: the delivery is retried, not delivered
    receiver.secret = "whsec_" + "QUJD" * 8
    _event(serial="SN-3")
    counts = deliver()
    assert (counts.delivered, counts.retrying) == (0, 1)
    assert receiver.requests[-1].status == 401 and not receiver.requests[-1].verified


def test_500s_are_retried_with_a_growing_back_off_and_the_same_webhook_id(
        app, receiver, make_endpoint, deliver):
    app.config.update(WEBHOOK_RETRY_SECONDS=30, WEBHOOK_RETRY_MAX_SECONDS=3600)
    make_endpoint()
    receiver.fail_next = 3
    event_id = _event()

    waits, clock = [], utcnow()
    for _ in range(3):
        counts = deliver_due(now=clock)
        assert (counts.delivered, counts.retrying) == (0, 1)
        [row] = deliveries()
        assert row.status == "queued" and row.last_status == 500
        assert row.last_error == "HTTP 500" and "status 500" in row.last_answer
        waits.append(row.next_attempt_at - clock)
        assert deliver_due(now=row.next_attempt_at - timedelta(seconds=1)).total == 0  # not due
        clock = row.next_attempt_at
    counts = deliver_due(now=clock)

    assert waits == [timedelta(seconds=30), timedelta(seconds=60), timedelta(seconds=120)]
    assert counts.delivered == 1
    assert [seen.status for seen in receiver.requests] == [500, 500, 500, 200]
    assert set(receiver.ids()) == {event_id}           # every attempt: the same webhook-id
    assert all(seen.verified for seen in receiver.requests)
    [row] = deliveries()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 4, None)


def test_a_receiver_that_is_down_is_retried_until_it_is_back(receiver, make_endpoint, deliver):
    make_endpoint()
    receiver.stop()                                    # connection refused
    event_id = _event()

    counts = deliver()
    assert (counts.delivered, counts.retrying) == (0, 1)
    [row] = deliveries()
    assert row.last_status is None and "connection refused" in row.last_error
    assert deliver(minutes=0.25).total == 0            # back-off: not due yet

    receiver.start()                                   # back on the same port
    counts = deliver(minutes=1)
    assert counts.delivered == 1
    assert receiver.ids() == [event_id] and receiver.requests[0].verified
    assert deliveries()[0].attempts == 2


def test_after_the_last_attempt_it_fails_and_send_again_delivers_the_same_event(
        app, receiver, make_endpoint, deliver):
    app.config.update(WEBHOOK_MAX_ATTEMPTS=3, WEBHOOK_RETRY_SECONDS=60,
                      WEBHOOK_RETRY_MAX_SECONDS=60)
    make_endpoint()
    receiver.fail_next, receiver.fail_status = 99, 503
    event_id = _event()
    for minutes in (0, 2, 4):
        deliver(minutes=minutes)
    [row] = deliveries()
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.last_error == "HTTP 503 (gave up after 3 attempts)"
    assert deliver(minutes=600).total == 0

    receiver.fail_next = 0
    resend(row.id, audit=audit_as())
    assert deliver().delivered == 1
    assert receiver.ids() == [event_id] * 4 and list(receiver.processed) == [event_id]
    [row] = deliveries()
    assert (row.status, row.attempts) == ("delivered", 1)


def test_send_again_of_a_delivered_event_is_processed_once_by_the_receiver(
        receiver, make_endpoint, deliver):
    make_endpoint()
    event_id = _event()
    deliver()
    resend(deliveries()[0].id, audit=audit_as())
    deliver()
    assert receiver.ids() == [event_id, event_id]      # delivered twice (at-least-once) …
    assert list(receiver.processed) == [event_id]      # … processed once


def test_a_lease_that_expires_is_sent_again_and_the_receiver_dedupes(
        app, receiver, make_endpoint, deliver):
    """A worker dies after the receiver took the event but before recording it: once its
    lease has run out another worker sends it again, with the same webhook-id."""
    from portal.webhooks import delivery as worker
    make_endpoint()
    event_id = _event()
    job = worker._claim(utcnow(), app.config["WEBHOOK_MAX_ATTEMPTS"], [])
    assert worker.post(job).ok                         # sent … and the worker dies here
    assert deliver().total == 0                        # still leased to the dead worker
    counts = deliver(minutes=worker.lease().total_seconds() / 60 + 1)
    assert counts.delivered == 1
    assert receiver.ids() == [event_id, event_id] and list(receiver.processed) == [event_id]
    assert deliveries()[0].attempts == 2


def test_a_redirect_is_not_followed(receiver, make_endpoint, deliver):
    make_endpoint()
    receiver.redirect_to = "https://127.0.0.1:9/elsewhere"
    _event()
    counts = deliver()
    assert counts.retrying == 1 and len(receiver.requests) == 1
    [row] = deliveries()
    assert row.last_status == 302 and "redirects are not followed" in row.last_error


@pytest.mark.parametrize("config_overrides", [{"TRUSTED_CA_FILE": None}], indirect=True)
def test_a_certificate_the_portal_does_not_trust_is_refused(receiver, make_endpoint, deliver):
    make_endpoint()
    _event()
    counts = deliver()
    assert counts.retrying == 1 and receiver.requests == []
    assert "certificate is not trusted" in deliveries()[0].last_error


def test_only_subscribed_enabled_endpoints_get_an_event(db, receiver, make_endpoint, deliver):
    from portal.webhooks.endpoints import set_enabled
    revoked_only = make_endpoint(events=["qr_code.revoked"])
    everything = make_endpoint()
    disabled = make_endpoint()
    set_enabled(disabled.id, False, audit=audit_as())
    _event("device.enrolled")
    _event("qr_code.revoked")
    got = sorted((row.endpoint_id, row.event_type) for row in deliveries())
    assert got == sorted([(everything.id, "device.enrolled"), (everything.id, "qr_code.revoked"),
                          (revoked_only.id, "qr_code.revoked")])
