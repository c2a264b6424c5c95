"""The demo's incident history: 90 days of reports, each incident walked through the closed loop, as columns to load.

Reports come with daily and weekly rhythm, hotspots and departments of differing speed; each
incident is walked through the closed loop (data/incidents/lifecycle.py) and bulk-loaded with its audit log.
Arrivals, places, categories, priorities and sources are drawn with numpy in one go. Each
incident's life is then played out in Python (data/demo/lifecycles.py) by the same rules apply_action enforces
(lifecycle.next_state for every step, the same column effects, due times from the category
limits at dispatch), stopping at `now`: so recent incidents are still open at whatever stage
they had reached, some overdue and some near due. Rows and events are written (data/demo/bulk_load.py) with one
executemany (SQLite) or COPY (PostgreSQL) per table, events in time order so the change feed's
ids increase with time.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import shapely

from data.demo.catalogue import CATEGORIES, SOURCES, CatalogueIds
from data.demo.lifecycles import CASE_STATE, Case, LifeContext, live_case
from data.geo.locate import GridLocator
from data.incidents import lifecycle

CITY_TZ = ZoneInfo("Asia/Shanghai")
HOUR, DAY = 3600, 86400

# Relative report volume per local hour: quiet nights, a morning and an afternoon peak,
# noise and street life in the evening.
HOURLY = np.array(
    [0.25, 0.18, 0.14, 0.12, 0.12, 0.18, 0.35, 0.7, 1.3, 1.8, 1.9, 1.7,  # 00-11
     1.3, 1.4, 1.7, 1.75, 1.6, 1.4, 1.1, 1.05, 1.0, 0.8, 0.55, 0.38]  # 12-23
)  # fmt: skip
WEEKDAY = np.array([1.08, 1.05, 1.04, 1.03, 1.0, 0.82, 0.78])  # Monday first
RAINY_DAY_SHARE = 0.08
UNLOCATED_SHARE = 0.03
DUPLICATE_SHARE = 0.035
EMERGING_HOTSPOTS = 5
EMERGING_DAYS = 10

REPORT_ACTORS = {"12345": "12345 hotline", "app": "citizen app", "iot": "iot gateway", "video": "video AI"}
DESCRIPTION_PREFIX = {
    "patrol": "网格员巡查发现",
    "12345": "12345热线市民来电反映",
    "app": "市民通过App上报",
    "iot": "物联网感知告警",
    "video": "视频AI识别",
}


@dataclass
class CityForHistory:
    """What the history needs to know of the stored city, one entry per grid in the same order."""

    grid_ids: np.ndarray
    grid_geoms: np.ndarray
    ancestors: np.ndarray  # rows of (community_id, street_id, district_id)
    street_codes: list[str]
    places_zh: list[str]
    worker_ids: list[int]
    worker_codes: list[str]
    city_geom: object


@dataclass
class History:
    """Generated incident rows and audit events, as column lists ready for a bulk load."""

    incidents: dict[str, list] = field(default_factory=dict)
    events: dict[str, list] = field(default_factory=dict)

    @property
    def incident_count(self) -> int:
        return len(self.incidents.get("id", []))

    @property
    def event_count(self) -> int:
        return len(self.events.get("id", []))


INCIDENT_COLUMNS = (
    "id", "source", "external_id", "category_id", "priority", "description", "address", "lon", "lat", "unlocated",
    "grid_id", "community_id", "street_id", "district_id", "state", "is_open", "assignee_department_id",
    "assignee_worker_id", "reported_at", "registered_at", "dispatched_at", "first_dispatched_at", "acknowledged_at",
    "returned_at", "resolved_at", "closed_at", "rejected_at", "ack_due_at", "handle_due_at", "ack_late", "resolved_late",
    "satisfaction", "reopen_count", "escalation_level", "extension_minutes", "merged_into_id", "version", "updated_at",
)  # fmt: skip
EVENT_COLUMNS = ("id", "incident_id", "at", "actor", "action", "from_state", "to_state", "note", "data")


# --- arrivals -------------------------------------------------------------------------------------


def _arrival_times(start: int, now: int, per_day: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(report times, rainy flag) of all arrivals in [start, now): Poisson per hour with daily and weekly rhythm."""
    offset = int(datetime.fromtimestamp(now, CITY_TZ).utcoffset().total_seconds())
    first_hour = (start // HOUR) * HOUR
    hours = np.arange(first_hour, now, HOUR, dtype=np.int64)
    local = hours + offset
    local_day = local // DAY
    day_index = local_day - local_day.min()
    n_days = int(day_index.max()) + 1
    rainy = rng.random(n_days) < RAINY_DAY_SHARE
    day_level = rng.gamma(40.0, 1.0 / 40.0, n_days) * np.where(rainy, 1.15, 1.0)
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday
    weight = HOURLY[(local // HOUR) % 24] * WEEKDAY[weekday] * day_level[day_index]
    # Only the part of the first and last hour inside the window counts.
    inside = (np.minimum(hours + HOUR, now) - np.maximum(hours, start)) / HOUR
    weight = weight * inside
    expected = per_day * (now - start) / DAY
    counts = rng.poisson(weight / weight.sum() * expected) if weight.sum() > 0 else np.zeros(len(hours), dtype=int)
    lo, hi = np.maximum(hours, start), np.minimum(hours + HOUR, now)
    times = np.repeat(lo, counts) + (rng.random(counts.sum()) * np.repeat(hi - lo, counts)).astype(np.int64)
    times = np.sort(np.minimum(times, now - 1))
    return times, rainy[((times + offset) // DAY - local_day.min()).astype(int)]


def _local_hour(times: np.ndarray, now: int) -> np.ndarray:
    offset = int(datetime.fromtimestamp(now, CITY_TZ).utcoffset().total_seconds())
    return ((times + offset) // HOUR) % 24


def _categories(times: np.ndarray, rainy: np.ndarray, now: int, rng: np.random.Generator) -> np.ndarray:
    """Category index of each arrival: the usual mix, noise at night, standing water and landslips when it rains."""
    hour = _local_hour(times, now)
    night = (hour >= 22) | (hour < 6)
    out = np.empty(len(times), dtype=np.int64)
    base = np.array([c.weight for c in CATEGORIES])
    for is_night in (False, True):
        for is_rainy in (False, True):
            mask = (night == is_night) & (rainy == is_rainy)
            w = base * np.array([(c.night if is_night else 1.0) * (c.rain if is_rainy else 1.0) for c in CATEGORIES])
            out[mask] = rng.choice(len(CATEGORIES), size=int(mask.sum()), p=w / w.sum())
    return out


def _per_category(category: np.ndarray, attribute: str, rng: np.random.Generator) -> np.ndarray:
    """For each arrival, an index drawn from its category's distribution `attribute` (priorities or sources)."""
    out = np.zeros(len(category), dtype=np.int64)
    for index, cat in enumerate(CATEGORIES):
        mask = category == index
        p = np.asarray(getattr(cat, attribute), dtype=float)
        out[mask] = rng.choice(len(p), size=int(mask.sum()), p=p / p.sum())
    return out


def _grid_choice(city: CityForHistory, times: np.ndarray, start: int, now: int, rng: np.random.Generator) -> np.ndarray:
    """Grid index of each arrival: busy and quiet grids, a few chronic hotspots, and some rising ones lately."""
    n = len(city.grid_ids)
    weight = rng.lognormal(0.0, 0.5, n)
    hot = rng.random(n) < 0.02
    weight[hot] *= 5.0
    grids = rng.choice(n, size=len(times), p=weight / weight.sum())
    # Emerging hotspots (for early warning, 预测预警): their share grows over the last days.
    emerging = rng.choice(n, size=min(EMERGING_HOTSPOTS, n), replace=False)
    ramp = np.clip((times - (now - EMERGING_DAYS * DAY)) / (EMERGING_DAYS * DAY), 0.0, 1.0)
    moved = rng.random(len(times)) < 0.012 * ramp**2
    grids[moved] = emerging[rng.integers(0, len(emerging), int(moved.sum()))]
    return grids


def _points_in(geoms: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random point inside each geometry (rejection sampling in its bounding box, vectorised)."""
    bounds = shapely.bounds(geoms)
    lon, lat = np.empty(len(geoms)), np.empty(len(geoms))
    pending = np.arange(len(geoms))
    while len(pending):
        b = bounds[pending]
        x = b[:, 0] + rng.random(len(pending)) * (b[:, 2] - b[:, 0])
        y = b[:, 1] + rng.random(len(pending)) * (b[:, 3] - b[:, 1])
        ok = shapely.contains_xy(geoms[pending], x, y)
        lon[pending[ok]], lat[pending[ok]] = x[ok], y[ok]
        pending = pending[~ok]
    return lon, lat


def _points_outside(city_geom, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` points near the city but outside every grid (a reporter's wrong pin, a neighbouring county)."""
    minx, miny, maxx, maxy = city_geom.bounds
    shapely.prepare(city_geom)
    lon, lat = np.empty(0), np.empty(0)
    while len(lon) < n:
        x = rng.uniform(minx - 0.15, maxx + 0.15, 4 * n + 8)
        y = rng.uniform(miny - 0.15, maxy + 0.15, 4 * n + 8)
        out = ~shapely.intersects_xy(city_geom, x, y)
        lon, lat = np.concatenate([lon, x[out]]), np.concatenate([lat, y[out]])
    return lon[:n], lat[:n]


# --- the whole history ------------------------------------------------------------------------------


def generate_history(
    city: CityForHistory,
    ids: CatalogueIds,
    days: float,
    per_day: float,
    seed: int,
    now: datetime,
    calendars: dict | None = None,
) -> History:
    """Incidents and events of `days` days up to `now` at about `per_day` a day, drawn from `seed`.

    `calendars` (clock.limit_calendars of the store) makes due times count working hours as dispatches would.
    """
    rng = np.random.default_rng([seed, 3])
    now_s = int(now.timestamp())
    start = now_s - int(days * DAY)
    times, rainy = (
        _arrival_times(start, now_s, per_day, rng) if days > 0 and per_day > 0 else (np.zeros(0, np.int64), np.zeros(0, bool))
    )
    n = len(times)
    category = _categories(times, rainy, now_s, rng)
    priority = _per_category(category, "priorities", rng) + 1
    source = _per_category(category, "sources", rng)
    grid = _grid_choice(city, times, start, now_s, rng)
    lon, lat = _points_in(city.grid_geoms[grid], rng)

    # Repeat reports of the same matter (一件事一次办): same place and category as a recent one.
    duplicate_of = np.full(n, -1, dtype=np.int64)
    dup = np.flatnonzero((rng.random(n) < DUPLICATE_SHARE) & (np.arange(n) > 60))
    duplicate_of[dup] = dup - rng.integers(1, 60, len(dup))
    category[dup], priority[dup], grid[dup] = category[duplicate_of[dup]], priority[duplicate_of[dup]], grid[duplicate_of[dup]]
    lon[dup] = lon[duplicate_of[dup]] + rng.normal(0, 0.0002, len(dup))
    lat[dup] = lat[duplicate_of[dup]] + rng.normal(0, 0.0002, len(dup))

    # A few reports carry no usable position: none at all, or a pin outside every grid.
    unlocated = (rng.random(n) < UNLOCATED_SHARE) & (duplicate_of < 0)
    no_pin = unlocated & (rng.random(n) < 0.4)
    lon[no_pin], lat[no_pin] = np.nan, np.nan
    outside = unlocated & ~no_pin
    lon[outside], lat[outside] = _points_outside(city.city_geom, int(outside.sum()), rng)
    # The locator decides the grid, exactly as intake would.
    locator = GridLocator(city.grid_ids, city.grid_geoms, city.ancestors)
    located = locator.grid_index(lon, lat)
    source[(located < 0) & (source == SOURCES.index("patrol"))] = SOURCES.index("12345")

    offset = int(now.astimezone(CITY_TZ).utcoffset().total_seconds())
    ctx = LifeContext(
        rnd=random.Random(seed),
        now=now_s,
        offset=offset,
        category_ids=[ids.categories[c.code] for c in CATEGORIES],
        department_ids=ids.departments,
        limits=[c.limits for c in CATEGORIES],
    )
    history = History(incidents={c: [] for c in INCIDENT_COLUMNS})
    events: list[tuple] = []
    terminal = np.full(n, math.inf)
    cols = history.incidents
    for i in range(n):
        g = int(located[i])
        incident_id = i + 1
        cat = CATEGORIES[category[i]]
        src = SOURCES[source[i]]
        worker = (city.worker_ids[g], city.worker_codes[g]) if g >= 0 else None
        reporter = f"worker:{worker[1]}" if src == "patrol" else REPORT_ACTORS[src]
        centre = f"centre:{city.street_codes[g]}" if g >= 0 else "centre:city"
        case = Case(incident_id, int(times[i]), reporter, now_s, cat.limits, events, calendars)
        target = int(duplicate_of[i])
        merge_into = (target + 1, terminal[target]) if target >= 0 and located[target] >= 0 else None
        live_case(ctx, case, int(category[i]), int(priority[i]), centre, worker, merge_into)
        terminal[i] = case.terminal_at()

        has_pin = not math.isnan(lon[i])
        ancestors = city.ancestors[g] if g >= 0 else (None, None, None)
        values = {
            "id": incident_id,
            "source": src,
            "external_id": f"demo-{incident_id:07d}",
            "category_id": ctx.category_ids[category[i]],
            "priority": int(priority[i]),
            "description": f"{DESCRIPTION_PREFIX[src]}：{cat.name_zh}",
            "address": city.places_zh[g] if g >= 0 else None,
            "lon": float(lon[i]) if has_pin else None,
            "lat": float(lat[i]) if has_pin else None,
            "unlocated": g < 0,
            "grid_id": int(city.grid_ids[g]) if g >= 0 else None,
            "community_id": ancestors[0],
            "street_id": ancestors[1],
            "district_id": ancestors[2],
            "is_open": case.state in lifecycle.OPEN_STATES,
            "reported_at": int(times[i]),
        }
        for name in CASE_STATE:
            values.setdefault(name, getattr(case, name))
        for name in INCIDENT_COLUMNS:
            cols[name].append(values[name])
    history.events = _order_events(events)
    return history


def _order_events(events: list[tuple]) -> dict[str, list]:
    """Events sorted by time (an incident's own order kept for equal times) and numbered: the change feed order."""
    if not events:
        return {c: [] for c in EVENT_COLUMNS}
    incident = np.fromiter((e[0] for e in events), dtype=np.int64, count=len(events))
    at = np.fromiter((e[1] for e in events), dtype=np.int64, count=len(events))
    order = np.lexsort((np.arange(len(events)), incident, at))
    columns = list(zip(*events, strict=True))
    out = {"id": list(range(1, len(events) + 1))}
    for k, name in enumerate(EVENT_COLUMNS[1:]):
        column = np.empty(len(events), dtype=object)
        column[:] = columns[k]
        out[name] = column[order].tolist()
    return out
