"""Roll-up tables of the leaders' review: daily sums per unit and department, kept current from the change feed.

A cell is (local day, unit, department): the unit is 0 for the whole city or a district, street or
community id; the department is 0 for all departments or an assignee department (department cells
exist for the city, districts and streets). Each cell holds the counts every review figure is made of
(docs/metrics.md), a histogram of acknowledge and handling times, received incidents by local hour and
by category (the cell itself, its histograms and its stored row: data/metrics/rollup_cells.py).

Exactness: the cube always equals the sum, over every incident, of its contribution as last seen (the
`trend_rollup_seen` snapshot). `refresh()` replays the change feed since the last event applied: for each
changed incident it adds its contribution now and subtracts the one it had. A reader does the same in
memory for the events not yet applied (`pending()`), so a review from the cube gives the counts a review
from the raw incidents gives, whatever the refresher's lag. Only medians and p90s are approximate: the
histogram bins grow by BIN_RATIO, so each estimate lies within 4.5% of the exact value (see docs/metrics.md).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
from sqlalchemy import delete, func, insert, select, text, tuple_
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import DISPATCHED, MERGED
from data.metrics.rollup_cells import COUNTS, Cell, Key, cell_from_row, cube_row, duration_bin
from data.metrics.scope import SATISFIED_MIN, normalise_tz
from data.schema.rollups import ROLLUP_TIMES
from data.times import epoch_seconds, utc_now

__all__ = [
    "contributions",
    "pending",
    "read_state",
    "rebuild",
    "refresh",
    "refresh_store",
]
log = logging.getLogger(__name__)

CUBE = schema.trend_rollup
SEEN = schema.trend_rollup_seen
STATE = schema.trend_rollup_state
INC = schema.incidents
EV = schema.incident_events

_C = {name: i for i, name in enumerate(COUNTS)}
CHUNK = 500  # ids per IN (...) list
SMALL = 2000  # rows below which contributions are summed in plain Python

TIME_FIELDS = ROLLUP_TIMES
ID_FIELDS = ("category_id", "district_id", "street_id", "community_id", "assignee_department_id")
NUMBER_FIELDS = ("ack_late", "satisfaction", "reopen_count")


# --- one incident's contribution ----------------------------------------------------------------


def local_days(t: np.ndarray, tz: str) -> np.ndarray:
    """Days since 1970-01-01 of each instant's local calendar date (NaN instants give -1)."""
    ok = ~np.isnan(t)
    out = np.full(len(t), -1, dtype=np.int64)
    if ok.any():
        local = pd.to_datetime(t[ok], unit="s", utc=True).tz_convert(tz).tz_localize(None)
        out[ok] = local.to_numpy().astype("datetime64[D]").astype(np.int64)
    return out


def _local_hours(t: np.ndarray, tz: str) -> np.ndarray:
    return pd.to_datetime(t, unit="s", utc=True).tz_convert(tz).hour.to_numpy().astype(np.int64)


