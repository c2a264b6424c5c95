"""What the overview shows, as plain data: the map view for a zoom and bounds, live unit values, the scope.

Reads are cached per (store, feed head, minute): every screen open on the same view between
two changes shares one query, and a change (the feed head moves) makes a fresh answer.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from flask import current_app

from dashboard import jurisdiction
from dashboard.cache import cache
from dashboard.geo_routes import feature_index
from data import schema, store
from data.errors import NotFound
from data.parse import id_or_none
from layers import boundaries, choropleth, heat
from layers.scope import CITY, Scope, resolve_scope

# Markers of open incidents from this zoom on; zoomed out, the choropleth and heat carry the picture.
MARKERS_MIN_ZOOM = 13
# Permanent labels on the units when the view holds at most this many (always for districts).
MAX_LABELS = 40
# The most units one view draws: beyond this a canvas repaint (each zoom step) costs more than
# the 300 ms a zoom step may take, and the polygons are too small to read anyway.
MAX_IN_VIEW = 3000


@dataclass(frozen=True)
class Snapshot:
    """The store's position: its change-feed head, units version, and the minute answers are for."""

    head: int
    units_version: str
    now: datetime


_flights: dict[tuple, threading.Lock] = {}
_flights_lock = threading.Lock()


def single_flight(key: tuple, compute):
    """compute() for `key` by one thread at a time: screens woken by the same change wait for the
    first one's answer (from the cache) instead of all running the same queries at once."""
    with _flights_lock:
        lock = _flights.setdefault(key, threading.Lock())
    try:
        with lock:
            return compute()
    finally:
        with _flights_lock:
            if not lock.locked():
                _flights.pop(key, None)


