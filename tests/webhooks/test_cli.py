"""`flask webhooks send / list / retry`: one pass prints its counts, list shows the newest
deliveries, retry queues one again (same event id) or says why not."""
import pytest

from portal.database import db
from portal.webhooks.events import emit
from tests.webhooks.conftest import deliveries


@pytest.fixture
def webhooks(app):
    runner = app.test_cli_runner()
    return lambda *args: runner.invoke(args=["webhooks", *map(str, args)])


def test_send_list_and_retry(db_session_endpoint, webhooks, receiver):
    event_id = emit("qr_code.revoked", {"qr_code": {"id": "q1"}})
    db.session.commit()
    result = webhooks("send")
    assert result.exit_code == 0 and "Delivered 1, retrying 0, failed 0." in result.output
    result = webhooks("list", "--status", "delivered")
    assert result.exit_code == 0 and event_id in result.output and "\t200\t" in result.output
    row = deliveries()[0]
    result = webhooks("retry", row.id)
    assert result.exit_code == 0 and "is queued again" in result.output
    result = webhooks("retry", row.id)
    assert result.exit_code == 1 and "queued already" in result.output
    assert webhooks("send").exit_code == 0
    assert receiver.ids() == [event_id, event_id]
    assert webhooks("retry", 999999).output.strip().endswith("There is no webhook delivery 999999.")


@pytest.fixture
def db_session_endpoint(db, make_endpoint):
    return make_endpoint()
