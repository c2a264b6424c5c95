"""Two servers, one city: two production servers on one PostgreSQL and Redis; a change made through either reaches a
stream held on the other, in order, with no gap; an incident posted to both is stored once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import func, select

from data import schema, store
from data.accounts.apikeys import create_key
from tests.asgi_server import EventStream
from tests.auth_helpers import make_user, signed_in_opener
from tests.conftest import own_pg_schema, skip_or_fail
from tests.dashboard.test_cache import REDIS_URL, _redis_up
from tests.dashboard.test_run_command import _free_port
from tests.factories import make_world
from tests.paths import ROOT

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

POSTS = 12


@pytest.fixture
def pg_schema_url():
    if not _redis_up():
        skip_or_fail(f"no Redis server at {REDIS_URL}")
    with own_pg_schema() as (url, _name):
        yield url


def start_server(url: str, port: int, log_path):
    """The documented production command (gunicorn, uvicorn workers, background work off) on `port`."""
    env = dict(
        os.environ,
        CITYBRAIN_DATABASE_URL=url,
        CITYBRAIN_CACHE_URL=REDIS_URL,
        CITYBRAIN_SECRET_KEY="two-servers",
        CITYBRAIN_BACKGROUND="off",
        CITYBRAIN_LIVE="false",
        CITYBRAIN_BUILD_DEMO="false",
    )
    log = log_path.open("w")
    command = [sys.executable, "-m", "gunicorn", "-k", "uvicorn_worker.UvicornWorker", "--workers", "1"]
    process = subprocess.Popen(
        [*command, "--bind", f"127.0.0.1:{port}", "app:create_asgi()"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    process.log = log
    return process


def wait_healthy(port: int, process, log_path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"server on {port} never answered:\n{log_path.read_text()[-3000:]}")


def post(port: int, key: str, body: dict, idempotency: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/incidents",
        data=json.dumps(body).encode(),
        headers={"X-API-Key": key, "Content-Type": "application/json", "Idempotency-Key": idempotency},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def test_a_change_through_one_server_reaches_a_stream_on_the_other_in_order(pg_schema_url, tmp_path):
    engine = store.make_engine(pg_schema_url)
    store.migrate(engine)
    with engine.begin() as conn:
        world = make_world(conn)
        intake = create_key(conn, "hotline", ["intake"], source="hotline").secret
        reader = create_key(conn, "wall", ["read"]).secret
        head = store.feed_head(conn)
    viewer = make_user(engine, "viewer")
    ports = _free_port(), _free_port()
    servers = [start_server(pg_schema_url, port, tmp_path / f"server{i}.log") for i, port in enumerate(ports)]
    streams = []
    try:
        for port, process, i in zip(ports, servers, (0, 1), strict=True):
            wait_healthy(port, process, tmp_path / f"server{i}.log")
        a, b = ports
        # The API's feed and a screen's stream, both held on server B; the screen signed in on server A.
        feed = EventStream(f"http://127.0.0.1:{b}", f"/api/v1/feed?after={head}", headers={"X-API-Key": reader})
        opener = signed_in_opener(f"http://127.0.0.1:{a}", viewer["username"])
        cookie = ""
        for handler in opener.handlers:
            if hasattr(handler, "cookiejar"):
                cookie = "; ".join(f"{c.name}={c.value}" for c in handler.cookiejar if c.name == "citybrain_session")
        screen = EventStream(f"http://127.0.0.1:{b}", f"/live/events?after={head}", headers={"Cookie": cookie})
        streams += [feed, screen]
        assert feed.status == 200 and screen.status == 200
        feed.next_frame()
        screen.next_frame()

        # Each incident posted to one server, then again (same Idempotency-Key) to the other.
        lon, lat = world.lattice.center(0)
        ids = []
        for n in range(POSTS):
            body = {"external_id": f"two-{n}", "category_code": "garbage", "description": f"bins {n}", "lon": lon, "lat": lat}
            first, second = (a, b) if n % 2 == 0 else (b, a)
            (answer,) = post(first, intake, body, f"idem-{n}")["results"]
            (again,) = post(second, intake, body, f"idem-{n}")["results"]
            assert answer["created"] and again["id"] == answer["id"]
            ids.append(answer["id"])

        with store.reading(engine) as conn:
            assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one() == POSTS
            stored = [
                r.id
                for r in conn.execute(
                    select(schema.incident_events.c.id)
                    .where(schema.incident_events.c.id > head)
                    .order_by(schema.incident_events.c.id)
                )
            ]
        received = []
        while len(received) < len(stored):
            frame = feed.next_frame(timeout=10)
            if "data" in frame and "incident_id" in frame["data"]:
                received.append(int(frame["id"]))
        assert received == stored  # every change once, in order, no gap
        assert len(set(ids)) == POSTS  # each report one incident, however often it was sent
        last = 0
        while last < stored[-1]:
            last = screen.next_data("changes", timeout=10)["data"]["head"]
        assert last == stored[-1]
    finally:
        for stream in streams:
            stream.close()
        for process in servers:
            process.terminate()
            process.wait(timeout=30)
            process.log.close()
        engine.dispose()
