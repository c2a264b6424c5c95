"""The geometry route /geo/units/<level>.json over HTTP: levels, bbox, gzip, ETag and browser caching."""

from __future__ import annotations

import gzip

import orjson
import pytest
import shapely

from app import create_app
from dashboard.settings import Settings
from tests.auth_helpers import signed_in_client
from tests.overview_city import build_tiny_city


@pytest.fixture
def city(engine):
    return build_tiny_city(engine)


@pytest.fixture
def client(engine, city):
    settings = Settings.from_env({}, live=False, build_demo=False)
    return signed_in_client(create_app(settings, engine=engine, testing=True))


def _features(response):
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    collection = orjson.loads(body)
    assert collection["type"] == "FeatureCollection"
    return collection["features"]


@pytest.mark.parametrize("level", ["district", "street", "community", "grid"])
def test_each_level_serves_its_units_with_names_and_parents(client, city, level):
    response = client.get(f"/geo/units/{level}.json", headers={"Accept-Encoding": "gzip"})
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.mimetype == "application/geo+json"
    features = _features(response)
    expected = {row["id"]: row for row in city[level]}
    assert {f["properties"]["id"] for f in features} == set(expected)
    for feature in features:
        props, row = feature["properties"], expected[feature["properties"]["id"]]
        assert (props["code"], props["name_en"], props["name_zh"], props["parent_id"]) == (
            row["code"],
            row["name_en"],
            row["name_zh"],
            row["parent_id"],
        )
        # Simplified and rounded, the outline still covers the unit it came from.
        shape = shapely.geometry.shape(feature["geometry"])
        assert shape.area == pytest.approx(shapely.box(*row["box"]).area, rel=1e-3)
        for key in ("district_id", "street_id", "community_id"):
            assert props[key] == row[key]


def test_a_bbox_sends_only_the_units_in_view(client, city):
    west_district = city["district"][0]["box"]
    minx, miny, maxx, maxy = west_district
    # A view over the south-west quarter of the first district.
    bbox = f"{minx + 0.001},{miny + 0.001},{minx + 0.04},{miny + 0.04}"
    features = _features(client.get(f"/geo/units/grid.json?bbox={bbox}"))
    inside = {
        row["id"]
        for row in city["grid"]
        if row["box"][0] <= minx + 0.04
        and row["box"][2] >= minx + 0.001
        and row["box"][1] <= miny + 0.04
        and row["box"][3] >= miny + 0.001
    }
    assert {f["properties"]["id"] for f in features} == inside
    assert 0 < len(inside) < len(city["grid"])


def test_plain_json_for_a_client_without_gzip(client, city):
    response = client.get("/geo/units/district.json", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in response.headers
    assert len(orjson.loads(response.data)["features"]) == len(city["district"])


def test_etag_answers_304_and_versioned_urls_are_cached_for_good(client):
    first = client.get("/geo/units/street.json")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "no-cache"
    again = client.get("/geo/units/street.json", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""
    version = first.headers["X-Units-Version"]
    pinned = client.get(f"/geo/units/street.json?v={version}")
    assert "immutable" in pinned.headers["Cache-Control"]
    assert "max-age=31536000" in pinned.headers["Cache-Control"]


def test_new_units_change_the_version_and_the_etag(client, engine, city):
    before = client.get("/geo/units/district.json")
    from datetime import UTC, datetime

    from data import schema

    with engine.begin() as conn:
        conn.execute(
            schema.units.insert().values(
                code="D9",
                level=schema.DISTRICT,
                name_en="District 9",
                name_zh="第9区",
                geom=shapely.to_wkb(shapely.box(107.0, 29.4, 107.1, 29.5)),
                minx=107.0,
                miny=29.4,
                maxx=107.1,
                maxy=29.5,
                updated_at=datetime.now(UTC),
            )
        )
    after = client.get("/geo/units/district.json", headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["X-Units-Version"] != before.headers["X-Units-Version"]
    assert "D9" in {f["properties"]["code"] for f in _features(after)}


@pytest.mark.parametrize(
    "url, status, message",
    [
        ("/geo/units/province.json", 404, "unknown map level"),
        ("/geo/units/grid.json?bbox=1,2,3", 400, "bbox must be"),
        ("/geo/units/grid.json?bbox=a,b,c,d", 400, "four numbers"),
        ("/geo/units/grid.json?bbox=106.6,29.4,106.5,29.5", 400, "min < max"),
        ("/geo/units/grid.json?bbox=106.4,29.4,200,29.5", 400, "min < max"),
    ],
)
def test_bad_requests_get_a_one_line_reason(client, url, status, message):
    response = client.get(url)
    assert response.status_code == status
    assert message in response.get_json()["error"]


def test_an_empty_store_serves_an_empty_collection(engine):
    settings = Settings.from_env({}, live=False, build_demo=False)
    client = signed_in_client(create_app(settings, engine=engine, testing=True))
    assert _features(client.get("/geo/units/grid.json")) == []


def test_warm_up_builds_every_level_before_the_first_screen_asks(engine, city):
    from dashboard import geo_routes
    from data import store
    from layers import boundaries

    geo_routes.warm(engine).join(timeout=30)
    with store.reading(engine) as conn:
        version = boundaries.units_version(conn)
    key = engine.url.render_as_string(hide_password=True)
    built = {level for (db, v, level) in geo_routes._indexes.items if db == key and v == version}
    assert built == set(boundaries.MAP_LEVELS)
    assert len(geo_routes.feature_index(engine, version, 4)) == len(city["grid"])
