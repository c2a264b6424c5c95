"""Server-sent events on /live/events: framing, catching up, live delivery, resume by Last-Event-ID, heartbeats."""

from __future__ import annotations

import threading
import time

import pytest

from app import create_app
from dashboard.live import wire
from dashboard.settings import Settings
from tests.asgi_server import AsgiServer, EventStream
from tests.auth_helpers import cookie_header, signed_in_client
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


@pytest.fixture
def served(app):
    with AsgiServer(app) as server:
        yield server


def _open(served, client, after: int | None = None, headers: dict | None = None) -> EventStream:
    path = "/live/events" if after is None else f"/live/events?after={after}"
    stream = EventStream(served.url, path, headers={**cookie_header(client), **(headers or {})})
    assert stream.status == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    return stream


def test_a_new_stream_catches_up_then_delivers_changes_as_they_land(app, served, engine, world):
    first = _report(engine, world, 2)
    stream = _open(served, signed_in_client(app), after=0)
    try:
        assert stream.next_frame() == {"retry": str(wire.RETRY_MS)}
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


def test_a_reconnect_resumes_after_last_event_id_without_losing_or_repeating(app, served, engine, world):
    ids = _report(engine, world, 3)
    client = signed_in_client(app)
    stream = _open(served, client, after=0)
    try:
        stream.next_frame()
        all_events = stream.next_data("changes")["data"]["events"]
    finally:
        stream.close()
    seen_first = all_events[0]["id"]
    # The browser reconnects with the id of the last event it got; ?after (the page's start) is older.
    resumed = _open(served, client, after=0, headers={"Last-Event-ID": str(seen_first)})
    try:
        resumed.next_frame()
        rest = resumed.next_data("changes")["data"]["events"]
    finally:
        resumed.close()
    assert [e["id"] for e in rest] == [e["id"] for e in all_events[1:]]
    assert {e["incident_id"] for e in rest} == set(ids) - {all_events[0]["incident_id"]}


def test_a_long_absence_is_caught_up_in_one_message(app, served, engine, world, monkeypatch):
    monkeypatch.setattr(wire, "PAGE", 2)
    monkeypatch.setattr(wire, "MAX_EVENTS", 3)
    ids = _report(engine, world, 5)
    stream = _open(served, signed_in_client(app), after=0)
    try:
        stream.next_frame()
        message = stream.next_data("changes")["data"]
    finally:
        stream.close()
    assert message["count"] == 5
    assert [e["incident_id"] for e in message["events"]] == ids[-3:]
    assert message["head"] == max(e["id"] for e in message["events"])


def test_a_quiet_stream_sends_heartbeats_with_the_head(app, served, engine, world, monkeypatch):
    monkeypatch.setattr(wire, "HEARTBEAT_SECONDS", 0.3)
    _report(engine, world)
    stream = _open(served, signed_in_client(app))  # no ?after: start from now, nothing to catch up
    try:
        stream.next_frame()
        beat = stream.next_data("heartbeat", timeout=3)
        assert beat["data"]["ok"] is True
        with engine.connect() as conn:
            from data import store

            assert beat["data"]["head"] == store.feed_head(conn)
    finally:
        stream.close()


def test_a_client_ahead_of_the_store_is_told_to_reset(app, served, engine, world):
    _report(engine, world)
    stream = _open(served, signed_in_client(app), headers={"Last-Event-ID": "999999"})
    try:
        stream.next_frame()
        reset = stream.next_frame()
        assert reset["data"]["type"] == "reset"
        assert reset["data"]["head"] < 999999
    finally:
        stream.close()


def test_the_stream_ends_so_the_browser_reconnects(app, served, engine, world):
    app.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 0.5
    stream = _open(served, signed_in_client(app))
    try:
        assert stream.next_frame() == {"retry": str(wire.RETRY_MS)}
        assert stream.ended(timeout=5)  # by itself, well before any time-out of the client
    finally:
        stream.close()


def test_head_route_reports_the_feed_head(app, served, engine, world):
    _report(engine, world, 2)
    body = signed_in_client(app).get("/live/head").get_json()
    with engine.connect() as conn:
        from data import store

        assert body["head"] == store.feed_head(conn) > 0


def test_message_framing_is_one_id_and_one_data_line():
    framed = wire.changes_message([{"id": 7, "incident_id": 3, "action": "report", "to_state": "reported", "at": None}], 7)
    assert framed == b'id: 7\ndata: {"type":"changes","head":7,"count":1,"events":[' + (
        b'{"id":7,"incident_id":3,"action":"report","to_state":"reported","at":null}]}\n\n'
    )


def test_the_build_id_follows_the_code_and_reaches_heartbeats_and_the_head_route(app, served, engine, world, monkeypatch):
    build = app.server.config["CITYBRAIN_BUILD"]
    assert build == wire.build_id(app)  # the same code gives the same id (every worker agrees)
    assert signed_in_client(app).get("/live/head").get_json()["build"] == build
    monkeypatch.setattr(wire, "HEARTBEAT_SECONDS", 0.2)
    stream = _open(served, signed_in_client(app))
    try:
        stream.next_frame()
        assert stream.next_data("heartbeat")["data"]["build"] == build
    finally:
        stream.close()
    app.callback_map["extra-output.children"] = {}
    assert wire.build_id(app) != build


def test_a_boundary_import_reaches_open_streams_and_the_head_route_at_once(app, served, engine, world, monkeypatch):
    """The units version travels with the heartbeats: a re-import makes open screens fetch their geometry again."""
    from data import store
    from data.geo.units import bump_units_version, units_version

    def current_units() -> str:
        with store.reading(engine) as conn:
            return units_version(conn)

    monkeypatch.setattr(wire, "HEARTBEAT_SECONDS", 0.3)
    app.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 30
    client = signed_in_client(app)
    stream = _open(served, client)
    try:
        assert stream.next_data("heartbeat")["data"]["units"] == current_units()  # the stream knows the version
        monkeypatch.setattr(wire, "HEARTBEAT_SECONDS", 60.0)  # from now on only a change sends a heartbeat
        with engine.begin() as conn:
            bump_units_version(conn)  # what every boundary import, grid generation and demo build does
        version = current_units()
        deadline = time.monotonic() + 10
        # A heartbeat already on its way may still name the old version; the change's own one follows at once.
        while (beat := stream.next_data("heartbeat", timeout=max(deadline - time.monotonic(), 0.01)))["data"]["units"] != version:
            pass
        assert beat["data"]["units"] == version
    finally:
        stream.close()
    assert client.get("/live/head").get_json()["units"] == version
