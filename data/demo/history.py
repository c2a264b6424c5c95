"""The demo's incident history: 90 days of reports with daily and weekly rhythm, hotspots and departments of
differing speed, each incident walked through the closed loop (data/incidents/lifecycle.py) and bulk-loaded with its audit log.

Arrivals, places, categories, priorities and sources are drawn with numpy in one go. Each
incident's life is then played out in Python by the same rules apply_action enforces
(lifecycle.next_state for every step, the same column effects, due times from the category
limits at dispatch), stopping at `now`: so recent incidents are still open at whatever stage
they had reached, some overdue and some near due. Rows and events are written with one
executemany (SQLite) or COPY (PostgreSQL) per table, events in time order so the change feed's
ids increase with time.
"""

from __future__ import annotations

import csv
import io
import math
import random
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection

from data.demo.catalogue import CATEGORIES, DEPARTMENTS_BY_CODE, GRID_WORKER, SOURCES, CatalogueIds, Department
from data.geo.locate import GridLocator
from data.incidents import lifecycle
from data.incidents.clock import due_after_seconds

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
REJECT_SHARE = 0.03
MISDISPATCH_SHARE = 0.025
RETURN_SHARE = 0.015
WORKER_SHARE = 0.55  # of matters on the grid worker duty list, how many the centre pushes down
RATED_SHARE = 0.75
MAX_CYCLES = 3
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
NOTE_REJECT = ("不属于受理范围 (outside the scope of the service)", "信息不全，无法核实 (too little information to verify)")
NOTE_RETURN = "不属于本单位职责，申请退回 (not this unit's remit: returned)"
NOTE_ESCALATE_ACK = "超期未签收，升级督办 (not acknowledged in time: escalated)"
NOTE_ESCALATE_HANDLE = "超期未办结，挂牌督办 (not handled in time: escalated)"
NOTE_EXTEND = "情况复杂，申请延期 (complex case: extension granted)"
NOTE_VERIFY_FAIL = "现场核查未通过，问题依旧 (checked on site: not fixed)"


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
TIME_COLUMNS = frozenset(
    {"reported_at", "registered_at", "dispatched_at", "first_dispatched_at", "acknowledged_at", "returned_at",
     "resolved_at", "closed_at", "rejected_at", "ack_due_at", "handle_due_at", "updated_at", "at"}
)  # fmt: skip
EVENT_COLUMNS = ("id", "incident_id", "at", "actor", "action", "from_state", "to_state", "note", "data")
# The columns a Case carries from report to its last event (times as whole epoch seconds).
_CASE_STATE = (
    "state", "assignee_department_id", "assignee_worker_id", "registered_at", "dispatched_at", "first_dispatched_at",
    "acknowledged_at", "returned_at", "resolved_at", "closed_at", "rejected_at", "ack_due_at", "handle_due_at",
    "ack_late", "resolved_late", "satisfaction", "reopen_count", "escalation_level", "extension_minutes",
    "merged_into_id", "version", "updated_at",
)  # fmt: skip


def _assignee_json(department_id, worker_id) -> str:
    # The same document apply_action writes for dispatch, return and verify_fail.
    d = "null" if department_id is None else department_id
    w = "null" if worker_id is None else worker_id
    return f'{{"department_id": {d}, "worker_id": {w}}}'


