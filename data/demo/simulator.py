"""The live simulator: keeps the demo city alive while serving, through data/incidents/ (intake, transitions) so every change is audited.

Each tick brings new reports (a few a minute, more by day, with the odd burst: a storm's
standing water, an outage) and moves open incidents along the closed loop. Each open incident
takes its next step with a chance set by how long that step usually takes (the department's
acknowledge and handling speed against the category's limits, the centre's minutes to register,
dispatch and verify), so departments keep their character: the slow ones stay slow and the
overdue ones get escalated (督办). `speed` makes the city busier, never its clocks faster: every
time written is the real time.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import shapely
from sqlalchemy import Engine, select, true
from sqlalchemy.engine import Connection

from data import schema, store
from data.demo.catalogue import CATEGORIES_BY_CODE, DEPARTMENTS_BY_CODE, GRID_WORKER, SOURCES, Department
from data.demo.history import DESCRIPTION_PREFIX, HOURLY, REPORT_ACTORS
from data.demo.lifecycles import NOTE_ESCALATE_ACK, NOTE_ESCALATE_HANDLE, NOTE_REJECT, NOTE_RETURN, NOTE_VERIFY_FAIL
from data.errors import CityBrainError
from data.geo.locate import GridLocator
from data.incidents import lifecycle
from data.incidents.intake import report_incidents
from data.incidents.transitions import apply_action
from data.times import from_db, to_utc, utc_now

log = logging.getLogger(__name__)

TICK_SECONDS = 5.0
RELOAD_SECONDS = 300.0
REPORTS_PER_MINUTE = 3.0  # on average over a day: about 5 at the morning peak, 1.3 at night
NIGHT_FLOOR = 0.35  # share of the average rate that arrives whatever the hour
BURST_EVERY_MINUTES = 20.0
BURST_CATEGORIES = ("standing_water", "power_outage", "water_outage", "noise_nuisance", "exposed_garbage")
MAX_ACTIONS_PER_TICK = 200
UNLOCATED_SHARE = 0.03
# Mean minutes the command centre takes for its own steps.
CENTRE_MINUTES = {"register": 6.0, "dispatch": 8.0, "verify": 60.0, "escalate": 30.0}
_DEFAULT_DEPARTMENT = Department("?", "", "", "department", 0.4, 0.7, 0.5, 0.05)
_DEFAULT_LIMITS = {1: (30, 120), 2: (60, 1440), 3: (120, 4320)}


@dataclass
class TickResult:
    """What one tick did: when, how many reports came in and how many of each action were taken."""

    at: datetime
    reported: int = 0
    actions: Counter = field(default_factory=Counter)
    skipped: int = 0

    def line(self, tz: ZoneInfo | None = None) -> str:
        local = self.at.astimezone(tz) if tz else self.at
        parts = [f"+{self.reported} reported"] + [f"{n} {action}" for action, n in sorted(self.actions.items())]
        if self.skipped:
            parts.append(f"{self.skipped} skipped (changed meanwhile)")
        return f"{local:%H:%M:%S}  " + ", ".join(parts)


@dataclass
class _City:
    """The store's city as the simulator needs it, loaded once and refreshed now and then."""

    grid_ids: np.ndarray
    grid_geoms: np.ndarray
    grid_weights: np.ndarray
    grid_street: dict[int, str]
    grid_worker: dict[int, tuple[int, str]]
    locator: GridLocator
    categories: list[dict]
    category_by_id: dict[int, dict]
    departments: dict[int, str]
    city_bounds: tuple[float, float, float, float]


