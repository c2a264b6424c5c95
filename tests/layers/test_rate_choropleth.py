"""The rate choropleth of /trends (layers/rate_choropleth.py): classes, legend, and values equal to each unit's
rate computed from the raw incidents (through the roll-up, as the served page reads it)."""

from __future__ import annotations

import pytest

from data import store
from data.metrics import rollups, trends
from layers import rate_choropleth
from tests.data.metrics.test_trends import NOW, TZ, _raw, _reference, city  # noqa: F401  (city is a fixture)


def test_colour_classes_and_legend():
    c = rate_choropleth.COLOURS
    assert [rate_choropleth.colour_of(v) for v in (0.0, 0.4999, 0.5, 0.84, 0.85, 0.9499, 0.95, 1.0)] == [
        c[0],
        c[0],
        c[1],
        c[2],
        c[3],
        c[3],
        c[4],
        c[4],
    ]
    assert rate_choropleth.colour_of(None) == rate_choropleth.NO_DATA
    labels = [label for label, _ in rate_choropleth.legend_entries("No data")]
    assert labels == ["< 50%", "50%–70%", "70%–85%", "85%–95%", "≥ 95%", "No data"]


def test_units_url_uses_the_cached_geometry_route():
    assert rate_choropleth.units_url(2, "v1", None) == "/geo/units/street.json?v=v1"
    url = rate_choropleth.units_url(4, "v1", (106.5, 29.5, 106.6, 29.6))
    assert url == "/geo/units/grid.json?v=v1&bbox=106.500000,29.500000,106.600000,29.600000"


@pytest.mark.parametrize("rate", ["on_time_rate", "satisfaction_rate", "response_rate", "resolution_rate"])
def test_map_values_are_each_units_rate_in_the_store(engine, city, rate):  # noqa: F811
    with engine.begin() as conn:
        rollups.refresh(conn, TZ)
    with store.reading(engine) as conn:
        review = trends.review(conn, None, NOW, TZ, days=30)
    hideout = rate_choropleth.hideout(review["units"], rate, lambda u: u["name_en"], lambda u: f"/trends?scope={u['unit_id']}")
    rows = _raw(engine)
    assert set(hideout["values"]) == {str(d) for d in city.lattice.district_ids}
    for district in city.lattice.district_ids:
        want = _reference([r for r in rows if r["district_id"] == district], 30)[rate]
        got = hideout["values"][str(district)]
        assert (got is None and want is None) or got == pytest.approx(want, abs=1e-9), (district, got, want)
    assert any(v is not None for v in hideout["values"].values())
