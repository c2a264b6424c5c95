"""More live streams open than the server has threads, and pages, callbacks and the API still answer at once."""

from __future__ import annotations

import http.client
import json
import time

import pytest

from app import create_app
from dashboard.settings import Settings
from data.accounts.apikeys import create_key
from tests.asgi_server import AsgiServer, EventStream
from tests.auth_helpers import cookie_header, csrf_from, signed_in_client
from tests.dash_helpers import callback_body
from tests.factories import make_world

THREADS = 4  # the server's thread pool for pages, callbacks and the API
STREAMS = 40  # ten times as many screens as threads


@pytest.fixture
def served(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        key = create_key(conn, "hotline", ["intake"], source="hotline").secret
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    with AsgiServer(app, threads=THREADS) as server:
        yield app, server, world, key


def timed(server, method: str, path: str, body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, float]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    started = time.monotonic()
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data, time.monotonic() - started


def test_streams_beyond_the_thread_pool_leave_pages_callbacks_and_the_api_answering(served):
    app, server, world, key = served
    client = signed_in_client(app, "viewer")
    cookies = cookie_header(client)
    streams = [EventStream(server.url, "/live/events", headers=cookies) for _ in range(STREAMS)]
    try:
        for stream in streams:
            assert stream.status == 200 and stream.next_frame()["retry"]  # each one open and served
        assert server.asgi.open_streams == STREAMS

        status, _, page_s = timed(server, "GET", "/", headers=cookies)
        assert status == 200 and page_s < 5

        csrf = csrf_from(client)
        body = json.dumps(
            callback_body(app, "overview-kpis.children", ("overview-refresh", "data", {"head": 1}), {"overview-state": {}})
        )
        status, answer, callback_s = timed(
            server,
            "POST",
            "/_dash-update-component",
            body.encode(),
            {
                **cookies,
                "Cookie": f"{cookies['Cookie']}; _csrf_token={csrf}",
                "X-CSRFToken": csrf,
                "Content-Type": "application/json",
            },
        )
        assert status == 200 and b"Open backlog" in answer and callback_s < 5

        incident = {
            "external_id": "cap-1",
            "category_code": "garbage",
            "description": "bins overflowing",
            "lon": world.lattice.center(0)[0],
            "lat": world.lattice.center(0)[1],
        }
        status, answer, post_s = timed(
            server,
            "POST",
            "/api/v1/incidents",
            json.dumps(incident).encode(),
            {"X-API-Key": key, "Content-Type": "application/json"},
        )
        assert status in (200, 201), answer
        # ... and the change it made reaches every one of the open streams.
        for stream in streams:
            assert stream.next_data("changes", timeout=10)["data"]["count"] >= 1
    finally:
        for stream in streams:
            stream.close()
