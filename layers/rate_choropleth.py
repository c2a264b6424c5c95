"""Rate choropleth of the leaders' review: the units one level below the scope coloured by a chosen rate.

Values only (a {unit id: rate} dict, the colour classes and each unit's drill-down link) travel in the
GeoJSON layer's `hideout`; the geometry comes from the cached /geo/units route. The clientside functions
window.citybrain.trendsRate* (dashboard/assets/trends.js) apply the same classes as `colour_of` here.
Classes are fixed shares, not quantiles, so a colour means the same rate in every period and scope.
"""

from __future__ import annotations

from collections.abc import Callable

from data import schema

STYLE_FUNCTION = "trendsRateStyle"
EACH_FUNCTION = "trendsRateEach"
FILTER_FUNCTION = "trendsRateFilter"

# Upper bounds (exclusive, except the last) of the classes, as shares; red (poor) to green (good).
BREAKS = (0.5, 0.7, 0.85, 0.95, 1.0)
COLOURS = ("#d7191c", "#fdae61", "#ffffbf", "#a6d96a", "#1a9641")  # ColorBrewer RdYlGn, 5 classes
NO_DATA = "#bdbdbd"


def colour_of(rate: float | None) -> str:
    """The fill of one rate (the rule trendsRateStyle applies in the browser)."""
    if rate is None:
        return NO_DATA
    for bound, colour in zip(BREAKS, COLOURS, strict=True):
        if rate < bound:
            return colour
    return COLOURS[-1]


def legend_entries(no_data_label: str) -> list[tuple[str, str]]:
    """(label, colour) rows: '< 50%', '50–70%', ..., '≥ 95%', then no data."""
    rows = [(f"< {BREAKS[0]:.0%}", COLOURS[0])]
    for low, high, colour in zip(BREAKS[:-2], BREAKS[1:-1], COLOURS[1:-1], strict=True):
        rows.append((f"{low:.0%}–{high:.0%}", colour))
    rows.append((f"≥ {BREAKS[-2]:.0%}", COLOURS[-1]))
    rows.append((no_data_label, NO_DATA))
    return rows


def hideout(units: list[dict], rate: str, label: Callable[[dict], str], link: Callable[[dict], str]) -> dict:
    """The layer's hideout for review["units"]: each unit's rate, tooltip and drill-down link, keyed by id."""
    return {
        "rate": rate,
        "values": {str(u["unit_id"]): u[rate] for u in units},
        "labels": {str(u["unit_id"]): label(u) for u in units},
        "links": {str(u["unit_id"]): link(u) for u in units},
        "breaks": list(BREAKS),
        "colours": list(COLOURS),
        "none": NO_DATA,
    }


def units_url(level: int, version: str, bbox: tuple[float, float, float, float] | None) -> str:
    """The cached geometry route for one level's units, limited to the scope's box when it has one."""
    url = f"/geo/units/{schema.LEVEL_NAMES[level]}.json?v={version}"
    if bbox and all(v is not None for v in bbox):
        url += "&bbox=" + ",".join(f"{v:.6f}" for v in bbox)
    return url