def contributions(rows: dict[str, np.ndarray], tz: str) -> dict[Key, Cell]:
    """The cells a set of incidents adds to the cube (merged incidents add nothing; 一件事一次办)."""
    keep = rows["state"] != MERGED
    a = {k: v[keep] for k, v in rows.items()}
    n = len(a["state"])
    cells: dict[Key, Cell] = {}
    if not n:
        return cells
    ended = np.fmin(a["closed_at"], a["rejected_at"])
    rated = ~np.isnan(a["satisfaction"])
    timed = ~np.isnan(a["handle_due_at"])
    one = np.ones(n, dtype=bool)
    # (instant that places the row on a day, {count: mask}); a row counts only where its instant exists.
    kinds = [
        (a["reported_at"], {"received": one}),
        (
            a["closed_at"],
            {
                "closed": one,
                "first_time": a["reopen_count"] == 0,
                "rated": rated,
                "satisfied": rated & (a["satisfaction"] >= SATISFIED_MIN),
            },
        ),
        (a["acknowledged_at"], {"acknowledged": one, "ack_on_time": a["ack_late"] == 0, "ack_late": a["ack_late"] == 1}),
        (a["ack_due_at"], {"waiting": (a["state"] == DISPATCHED) & np.isnan(a["acknowledged_at"])}),
        (
            a["resolved_at"],
            {
                "resolved": one,
                "resolved_timed": timed,
                "on_time": timed & (a["resolved_at"] <= a["handle_due_at"]),
                "no_effect": a["reopen_count"] > 0,
            },
        ),
        (ended, {"ended": one}),
    ]
    units = [np.zeros(n, dtype=np.int64), a["district_id"], a["street_id"], a["community_id"]]
    dept = a["assignee_department_id"]
    # The cells each row feeds: (unit array, with its department?); communities carry no department cells.
    targets = [(u, False) for u in units] + [(u, True) for u in units[:3]]

    def cell_keys(days: np.ndarray, rows_mask: np.ndarray, with_departments: bool = True):
        for unit, by_dept in targets:
            if by_dept and not with_departments:
                continue
            m = rows_mask & (unit >= 0) & (days >= 0)
            if by_dept:
                m &= dept >= 0
            yield m, unit, (dept if by_dept else np.zeros(n, dtype=np.int64))

    def add_counts(days: np.ndarray, masks: dict[str, np.ndarray]) -> None:
        present = days >= 0
        values = np.zeros((n, len(COUNTS)), dtype=np.int64)
        for name, mask in masks.items():
            values[:, _C[name]] = mask & present
        any_count = values.any(axis=1)
        for m, unit, dep in cell_keys(days, any_count):
            idx = np.flatnonzero(m)
            if not len(idx):
                continue
            for key, vector in _grouped([days[idx], unit[idx], dep[idx]], values[idx]):
                cell = cells.get(key)
                if cell is None:
                    cell = cells[key] = Cell()
                cell.counts += vector

    def add_sparse(days: np.ndarray, mask: np.ndarray, keys: np.ndarray, attr: str, with_departments: bool = True) -> None:
        for m, unit, dep in cell_keys(days, mask, with_departments):
            idx = np.flatnonzero(m)
            if not len(idx):
                continue
            for (d, u, p, k), c in _grouped([days[idx], unit[idx], dep[idx], keys[idx]], None):
                cell = cells.get((d, u, p))
                if cell is None:
                    cell = cells[(d, u, p)] = Cell()
                if attr == "hours":
                    cell.hours[k] += c
                else:
                    target = getattr(cell, attr)
                    target[k] = target.get(k, 0) + c

    for instant, masks in kinds:
        add_counts(local_days(instant, tz), masks)
    reported_days = local_days(a["reported_at"], tz)
    add_sparse(reported_days, one, _local_hours(a["reported_at"], tz), "hours", with_departments=False)
    add_sparse(reported_days, one, a["category_id"], "categories", with_departments=False)
    ack_s = a["acknowledged_at"] - a["dispatched_at"]
    handle_s = a["resolved_at"] - a["dispatched_at"]
    ack_ok = ~np.isnan(ack_s)
    handle_ok = ~np.isnan(handle_s)
    add_sparse(local_days(a["acknowledged_at"], tz), ack_ok, duration_bin(np.where(ack_ok, ack_s, 0)), "ack")
    add_sparse(local_days(a["resolved_at"], tz), handle_ok, duration_bin(np.where(handle_ok, handle_s, 0)), "handle")
    return cells


def _grouped(keys: list[np.ndarray], values: np.ndarray | None) -> Iterable[tuple[tuple, object]]:
    """(key, summed value rows, or the number of rows) per distinct key of the key columns: pandas for
    many rows; a plain dict for a few, where pandas' fixed cost per call would dominate a reader's delta."""
    if len(keys[0]) <= SMALL:
        out: dict[tuple, object] = {}
        tuples = zip(*(k.tolist() for k in keys), strict=True)
        if values is None:
            for key in tuples:
                out[key] = out.get(key, 0) + 1
        else:
            for key, row in zip(tuples, values, strict=True):
                out[key] = out[key] + row if key in out else row.copy()
        return out.items()
    names = [f"k{i}" for i in range(len(keys))]
    frame = pd.DataFrame(dict(zip(names, keys, strict=True)))
    if values is None:
        sizes = frame.groupby(names, sort=False).size()
        return zip(sizes.index.tolist(), sizes.tolist(), strict=True)
    for i in range(values.shape[1]):
        frame[f"v{i}"] = values[:, i]
    sums = frame.groupby(names, sort=False).sum()
    return zip(sums.index.tolist(), sums.to_numpy(dtype=np.int64), strict=True)


