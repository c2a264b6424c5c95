"""Likely duplicates (一件事一次办): open reports of one category close in space and time, and merging two of them."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, require_incident
from data.errors import InvalidTransition
from data.incidents import lifecycle
from data.incidents.feed import get_incident
from data.incidents.transitions import apply_action
from data.times import from_db

__all__ = ["DUPLICATE_HOURS", "DUPLICATE_RADIUS_M", "distance_m", "likely_duplicates", "merge_direction", "merge_duplicates"]

INC = schema.incidents

# Likely duplicates: the same category, open, this close in space and time.
DUPLICATE_RADIUS_M = 300
DUPLICATE_HOURS = 24
_EARTH_RADIUS_M = 6_371_008.8
MERGEABLE = frozenset(lifecycle.TRANSITIONS["merge"])


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for a few hundred metres)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def merge_direction(incident: dict, other: dict) -> tuple[int, int] | None:
    """(merged, kept) for two reports of one matter, or None when neither can be merged.

    The later report joins the earlier one (the case already under way keeps its history); when
    the later one is past the stage where a merge is allowed, the earlier one joins it instead.
    """
    first, second = sorted((incident, other), key=lambda r: (from_db(r["reported_at"]), r["id"]))
    for merged, kept in ((second, first), (first, second)):
        if merged["state"] in MERGEABLE and kept["state"] in lifecycle.OPEN_STATES:
            return merged["id"], kept["id"]
    return None


def likely_duplicates(
    conn: Connection, incident_id: int, *, radius_m: float = DUPLICATE_RADIUS_M, hours: float = DUPLICATE_HOURS, limit: int = 10
) -> list[dict]:
    """Open incidents of the same category within `radius_m` metres and `hours` hours of this one, nearest first.

    Each carries distance_m, hours_apart and `merge` ({merged, kept} ids, or None when neither
    can be merged into the other).
    """
    incident = get_incident(conn, incident_id)
    if not incident["is_open"] or incident["lon"] is None or incident["lat"] is None:
        return []
    lon, lat, reported = incident["lon"], incident["lat"], incident["reported_at"]
    dlat = radius_m / 111_320.0
    dlon = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    window = timedelta(hours=hours)
    rows = conn.execute(
        select(
            INC.c.id,
            INC.c.version,
            INC.c.state,
            INC.c.priority,
            INC.c.description,
            INC.c.address,
            INC.c.lon,
            INC.c.lat,
            INC.c.reported_at,
            INC.c.source,
        ).where(
            INC.c.category_id == incident["category_id"],
            INC.c.reported_at.between(reported - window, reported + window),
            INC.c.is_open.is_(True),
            INC.c.id != incident_id,
            INC.c.lon.between(lon - dlon, lon + dlon),
            INC.c.lat.between(lat - dlat, lat + dlat),
        )
    ).all()
    found = []
    for r in rows:
        other = {k: from_db(v) for k, v in r._mapping.items()}
        meters = distance_m(lon, lat, other["lon"], other["lat"])
        if meters > radius_m:
            continue
        direction = merge_direction(incident, other)
        other.update(
            distance_m=round(meters, 1),
            hours_apart=round(abs((other["reported_at"] - reported).total_seconds()) / 3600, 2),
            merge={"merged": direction[0], "kept": direction[1]} if direction else None,
            reported_at=other["reported_at"].isoformat(),
        )
        found.append(other)
    found.sort(key=lambda o: (o["distance_m"], o["hours_apart"], o["id"]))
    return found[:limit]


def merge_duplicates(
    conn: Connection, incident_id: int, other_id: int, *, actor: str | Actor, expected_versions: dict | None = None
) -> dict:
    """Merge two reports of one matter (一件事一次办) in the direction merge_direction picks; the merged row.

    Both incidents must be within an Actor's reach (NotFound otherwise, as for a missing one)."""
    incident, other = get_incident(conn, incident_id), get_incident(conn, other_id)
    require_incident(conn, actor, incident, "merge")
    require_incident(conn, actor, other, "merge")
    direction = merge_direction(incident, other)
    if direction is None:
        raise InvalidTransition(
            "merge",
            incident["state"],
            f"neither incident {incident_id} ({incident['state']}) nor "
            f"{other_id} ({other['state']}) can be merged into the other",
        )
    merged, kept = direction
    expected = (expected_versions or {}).get(merged)
    note = f"duplicate of incident {kept}"
    return apply_action(conn, merged, "merge", actor=actor, expected_version=expected, merged_into_id=kept, note=note)