class Case:
    """One incident played through the closed loop: the same transitions and column effects as apply_action.

    Every action is checked with lifecycle.next_state. An action timed after `now` is not taken
    and stops the case there, so the row ends in the state it had reached by `now`.
    """

    __slots__ = (*_CASE_STATE, "incident_id", "now", "stopped", "last_at", "events", "limits", "calendars", "calendar")

    def __init__(
        self, incident_id: int, reported_at: int, actor: str, now: int, limits: dict, events: list, calendars: dict | None = None
    ):
        self.incident_id, self.now, self.limits, self.events = incident_id, now, limits, events
        # Per priority, the working calendar its limits count in (clock.limit_calendars; None: wall clock).
        self.calendars, self.calendar = calendars or {}, None
        for name in _CASE_STATE:
            setattr(self, name, None)
        self.reopen_count = self.escalation_level = self.extension_minutes = self.version = 0
        self.stopped = False
        self.state = None
        self.last_at = reported_at
        self.act(reported_at, lifecycle.REPORT, actor)

    def act(self, at: int, action: str, actor: str, note: str | None = None, **params) -> bool:
        """Take `action` at `at` (epoch seconds); False, and the case stops, when `at` is after now."""
        if self.stopped or at > self.now:
            self.stopped = True
            return False
        at = max(int(at), self.last_at)
        to_state = lifecycle.next_state(self.state, action)
        data = None
        if action == "register":
            self.registered_at = at
        elif action == "reject":
            self.rejected_at = at
        elif action == "merge":
            self.merged_into_id = params["merged_into_id"]
            data = f'{{"merged_into_id": {self.merged_into_id}}}'
        elif action == "dispatch":
            dept, worker, priority = params.get("department_id"), params.get("worker_id"), params["priority"]
            ack_minutes, handle_minutes = self.limits[priority]
            self.assignee_department_id, self.assignee_worker_id = dept, worker
            self.dispatched_at = at
            self.first_dispatched_at = self.first_dispatched_at or at
            # The store's own due-time arithmetic (data.clock), so a demo built with the calendar on counts working hours.
            self.calendar = self.calendars.get(priority)
            self.ack_due_at = due_after_seconds(at, ack_minutes, self.calendar)
            self.handle_due_at = due_after_seconds(at, handle_minutes, self.calendar)
            self.acknowledged_at = self.ack_late = self.resolved_at = self.resolved_late = None
            data = _assignee_json(dept, worker)
        elif action == "acknowledge":
            self.acknowledged_at, self.ack_late = at, at > self.ack_due_at
        elif action == "return":
            data = _assignee_json(self.assignee_department_id, self.assignee_worker_id)
            self.returned_at, self.assignee_department_id, self.assignee_worker_id = at, None, None
        elif action == "resolve":
            self.resolved_at, self.resolved_late = at, at > self.handle_due_at
        elif action == "verify_pass":
            self.closed_at = at
        elif action == "verify_fail":
            data = _assignee_json(self.assignee_department_id, self.assignee_worker_id)
            self.reopen_count += 1
            self.assignee_department_id = self.assignee_worker_id = None
        elif action == "escalate":
            self.escalation_level += 1
            data = f'{{"level": {self.escalation_level}}}'
        elif action == "extend":
            minutes = params["extend_minutes"]
            self.handle_due_at = due_after_seconds(self.handle_due_at, minutes, self.calendar)
            self.extension_minutes += minutes
            data = f'{{"minutes": {minutes}}}'
        elif action == "rate":
            self.satisfaction = params["satisfaction"]
            data = f'{{"satisfaction": {self.satisfaction}}}'
        self.events.append((self.incident_id, at, actor, action, self.state, to_state, note, data))
        self.state, self.last_at, self.updated_at = to_state, at, at
        self.version += 1
        return True

    def terminal_at(self) -> float:
        """When the case left the open states, or infinity when it is still open at `now`."""
        if self.state in lifecycle.OPEN_STATES:
            return math.inf
        return self.closed_at or self.rejected_at or self.last_at


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


# --- lifecycles -----------------------------------------------------------------------------------


def _lognormal_seconds(rnd: random.Random, median_seconds: float, sigma: float) -> float:
    return median_seconds * math.exp(sigma * rnd.gauss(0.0, 1.0))