def _load_city(conn: Connection, rng: np.random.Generator) -> _City | None:
    u, c, d, w, lim = schema.units, schema.categories, schema.departments, schema.workers, schema.category_limits
    rows = conn.execute(
        select(u.c.id, u.c.geom, u.c.community_id, u.c.street_id, u.c.district_id)
        .where(u.c.level == schema.GRID, u.c.geom.is_not(None))
        .order_by(u.c.id)
    ).all()
    cats = conn.execute(select(c.c.id, c.c.code, c.c.department_id, c.c.grid_worker_ok).where(c.c.active == true())).all()
    if not rows or not cats:
        return None
    ids = np.array([r.id for r in rows], dtype=np.int64)
    geoms = shapely.from_wkb([r.geom for r in rows])
    ancestors = np.array([(r.community_id, r.street_id, r.district_id) for r in rows], dtype=object).reshape(-1, 3)
    street_codes = dict(conn.execute(select(u.c.id, u.c.code).where(u.c.level == schema.STREET)).all())
    limits: dict[int, dict] = {}
    for row in conn.execute(select(lim)):
        limits.setdefault(row.category_id, {})[row.priority] = (row.ack_minutes, row.handle_minutes)
    categories = []
    for cat in cats:
        known = CATEGORIES_BY_CODE.get(cat.code)
        categories.append(
            {
                "id": cat.id,
                "code": cat.code,
                "department_id": cat.department_id,
                "grid_worker_ok": bool(cat.grid_worker_ok),
                "limits": {**_DEFAULT_LIMITS, **limits.get(cat.id, {})},
                "weight": known.weight if known else 1.0,
                "priorities": known.priorities if known else (0.05, 0.25, 0.7),
                "sources": known.sources if known else (0.35, 0.45, 0.2, 0.0, 0.0),
                "name_zh": known.name_zh if known else cat.code,
            }
        )
    weights = rng.lognormal(0.0, 0.5, len(ids))
    workers = {
        r.grid_id: (r.id, r.code)
        for r in conn.execute(select(w.c.id, w.c.code, w.c.grid_id).where(w.c.active == true()).order_by(w.c.id))
    }
    return _City(
        grid_ids=ids,
        grid_geoms=geoms,
        grid_weights=weights / weights.sum(),
        grid_street={int(i): street_codes.get(a[1], "city") for i, a in zip(ids, ancestors, strict=True)},
        grid_worker=workers,
        locator=GridLocator(ids, geoms, ancestors),
        categories=categories,
        category_by_id={cat["id"]: cat for cat in categories},
        departments=dict(conn.execute(select(d.c.id, d.c.code)).all()),
        city_bounds=tuple(shapely.total_bounds(geoms)),
    )


