"""Map layers as plain functions: level of detail, bbox handling, colour classes, per-unit values, heat bins, markers, scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from data import schema
from data.errors import NotFound, ValidationError
from data.geo import prepared
from data.incidents import clock
from data.incidents.feed import get_incident
from layers import boundaries, choropleth, heat, markers
from layers.scope import CITY, resolve_scope
from tests.factories import drive_to, make_incident, make_world
from tests.overview_city import build_tiny_city

NOW = datetime.now(UTC).replace(microsecond=0)


# --- level of detail and bbox ------------------------------------------------------------------


def test_zooming_in_never_shows_a_coarser_level():
    levels = [boundaries.level_for_zoom(z) for z in range(0, 19)]
    assert levels == sorted(levels)
    assert levels[0] == schema.DISTRICT and levels[-1] == schema.GRID
    assert boundaries.level_for_zoom(None) == schema.DISTRICT


@given(
    st.floats(-179, 178),
    st.floats(-89, 88),
    st.floats(0.0001, 1),
    st.floats(0.0001, 1),
)
def test_a_snapped_bbox_holds_the_view_and_sits_on_the_step_grid(x, y, w, h):
    view = (x, y, x + w, y + h)
    snapped = boundaries.snap_bbox(view)
    assert snapped[0] <= view[0] and snapped[1] <= view[1] and snapped[2] >= min(view[2], 180) and snapped[3] >= min(view[3], 90)
    for v in snapped:
        assert abs(v / 0.02 - round(v / 0.02)) < 1e-6


def test_small_pans_keep_the_same_snapped_bbox():
    assert boundaries.snap_bbox((106.501, 29.501, 106.55, 29.53)) == boundaries.snap_bbox((106.503, 29.502, 106.552, 29.531))


def test_leaflet_bounds_become_a_lon_lat_bbox():
    assert boundaries.leaflet_bounds_to_bbox([[29.4, 106.4], [29.6, 106.8]]) == (106.4, 29.4, 106.8, 29.6)
    assert boundaries.leaflet_bounds_to_bbox(None) is None


@pytest.mark.parametrize("text", ["1,2,3", "x,1,2,3", "2,1,1,2", "nan,1,2,3", "1,2,3,100"])
def test_bad_bboxes_are_refused(text):
    with pytest.raises(ValidationError):
        boundaries.parse_bbox(text)


def test_feature_index_selects_by_bounding_box():
    collection = {
        "features": [
            {"type": "Feature", "geometry": None, "properties": {"id": 1}},
            {"type": "Feature", "geometry": None, "properties": {"id": 2}},
        ]
    }
    facts = {1: {"bbox": (0, 0, 1, 1), "district_id": 9}, 2: {"bbox": (5, 5, 6, 6), "district_id": 9}}
    index = boundaries.FeatureIndex(schema.GRID, *prepared.serialise(collection, facts))
    assert len(index.select((0.5, 0.5, 2, 2))) == 1
    assert b'"district_id":9' in index.select((0.5, 0.5, 2, 2))[0]
    assert len(index.select(None)) == 2
    assert index.select((10, 10, 11, 11)) == []


# --- colour classes ------------------------------------------------------------------------------


@given(st.lists(st.integers(0, 5000), max_size=300))
def test_breaks_increase_and_give_every_value_a_class(values):
    breaks = choropleth.nice_breaks(values)
    assert breaks == sorted(set(breaks))
    if any(v > 0 for v in values):
        assert breaks[-1] == max(values)
        assert len(breaks) <= choropleth.CLASSES
    else:
        assert breaks == []
    colours = choropleth.colours_for("open", breaks)
    fills = [choropleth.colour_of(v, breaks, colours) for v in sorted(values)]
    # Colours follow the values: a bigger count never gets an earlier class.
    order = [choropleth.ZERO_COLOUR, *colours]
    assert [order.index(f) for f in fills] == sorted(order.index(f) for f in fills)


def test_the_legend_reads_as_ranges_up_to_the_maximum():
    breaks = choropleth.nice_breaks([1, 2, 3, 10, 40, 41, 90])
    colours = choropleth.colours_for("overdue", breaks)
    labels = [label for label, _ in choropleth.legend_entries(breaks, colours)]
    assert labels[0] == "0"
    assert labels[1].startswith("1")
    assert labels[-1].endswith("90")
    assert choropleth.colour_of(90, breaks, colours) == colours[-1] == choropleth.PALETTES["overdue"][-1]
    assert choropleth.colour_of(0, breaks, colours) == choropleth.ZERO_COLOUR


def test_hideout_sends_values_only():
    out = choropleth.hideout(schema.GRID, "open", {12: 3, 14: 1}, [1, 3])
    assert out["values"] == {"12": 3, "14": 1}
    assert out["key"] == "4|open|0|all"
    assert choropleth.style_key(4, "open", 7, (106.5, 29.5, 106.52, 29.52)) == "4|open|7|106.5,29.5,106.52,29.52"
    assert "geometry" not in str(out)
    assert choropleth.restrict({1: 2, 3: 4, 5: 6}, [3, 5, 7]) == {3: 4, 5: 6}


# --- values from the store -----------------------------------------------------------------------


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _incident(conn, world, index, *, hours_ago, priority=3, state=None, category="garbage"):
    incident_id = make_incident(
        conn,
        world.categories[category],
        at=world.lattice.center(index),
        priority=priority,
        reported_at=NOW - timedelta(hours=hours_ago),
        locator=world.locator,
    )
    if state:
        drive_to(conn, incident_id, state, department_id=world.departments["cg"])
    return incident_id


def test_unit_values_count_what_each_metric_means(engine, world):
    with engine.begin() as conn:
        ids = [
            _incident(conn, world, 0, hours_ago=1),  # open, new
            _incident(conn, world, 0, hours_ago=30, state="dispatched"),  # open, overdue (ack limit 4 h), old
            _incident(conn, world, 5, hours_ago=2, state="closed"),  # new but closed
            _incident(conn, world, 5, hours_ago=3, state="acknowledged"),  # open, not yet overdue
        ]
    with engine.connect() as conn:
        rows = [get_incident(conn, i) for i in ids]
        assert any(clock.is_overdue(r, NOW) for r in rows) and not all(r["is_open"] for r in rows)
        level = schema.DISTRICT
        for metric in choropleth.METRICS:
            values = choropleth.unit_values(conn, level, metric, NOW)
            expected: dict[int, int] = {}
            for row in rows:
                counted = {
                    "open": row["is_open"],
                    "overdue": clock.is_overdue(row, NOW),
                    "new_24h": NOW - timedelta(hours=24) < row["reported_at"] <= NOW and row["state"] != "merged",
                }[metric]
                if counted:
                    expected[row["district_id"]] = expected.get(row["district_id"], 0) + 1
            assert values == expected, metric
        west = resolve_scope(conn, world.lattice.district_ids[0])
        assert choropleth.unit_values(conn, schema.GRID, "open", NOW, west) == {world.lattice.grid_ids[0]: 2}


def test_heat_weighs_by_priority_within_the_window(engine, world):
    with engine.begin() as conn:
        _incident(conn, world, 0, hours_ago=0.5, priority=1)
        _incident(conn, world, 0, hours_ago=0.2, priority=3)
        _incident(conn, world, 4, hours_ago=5, priority=2)
        _incident(conn, world, 4, hours_ago=30, priority=1)  # outside 24 h
    with engine.connect() as conn:
        last_hour = heat.heat_points(heat.heat_cells(conn, "1h", NOW, 0.001), 0.001)
        day = heat.heat_points(heat.heat_cells(conn, "24h", NOW, 0.001), 0.001)
        week = heat.heat_points(heat.heat_cells(conn, "7d", NOW, 0.01), 0.01)
    assert sorted(p[2] for p in last_hour["points"]) == [4.0]  # urgent 3 + normal 1 in one cell
    assert sorted(p[2] for p in day["points"]) == [2.0, 4.0]
    assert sum(p[2] for p in week["points"]) == 9.0
    lat, lon, _ = last_hour["points"][0]
    assert (lon, lat) == pytest.approx(world.lattice.center(0), abs=0.001)
    assert day["max"] == 4.0


def test_heat_leaves_out_incidents_outside_every_grid(engine, world):
    with engine.begin() as conn:
        _incident(conn, world, 0, hours_ago=0.5)
        far_away = (100.0, 20.0)
        make_incident(conn, world.categories["garbage"], at=far_away, reported_at=NOW - timedelta(hours=1), locator=world.locator)
    with engine.connect() as conn:
        points = heat.heat_points(heat.heat_cells(conn, "24h", NOW, 0.01), 0.01)["points"]
    # Only the located one heats; the far-away point is counted as unlocated elsewhere, not drawn in the sea.
    assert len(points) == 1
    lat, lon, _ = points[0]
    assert (lon, lat) == pytest.approx(world.lattice.center(0), abs=0.01)


def test_heat_refuses_unknown_windows_and_cells():
    with pytest.raises(ValidationError):
        heat.parse_window("2d")
    with pytest.raises(ValidationError):
        heat.parse_cell("0.003")
    assert heat.parse_cell("0.002") == 0.002
    assert [heat.cell_for_zoom(z) for z in (9, 12, 14, 16)] == sorted(
        [heat.cell_for_zoom(z) for z in (9, 12, 14, 16)], reverse=True
    )


def test_markers_show_open_incidents_with_their_clock(engine, world):
    with engine.begin() as conn:
        overdue = _incident(conn, world, 0, hours_ago=30, state="dispatched", priority=2)
        fresh = _incident(conn, world, 1, hours_ago=0.1, priority=1)
        _incident(conn, world, 2, hours_ago=1, state="closed")
    with engine.connect() as conn:
        rows = markers.open_incidents(conn, NOW)
        in_view = markers.open_incidents(conn, NOW, bbox=(106.5, 29.5, 106.51, 29.51))
    collection = markers.marker_features(rows)
    props = {f["properties"]["id"]: f["properties"] for f in collection["features"]}
    assert set(props) == {overdue, fresh}
    assert props[overdue]["due"] == clock.OVERDUE and props[overdue]["ring"] == markers.STATUS_RING[clock.OVERDUE]
    assert props[fresh]["due"] is None and props[fresh]["fill"] == markers.PRIORITY_COLOUR[1]
    assert [r["id"] for r in rows] == [fresh, overdue]  # most urgent first
    assert [r["id"] for r in in_view] == [overdue]


# --- scope -----------------------------------------------------------------------------------------


def test_scope_knows_its_chain_from_the_district_down(engine):
    city = build_tiny_city(engine)
    grid = city["grid"][5]
    with engine.connect() as conn:
        scope = resolve_scope(conn, grid["id"])
        assert resolve_scope(conn, None) is CITY
        with pytest.raises(NotFound):
            resolve_scope(conn, 99999)
    assert [c["level"] for c in scope.chain] == [schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID]
    assert scope.chain[-1]["id"] == grid["id"] and scope.chain[0]["id"] == grid["district_id"]
    assert scope.incident_column == "grid_id"
    assert scope.bbox == pytest.approx(grid["box"])
