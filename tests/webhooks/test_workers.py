"""Real processes on a committed database (SQLite file, or PostgreSQL with TEST_DATABASE_URL):
three `flask webhooks send` workers at once deliver each of 45 events exactly once."""
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa

from portal.database import db
from portal.webhooks.models import WebhookDelivery
from tests.webhooks.conftest import ALL_EVENTS, audit_as

ROOT = Path(__file__).resolve().parents[2]
WORKER = [sys.executable, "-m", "flask", "--app", "wsgi", "webhooks", "send"]


def _queue(url: str, count: int) -> str:
    from portal.webhooks.endpoints import create_endpoint
    from portal.webhooks.events import emit
    _endpoint, secret = create_endpoint(url, "Workers", ALL_EVENTS, actor="tester",
                                        audit=audit_as())
    for n in range(count):
        emit("device.enrolled", {"device": {"id": f"dev{n}", "serial_number": f"SN{n:04}"}})
    db.session.commit()
    return secret


def test_three_workers_deliver_each_of_45_events_exactly_once(committed_db, receiver,
                                                              webhook_tls):
    settings = {"TRUSTED_CA_FILE": webhook_tls[0], "WEBHOOK_TIMEOUT": 5,
                "WEBHOOK_ALLOW_LOOPBACK": 1}   # the receiver is on 127.0.0.1
    database = committed_db(**settings)
    receiver.secret = database.run(_queue, receiver.url, 45)
    receiver.hold_until_peers = 2          # deliveries overlap: workers really run at once
    env = database.environment(**settings)

    workers = [subprocess.Popen(WORKER, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [worker.communicate(timeout=120) for worker in workers]

    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    counts = [tuple(map(int, re.search(r"Delivered (\d+), retrying (\d+), failed (\d+)\.",
                                       out).groups())) for out, _err in outputs]
    assert sum(delivered for delivered, _, _ in counts) == 45
    assert sum(1 for delivered, _, _ in counts if delivered) >= 2      # shared out
    assert all(retrying == failed == 0 for _, retrying, failed in counts)
    assert receiver.most_in_flight >= 2
    per_id = Counter(receiver.ids())
    assert len(per_id) == 45 and set(per_id.values()) == {1}          # never twice
    assert all(seen.verified and seen.status == 200 for seen in receiver.requests)
    assert len(receiver.processed) == 45
    rows = database.run(lambda: [(row.status, row.attempts) for row in db.session.scalars(
        sa.select(WebhookDelivery))])
    assert len(rows) == 45 and set(rows) == {("delivered", 1)}
