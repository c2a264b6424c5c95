"""Webhook delivery by two workers at once through a slow receiver: each row posted once, logged at its post, departments apart."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import func, select

from data import schema, store
from data.incidents import webhook_delivery, webhooks
from data.incidents.feed import get_incident
from data.incidents.webhook_delivery import DeliveryLanes
from data.incidents.webhook_targets import WebhookTargets, poster
from data.times import from_db
from tests.factories import make_incident, make_world

SLOW_SECONDS = 1.5
ROWS = 5
LOCAL = WebhookTargets.parse("127.0.0.1")  # the receiver below: loopback is refused unless listed


class SlowReceiver:
    """Answers /slow after SLOW_SECONDS and /fast at once; notes when each delivery id arrived (epoch seconds)."""

    def __init__(self):
        self.arrivals: list[tuple[str, str, float]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.arrivals.append((self.path, self.headers[webhooks.DELIVERY_HEADER], time.time()))
                if self.path == "/slow":
                    time.sleep(SLOW_SECONDS)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = SlowReceiver()
    yield r
    r.close()


def _queue(engine, receiver) -> dict[str, list[int]]:
    """ROWS webhooks for 住建 (whose receiver is slow) and ROWS for 公安 (fast); their outbox ids by path."""
    with engine.begin() as conn:
        world = make_world(conn)
        slow, fast = world.departments["zj"], world.departments["ga"]
        webhooks.set_webhook(conn, slow, f"{receiver.base}/slow", secret="a-secret-of-sixteen+", targets=LOCAL)
        webhooks.set_webhook(conn, fast, f"{receiver.base}/fast", secret="a-secret-of-sixteen+", targets=LOCAL)
        ids: dict[str, list[int]] = {"/slow": [], "/fast": []}
        for _ in range(ROWS):
            incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
            incident = get_incident(conn, incident_id)
            event_id = conn.execute(select(func.max(schema.incident_events.c.id))).scalar()
            ids["/slow"].append(webhooks.enqueue_webhook(conn, slow, incident, event_id, "dispatch"))
            ids["/fast"].append(webhooks.enqueue_webhook(conn, fast, incident, event_id, "dispatch"))
    return ids


def _statuses(engine) -> list[str]:
    with store.reading(engine) as conn:
        return list(conn.execute(select(schema.webhook_deliveries.c.status)).scalars())


def _wait_delivered(engine, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if set(_statuses(engine)) == {webhooks.DELIVERED}:
            return
        time.sleep(0.05)
    pytest.fail(f"not all delivered within {seconds} s: {_statuses(engine)}")


def test_two_workers_post_every_row_exactly_once_through_a_slow_receiver(engine, receiver, monkeypatch):
    # A lease far shorter than the slow department's whole queue (5 x 1.5 s), longer than one post of it.
    monkeypatch.setattr(webhook_delivery, "CLAIM_LEASE", timedelta(seconds=3))
    ids = _queue(engine, receiver)
    results: list[int] = []

    def worker():  # as a worker's loop does: deliver what is due, again and again, until nothing is left
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            results.append(webhook_delivery.deliver_due(engine, limit=50, post=poster(LOCAL)))
            if set(_statuses(engine)) == {webhooks.DELIVERED}:
                return
            time.sleep(0.05)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    posted = [delivery for _path, delivery, _at in receiver.arrivals]
    assert sorted(posted) == sorted(str(i) for i in ids["/slow"] + ids["/fast"])  # each once, none twice
    assert sum(results) == 2 * ROWS
    assert set(_statuses(engine)) == {webhooks.DELIVERED}
    with store.reading(engine) as conn:
        attempts = conn.execute(select(schema.webhook_attempts)).all()
    assert len(attempts) == 2 * ROWS
    # Each attempt is logged at the moment of its post, not when a batch was claimed.
    arrived = {delivery: at for _path, delivery, at in receiver.arrivals}
    for row in attempts:
        logged, posted_at = from_db(row.at).timestamp(), arrived[str(row.delivery_id)]
        assert posted_at - 0.5 <= logged <= posted_at + 0.05, (row.delivery_id, logged, posted_at)


def test_a_slow_receiver_holds_up_only_its_own_department(engine, receiver):
    ids = _queue(engine, receiver)
    # Two workers' delivery jobs side by side, as two processes would run them.
    lanes = [DeliveryLanes(engine, lanes=4, post=poster(LOCAL)) for _ in range(2)]
    try:
        for each in lanes:
            each.run()
        _wait_delivered(engine)
    finally:
        for each in lanes:
            each.stop()
    by_path: dict[str, list[float]] = {"/slow": [], "/fast": []}
    for path, _delivery, at in receiver.arrivals:
        by_path[path].append(at)
    assert sorted(d for _p, d, _a in receiver.arrivals) == sorted(str(i) for i in ids["/slow"] + ids["/fast"])
    # Every fast delivery was in before the slow receiver had answered its first post.
    assert max(by_path["/fast"]) < min(by_path["/slow"]) + SLOW_SECONDS, by_path