class Simulator:
    """Moves the city on by one tick at a time; safe to call from a background thread."""

    def __init__(self, engine: Engine, timezone: str = "Asia/Shanghai", speed: float = 1.0, seed: int | None = None):
        if not speed > 0:
            raise ValueError(f"speed must be positive; got {speed}")
        self.engine, self.tz, self.speed = engine, ZoneInfo(timezone), float(speed)
        self.rng = np.random.default_rng(seed)
        self.rnd = random.Random(seed)
        self.city: _City | None = None
        self._loaded_at = -math.inf
        self._serial = 0
        # Starts nearly full so the first tick brings a report: a fresh server shows life at once.
        self._pending_reports = 0.99

    # --- loading ---------------------------------------------------------------------------

    def load(self) -> bool:
        """(Re)read the city from the store; False when it has no grids or categories to simulate."""
        with store.reading(self.engine) as conn:
            self.city = _load_city(conn, self.rng)
        self._loaded_at = time.monotonic()
        return self.city is not None

    def _ensure_loaded(self) -> bool:
        if self.city is None or time.monotonic() - self._loaded_at > RELOAD_SECONDS:
            return self.load()
        return True

    # --- one tick --------------------------------------------------------------------------

    def tick(self, now: datetime | None = None, seconds: float = TICK_SECONDS) -> TickResult:
        """Simulate `seconds` of city life (times `speed`) ending at `now`: new reports, then steps of open incidents."""
        now = to_utc(now, "now") if now is not None else utc_now()
        result = TickResult(at=now)
        if not self._ensure_loaded():
            return result
        city_seconds = max(0.0, float(seconds)) * self.speed
        rows = self._open_incidents()
        result.reported = self._report_new(now, city_seconds)
        self._progress(rows, now, city_seconds, result)
        return result

    def _open_incidents(self) -> list:
        i = schema.incidents
        with store.reading(self.engine) as conn:
            return conn.execute(
                select(
                    i.c.id,
                    i.c.state,
                    i.c.version,
                    i.c.category_id,
                    i.c.priority,
                    i.c.grid_id,
                    i.c.assignee_department_id,
                    i.c.assignee_worker_id,
                    i.c.dispatched_at,
                    i.c.ack_due_at,
                    i.c.handle_due_at,
                    i.c.escalation_level,
                    i.c.reopen_count,
                ).where(i.c.is_open == true())
            ).all()

    # --- new reports -----------------------------------------------------------------------

    def _arrivals(self, now: datetime, city_seconds: float) -> int:
        """How many reports arrive in this tick: the hour's rate, spaced fairly evenly.

        An accumulator with jittered steps rather than a Poisson draw: a wall display should
        never sit still for minutes by chance, even at night.
        """
        hour = now.astimezone(self.tz).hour
        per_minute = REPORTS_PER_MINUTE * (NIGHT_FLOOR + (1 - NIGHT_FLOOR) * HOURLY[hour] / HOURLY.mean())
        self._pending_reports += per_minute * city_seconds / 60.0 * self.rng.uniform(0.5, 1.5)
        n = int(self._pending_reports)
        self._pending_reports -= n
        return n

    def _report_new(self, now: datetime, city_seconds: float) -> int:
        city = self.city
        n = self._arrivals(now, city_seconds)
        weights = np.array([c["weight"] for c in city.categories])
        picks = list(self.rng.choice(len(city.categories), size=n, p=weights / weights.sum())) if n else []
        grids = list(self.rng.choice(len(city.grid_ids), size=n, p=city.grid_weights)) if n else []
        burst_picks, burst_grids = self._burst(city_seconds)
        picks, grids = picks + burst_picks, grids + burst_grids
        if not picks:
            return 0
        rows = [self._report_row(city.categories[k], int(g), now, city_seconds) for k, g in zip(picks, grids, strict=True)]
        by_actor: dict[str, list[dict]] = {}
        for actor, row in rows:
            by_actor.setdefault(actor, []).append(row)
        try:
            with self.engine.begin() as conn:
                results = [
                    result
                    for actor, batch in by_actor.items()
                    for result in report_incidents(conn, batch, actor=actor, locator=city.locator, now=now)
                ]
        except CityBrainError as exc:
            # A category switched off since the last reload, say: skip these reports, reload soon.
            log.warning("simulator reports refused: %s", exc)
            self._loaded_at = -math.inf
            return 0
        return sum(r.created for r in results)

    def _burst(self, city_seconds: float) -> tuple[list[int], list[int]]:
        """Now and then many reports of one matter from one neighbourhood: (category indices, grid indices)."""
        city = self.city
        chance = 1.0 - math.exp(-city_seconds / (BURST_EVERY_MINUTES * 60.0))
        codes = [k for k, cat in enumerate(city.categories) if cat["code"] in BURST_CATEGORIES]
        if not codes or self.rng.random() >= chance:
            return [], []
        index = codes[int(self.rng.integers(len(codes)))]
        size = int(self.rng.integers(4, 13))
        centre = int(self.rng.choice(len(city.grid_ids), p=city.grid_weights))
        return [index] * size, self._neighbours(centre, size)

    def _neighbours(self, grid_index: int, size: int) -> list[int]:
        """`size` grid indices at and around one grid (a burst covers a neighbourhood)."""
        city = self.city
        geom = city.grid_geoms[grid_index]
        around = city.locator.tree.query(shapely.buffer(geom, 0.005))
        around = around if len(around) else np.array([grid_index])
        return [int(g) for g in self.rng.choice(around, size=size)]

    def _report_row(self, cat: dict, grid_index: int, now: datetime, city_seconds: float) -> tuple[str, dict]:
        city, rng = self.city, self.rng
        sources = np.asarray(cat["sources"], dtype=float)
        source = SOURCES[int(rng.choice(len(sources), p=sources / sources.sum()))]
        grid_id = int(city.grid_ids[grid_index])
        lon = lat = None
        if rng.random() >= UNLOCATED_SHARE:
            lon, lat = self._point_in(city.grid_geoms[grid_index])
        elif rng.random() < 0.6:
            minx, miny, maxx, maxy = city.city_bounds
            # A pin well outside the city's box: surely in no grid.
            lon, lat = float(maxx + rng.uniform(0.05, 0.3)), float(rng.uniform(miny, maxy))
        worker = city.grid_worker.get(grid_id)
        if source == "patrol" and (worker is None or lon is None):
            source = "12345"
        actor = f"worker:{worker[1]}" if source == "patrol" else REPORT_ACTORS[source]
        self._serial += 1
        priorities = np.asarray(cat["priorities"], dtype=float)
        back = timedelta(seconds=float(rng.uniform(0, min(city_seconds, 60.0))))
        row = {
            "source": source,
            "external_id": f"live-{int(now.timestamp() * 1000)}-{self._serial}",
            "category_id": cat["id"],
            "priority": int(rng.choice(3, p=priorities / priorities.sum())) + 1,
            "description": f"{DESCRIPTION_PREFIX[source]}：{cat['name_zh']}",
            "lon": lon,
            "lat": lat,
            "reported_at": now - back,
        }
        return actor, row

    def _point_in(self, geom) -> tuple[float, float]:
        minx, miny, maxx, maxy = geom.bounds
        for _ in range(100):
            x, y = self.rng.uniform(minx, maxx), self.rng.uniform(miny, maxy)
            if shapely.contains_xy(geom, x, y):
                return float(x), float(y)
        point = geom.representative_point()
        return point.x, point.y

    # --- moving open incidents on ------------------------------------------------------------

    def _profile(self, row) -> Department:
        if row.assignee_worker_id is not None:
            return GRID_WORKER
        code = self.city.departments.get(row.assignee_department_id)
        return DEPARTMENTS_BY_CODE.get(code, _DEFAULT_DEPARTMENT)

    def _chance(self, mean_minutes: float, city_seconds: float) -> float:
        return 1.0 - math.exp(-city_seconds / 60.0 / max(mean_minutes, 0.5))

    def _next_step(self, row, now: datetime, city_seconds: float, open_by_key: dict) -> tuple[str, dict] | None:
        """The action this incident takes in this tick, with its arguments, or None."""
        rnd, cat = self.rnd, self.city.category_by_id.get(row.category_id)
        if cat is None:
            return None
        ack_limit, handle_limit = cat["limits"].get(row.priority, _DEFAULT_LIMITS[3])
        state = row.state
        due = row.ack_due_at if state == lifecycle.DISPATCHED else row.handle_due_at
        due = from_db(due)
        overdue = state in lifecycle.WITH_ASSIGNEE and due is not None and now > due
        # Supervision (督办): once when a clock runs out, a second time when it has run out twice over.
        started = from_db(row.dispatched_at)
        twice_over = row.escalation_level == 1 and started is not None and overdue and now > due + (due - started)
        needs_escalation = (overdue and row.escalation_level == 0) or twice_over
        if needs_escalation and rnd.random() < self._chance(CENTRE_MINUTES["escalate"], city_seconds):
            note = NOTE_ESCALATE_ACK if state == lifecycle.DISPATCHED else NOTE_ESCALATE_HANDLE
            return "escalate", {"note": note}
        if state == lifecycle.REPORTED:
            if rnd.random() >= self._chance(CENTRE_MINUTES["register"], city_seconds):
                return None
            earlier = open_by_key.get((row.category_id, row.grid_id))
            if row.grid_id is not None and earlier is not None and earlier < row.id and rnd.random() < 0.5:
                return "merge", {"merged_into_id": earlier}
            if rnd.random() < 0.03:
                return "reject", {"note": rnd.choice(NOTE_REJECT)}
            return "register", {}
        if state in (lifecycle.REGISTERED, lifecycle.RETURNED, lifecycle.REOPENED):
            if rnd.random() >= self._chance(CENTRE_MINUTES["dispatch"], city_seconds):
                return None
            worker = self.city.grid_worker.get(row.grid_id)
            if worker is not None and cat["grid_worker_ok"] and state != lifecycle.RETURNED and rnd.random() < 0.55:
                return "dispatch", {"worker_id": worker[0]}
            return "dispatch", {"department_id": cat["department_id"]}
        profile = self._profile(row)
        if state == lifecycle.DISPATCHED:
            if rnd.random() >= self._chance(profile.ack_share * ack_limit * 1.3, city_seconds):
                return None
            if rnd.random() < 0.02:
                return "return", {"note": NOTE_RETURN}
            return "acknowledge", {}
        if state == lifecycle.ACKNOWLEDGED:
            if rnd.random() >= self._chance(profile.handle_share * handle_limit, city_seconds):
                return None
            return "resolve", {}
        if state == lifecycle.RESOLVED:
            if rnd.random() >= self._chance(CENTRE_MINUTES["verify"], city_seconds):
                return None
            if row.reopen_count < 2 and rnd.random() < profile.verify_fail:
                return "verify_fail", {"note": NOTE_VERIFY_FAIL}
            return "verify_pass", {}
        return None

    def _progress(self, rows: list, now: datetime, city_seconds: float, result: TickResult) -> None:
        open_by_key: dict[tuple, int] = {}
        for row in rows:
            if row.grid_id is not None and row.state != lifecycle.REPORTED:
                key = (row.category_id, row.grid_id)
                open_by_key[key] = min(open_by_key.get(key, row.id), row.id)
        steps = []
        for row in rows:
            step = self._next_step(row, now, city_seconds, open_by_key)
            if step is not None:
                steps.append((row, *step))
        self.rnd.shuffle(steps)
        for row, action, params in steps[:MAX_ACTIONS_PER_TICK]:
            if self._apply(row, action, params, now, result) and action == "verify_pass" and self.rnd.random() < 0.5:
                rating = min(5, max(1, round(self.rnd.gauss(4.4 + self._profile(row).satisfaction_bias, 0.8))))
                self._apply(row, "rate", {"satisfaction": rating}, now, result, version=row.version + 1)

    def _actor(self, row, action: str) -> str:
        if action in lifecycle.DEPARTMENT_ACTIONS:
            if row.assignee_worker_id is not None:
                worker = self.city.grid_worker.get(row.grid_id)
                return f"worker:{worker[1]}" if worker else "worker"
            return f"dept:{self.city.departments.get(row.assignee_department_id, 'unknown')}"
        if action == "rate":
            return "12345 callback"
        return f"centre:{self.city.grid_street.get(row.grid_id, 'city')}"

    def _apply(self, row, action: str, params: dict, now: datetime, result: TickResult, version: int | None = None) -> bool:
        try:
            with self.engine.begin() as conn:
                # apply_action also reaches the assignee of a dispatch (一键智达: inbox + webhook).
                apply_action(
                    conn,
                    row.id,
                    action,
                    actor=self._actor(row, action),
                    expected_version=version or row.version,
                    at=now,
                    **params,
                )
        except CityBrainError as exc:
            # Someone (a dispatcher, an API client) changed it first, or the store refuses it: skip, never stop.
            log.debug("simulator skipped %s on incident %s: %s", action, row.id, exc)
            result.skipped += 1
            return False
        result.actions[action] += 1
        return True


# --- running it -----------------------------------------------------------------------------------


def simulate(
    engine: Engine, minutes: float, speed: float = 1.0, timezone: str = "Asia/Shanghai", interval: float = 2.0, echo=print
) -> TickResult:
    """Run the simulator in the foreground for `minutes` of wall time, printing each tick; returns the totals."""
    simulator = Simulator(engine, timezone, speed)
    total = TickResult(at=utc_now())
    if not simulator.load():
        echo("the store has no grids or categories to simulate: build the demo first (python app.py demo)")
        return total
    deadline = time.monotonic() + minutes * 60.0
    last = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(max(0.0, min(interval, deadline - time.monotonic())))
        elapsed, last = time.monotonic() - last, time.monotonic()
        result = simulator.tick(seconds=elapsed)
        total.at, total.reported, total.skipped = result.at, total.reported + result.reported, total.skipped + result.skipped
        total.actions.update(result.actions)
        echo(result.line(simulator.tz))
    return total
