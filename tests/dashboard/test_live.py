"""Server-sent events on /live/events: framing, catching up, live delivery, resume by Last-Event-ID, heartbeats."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from app import create_app
from dashboard import live
from dashboard.settings import Settings
from tests.auth_helpers import signed_in_client
from tests.factories import make_incident, make_world


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


@pytest.fixture
def app(engine, world):
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    app.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 3
    return app


def _report(engine, world, n=1):
    ids = []
    with engine.begin() as conn:
        for _ in range(n):
            ids.append(make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), locator=world.locator))
    return ids


class Stream:
    """Reads SSE frames off a streaming test-client response, with a deadline."""

    def __init__(self, response):
        self.response = response
        self.chunks = iter(response.response)
        self.buffer = b""

    def next_frame(self, timeout=5.0) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n\n" not in self.buffer:
            assert time.monotonic() < deadline, "no frame in time"
            self.buffer += next(self.chunks)
        frame, self.buffer = self.buffer.split(b"\n\n", 1)
        fields = {}
        for line in frame.decode().splitlines():
            key, _, value = line.partition(": ")
            fields[key] = value
        if "data" in fields:
            fields["data"] = orjson.loads(fields["data"])
        return fields

    def next_data(self, kind: str, timeout=5.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            frame = self.next_frame(max(deadline - time.monotonic(), 0.01))
            if "data" in frame and frame["data"]["type"] == kind:
                return frame

    def close(self):
        self.response.close()


def _open(client, **kwargs) -> Stream:
    response = client.get("/live/events", buffered=False, **kwargs)
    assert response.status_code == 200
    assert response.mimetype == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    return Stream(response)


def test_a_new_stream_catches_up_then_delivers_changes_as_they_land(app, engine, world):
    first = _report(engine, world, 2)
    stream = _open(signed_in_client(app), query_string={"after": 0})
    try:
        assert stream.next_frame() == {"retry": str(live.RETRY_MS)}
        caught_up = stream.next_data("changes")
        assert sorted({e["incident_id"] for e in caught_up["data"]["events"]}) == sorted(first)
        assert caught_up["id"] == str(caught_up["data"]["head"])
        assert all(e["action"] == "report" and e["to_state"] == "reported" for e in caught_up["data"]["events"])

        started = time.monotonic()
        threading.Timer(0.2, _report, args=(engine, world)).start()
        landed = stream.next_data("changes", timeout=3)
        assert int(landed["id"]) > int(caught_up["id"])
        assert time.monotonic() - started < 2.0
        assert landed["data"]["count"] == 1
    finally:
        stream.close()


def test_a_reconnect_resumes_after_last_event_id_without_losing_or_repeating(app, engine, world):
    ids = _report(engine, world, 3)
    client = signed_in_client(app)
    stream = _open(client, query_string={"after": 0})
    try:
        stream.next_frame()
        all_events = stream.next_data("changes")["data"]["events"]
    finally:
        stream.close()
    seen_first = all_events[0]["id"]
    # The browser reconnects with the id of the last event it got; ?after (the page's start) is older.
    resumed = _open(client, query_string={"after": 0}, headers={"Last-Event-ID": str(seen_first)})
    try:
        resumed.next_frame()
        rest = resumed.next_data("changes")["data"]["events"]
    finally:
        resumed.close()
    assert [e["id"] for e in rest] == [e["id"] for e in all_events[1:]]
    assert {e["incident_id"] for e in rest} == set(ids) - {all_events[0]["incident_id"]}


def test_a_long_absence_is_caught_up_in_one_message(app, engine, world, monkeypatch):
    monkeypatch.setattr(live, "PAGE", 2)
    monkeypatch.setattr(live, "MAX_EVENTS", 3)
    ids = _report(engine, world, 5)
    stream = _open(signed_in_client(app), query_string={"after": 0})
    try:
        stream.next_frame()
        message = stream.next_data("changes")["data"]
    finally:
        stream.close()
    assert message["count"] == 5
    assert [e["incident_id"] for e in message["events"]] == ids[-3:]
    assert message["head"] == max(e["id"] for e in message["events"])


def test_a_quiet_stream_sends_heartbeats_with_the_head(app, engine, world, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.3)
    _report(engine, world)
    stream = _open(signed_in_client(app))  # no ?after: start from now, nothing to catch up
    try:
        stream.next_frame()
        beat = stream.next_data("heartbeat", timeout=3)
        assert beat["data"]["ok"] is True
        with engine.connect() as conn:
            from data import store

            assert beat["data"]["head"] == store.feed_head(conn)
    finally:
        stream.close()


def test_a_client_ahead_of_the_store_is_told_to_reset(app, engine, world):
    _report(engine, world)
    stream = _open(signed_in_client(app), headers={"Last-Event-ID": "999999"})
    try:
        stream.next_frame()
        reset = stream.next_frame()
        assert reset["data"]["type"] == "reset"
        assert reset["data"]["head"] < 999999
    finally:
        stream.close()


def test_the_stream_ends_so_the_browser_reconnects(app, engine, world):
    app.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 0.5
    response = signed_in_client(app).get("/live/events")
    # Buffered: returns only because the stream ended by itself.
    assert response.data.startswith(b"retry: ")


def test_head_route_reports_the_feed_head(app, engine, world):
    _report(engine, world, 2)
    body = signed_in_client(app).get("/live/head").get_json()
    with engine.connect() as conn:
        from data import store

        assert body["head"] == store.feed_head(conn) > 0


def test_message_framing_is_one_id_and_one_data_line():
    framed = live.changes_message([{"id": 7, "incident_id": 3, "action": "report", "to_state": "reported", "at": None}], 7)
    assert framed == b'id: 7\ndata: {"type":"changes","head":7,"count":1,"events":[' + (
        b'{"id":7,"incident_id":3,"action":"report","to_state":"reported","at":null}]}\n\n'
    )


def test_the_build_id_follows_the_code_and_reaches_heartbeats_and_the_head_route(app, engine, world, monkeypatch):
    build = app.server.config["CITYBRAIN_BUILD"]
    assert build == live.build_id(app)  # the same code gives the same id (every worker agrees)
    assert signed_in_client(app).get("/live/head").get_json()["build"] == build
    monkeypatch.setattr(live, "HEARTBEAT_SECONDS", 0.2)
    stream = _open(signed_in_client(app))
    try:
        stream.next_frame()
        assert stream.next_data("heartbeat")["data"]["build"] == build
    finally:
        stream.close()
    app.callback_map["extra-output.children"] = {}
    assert live.build_id(app) != build
