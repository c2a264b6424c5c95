"""Benchmark helpers: timing, throwaway PostgreSQL schemas, and a fast generator of a large consistent incident history.

The history generator draws a whole closed loop per incident with numpy (report, register,
dispatch, acknowledge, resolve, verify, close, rate; some rejected, merged, reopened after a
failed verification, or stuck open) and bulk-loads the rows and their audit events with
executemany (SQLite) or COPY (PostgreSQL): a million incidents in well under a few minutes,
where report_incidents + apply_action would take hours.
"""

from __future__ import annotations

import io
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import Engine, select, text

from data import schema, store
from data.incidents.clock import DEFAULT_LIMITS

PG_URL = os.environ.get("CITYBRAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
MINUTE_US = 60_000_000
DAY_US = 86_400_000_000


def median_time(fn: Callable[[], object], runs: int) -> tuple[float, object]:
    """(median seconds over `runs` calls of fn, the last call's result)."""
    timings, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings), result


@contextmanager
def pg_schema_engine(url: str = PG_URL) -> Iterator[Engine | None]:
    """An engine on a fresh PostgreSQL schema, dropped afterwards; None (with a note printed) when unreachable."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = store.make_engine(url, pool_size=1, max_overflow=0, connect_args={"connect_timeout": 3})
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "skip PostgreSQL"
        print(f"PostgreSQL skipped ({url}): {str(exc).splitlines()[0]}")
        admin.dispose()
        yield None
        return
    engine = store.make_engine(url, connect_args={"options": f"-csearch_path={name}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


# --- reference tables ----------------------------------------------------------------------------


@dataclass
class Catalogue:
    """Categories as arrays: id, owning department, and limits (minutes) per priority 1..3."""

    ids: np.ndarray
    department_ids: np.ndarray
    ack_minutes: np.ndarray  # shape (categories, 3)
    handle_minutes: np.ndarray


@dataclass
class GridTable:
    """Grids as arrays: id and ancestor ids."""

    ids: np.ndarray
    community_ids: np.ndarray
    street_ids: np.ndarray
    district_ids: np.ndarray


def make_catalogue(conn, departments: int = 12, categories: int = 40, seed: int = 0) -> Catalogue:
    """Departments and categories spread over the four sectors, with varied time limits."""
    from tests.factories import make_category, make_department

    rng = np.random.default_rng(seed)
    dept_ids = [make_department(conn, f"bd{i}") for i in range(departments)]
    sectors = ("party", "economy", "livelihood", "safety")
    ids, owners, ack, handle = [], [], [], []
    for i in range(categories):
        owner = dept_ids[i % departments]
        scale = float(rng.choice([0.5, 1, 2, 4]))
        limits = {p: (int(a * scale), int(h * scale)) for p, (a, h) in DEFAULT_LIMITS.items()}
        ids.append(make_category(conn, f"bc{i}", owner, sector=sectors[i % 4], limits=limits))
        owners.append(owner)
        ack.append([limits[p][0] for p in (1, 2, 3)])
        handle.append([limits[p][1] for p in (1, 2, 3)])
    return Catalogue(np.array(ids), np.array(owners), np.array(ack), np.array(handle))


def load_grids(conn) -> GridTable:
    """Every grid of the store with its ancestors."""
    u = schema.units
    rows = conn.execute(
        select(u.c.id, u.c.community_id, u.c.street_id, u.c.district_id).where(u.c.level == schema.GRID).order_by(u.c.id)
    ).all()
    arr = np.array([tuple(r) for r in rows], dtype=np.int64).reshape(-1, 4)
    return GridTable(arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3])


# --- the history ------------------------------------------------------------------------------------

NAT = np.iinfo(np.int64).min  # "never" in the microsecond arrays


def _minutes(rng, low: float, high: float, n: int) -> np.ndarray:
    return (rng.uniform(low, high, n) * MINUTE_US).astype(np.int64)


def generate_history(
    n: int, grids: GridTable, catalogue: Catalogue, now: datetime, days: int, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(incidents, incident_events) frames for `n` incidents reported uniformly over the last `days` days.

    Times are int64 microseconds since 1970 (NAT where the stage never happened). Shares: 3%
    rejected, 2% merged, 6% reopened once after a failed verification (人到无效), 1% stuck with
    their assignee (挂账), 1.5% unlocated; acknowledge and handling times are exponential around
    half their limits, so roughly one in eight comes late.
    """
    rng = np.random.default_rng(seed)
    now_us = int(now.timestamp() * 1_000_000)
    reported = np.sort(now_us - (rng.random(n) * days * DAY_US).astype(np.int64))
    cat = rng.integers(0, len(catalogue.ids), n)
    priority = rng.choice([1, 2, 3], n, p=[0.1, 0.3, 0.6])
    ack_lim = catalogue.ack_minutes[cat, priority - 1].astype(np.int64) * MINUTE_US
    handle_lim = catalogue.handle_minutes[cat, priority - 1].astype(np.int64) * MINUTE_US
    dept = catalogue.department_ids[cat]
    located = rng.random(n) >= 0.015
    grid = rng.integers(0, len(grids.ids), n)

    fate = rng.random(n)
    rejected, merged = fate < 0.03, (fate >= 0.03) & (fate < 0.05)
    normal = fate >= 0.05
    t_register = reported + _minutes(rng, 2, 30, n)
    t_end_early = t_register + _minutes(rng, 5, 60, n)  # reject / merge time

    # A first cycle that fails verification, then the cycle the row keeps.
    t_d1 = t_register + _minutes(rng, 2, 30, n)
    t_a1 = t_d1 + rng.exponential(0.5, n) * ack_lim
    t_r1 = (t_a1 + rng.exponential(0.45, n) * handle_lim).astype(np.int64)
    t_fail = t_r1 + _minutes(rng, 30, 240, n)
    t_d2 = t_fail + _minutes(rng, 5, 60, n)
    failed = normal & (rng.random(n) < 0.06) & (t_d2 <= now_us)
    dispatched = np.where(failed, t_d2, t_d1)
    acknowledged = (dispatched + rng.exponential(0.5, n) * ack_lim).astype(np.int64)
    resolved = (acknowledged + rng.exponential(0.45, n) * handle_lim).astype(np.int64)
    stuck = normal & (rng.random(n) < 0.01)
    never = now_us + 100 * 365 * DAY_US
    resolved[stuck] = never
    closed = resolved + _minutes(rng, 10, 240, n)
    closed[stuck] = never
    rated = rng.random(n) < 0.5
    t_rate = closed + _minutes(rng, 10, 600, n)
    satisfaction = rng.choice([1, 2, 3, 4, 5], n, p=[0.04, 0.04, 0.1, 0.3, 0.52])

    def happened(t):
        return t <= now_us

    state = np.full(n, "reported", dtype=object)
    early = ~normal
    state[early & happened(t_register)] = "registered"
    state[rejected & happened(t_end_early)] = "rejected"
    state[merged & happened(t_end_early)] = "merged"
    state[normal & happened(t_register)] = "registered"
    state[failed] = "dispatched"
    for t, name in ((dispatched, "dispatched"), (acknowledged, "acknowledged"), (resolved, "resolved"), (closed, "closed")):
        state[normal & happened(t)] = name
    is_open = ~np.isin(state, ["rejected", "merged", "closed"])

    def when(mask, t):
        return np.where(mask & happened(t), t, NAT)

    in_cycle = normal & happened(dispatched)
    inc = pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "source": "bench",
            "external_id": [f"h{i}" for i in range(n)],
            "category_id": catalogue.ids[cat],
            "priority": priority,
            "lon": None,
            "lat": None,
            "unlocated": ~located,
            "grid_id": np.where(located, grids.ids[grid], -1),
            "community_id": np.where(located, grids.community_ids[grid], -1),
            "street_id": np.where(located, grids.street_ids[grid], -1),
            "district_id": np.where(located, grids.district_ids[grid], -1),
            "state": state,
            "is_open": is_open,
            "assignee_department_id": np.where(in_cycle, dept, -1),
            "reported_at": reported,
            "registered_at": when(np.ones(n, bool), t_register),
            "dispatched_at": when(normal, dispatched),
            "first_dispatched_at": when(normal, t_d1),
            "acknowledged_at": when(normal, acknowledged),
            "resolved_at": when(normal, resolved),
            "closed_at": when(normal, closed),
            "rejected_at": when(rejected, t_end_early),
            "ack_due_at": np.where(in_cycle, dispatched + ack_lim, NAT),
            "handle_due_at": np.where(in_cycle, dispatched + handle_lim, NAT),
            "satisfaction": np.where((state == "closed") & rated & happened(t_rate), satisfaction, -1),
            "reopen_count": failed.astype(np.int64),
            # A merged report points at the incident reported just before it (ids follow report times).
            "merged_into_id": np.where((state == "merged") & (np.arange(n) > 0), np.arange(n), -1),
        }
    )
    inc["ack_late"] = np.where(inc.acknowledged_at != NAT, inc.acknowledged_at > inc.ack_due_at, None)
    inc["resolved_late"] = np.where(inc.resolved_at != NAT, inc.resolved_at > inc.handle_due_at, None)

    # The audit log, one row per stage reached; updated_at is the latest of them.
    stages = [
        ("report", None, "reported", np.ones(n, bool), reported, None),
        ("register", "reported", "registered", np.ones(n, bool), t_register, None),
        ("reject", "registered", "rejected", rejected, t_end_early, None),
        ("merge", "registered", "merged", merged, t_end_early, None),
        ("dispatch", "registered", "dispatched", failed, t_d1, dept),
        ("acknowledge", "dispatched", "acknowledged", failed, t_a1.astype(np.int64), None),
        ("resolve", "acknowledged", "resolved", failed, t_r1, None),
        ("verify_fail", "resolved", "reopened", failed, t_fail, dept),
        ("dispatch", "reopened", "dispatched", failed, t_d2, dept),
        ("dispatch", "registered", "dispatched", normal & ~failed, t_d1, dept),
        ("acknowledge", "dispatched", "acknowledged", normal, acknowledged, None),
        ("resolve", "acknowledged", "resolved", normal, resolved, None),
        ("verify_pass", "resolved", "closed", normal, closed, None),
        ("rate", "closed", "closed", normal & rated & (state == "closed"), t_rate, None),
    ]
    parts, updated = [], reported.copy()
    for action, from_state, to_state, mask, t, data_dept in stages:
        take = mask & happened(t)
        updated = np.where(take, np.maximum(updated, t), updated)
        idx = np.flatnonzero(take)
        if action == "rate":
            data = [f'{{"satisfaction": {s}}}' for s in satisfaction[idx]]
        elif data_dept is not None:
            data = [f'{{"department_id": {d}, "worker_id": null}}' for d in data_dept[idx]]
        else:
            data = None
        parts.append(
            pd.DataFrame(
                {
                    "incident_id": idx + 1,
                    "at": t[idx],
                    "actor": "bench",
                    "action": action,
                    "from_state": from_state,
                    "to_state": to_state,
                    "note": "bench" if action == "verify_fail" else None,
                    "data": data,
                }
            )
        )
    inc["updated_at"] = updated
    events = pd.concat(parts, ignore_index=True).sort_values(["at", "incident_id"], kind="stable", ignore_index=True)
    events.insert(0, "id", np.arange(1, len(events) + 1))
    return inc, events


