"""The demo city's build: the planned units, grid workers, catalogue and incident history stored in one transaction.

The plan (data/demo/plan.py) lays out the units; this module replaces the store's city with it,
adds one grid worker per grid, updates the catalogue in place, and generates and loads the
history (data/demo/history.py, data/demo/bulk_load.py). `ensure_demo` builds it on an empty store.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from sqlalchemy import Engine, func, insert, inspect, select, text, true
from sqlalchemy.engine import Connection

from data import schema, store
from data.demo import catalogue, history, names
from data.demo import users as demo_users
from data.demo.bulk_load import load_history
from data.demo.plan import CITY_ROOT_CODE, CityPlan, plan_city
from data.errors import ValidationError
from data.geo.units import unit_rows, upsert_units
from data.incidents.clock import limit_calendars
from data.times import to_utc, utc_now

log = logging.getLogger(__name__)


# --- storing the city -----------------------------------------------------------------------------

# The demo replaces the city and everything that hangs off it; departments and categories are
# updated in place by code instead, so API keys and other references to them survive a rebuild.
_CITY_TABLES = (schema.units, schema.workers, schema.worker_duties, schema.incidents, schema.incident_events)


def _tables_to_clear() -> list:
    """The city's tables and every table referring to them (directly or not), children first."""
    doomed = set(_CITY_TABLES)
    grew = True
    while grew:
        grew = False
        for table in schema.metadata.sorted_tables:
            if table not in doomed and any(fk.column.table in doomed for fk in table.foreign_keys):
                doomed.add(table)
                grew = True
    return [t for t in reversed(schema.metadata.sorted_tables) if t in doomed]


def clear_store(conn: Connection) -> None:
    """Remove every unit, grid worker and incident, and whatever refers to them (a demo build replaces them all)."""
    # Only tables the store has: data/schema/ may describe a table whose migration has not run here.
    present = set(inspect(conn).get_table_names())
    tables = [t for t in _tables_to_clear() if t.name in present]
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"TRUNCATE {', '.join(t.name for t in tables)} RESTART IDENTITY"))
        return
    for table in tables:
        conn.execute(table.delete())


def store_city(conn: Connection, plan: CityPlan, now: datetime) -> dict[str, int]:
    """Insert the planned units level by level under a city root; returns {code: id}."""
    ids = upsert_units(
        conn, unit_rows([CITY_ROOT_CODE], [schema.CITY], [names.CITY_NAME_EN], [names.CITY_NAME_ZH], [plan.city_geom], now=now)
    )
    for level in (schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID):
        parent_ids = [ids[code] for code in plan.parents[level]]
        n = plan.count(level)
        rows = unit_rows(
            plan.codes[level], [level] * n, plan.names_en[level], plan.names_zh[level], plan.geoms[level], parent_ids, now=now
        )
        ids.update(upsert_units(conn, rows))
    return ids


def store_workers(conn: Connection, plan: CityPlan, ids: dict[str, int], seed: int) -> dict[int, tuple[int, str]]:
    """One full-time grid worker per grid, whose duty list is every category grid workers may take; {grid id: (worker id, code)}."""
    w, c = schema.workers, schema.categories
    grid_codes = plan.codes[schema.GRID]
    people = names.person_names(np.random.default_rng([seed, 4]), len(grid_codes))
    conn.execute(
        w.insert(),
        [
            {"code": f"W{code}", "name_en": en, "name_zh": zh, "grid_id": ids[code], "role": "full_time"}
            for code, (en, zh) in zip(grid_codes, people, strict=True)
        ],
    )
    duties = select(w.c.id, c.c.id).select_from(w.join(c, true())).where(c.c.grid_worker_ok == true())
    conn.execute(insert(schema.worker_duties).from_select(["worker_id", "category_id"], duties))
    return {row.grid_id: (row.id, row.code) for row in conn.execute(select(w.c.id, w.c.code, w.c.grid_id))}


def _history_city(
    conn: Connection, plan: CityPlan, ids: dict[str, int], workers: dict[int, tuple[int, str]]
) -> history.CityForHistory:
    u = schema.units
    grid_codes = plan.codes[schema.GRID]
    grid_ids = [ids[code] for code in grid_codes]
    ancestors = {
        r.id: (r.community_id, r.street_id, r.district_id)
        for r in conn.execute(select(u.c.id, u.c.community_id, u.c.street_id, u.c.district_id).where(u.c.level == schema.GRID))
    }
    community_names = dict(zip(plan.codes[schema.COMMUNITY], plan.names_zh[schema.COMMUNITY], strict=True))
    street_names = dict(zip(plan.codes[schema.STREET], plan.names_zh[schema.STREET], strict=True))
    community_street = dict(zip(plan.codes[schema.COMMUNITY], plan.parents[schema.COMMUNITY], strict=True))
    streets = [community_street[parent] for parent in plan.parents[schema.GRID]]
    ancestor_rows = np.empty((len(grid_ids), 3), dtype=object)
    for i, grid_id in enumerate(grid_ids):
        ancestor_rows[i] = ancestors[grid_id]
    return history.CityForHistory(
        grid_ids=np.array(grid_ids, dtype=np.int64),
        grid_geoms=plan.geoms[schema.GRID],
        ancestors=ancestor_rows,
        street_codes=streets,
        places_zh=[f"{street_names[s]}{community_names[p]}" for s, p in zip(streets, plan.parents[schema.GRID], strict=True)],
        worker_ids=[workers[g][0] for g in grid_ids],
        worker_codes=[workers[g][1] for g in grid_ids],
        city_geom=plan.city_geom,
    )


