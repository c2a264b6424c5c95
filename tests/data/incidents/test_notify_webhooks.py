"""One-click reach: inbox rows, and webhooks posted to a real receiver started here (signature, retries, back-off, delivery log)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from data.errors import NotFound, ValidationError
from data.incidents import dispatch, lifecycle, notify, webhook_delivery, webhooks
from data.incidents.webhook_targets import WebhookTargets, poster
from data.jobs.catalogue import webhooks_job
from data.jobs.runner import start_jobs
from data.times import utc_now
from tests.factories import drive_to, make_incident, make_world

SECRET = "s3cret-for-the-test-receiver"
# The receiver listens on 127.0.0.1: loopback is refused unless listed, so these tests list it, as an
# administrator lists the departments' network in CITYBRAIN_WEBHOOK_ALLOW.
LOCAL = WebhookTargets.parse("127.0.0.1")


def deliver_due(engine, **options) -> int:
    """The delivery pass, allowed to post to the local receiver."""
    return webhook_delivery.deliver_due(engine, post=poster(LOCAL), **options)


class Receiver:
    """A webhook endpoint on 127.0.0.1: answers with the next scripted status (200 once the script runs out)."""

    def __init__(self, statuses=()):
        self.statuses = list(statuses)
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.requests.append({"headers": self.headers, "body": body})  # case-insensitive, as HTTP is
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):  # keep the test output quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _dispatched(engine, world, receiver_url, *, actor="dispatcher"):
    """A construction case (城管 → 住建) dispatched to 住建, whose webhook points at the receiver."""
    with engine.begin() as conn:
        webhooks.set_webhook(conn, world.departments["zj"], receiver_url, secret=SECRET, targets=LOCAL)
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0), locator=world.locator)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        row = dispatch.dispatch(conn, incident_id, actor=actor)
    return incident_id, row


def _log(engine, incident_id):
    with engine.connect() as conn:
        return webhooks.deliveries(conn, incident_id=incident_id)


def test_a_dispatch_is_posted_once_signed_and_logged(engine, world, receiver):
    incident_id, row = _dispatched(engine, world, receiver.url)
    assert deliver_due(engine) == 1
    assert deliver_due(engine) == 0  # delivered: never posted again
    (request,) = receiver.requests
    body, headers = request["body"], request["headers"]
    assert webhooks.verify_signature(SECRET, body, headers[webhooks.SIGNATURE_HEADER])
    assert not webhooks.verify_signature("another-secret-entirely", body, headers[webhooks.SIGNATURE_HEADER])
    payload = json.loads(body)
    assert (payload["event"], payload["event_id"], payload["department"]) == ("dispatch", row["event_id"], "zj")
    assert payload["incident"]["id"] == incident_id and payload["incident"]["state"] == "dispatched"
    assert headers[webhooks.EVENT_HEADER] == "dispatch"
    (delivery,) = _log(engine, incident_id)
    assert (delivery["status"], delivery["attempts"], delivery["delivered_at"] is not None) == ("delivered", 1, True)
    assert headers[webhooks.DELIVERY_HEADER] == str(delivery["id"])
    assert [(a["attempt"], a["status_code"], a["error"]) for a in delivery["attempts_log"]] == [(1, 200, None)]


def test_a_failing_receiver_is_retried_with_back_off_and_every_attempt_is_logged(engine, world):
    receiver = Receiver(statuses=[500, 503])
    try:
        incident_id, _ = _dispatched(engine, world, receiver.url)
        now = utc_now()
        assert deliver_due(engine, now=now) == 1
        (delivery,) = _log(engine, incident_id)
        assert (delivery["status"], delivery["attempts"], delivery["last_error"]) == ("pending", 1, "HTTP 500")
        assert delivery["next_attempt_at"] == now + webhooks.backoff(1) == now + timedelta(seconds=2)
        assert deliver_due(engine, now=now + timedelta(seconds=1)) == 0  # not due yet
        assert deliver_due(engine, now=now + timedelta(seconds=2)) == 1  # 503
        assert deliver_due(engine, now=now + timedelta(seconds=5)) == 0  # the next wait is 4 s
        assert deliver_due(engine, now=now + timedelta(seconds=6)) == 1  # 200
        (delivery,) = _log(engine, incident_id)
        assert (delivery["status"], delivery["attempts"]) == ("delivered", 3)
        assert [a["status_code"] for a in delivery["attempts_log"]] == [500, 503, 200]
        # The same signed body each time, so the receiver can check and de-duplicate every retry.
        assert len({r["body"] for r in receiver.requests}) == 1 and len(receiver.requests) == 3
        assert len({r["headers"][webhooks.SIGNATURE_HEADER] for r in receiver.requests}) == 1
    finally:
        receiver.close()


def test_an_unreachable_receiver_is_given_up_after_max_attempts(engine, world):
    dead = Receiver()
    url = dead.url
    dead.close()  # nothing listens on that port any more
    incident_id, _ = _dispatched(engine, world, url)
    now = utc_now()
    for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
        assert deliver_due(engine, now=now, timeout=2) == 1
        now += webhooks.backoff(attempt)
    assert deliver_due(engine, now=now + timedelta(days=1)) == 0
    (delivery,) = _log(engine, incident_id)
    assert (delivery["status"], delivery["attempts"]) == ("failed", webhooks.MAX_ATTEMPTS)
    assert all(a["status_code"] is None and a["error"] for a in delivery["attempts_log"])
    assert [a["attempt"] for a in delivery["attempts_log"]] == list(range(1, webhooks.MAX_ATTEMPTS + 1))


def test_undo_before_sending_cancels_the_webhook_after_sending_follows_it_with_a_recall(engine, world, receiver):
    early, _ = _dispatched(engine, world, receiver.url, actor="alice")
    with engine.begin() as conn:
        dispatch.undo_dispatch(conn, early, actor="alice")
    assert deliver_due(engine) == 0
    assert receiver.requests == []
    assert [d["status"] for d in _log(engine, early)] == ["cancelled"]

    sent, _ = _dispatched(engine, world, receiver.url, actor="alice")
    assert deliver_due(engine) == 1
    with engine.begin() as conn:
        dispatch.undo_dispatch(conn, sent, actor="alice")
    assert deliver_due(engine) == 1
    assert [json.loads(r["body"])["event"] for r in receiver.requests] == ["dispatch", "recall"]
    assert [d["kind"] for d in _log(engine, sent)] == ["recall", "dispatch"]


def test_the_delivery_job_posts_by_itself(engine, world, receiver):
    background = start_jobs(engine, [webhooks_job(engine, every=0.05, post=poster(LOCAL))])
    try:
        _dispatched(engine, world, receiver.url)
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        background.stop()
    assert len(receiver.requests) == 1
    assert not background.runner("webhooks").is_alive()


def test_a_department_without_a_secret_is_logged_not_posted(engine, world, receiver):
    incident_id, _ = _dispatched(engine, world, receiver.url)
    from data import schema

    with engine.begin() as conn:
        conn.execute(schema.departments.update().values(webhook_secret=None))
    deliver_due(engine)
    assert receiver.requests == []
    (delivery,) = _log(engine, incident_id)
    assert "no webhook secret" in delivery["attempts_log"][0]["error"]


def test_inbox_reads_and_marks_per_recipient(engine, world):
    with engine.begin() as conn:
        ids = [make_incident(conn, world.categories["construction"], at=world.lattice.center(0)) for _ in range(3)]
        for incident_id in ids:
            dispatch.dispatch(conn, incident_id, actor="dispatcher")
        zj = world.departments["zj"]
        notes = notify.inbox(conn, department_id=zj)
        assert [n["incident_id"] for n in notes] == ids[::-1]  # newest first
        assert notify.mark_read(conn, [notes[0]["id"]], department_id=zj) == 1
        assert notify.mark_read(conn, [notes[1]["id"]], department_id=world.departments["ga"]) == 0  # not theirs
        assert len(notify.inbox(conn, department_id=zj, unread_only=True)) == 2
        assert notify.inbox(conn, worker_id=world.worker_id) == []
        with pytest.raises(ValidationError, match="exactly one"):
            notify.inbox(conn)


def test_webhook_configuration_is_checked(engine, world):
    with engine.begin() as conn:
        zj = world.departments["zj"]
        with pytest.raises(ValidationError, match="http"):
            webhooks.set_webhook(conn, zj, "ftp://example.org/hook")
        with pytest.raises(ValidationError, match="16 characters"):
            webhooks.set_webhook(conn, zj, "https://example.org/hook", secret="short")
        with pytest.raises(NotFound):
            webhooks.set_webhook(conn, 999_999, "https://example.org/hook")
        made_up = webhooks.set_webhook(conn, zj, "https://example.org/hook")
        assert len(made_up) == 64
        assert webhooks.set_webhook(conn, zj, None) is None


def test_signature_is_hmac_sha256_of_the_body():
    import hashlib
    import hmac

    body = b'{"event":"dispatch"}'
    assert webhooks.sign("k" * 20, body) == "sha256=" + hmac.new(b"k" * 20, body, hashlib.sha256).hexdigest()
    assert not webhooks.verify_signature("k" * 20, body + b" ", webhooks.sign("k" * 20, body))
    assert not webhooks.verify_signature("k" * 20, body, None)
    assert [webhooks.backoff(n).total_seconds() for n in (1, 2, 3, 20)] == [2, 4, 8, 600]