# --- rows: the incidents now, and as the cube last saw them -----------------------------------------


def _incident_columns() -> list:
    return [
        INC.c.id.label("incident_id"),
        INC.c.state,
        *(INC.c[c] for c in ID_FIELDS),
        *(epoch_seconds(INC.c[c]).label(c) for c in TIME_FIELDS),
        *(INC.c[c] for c in NUMBER_FIELDS),
    ]


def _seen_columns() -> list:
    return [SEEN.c.incident_id, SEEN.c.state, *(SEEN.c[c] for c in (*ID_FIELDS, *TIME_FIELDS, *NUMBER_FIELDS))]


FIELDS = ("incident_id", "state", *ID_FIELDS, *TIME_FIELDS, *NUMBER_FIELDS)


def _arrays(rows: list) -> dict[str, np.ndarray]:
    """Rows (in FIELDS order) as numpy columns: ids -1 for none, times and numbers NaN for none."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in FIELDS]
    out: dict[str, np.ndarray] = {}
    for name, values in zip(FIELDS, columns, strict=True):
        if name == "state":
            out[name] = np.array(values, dtype=object)
        elif name in ID_FIELDS or name == "incident_id":
            v = np.array(values, dtype=float)
            out[name] = np.where(np.isnan(v), -1, v).astype(np.int64)
        else:
            out[name] = np.array(values, dtype=float)
    if "ack_late" in out:
        out["ack_late"] = out["ack_late"].astype(float)
    return out


def _by_ids(conn: Connection, ids: list[int]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(the incidents now, their snapshots as the cube last saw them) for `ids`."""
    now_rows, seen_rows = [], []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i : i + CHUNK]
        now_rows += conn.execute(select(*_incident_columns()).where(INC.c.id.in_(chunk))).all()
        seen_rows += conn.execute(select(*_seen_columns()).where(SEEN.c.incident_id.in_(chunk))).all()
    return _arrays(now_rows), _arrays(seen_rows)


def _changed_ids(conn: Connection, after: int, upto: int) -> list[int]:
    stmt = select(EV.c.incident_id).where(EV.c.id > after, EV.c.id <= upto).distinct()
    return [int(r[0]) for r in conn.execute(stmt)]


def _delta(conn: Connection, ids: list[int], tz: str) -> tuple[dict[Key, Cell], dict[str, np.ndarray]]:
    """(what the cube must gain and lose for `ids`, their rows now)."""
    now_rows, seen_rows = _by_ids(conn, ids)
    cells = contributions(now_rows, tz)
    for key, cell in contributions(seen_rows, tz).items():
        cells.setdefault(key, Cell()).add(cell, -1)
    return {k: c for k, c in cells.items() if not c.is_empty()}, now_rows


# --- state ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class State:
    """The cube's time zone and the last change-feed event it has applied (0: none)."""

    tz: str
    last_event_id: int
    refreshed_at: datetime


def read_state(conn: Connection) -> State | None:
    """The cube's state, or None when it has never been built (or the store was rebuilt since)."""
    row = conn.execute(select(STATE.c.tz, STATE.c.last_event_id, STATE.c.refreshed_at).where(STATE.c.id == 1)).first()
    return None if row is None else State(row.tz, row.last_event_id or 0, row.refreshed_at)


def pending(conn: Connection, state: State) -> dict[Key, Cell]:
    """The cells the cube lacks for the events after its last: applied in memory by readers."""
    head = _head(conn)
    if head <= state.last_event_id:
        return {}
    return _delta(conn, _changed_ids(conn, state.last_event_id, head), state.tz)[0]


def _head(conn: Connection) -> int:
    return conn.execute(select(func.coalesce(func.max(EV.c.id), 0))).scalar_one()