# --- bulk loading -----------------------------------------------------------------------------------

TIME_COLUMNS = {
    "reported_at",
    "registered_at",
    "dispatched_at",
    "first_dispatched_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "rejected_at",
    "ack_due_at",
    "handle_due_at",
    "updated_at",
    "at",
}
NULLABLE_INT = {
    "grid_id",
    "community_id",
    "street_id",
    "district_id",
    "assignee_department_id",
    "satisfaction",
    "merged_into_id",
}


def _time_strings(values: np.ndarray, sqlite: bool) -> np.ndarray:
    """Microsecond times as text the store reads back ('YYYY-MM-DD HH:MM:SS.ffffff' on SQLite), None for NAT."""
    values = np.asarray(values, dtype=np.int64)
    missing = values == NAT
    text_ = np.datetime_as_string(np.where(missing, 0, values).astype("datetime64[us]"), unit="us")
    text_ = np.char.replace(text_, "T", " ") if sqlite else np.char.add(text_, "+00")
    out = text_.astype(object)
    out[missing] = None
    return out


def _column_values(frame: pd.DataFrame, column: str, sqlite: bool) -> np.ndarray:
    values = frame[column].to_numpy()
    if column in TIME_COLUMNS:
        return _time_strings(values, sqlite)
    if column in NULLABLE_INT:
        out = values.astype(object)
        out[values == -1] = None
        return out
    return values.astype(object)


