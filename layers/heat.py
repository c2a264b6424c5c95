"""Heat layer: incidents of the last hour / day / week, weighted by priority and binned server-side -> [lat, lon, weight].

The browser's Leaflet.heat (dashboard/assets/vendor/leaflet-heat.js) draws the points; it
gets one point per occupied cell, never one per incident, so a week of a busy city stays a
small answer.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from data import schema, times
from data.errors import ValidationError
from data.incidents import lifecycle
from data.parse import parse_float, shown
from layers.scope import Scope

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
# An urgent case heats its place three times as much as a normal one.
PRIORITY_WEIGHT = {1: 3.0, 2: 2.0, 3: 1.0}
# Bin sizes in degrees the client may ask for (about 1 km, 500 m, 200 m, 100 m).
CELLS = (0.01, 0.005, 0.002, 0.001)


def cell_for_zoom(zoom: float | None) -> float:
    """The bin size for a zoom: coarse bins zoomed out (the blur hides detail anyway), fine ones zoomed in."""
    if zoom is None or zoom < 11:
        return 0.01
    if zoom < 13:
        return 0.005
    if zoom < 15:
        return 0.002
    return 0.001


def parse_window(text: str | None) -> str:
    """A window name ('1h', '24h', '7d'); ValidationError on anything else."""
    window = text or DEFAULT_WINDOW
    if window not in WINDOWS:
        raise ValidationError(f"window must be one of {', '.join(WINDOWS)} (got {shown(text)})")
    return window


def parse_cell(text: str | None) -> float:
    """A bin size from CELLS; ValidationError on anything else (free sizes would defeat the cache)."""
    if text is None or text == "":
        return CELLS[0]
    try:
        cell = parse_float(text, "cell", minimum=min(CELLS), maximum=max(CELLS))
    except ValidationError:
        cell = None
    if cell not in CELLS:
        raise ValidationError(f"cell must be one of {', '.join(map(str, CELLS))} (got {shown(text)})")
    return cell


def heat_cells(
    conn: Connection,
    window: str,
    now: datetime,
    cell: float,
    scope: Scope | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> list[tuple[int, int, float]]:
    """(lon bin, lat bin, weight) for incidents reported in the window before `now`, located in a grid."""
    i = schema.incidents
    now = times.to_utc(now)
    weight = case(*((i.c.priority == p, w) for p, w in PRIORITY_WEIGHT.items()), else_=1.0)
    lon_bin = func.round(i.c.lon / cell)
    lat_bin = func.round(i.c.lat / cell)
    query = (
        select(lon_bin.label("x"), lat_bin.label("y"), func.sum(weight).label("w"))
        .where(
            i.c.reported_at > now - WINDOWS[window],
            i.c.reported_at <= now,
            i.c.lon.is_not(None),
            i.c.lat.is_not(None),
            # Outside every grid: the point is wrong or not ours; it is counted as unlocated, not drawn as heat.
            i.c.unlocated.is_(False),
            i.c.state.not_in((lifecycle.MERGED, lifecycle.REJECTED)),  # duplicates and non-cases do not heat
        )
        .group_by(lon_bin, lat_bin)
    )
    if scope is not None and scope.incident_filter() is not None:
        query = query.where(scope.incident_filter())
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        query = query.where(i.c.lon.between(minx, maxx), i.c.lat.between(miny, maxy))
    return [(int(x), int(y), float(w)) for x, y, w in conn.execute(query)]


def heat_points(cells: list[tuple[int, int, float]], cell: float) -> dict:
    """{"points": [[lat, lon, weight]...], "max": heaviest cell}: what Leaflet.heat takes."""
    points = [[round(y * cell, 6), round(x * cell, 6), round(w, 3)] for x, y, w in cells]
    return {"points": points, "max": max((p[2] for p in points), default=0.0)}