# --- writing the cube ---------------------------------------------------------------------------------


# PostgreSQL advisory lock of the roll-up's writers (its own: a rebuild must not hold up the warning pass's writes).
ROLLUP_LOCK = 727004


def _lock(conn: Connection) -> None:
    """One refresher at a time per store (SQLite's BEGIN IMMEDIATE already serialises writers)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"), {"k": ROLLUP_LOCK})


def _insert_seen(conn: Connection, rows: dict[str, np.ndarray]) -> None:
    n = len(rows["incident_id"])
    if not n:
        return
    records = []
    for i in range(n):
        rec = {}
        for name in FIELDS:
            v = rows[name][i]
            if name == "state":
                rec[name] = v
            elif name in ID_FIELDS or name == "incident_id":
                rec[name] = None if v < 0 else int(v)
            else:
                rec[name] = None if np.isnan(v) else float(v)
        records.append(rec)
    conn.execute(insert(SEEN), records)


def _set_state(conn: Connection, tz: str, head: int) -> None:
    conn.execute(delete(STATE))
    conn.execute(insert(STATE).values(id=1, tz=tz, last_event_id=head or None, refreshed_at=utc_now()))


def rebuild(conn: Connection, tz: str) -> int:
    """Build the cube from every incident (inside the caller's write transaction); returns the incidents read."""
    tz = normalise_tz(tz)
    _lock(conn)
    head = _head(conn)
    conn.execute(delete(CUBE))
    conn.execute(delete(SEEN))
    # The snapshot is copied inside the database, then the cube is summed from that very snapshot.
    conn.execute(insert(SEEN).from_select(list(FIELDS), select(*_incident_columns())))
    rows = _arrays(conn.execute(select(*_seen_columns())).all())
    cells = contributions(rows, tz)
    records = [cube_row(k, c) for k, c in cells.items() if not c.is_empty()]
    for i in range(0, len(records), 5000):
        conn.execute(insert(CUBE), records[i : i + 5000])
    _set_state(conn, tz, head)
    return len(rows["incident_id"])


def refresh(conn: Connection, tz: str) -> dict:
    """Bring the cube up to the change feed's head (inside the caller's write transaction).

    Builds it from scratch when it was never built, the time zone changed, or the store was rebuilt
    (a demo build clears the state row with the events it refers to). Returns what was done."""
    tz = normalise_tz(tz)
    _lock(conn)
    state = read_state(conn)
    if state is None or state.tz != tz:
        return {"rebuilt": True, "incidents": rebuild(conn, tz)}
    head = _head(conn)
    if head <= state.last_event_id:
        return {"rebuilt": False, "incidents": 0}
    ids = _changed_ids(conn, state.last_event_id, head)
    for i in range(0, len(ids), CHUNK * 10):
        _apply(conn, ids[i : i + CHUNK * 10], tz)
    _set_state(conn, tz, head)
    return {"rebuilt": False, "incidents": len(ids)}


def _apply(conn: Connection, ids: list[int], tz: str) -> None:
    delta, now_rows = _delta(conn, ids, tz)
    keys = list(delta)
    stored: dict[Key, Cell] = {}
    key_cols = tuple_(CUBE.c.day, CUBE.c.unit_id, CUBE.c.department_id)
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i : i + CHUNK]
        for row in conn.execute(select(CUBE).where(key_cols.in_(chunk))):
            stored[(row.day, row.unit_id, row.department_id)] = cell_from_row(row)
        conn.execute(delete(CUBE).where(key_cols.in_(chunk)))
    records = []
    for key, change in delta.items():
        cell = stored.get(key, Cell())
        cell.add(change)
        if not cell.is_empty():
            records.append(cube_row(key, cell))
    if records:
        conn.execute(insert(CUBE), records)
    for i in range(0, len(ids), CHUNK):
        conn.execute(delete(SEEN).where(SEEN.c.incident_id.in_(ids[i : i + CHUNK])))
    _insert_seen(conn, now_rows)


def refresh_store(engine, tz: str) -> dict:
    """refresh() in its own write transaction."""
    with engine.begin() as conn:
        return refresh(conn, tz)