def _is_night(at: int, offset: int) -> bool:
    hour = ((at + offset) // HOUR) % 24
    return hour >= 22 or hour < 7


@dataclass
class _Context:
    """Everything the life of one incident may look up."""

    rnd: random.Random
    now: int
    offset: int
    category_ids: list[int]
    department_ids: dict[str, int]
    limits: list[dict]


def _dispatch_target(ctx: _Context, cat_index: int, worker: tuple[int, str] | None, first: bool) -> tuple:
    """(department_id, worker_id, profile, actor of the assignee, misdispatched) for a dispatch."""
    cat = CATEGORIES[cat_index]
    rnd = ctx.rnd
    if worker is not None and cat.grid_worker_ok and rnd.random() < WORKER_SHARE:
        return None, worker[0], GRID_WORKER, f"worker:{worker[1]}", False
    code = cat.department
    misdispatched = first and rnd.random() < MISDISPATCH_SHARE
    if misdispatched:
        code = rnd.choice([d for d in DEPARTMENTS_BY_CODE if d != cat.department])
    return ctx.department_ids[code], None, DEPARTMENTS_BY_CODE[code], f"dept:{code}", misdispatched


def _satisfaction(rnd: random.Random, profile: Department, case: Case) -> int:
    mean = 4.55 + profile.satisfaction_bias - 0.6 * bool(case.resolved_late) - 0.3 * bool(case.ack_late)
    mean -= 0.8 * case.reopen_count
    return min(5, max(1, round(rnd.gauss(mean, 0.75))))


def _live(ctx: _Context, case: Case, cat_index: int, priority: int, centre: str, worker, merge_target) -> None:
    """Play one incident's life after its report, stopping at now."""
    rnd, cat = ctx.rnd, CATEGORIES[cat_index]
    t = case.last_at
    night = 2.0 if _is_night(t, ctx.offset) else 1.0
    t += 60 + _lognormal_seconds(rnd, 360 * night, 0.8)
    if merge_target is not None and merge_target[1] > t:
        # The matter is already open as another case: merged into it, not dispatched twice.
        case.act(t, "merge", centre, merged_into_id=merge_target[0])
        return
    if rnd.random() < REJECT_SHARE:
        case.act(t, "reject", centre, rnd.choice(NOTE_REJECT))
        return
    if not case.act(t, "register", centre):
        return
    first, assignee = True, None
    for cycle in range(MAX_CYCLES + 2):
        t = case.last_at + 60 + _lognormal_seconds(rnd, 480 * night, 0.8)
        if assignee is None or case.state == lifecycle.RETURNED:
            assignee = _dispatch_target(ctx, cat_index, worker, first)
        dept_id, worker_id, profile, assignee_actor, misdispatched = assignee
        first = False
        if not case.act(t, "dispatch", centre, department_id=dept_id, worker_id=worker_id, priority=priority):
            return
        ack_minutes, handle_minutes = ctx.limits[cat_index][priority]
        slow = 1.6 if priority > 1 and _is_night(t, ctx.offset) else 1.0
        ack_at = t + 30 + _lognormal_seconds(rnd, profile.ack_share * ack_minutes * 60 * slow, profile.ack_sigma)

        escalate_at = case.ack_due_at + rnd.uniform(300, 3600)
        if misdispatched or rnd.random() < RETURN_SHARE:
            if escalate_at < ack_at and rnd.random() < 0.5:
                case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_ACK)
            if not case.act(ack_at, "return", assignee_actor, NOTE_RETURN):
                return
            # The centre sends it to the department the responsibility list names.
            code = cat.department
            assignee = (ctx.department_ids[code], None, DEPARTMENTS_BY_CODE[code], f"dept:{code}", False)
            continue

        if escalate_at < ack_at and rnd.random() < 0.6:
            case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_ACK)
        if not case.act(ack_at, "acknowledge", assignee_actor):
            return
        resolve_at = max(ack_at + 300, t + _lognormal_seconds(rnd, profile.handle_share * handle_minutes * 60, 0.6))
        if resolve_at > case.handle_due_at:
            if rnd.random() < 0.3:
                until = min(case.handle_due_at, resolve_at)
                extend_at = ack_at + (until - ack_at) * rnd.uniform(0.3, 0.9)
                minutes = 60 * math.ceil((resolve_at - case.handle_due_at) / 3600 + rnd.uniform(0.5, 12))
                case.act(extend_at, "extend", centre, NOTE_EXTEND, extend_minutes=minutes)
            elif rnd.random() < 0.5:
                escalate_at = case.handle_due_at + rnd.uniform(600, 7200)
                if escalate_at < resolve_at:
                    case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_HANDLE)
        if not case.act(resolve_at, "resolve", assignee_actor):
            return
        verify_at = resolve_at + 120 + _lognormal_seconds(rnd, 5400, 0.9)
        if cycle < MAX_CYCLES - 1 and rnd.random() < profile.verify_fail:
            # 人到无效: came, but no effect. Sent back to the same assignee.
            if not case.act(verify_at, "verify_fail", centre, NOTE_VERIFY_FAIL):
                return
            continue
        if not case.act(verify_at, "verify_pass", centre):
            return
        if rnd.random() < RATED_SHARE:
            case.act(
                verify_at + rnd.uniform(1800, 2 * DAY), "rate", "12345 callback", satisfaction=_satisfaction(rnd, profile, case)
            )
        return
    # Returned or reopened too often: it stays with the centre, an open backlog item (挂账).


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
    ctx = _Context(
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
        _live(ctx, case, int(category[i]), int(priority[i]), centre, worker, merge_into)
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
        for name in _CASE_STATE:
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


# --- bulk load --------------------------------------------------------------------------------------


def _stamps(values: list, sqlite: bool) -> list:
    """Epoch seconds as the text each database reads as a UTC timestamp; None stays None."""
    arr = np.array([-1 if v is None else v for v in values], dtype=np.int64)
    text_ = np.datetime_as_string(arr.astype("datetime64[s]").astype("datetime64[us]"), unit="us")
    text_ = np.char.replace(text_, "T", " ") if sqlite else np.char.add(text_, "+00")
    out = text_.astype(object)
    out[arr == -1] = None
    return out.tolist()


def _prepared(columns: dict[str, list], sqlite: bool) -> list[list]:
    return [_stamps(values, sqlite) if name in TIME_COLUMNS else values for name, values in columns.items()]


def _secondary_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, exact CREATE statement) of a table's indexes, leaving out those behind primary keys and unique constraints."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
    else:
        query = (
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = :t AND pg_table_is_visible(t.oid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        )
    return [(name, sql) for name, sql in conn.execute(text(query), {"t": table})]


def _foreign_keys(conn: Connection, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the PostgreSQL foreign keys of `tables`."""
    query = "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = 'f'"
    return [(table, name, definition) for table in tables for name, definition in conn.execute(text(query), {"t": table})]


def load_history(conn: Connection, history: History, chunk: int = 200_000) -> None:
    """Append the history to the store inside the caller's transaction (ids as generated; tables must be empty).

    The tables' secondary indexes (and on PostgreSQL their foreign keys) are dropped for the load
    and rebuilt from their own stored definitions afterwards, all in the same transaction:
    building an index once is several times faster than updating a dozen of them row by row.
    """
    sqlite = conn.dialect.name == "sqlite"
    raw = conn.connection.driver_connection
    foreign_keys = [] if sqlite else _foreign_keys(conn, ("incidents", "incident_events"))
    for table, name, _ in foreign_keys:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for table, columns in (("incidents", history.incidents), ("incident_events", history.events)):
        indexes = _secondary_indexes(conn, table)
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        names = list(columns)
        total = len(columns[names[0]])
        for begin in range(0, total, chunk):
            part = {name: values[begin : begin + chunk] for name, values in columns.items()}
            values = _prepared(part, sqlite)
            if sqlite:
                sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                cursor = raw.cursor()
                cursor.executemany(sql, zip(*values, strict=True))
                cursor.close()
            else:
                buffer = io.StringIO()
                csv.writer(buffer).writerows(zip(*values, strict=True))
                copy_sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
                with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    copy.write(buffer.getvalue())
        for _, create in indexes:
            conn.execute(text(create))
    # Re-adding a foreign key checks every row in one join, where COPY would check them one by one.
    for table, name, definition in foreign_keys:
        conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    if sqlite:
        conn.execute(text("ANALYZE incidents"))
        conn.execute(text("ANALYZE incident_events"))
    else:
        for table in ("incidents", "incident_events"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
                )
            )
        conn.execute(text("ANALYZE incidents, incident_events"))