def bulk_load(engine: Engine, incidents: pd.DataFrame, events: pd.DataFrame, chunk: int = 200_000) -> None:
    """Append generated incidents and events to an empty store (ids as generated), fast.

    Secondary indexes are dropped for the load and rebuilt afterwards (building an index once is
    several times faster than updating fifteen of them row by row); statistics are gathered at the
    end, as the demo builder does.
    """
    indexes = {table: _secondary_indexes(engine, table) for table in ("incidents", "incident_events")}
    with engine.begin() as conn:
        for table_indexes in indexes.values():
            for name, _ in table_indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
    if store.is_sqlite(engine):
        _load_sqlite(engine, "incidents", incidents, chunk)
        _load_sqlite(engine, "incident_events", events, chunk)
    else:
        _load_postgres(engine, "incidents", incidents, chunk)
        _load_postgres(engine, "incident_events", events, chunk)
    with engine.begin() as conn:
        for table_indexes in indexes.values():
            for _, create in table_indexes:
                conn.execute(text(create))
        if not store.is_sqlite(engine):
            for table in ("incidents", "incident_events"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    with engine.connect() as conn:
        if store.is_sqlite(engine):
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE incidents, incident_events"))


def _secondary_indexes(engine: Engine, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes that back no constraint."""
    with engine.connect() as conn:
        if store.is_sqlite(engine):
            query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
        else:
            query = (
                "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = :t "
                "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE conrelid = to_regclass(:t))"
            )
        return [(name, sql) for name, sql in conn.execute(text(query), {"t": table})]


def _load_sqlite(engine: Engine, table: str, frame: pd.DataFrame, chunk: int) -> None:
    columns = list(frame.columns)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("BEGIN")
        for start in range(0, len(frame), chunk):
            part = frame.iloc[start : start + chunk]
            cols = [_plain(_column_values(part, c, True)) for c in columns]
            cursor.executemany(sql, zip(*cols, strict=True))
        cursor.execute("COMMIT")
    finally:
        raw.close()


def _plain(values: np.ndarray) -> list:
    # sqlite3 binds Python scalars only: tolist() converts typed arrays in C; object arrays may hold numpy scalars.
    if values.dtype != object:
        return values.tolist()
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def _load_postgres(engine: Engine, table: str, frame: pd.DataFrame, chunk: int) -> None:
    columns = list(frame.columns)
    raw = engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for start in range(0, len(frame), chunk):
                part = frame.iloc[start : start + chunk]
                out = pd.DataFrame({c: _column_values(part, c, False) for c in columns})
                buffer = io.StringIO()
                out.to_csv(buffer, index=False, header=False, na_rep="")
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)") as copy:
                    copy.write(buffer.getvalue())
        raw.commit()
    finally:
        raw.close()


def utc_now_whole() -> datetime:
    """The current time to the whole second, UTC."""
    return datetime.now(UTC).replace(microsecond=0)