# --- the build ------------------------------------------------------------------------------------


@dataclass
class DemoReport:
    """What a demo build made and how long each step took."""

    units: dict[str, int]
    departments: int
    categories: int
    workers: int
    incidents: int
    events: int
    open_incidents: int
    unlocated: int
    seconds: dict[str, float]

    def summary_lines(self) -> list[str]:
        u = self.units
        timing = ", ".join(f"{step} {s:.1f} s" for step, s in self.seconds.items())
        return [
            f"{names.CITY_NAME_EN} ({names.CITY_NAME_ZH}): {u['district']} districts, {u['street']} streets, "
            f"{u['community']} communities, {u['grid']:,} grids",
            f"{self.departments} departments, {self.categories} categories, {self.workers:,} grid workers",
            f"{self.incidents:,} incidents ({self.open_incidents:,} open, {self.unlocated:,} unlocated) "
            f"with {self.events:,} audit events",
            f"built in {timing}",
        ]


def _check_build_args(days: float, per_day: float) -> None:
    if not 0 <= days <= 3650:
        raise ValidationError(f"days must be between 0 and 3650; got {days}")
    if not 0 <= per_day <= 100_000:
        raise ValidationError(f"per_day must be between 0 and 100,000; got {per_day}")


def build_demo(
    engine: Engine, grids: int = 5000, days: float = 90, per_day: float = 1500, seed: int = 7, now: datetime | None = None
) -> DemoReport:
    """Build the demo city and its history in one transaction, replacing whatever units and incidents the store had."""
    _check_build_args(days, per_day)
    now = (to_utc(now, "now") if now is not None else utc_now()).replace(microsecond=0)
    seconds = {}
    started = clock = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal clock
        seconds[step] = time.perf_counter() - clock
        clock = time.perf_counter()
        log.info("demo: %s done in %.1f s", step, seconds[step])

    plan = plan_city(grids, seed)
    lap("city plan")
    with engine.begin() as conn:
        clear_store(conn)
        ids = store_city(conn, plan, now)
        catalogue_ids = catalogue.store_catalogue(conn)
        workers = store_workers(conn, plan, ids, seed)
        lap("units and workers")
        made = history.generate_history(
            _history_city(conn, plan, ids, workers), catalogue_ids, days, per_day, seed, now, limit_calendars(conn)
        )
        lap("history")
        load_history(conn, made)
        for key, value in {
            "demo_built_at": now.isoformat(),
            "demo_grids": str(plan.count(schema.GRID)),
            "demo_days": str(days),
            "demo_per_day": str(per_day),
            "demo_seed": str(seed),
            "city_name_en": names.CITY_NAME_EN,
            "city_name_zh": names.CITY_NAME_ZH,
            # Geometry caches key on this: a rebuilt city may reuse the old ids and counts.
            "units_version": f"demo-{seed}-{int(now.timestamp())}",
        }.items():
            store.set_meta(conn, key, value)
        # Rebuilding the city cleared the users (they refer to its units): sign-in needs them back.
        demo_users.create_demo_users(conn)
        lap("load")
        inc = schema.incidents
        open_count, unlocated = conn.execute(
            select(func.count().filter(inc.c.is_open == true()), func.count().filter(inc.c.unlocated == true())).select_from(inc)
        ).one()
    seconds["total"] = time.perf_counter() - started
    return DemoReport(
        units={schema.LEVEL_NAMES[level]: plan.count(level) for level in plan.codes},
        departments=len(catalogue_ids.departments),
        categories=len(catalogue_ids.categories),
        workers=len(workers),
        incidents=made.incident_count,
        events=made.event_count,
        open_incidents=int(open_count),
        unlocated=int(unlocated),
        seconds=seconds,
    )


def ensure_demo(engine: Engine, grids: int = 5000, days: float = 90, per_day: float = 1500) -> DemoReport | None:
    """Build the demo when the store has no units at all; leave any existing city (demo or real) alone."""
    with store.reading(engine) as conn:
        has_units = conn.execute(select(schema.units.c.id).limit(1)).first() is not None
    if has_units:
        return None
    log.info("empty store: building the demo city (%s grids, %s days x %s incidents a day)", grids, days, per_day)
    report = build_demo(engine, grids=grids, days=days, per_day=per_day)
    for line in report.summary_lines():
        log.info("demo: %s", line)
    return report
