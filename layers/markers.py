"""Open-incident markers: open incidents in view -> GeoJSON points coloured by priority and clock (clustered in the browser)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.incidents import clock
from layers.scope import Scope

POINT_FUNCTION = "incidentPoint"
CLUSTER_FUNCTION = "incidentCluster"
# More markers than this in view are not readable anyway; the heat layer shows the density.
MAX_MARKERS = 5000

# Marker fill by priority; the ring says overdue (red) or near due (amber).
PRIORITY_COLOUR = {1: "#d7301f", 2: "#fc8d59", 3: "#4575b4"}
STATUS_RING = {clock.OVERDUE: "#b10026", clock.NEAR_DUE: "#feb24c"}


def open_incidents(
    conn: Connection,
    now: datetime,
    bbox: tuple[float, float, float, float] | None = None,
    scope: Scope | None = None,
    limit: int = MAX_MARKERS,
) -> list[dict]:
    """Open incidents with a position (in `bbox` and `scope` when given), most urgent first, at most `limit`."""
    i = schema.incidents
    status = clock.due_status_expression(now)
    query = (
        select(i.c.id, i.c.lon, i.c.lat, i.c.priority, i.c.state, i.c.category_id, status.label("due"))
        # "= true" (not "IS"): the form the covering open-incidents index's own WHERE matches.
        .where(i.c.is_open == true(), i.c.lon.is_not(None), i.c.lat.is_not(None))
        .order_by(i.c.priority, i.c.reported_at.desc())
        .limit(limit)
    )
    if bbox is not None:
        minx, miny, maxx, maxy = bbox
        query = query.where(i.c.lon.between(minx, maxx), i.c.lat.between(miny, maxy), _in_grids_meeting(conn, bbox))
    if scope is not None and scope.incident_filter() is not None:
        query = query.where(scope.incident_filter())
    return [dict(r._mapping) for r in conn.execute(query)]


def _in_grids_meeting(conn: Connection, bbox: tuple[float, float, float, float]):
    """SQL: the incident lies in a grid whose bounding box meets `bbox`, or in none (unlocated).

    Implied by the point lying in `bbox` (a located point lies in its grid), so it changes no
    answer; it lets the open incidents be sifted on the covering index (grid_id is in it, lon and
    lat are not) and only those in view be read from the table: tens of rows instead of every open
    incident, which took hundreds of milliseconds at a million incidents.
    """
    i, u = schema.incidents, schema.units
    minx, miny, maxx, maxy = bbox
    grids = select(u.c.id).where(u.c.level == schema.GRID, u.c.minx <= maxx, u.c.maxx >= minx, u.c.miny <= maxy, u.c.maxy >= miny)
    # SQLite would otherwise look each grid's whole history up by (grid, reported_at).
    grid = i.c.grid_id + 0 if conn.dialect.name == "sqlite" else i.c.grid_id
    return or_(i.c.grid_id.is_(None), grid.in_(grids))


def marker_features(rows: list[dict]) -> dict:
    """A FeatureCollection of points with what the marker needs: id, priority, state, clock status, colours."""
    features = []
    for r in rows:
        due = r.get("due")
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(r["lon"], 6), round(r["lat"], 6)]},
                "properties": {
                    "id": int(r["id"]),
                    "priority": int(r["priority"]),
                    "state": r["state"],
                    "category_id": r["category_id"],
                    "due": due,
                    "fill": PRIORITY_COLOUR.get(int(r["priority"]), PRIORITY_COLOUR[3]),
                    "ring": STATUS_RING.get(due),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
