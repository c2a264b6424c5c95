"""Choropleth layer: incident counts per unit for a metric -> colour classes and the `hideout` the style function reads.

Only values travel to the browser (a plain {unit id: count} dict), never geometry; the
clientside function window.citybrain.unitStyle (dashboard/assets/citybrain.js) turns a
feature's value into a fill colour with the breaks and colours given here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import func, select, true
from sqlalchemy.engine import Connection

from data import schema, times
from data.incidents import clock, lifecycle
from layers.scope import INCIDENT_COLUMN, Scope

METRICS = ("open", "overdue", "new_24h")
DEFAULT_METRIC = "open"


STYLE_FUNCTION = "unitStyle"
EACH_FUNCTION = "unitEach"

# Sequential palettes (ColorBrewer YlOrRd, Reds, Blues; 5 classes), readable on light and dark.
PALETTES = {
    "open": ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"],
    "overdue": ["#fee5d9", "#fcae91", "#fb6a4a", "#de2d26", "#a50f15"],
    "new_24h": ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"],
}
ZERO_COLOUR = "#d9d9d9"  # a unit with nothing on it: present, but quiet
CLASSES = 5


def metric_condition(metric: str, now: datetime, table=schema.incidents):
    """SQL condition selecting the incidents a metric counts."""
    if metric == "open":
        return table.c.is_open.is_(True)
    if metric == "overdue":
        return clock.overdue_expression(now, table)
    if metric == "new_24h":
        # A merged duplicate is the same matter reported twice (一件事一次办): counted once.
        return (
            (table.c.reported_at > times.to_utc(now) - timedelta(hours=24))
            & (table.c.reported_at <= times.to_utc(now))
            & (table.c.state != lifecycle.MERGED)
        )
    raise ValueError(f"unknown metric {metric!r}; use one of {', '.join(METRICS)}")


def unit_values(conn: Connection, level: int, metric: str, now: datetime, scope: Scope | None = None) -> dict[int, int]:
    """{unit id: count} of the incidents `metric` counts, per unit of `level`, units with none left out."""
    i = schema.incidents
    column = i.c[INCIDENT_COLUMN[level]]
    # No "unit IS NOT NULL" in SQL (unlocated incidents are dropped below) and, on SQLite, a group
    # key no index can supply: either would send SQLite down the (unit, reported_at) index over all
    # history, a table read per incident (seconds at a million), instead of the few percent it needs.
    key = column + 0 if conn.dialect.name == "sqlite" else column
    query = select(key, func.count()).where(metric_condition(metric, now)).group_by(key)
    if metric in ("open", "overdue"):
        # Overdue implies open; saying so (as "= true", which the partial index's own WHERE matches)
        # lets the covering open-incidents index answer alone.
        query = query.where(i.c.is_open == true())
    if scope is not None and scope.incident_filter() is not None:
        query = query.where(scope.incident_filter())
    return {int(unit): int(n) for unit, n in conn.execute(query) if unit is not None}


def nice_breaks(values: Iterable[int], classes: int = CLASSES) -> list[int]:
    """Upper bounds of `classes` colour classes for positive counts, rounded to readable numbers.

    Quantile-based so a few hot units do not wash every other unit into the first class,
    then made strictly increasing; the last break is the maximum so every value has a class.
    """
    positive = sorted(v for v in values if v > 0)
    if not positive:
        return []
    top = positive[-1]
    breaks: list[int] = []
    for k in range(1, classes):
        q = positive[min(len(positive) - 1, math.ceil(k * len(positive) / classes) - 1)]
        b = _nice(q)
        if (not breaks or b > breaks[-1]) and b < top:
            breaks.append(b)
    breaks.append(top)
    return breaks


def _nice(n: int) -> int:
    if n <= 10:
        return int(n)
    magnitude = 10 ** (len(str(int(n))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        candidate = int(step * magnitude)
        if candidate >= n:
            return candidate
    return int(n)


def colours_for(metric: str, breaks: list[int]) -> list[str]:
    """One colour per break, spread over the metric's palette (so 2 classes use its two ends)."""
    palette = PALETTES[metric]
    if not breaks:
        return []
    if len(breaks) == 1:
        return [palette[-1]]
    return [palette[round(i * (len(palette) - 1) / (len(breaks) - 1))] for i in range(len(breaks))]


def colour_of(value: int | None, breaks: list[int], colours: list[str]) -> str:
    """The fill of one value (the same rule as citybrain.unitStyle, for tests and the legend)."""
    if not value or value <= 0:
        return ZERO_COLOUR
    for bound, colour in zip(breaks, colours, strict=True):
        if value <= bound:
            return colour
    return colours[-1] if colours else ZERO_COLOUR


def legend_entries(breaks: list[int], colours: list[str]) -> list[tuple[str, str]]:
    """(label, colour) rows of the legend: '0', then '1–3', '4–8', ... up to the maximum."""
    rows = [("0", ZERO_COLOUR)]
    low = 1
    for bound, colour in zip(breaks, colours, strict=True):
        rows.append((str(bound) if bound == low else f"{low}–{bound}", colour))
        low = bound + 1
    return rows


def style_key(level: int, metric: str, scope_id: int | None, bbox=None) -> str:
    """What the values belong to (level, metric, scope and the area fetched): the clientside restyle
    ignores values meant for another view, such as the grids of an area the map has panned away from."""
    area = ",".join(f"{v:g}" for v in bbox) if bbox else "all"
    return f"{level}|{metric}|{scope_id or 0}|{area}"


def hideout(
    level: int,
    metric: str,
    values: Mapping[int, int],
    breaks: list[int],
    scope: Scope | None = None,
    theme: str = "desk",
    bbox=None,
) -> dict:
    """The GeoJSON layer's `hideout`: values keyed by unit id (strings, as JSON keys are) and how to colour them."""
    scope_id = scope.id if scope is not None else None
    return {
        "key": style_key(level, metric, scope_id, bbox),
        "metric": metric,
        "values": {str(k): int(v) for k, v in values.items()},
        "breaks": list(breaks),
        "colours": colours_for(metric, breaks),
        "zero": ZERO_COLOUR,
        "scope": scope_id,
        "theme": theme,
    }


def restrict(values: Mapping[int, int], ids: Iterable[int]) -> dict[int, int]:
    """The values of the units in `ids` only (those in view), keeping the payload small."""
    return {int(i): values[int(i)] for i in ids if int(i) in values}
