"""Live map data over HTTP: /geo/heat.json and /geo/incidents.json (scope, bbox, ETag per feed head, errors)."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from app import create_app
from dashboard.settings import Settings
from tests.auth_helpers import signed_in_client
from tests.factories import drive_to, make_incident, make_world


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


@pytest.fixture
def client(engine, world):
    return signed_in_client(create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True))


def _report(engine, world, index, *, priority=3, minutes_ago=5, state=None):
    with engine.begin() as conn:
        incident_id = make_incident(
            conn,
            world.categories["garbage"],
            at=world.lattice.center(index),
            priority=priority,
            reported_at=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago),
            locator=world.locator,
        )
        if state:
            drive_to(conn, incident_id, state, department_id=world.departments["cg"])
    return incident_id


def _json(response):
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    return orjson.loads(body)


def test_heat_follows_new_incidents_and_answers_304_while_nothing_changed(client, engine, world):
    _report(engine, world, 0, priority=1)
    first = client.get("/geo/heat.json?window=1h&cell=0.001")
    assert first.status_code == 200
    assert [p[2] for p in _json(first)["points"]] == [3.0]
    assert client.get("/geo/heat.json?window=1h&cell=0.001", headers={"If-None-Match": first.headers["ETag"]}).status_code == 304

    _report(engine, world, 0, priority=2, minutes_ago=0)
    second = client.get("/geo/heat.json?window=1h&cell=0.001", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert [p[2] for p in _json(second)["points"]] == [5.0]


def test_heat_keeps_to_the_scope_and_the_window(client, engine, world):
    _report(engine, world, 0)  # west district
    _report(engine, world, 2)  # east district
    _report(engine, world, 2, minutes_ago=3 * 60)  # east, outside the last hour
    west = world.lattice.district_ids[0]
    assert len(_json(client.get(f"/geo/heat.json?window=1h&cell=0.001&scope={west}"))["points"]) == 1
    assert sum(p[2] for p in _json(client.get("/geo/heat.json?window=1h&cell=0.001"))["points"]) == 2.0
    assert sum(p[2] for p in _json(client.get("/geo/heat.json?window=24h&cell=0.001"))["points"]) == 3.0


def test_markers_are_the_open_incidents_in_view(client, engine, world):
    inside = _report(engine, world, 0)
    _report(engine, world, 2)
    _report(engine, world, 0, state="closed")
    lon, lat = world.lattice.center(0)
    bbox = f"{lon - 0.004},{lat - 0.004},{lon + 0.004},{lat + 0.004}"
    collection = _json(client.get(f"/geo/incidents.json?bbox={bbox}"))
    assert [f["properties"]["id"] for f in collection["features"]] == [inside]
    assert collection["features"][0]["geometry"]["coordinates"] == pytest.approx([lon, lat])
    assert len(_json(client.get("/geo/incidents.json"))["features"]) == 2


@pytest.mark.parametrize(
    "url, status",
    [
        ("/geo/heat.json?window=2d", 400),
        ("/geo/heat.json?cell=0.3", 400),
        ("/geo/heat.json?scope=abc", 400),
        ("/geo/heat.json?scope=987654", 404),
        ("/geo/incidents.json?bbox=1,2", 400),
        ("/geo/incidents.json?scope=987654", 404),
    ],
)
def test_bad_live_requests_are_refused_with_a_reason(client, url, status):
    response = client.get(url)
    assert response.status_code == status
    assert response.get_json()["error"]
