"""Webhook tests deliver to a real HTTPS receiver on loopback (receiver.py) whose certificate
a test CA signed; the portal trusts that CA through TRUSTED_CA_FILE. Tests move the worker's
clock instead of sleeping."""
from datetime import timedelta

import pytest
import sqlalchemy as sa

from portal.database import db as _db, utcnow
from tests.mail.conftest import CommittedDatabase, committed_db  # noqa: F401  (fixtures)
from tests.support.certs import make_certs
from tests.webhooks.receiver import Receiver

ALL_EVENTS = ["device.enrolled", "device.failed", "device.retired", "qr_code.exhausted",
              "qr_code.revoked", "pending.expired"]


RECEIVER_NAME = "receiver.test"   # in the certificate, in no DNS: only the tests' resolver knows it


@pytest.fixture(scope="session")
def webhook_tls(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("webhook-tls"),
                      hosts=("localhost", "127.0.0.1", RECEIVER_NAME))


@pytest.fixture
def receiver(webhook_tls):
    server = Receiver(webhook_tls).start()
    yield server
    server.stop()


@pytest.fixture
def config_overrides(request, webhook_tls) -> dict:
    return {"TRUSTED_CA_FILE": webhook_tls[0], "WEBHOOK_TIMEOUT": 5,
            **getattr(request, "param", {})}


def audit_as(actor="tester"):
    from functools import partial

    from portal.audit.log import record
    return partial(record, actor_type="admin", actor=actor)


@pytest.fixture
def make_endpoint(db, receiver):
    """An enabled endpoint at the receiver (its secret handed to the receiver)."""
    from portal.webhooks.endpoints import create_endpoint

    def make(events=None, url=None, description="Test receiver"):
        endpoint, secret = create_endpoint(url or receiver.url, description,
                                           events or ALL_EVENTS, actor="tester",
                                           audit=audit_as())
        receiver.secret = secret
        return endpoint
    return make


@pytest.fixture
def deliver(db):
    """Run the worker's pass once, `minutes` from now (the back-off is a clock, not a sleep)."""
    from portal.webhooks.delivery import deliver_due

    def run(minutes: float = 0, **kwargs):
        return deliver_due(now=utcnow() + timedelta(minutes=minutes), **kwargs)
    return run


def deliveries(**where):
    from portal.webhooks.models import WebhookDelivery
    statement = sa.select(WebhookDelivery).order_by(WebhookDelivery.id)
    for name, value in where.items():
        statement = statement.where(getattr(WebhookDelivery, name) == value)
    return list(_db.session.scalars(statement.execution_options(populate_existing=True)))
