"""Zooming in reuses what the map already has: the drawn area's geometry and markers, and the finer level prefetched."""

from __future__ import annotations

import pytest

from dashboard.pages import overview_model
from data import schema
from layers.scope import CITY

CITY_BOUNDS = [[29.4, 106.4], [29.9, 107.4]]  # the whole tiny city: 32 grids, 8 communities


@pytest.fixture
def app(engine):
    from app import create_app
    from dashboard.settings import Settings
    from tests.overview_city import build_tiny_city

    build_tiny_city(engine)
    return create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)


def _record(view: dict) -> dict:
    """The page's view record, as callbacks.overview.view stores it."""
    upcoming = view["next"] or {}
    return {
        "level": view["level"],
        "bbox": view["bbox"],
        "markers_bbox": view["markers_bbox"],
        "next_level": upcoming.get("level"),
        "next_bbox": upcoming.get("bbox"),
    }


def _half(bounds):
    """The middle quarter of a view: what one zoom step in shows."""
    (south, west), (north, east) = bounds
    dy, dx = (north - south) / 4, (east - west) / 4
    return [[south + dy, west + dx], [north - dy, east - dx]]


def test_zooming_in_within_a_level_keeps_the_drawn_area_and_its_markers(app, engine):
    with app.server.app_context():
        snap = overview_model.snapshot(engine)
        wide = overview_model.map_view(engine, snap, 15, CITY_BOUNDS, CITY, "open", "en", "desk", "off")
        closer = overview_model.map_view(
            engine, snap, 16, _half(CITY_BOUNDS), CITY, "open", "en", "desk", "off", previous=_record(wide)
        )
        fresh = overview_model.map_view(engine, snap, 16, _half(CITY_BOUNDS), CITY, "open", "en", "desk", "off")
    assert closer["level"] == wide["level"] == schema.GRID
    # Same URL and style key: dash-leaflet neither fetches nor redraws; only the canvas is re-projected.
    assert closer["units_url"] == wide["units_url"]
    assert closer["hideout"]["key"] == wide["hideout"]["key"]
    assert closer["markers_url"] == wide["markers_url"]
    # Without the previous view the smaller area is asked for (what a first load of that view does).
    assert fresh["units_url"] != wide["units_url"]


def test_a_view_names_the_finer_level_to_prefetch_and_the_zoom_in_uses_it(app, engine):
    with app.server.app_context():
        snap = overview_model.snapshot(engine)
        communities = overview_model.map_view(engine, snap, 12, CITY_BOUNDS, CITY, "open", "en", "desk", "off")
        upcoming = communities["next"]
        grids = overview_model.map_view(
            engine, snap, 14, _half(CITY_BOUNDS), CITY, "open", "en", "desk", "off", previous=_record(communities)
        )
    assert communities["level"] == schema.COMMUNITY
    assert upcoming["level"] == schema.GRID and upcoming["url"].startswith("/geo/units/grid.json")
    assert grids["level"] == schema.GRID
    assert grids["units_url"] == upcoming["url"]  # answered by the browser's cache


def test_a_prefetched_area_holding_too_many_units_is_not_reused(app, engine, monkeypatch):
    with app.server.app_context():
        snap = overview_model.snapshot(engine)
        communities = overview_model.map_view(engine, snap, 12, CITY_BOUNDS, CITY, "open", "en", "desk", "off")
        monkeypatch.setattr(overview_model, "MAX_IN_VIEW", 10)
        assert overview_model.next_level_view(engine, snap, schema.COMMUNITY, CITY_BOUNDS) is None
        record = _record(communities)
        grids = overview_model.map_view(
            engine, snap, 16, _half(_half(CITY_BOUNDS)), CITY, "open", "en", "desk", "off", previous=record
        )
    assert grids["bbox"] != tuple(record["next_bbox"])
