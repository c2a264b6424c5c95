"""Early-warning alerts on the map: ranked alert rows -> GeoJSON points (kind, rank, colour), drawn as pulsing rings."""

from __future__ import annotations

POINT_FUNCTION = "alertPoint"  # window.citybrain.alertPoint draws each point (dashboard/assets/alerts.js)

KINDS = ("surge", "hotspot", "chronic", "deadline")
# One colour and one plain symbol per kind: the same on the list and the map, readable without a legend lookup.
KIND_COLOUR = {"surge": "#e8590c", "hotspot": "#e03131", "chronic": "#9c36b5", "deadline": "#f08c00"}
KIND_SYMBOL = {"surge": "▲", "hotspot": "◎", "chronic": "↻", "deadline": "◷"}
FALLBACK_COLOUR = "#868e96"
FOCUS_ZOOM = 15  # a click on an alert in the list flies the map to this zoom (grids and markers are drawn)


def on_map(row: dict) -> bool:
    """Drawn only where the alert lies in a grid: an unlocated incident's point (outside every grid) is listed,
    not drawn around the city (as the heat layer leaves unlocated incidents out)."""
    return row.get("lon") is not None and row.get("lat") is not None and row.get("unit_id") is not None


def alert_features(rows: list[dict]) -> dict:
    """A FeatureCollection of the alerts that have a position, each numbered by its rank in `rows`.

    `rows` come ranked (data.warnings.alerts.list_alerts, highest score first): the number on a ring is
    the number on the list, so a wall reader matches them without hovering.
    """
    features = []
    for rank, row in enumerate(rows, start=1):
        if not on_map(row):
            continue
        kind = row.get("kind")
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(float(row["lon"]), 6), round(float(row["lat"]), 6)]},
                "properties": {
                    "id": int(row["id"]),
                    "rank": rank,
                    "kind": kind,
                    "status": row.get("status"),
                    "colour": KIND_COLOUR.get(kind, FALLBACK_COLOUR),
                    "symbol": KIND_SYMBOL.get(kind, "!"),
                    # Only open alerts pulse: an acknowledged one is being looked at already.
                    "pulse": row.get("status") == "open",
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def focus_points(rows: list[dict]) -> dict[str, list[float]]:
    """{alert id: [lat, lon]} for the list's "show on map" clicks (Leaflet order)."""
    return {str(int(r["id"])): [float(r["lat"]), float(r["lon"])] for r in rows if on_map(r)}
