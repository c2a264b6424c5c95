"""The early-warning map layer: ranked alert rows -> numbered GeoJSON points coloured by kind, and focus points."""

from __future__ import annotations

from layers import alerts as alert_layer


def _row(alert_id=1, kind="surge", status="open", lon=106.51, lat=29.51, unit_id=7) -> dict:
    return {"id": alert_id, "kind": kind, "status": status, "lon": lon, "lat": lat, "score": 9.5, "unit_id": unit_id}


def test_features_are_numbered_by_rank_and_coloured_by_kind_and_unlocated_alerts_keep_their_rank():
    rows = [_row(1, "surge"), _row(2, "deadline", lon=None, lat=None), _row(3, "chronic", status="acknowledged")]
    features = alert_layer.alert_features(rows)["features"]
    assert [f["properties"]["id"] for f in features] == [1, 3]
    assert [f["properties"]["rank"] for f in features] == [1, 3]  # the number on the ring is the number on the list
    first, third = (f["properties"] for f in features)
    assert first["colour"] == alert_layer.KIND_COLOUR["surge"] and third["colour"] == alert_layer.KIND_COLOUR["chronic"]
    assert first["pulse"] is True and third["pulse"] is False  # only open alerts pulse
    assert features[0]["geometry"] == {"type": "Point", "coordinates": [106.51, 29.51]}
    assert alert_layer.focus_points(rows) == {"1": [29.51, 106.51], "3": [29.51, 106.51]}  # Leaflet's lat, lon


def test_an_alert_in_no_grid_is_listed_but_not_drawn():
    rows = [_row(1, "deadline", unit_id=None), _row(2, "deadline")]
    assert [f["properties"]["id"] for f in alert_layer.alert_features(rows)["features"]] == [2]
    assert list(alert_layer.focus_points(rows)) == ["2"]