def db_key(engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def snapshot(engine) -> Snapshot:
    """Where the store is now (one short read)."""
    with store.reading(engine) as conn:
        head = store.feed_head(conn)
        version = boundaries.units_version(conn)
    return Snapshot(head, version, datetime.now(UTC).replace(microsecond=0))


def scope_of(engine, unit_id: int | None) -> Scope:
    """The Scope for a unit id (the city for None), clamped to the signed-in user's jurisdiction (their
    own unit when none or one outside it is asked); an id that no longer exists falls back to the city.
    The id comes from the page (its state, a breadcrumb, a click): what is not one counts as none asked."""
    unit_id = id_or_none(unit_id, "scope")
    with store.reading(engine) as conn:
        unit_id = jurisdiction.clamp_unit(conn, unit_id)
    if not unit_id:
        return CITY
    try:
        with store.reading(engine) as conn:
            return resolve_scope(conn, unit_id)
    except NotFound:
        return CITY


def city_extent(engine) -> tuple[float, float, float, float] | None:
    with store.reading(engine) as conn:
        return boundaries.extent(conn, schema.DISTRICT)


@cache.memoize(timeout=600)
def _all_values(key: str, head: int, minute: datetime, level: int, metric: str) -> dict[int, int]:
    # The minute is only part of the cache key (overdue and "last 24 h" move with the clock);
    # the count itself is taken now, like every KPI on the screen.
    engine = current_app.extensions["citybrain"].engine
    with store.reading(engine) as conn:
        return choropleth.unit_values(conn, level, metric, datetime.now(UTC))


def _level_values(engine, snap: Snapshot, level: int, metric: str) -> dict[int, int]:
    """Every unit's value of `level`, cached per feed head and minute (one query for every screen)."""
    minute = snap.now.replace(second=0) + timedelta(minutes=1)
    key = (db_key(engine), snap.head, minute, level, metric)
    return single_flight(("values", *key), lambda: _all_values(*key))


def warm_values(engine, snap: Snapshot, level: int, metric: str) -> threading.Thread:
    """Read `level`'s values in the background (the level a zoom-in shows next), so that zoom finds
    them cached; a request that needs them meanwhile waits for this read instead of repeating it."""
    app = current_app._get_current_object()

    def run():
        with app.app_context():
            _level_values(engine, snap, level, metric)

    thread = threading.Thread(target=run, name="citybrain-values-warm-up", daemon=True)
    thread.start()
    return thread


def values_for(engine, snap: Snapshot, level: int, metric: str, bbox) -> tuple[dict[int, int], list[int]]:
    """(values of the units in view, colour breaks over the whole level) for a metric.

    Breaks come from every unit of the level, so colours do not shift while the map pans.
    """
    every = _level_values(engine, snap, level, metric)
    with store.reading(engine) as conn:
        allowed = jurisdiction.units_within(conn, level)
    if allowed is not None:  # a user's jurisdiction: no figures of units outside it
        every = {unit: value for unit, value in every.items() if unit in allowed}
    breaks = choropleth.nice_breaks(every.values())
    if bbox is None:
        return every, breaks
    ids = feature_index(engine, snap.units_version, level).ids_in(bbox)
    return choropleth.restrict(every, ids.tolist()), breaks


def units_url(level: int, version: str, bbox) -> str:
    """The geometry URL of a level (and bbox): versioned, so the browser caches it for good."""
    query = {"v": version}
    if bbox is not None:
        query["bbox"] = ",".join(f"{v:g}" for v in bbox)
    return f"/geo/units/{schema.LEVEL_NAMES[level]}.json?{urlencode(query)}"


def markers_url(bbox, scope: Scope, head: int) -> str:
    query = {"bbox": ",".join(f"{v:g}" for v in bbox)} if bbox is not None else {}
    if scope.id:
        query["scope"] = scope.id
    query["h"] = head  # a new head is a new URL: the layer re-reads, the browser cache never answers stale
    return f"/geo/incidents.json?{urlencode(query)}"


def markers_bbox_for(zoom, bounds, keep=None) -> tuple | None:
    """The snapped bbox the markers are read for (None below MARKERS_MIN_ZOOM: the layer stays empty);
    `keep`, the bbox already drawn, when it holds the view (zooming in re-reads nothing)."""
    box = boundaries.leaflet_bounds_to_bbox(bounds)
    if zoom is None or zoom < MARKERS_MIN_ZOOM or box is None:
        return None
    snapped = boundaries.snap_bbox(box)
    return tuple(keep) if keep and contains(keep, snapped) else snapped


def markers_url_for(zoom, bounds, scope: Scope, head: int, keep=None) -> str | None:
    """The markers URL for a view, None below MARKERS_MIN_ZOOM (the layer then stays empty)."""
    box = markers_bbox_for(zoom, bounds, keep)
    return None if box is None else markers_url(box, scope, head)


def contains(outer, inner) -> bool:
    """Whether bbox `outer` holds bbox `inner` (minx, miny, maxx, maxy)."""
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


def heat_spec(window: str | None, zoom: float | None, scope: Scope, head: int) -> dict:
    """What the clientside heat layer fetches ({'url': None} when the heat layer is off)."""
    if not window or window == "off":
        return {"url": None}
    query = {"window": heat.parse_window(window), "cell": heat.cell_for_zoom(zoom), "h": head}
    if scope.id:
        query["scope"] = scope.id
    return {"url": f"/geo/heat.json?{urlencode(query)}", "radius": 20, "blur": 16}


def estimate_zoom(bbox, width_px: int = 1400, height_px: int = 800) -> float | None:
    """The zoom at which `bbox` fills a map of about this size (Web Mercator), for the first render.

    The browser reports the real zoom as soon as the map is ready; this only makes the first
    paint show the right level instead of a guess.
    """
    if bbox is None:
        return None
    minx, miny, maxx, maxy = bbox
    lon_zoom = math.log2(360 * width_px / (256 * max(maxx - minx, 1e-9)))
    lat_zoom = math.log2(2 * math.pi * height_px / (256 * max(_mercator_y(maxy) - _mercator_y(miny), 1e-12)))
    return math.floor(min(lon_zoom, lat_zoom, 18))


def _mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def view_bbox(level: int, bounds) -> tuple | None:
    """The snapped bbox a level is fetched for (None: the whole level, for the coarse levels)."""
    if level not in boundaries.BBOX_LEVELS:
        return None
    raw = boundaries.leaflet_bounds_to_bbox(bounds)
    return None if raw is None else boundaries.snap_bbox(raw)


def _kept_bbox(index, level: int, bbox, previous: dict | None):
    """A bbox already asked for at `level` that holds this view and no more than MAX_IN_VIEW units:
    the one drawn, or the one the page prefetched for the next level. Zooming in inside it then needs
    no new geometry (the browser has it) and, for the drawn one, no redraw (same URL, same style key)."""
    if bbox is None or not previous:
        return bbox
    for key_level, key_bbox in (("level", "bbox"), ("next_level", "next_bbox")):
        box = previous.get(key_bbox)
        if previous.get(key_level) == level and box and contains(box, bbox) and len(index.ids_in(box)) <= MAX_IN_VIEW:
            return tuple(box)
    return bbox


def next_level_view(engine, snap: Snapshot, level: int, bounds) -> dict | None:
    """The finer level a zoom-in reaches next, over this view's area ({level, bbox, url}), for the page
    to prefetch while idle; None at grids or when that area holds more than MAX_IN_VIEW of them."""
    if level >= schema.GRID:
        return None
    finer = level + 1
    bbox = view_bbox(finer, bounds)
    if len(feature_index(engine, snap.units_version, finer).ids_in(bbox)) > MAX_IN_VIEW:
        return None
    return {"level": finer, "bbox": bbox, "url": units_url(finer, snap.units_version, bbox)}


def map_view(
    engine, snap: Snapshot, zoom, bounds, scope: Scope, metric: str, lang: str, theme: str, heat_window, previous=None
) -> dict:
    """Everything the map needs for a view: geometry URL, hideout (values only), markers URL, heat spec,
    and the next level's geometry to prefetch. `previous` is the view record of the page's last view
    (level, bbox, next_level, next_bbox, markers_bbox): areas it already fetched are reused."""
    level = boundaries.level_for_view(zoom, None if scope.is_city else scope.level)
    bbox = view_bbox(level, bounds)
    in_view = len(feature_index(engine, snap.units_version, level).ids_in(bbox))
    # Where units are dense (a city centre's grids are a few hundred metres across) the zoom alone
    # would put thousands of polygons in view: step up a level until the view holds a readable number.
    while in_view > MAX_IN_VIEW and level > schema.DISTRICT:
        level -= 1
        bbox = view_bbox(level, bounds)
        in_view = len(feature_index(engine, snap.units_version, level).ids_in(bbox))
    index = feature_index(engine, snap.units_version, level)
    kept = _kept_bbox(index, level, bbox, previous)
    if kept != bbox:
        bbox, in_view = kept, len(index.ids_in(kept))
    values, breaks = values_for(engine, snap, level, metric, bbox)
    hideout = choropleth.hideout(level, metric, values, breaks, scope=scope, theme=theme, bbox=bbox)
    hideout.update(
        level=level,
        head=snap.head,
        lang=lang,
        chain=[c["id"] for c in scope.chain],
        labels=level == schema.DISTRICT or in_view <= MAX_LABELS,
    )
    markers_box = markers_bbox_for(zoom, bounds, (previous or {}).get("markers_bbox"))
    return {
        "level": level,
        "bbox": bbox,
        "units_url": units_url(level, snap.units_version, bbox),
        "hideout": hideout,
        "markers_bbox": markers_box,
        "markers_url": None if markers_box is None else markers_url(markers_box, scope, snap.head),
        "heat": heat_spec(heat_window, zoom, scope, snap.head),
        "next": next_level_view(engine, snap, level, bounds),
    }


def live_values(engine, snap: Snapshot, level: int, metric: str, bbox, scope: Scope) -> dict:
    """The values pushed to the open map on a change: what citybrain.applyValues restyles with."""
    values, breaks = values_for(engine, snap, level, metric, bbox)
    return {
        "key": choropleth.style_key(level, metric, scope.id, bbox),
        "values": {str(k): v for k, v in values.items()},
        "breaks": breaks,
        "colours": choropleth.colours_for(metric, breaks),
        "head": snap.head,
    }
