"""The overview KPIs and department board from an in-memory working set (open incidents and those touched in the board's week), kept current from the change feed.

Every screen asks for the headline KPIs on every change. In SQL that means evaluating the clock rules
(overdue, near due, as now and as at this time yesterday) over every open incident and every incident
touched since yesterday: ~25,000 rows and 60-120 ms at 1,000,000 incidents. The rows involved are
few and change a handful at a time, so each process keeps them as numpy columns, re-reads only the
incidents the change feed names since it last looked, and counts with array operations (a few ms).

The rules mirror the statements of data/metrics/kpis.py and data/metrics/board.py, which stay the
reference: tests compare the two on random histories (tests/data/metrics/test_working_set.py). Timestamps are float
epoch seconds (NaN for NULL, so a comparison with a missing time is false, as in SQL); a float holds
a microsecond at today's epoch.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import or_, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from data import schema, store
from data.incidents.clock import NEAR_DUE_MAX, NEAR_DUE_SHARE
from data.incidents.lifecycle import ACKNOWLEDGED, CLOSED, DISPATCHED, MERGED, REJECTED
from data.metrics import board as board_statements
from data.metrics import kpis as kpi_statements
from data.metrics.board import BOARD_DAYS, EMPTY_FIGURES, BoardThresholds, board_from_figures, board_no_effect
from data.metrics.kpis import MEDIAN_SAMPLES, kpis_from_figures
from data.metrics.scope import SATISFIED_MIN, SCOPE_COLUMNS, DayWindow, day_window, normalise_args
from data.times import utc_now

log = logging.getLogger(__name__)
INC, EV = schema.incidents, schema.incident_events
TIMES = (
    "reported_at",
    "dispatched_at",
    "acknowledged_at",
    "resolved_at",
    "returned_at",
    "closed_at",
    "rejected_at",
    "updated_at",
    "ack_due_at",
    "handle_due_at",
)
UNITS = tuple(SCOPE_COLUMNS.values())
STATES = {DISPATCHED: 1, ACKNOWLEDGED: 2, CLOSED: 3, REJECTED: 4, MERGED: 5}  # the rest: 0
CHUNK = 500  # ids per IN (...) list when re-reading changed incidents
_EPOCH, _SECOND = pd.Timestamp(0, tz="UTC"), pd.Timedelta(seconds=1)
_COLUMNS = [
    INC.c.id,
    INC.c.state,
    INC.c.is_open,
    INC.c.unlocated,
    INC.c.ack_late,
    INC.c.satisfaction,
    INC.c.assignee_department_id,
    *(INC.c[n] for n in UNITS + TIMES),
]
DEFAULT_THRESHOLDS = BoardThresholds()
REPRUNE_S = 3600  # the window's start moves on by this much before closed rows are dropped


@dataclass(frozen=True)
class _Rows:
    """The working set's columns (one entry per incident), replaced whole on every change."""

    ids: np.ndarray
    cols: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ids)


def _frame(rows: list) -> dict[str, np.ndarray]:
    """Columns of rows read with _COLUMNS: codes for states, 0/1 flags, floats for times and units."""
    frame = pd.DataFrame(rows, columns=[c.name for c in _COLUMNS])
    cols = {
        "state": frame["state"].map(STATES).fillna(0).to_numpy(np.int8),
        "is_open": frame["is_open"].fillna(False).to_numpy(bool),
        "unlocated": frame["unlocated"].fillna(False).to_numpy(bool),
        "ack_late": frame["ack_late"].fillna(False).to_numpy(bool),
        "satisfaction": frame["satisfaction"].to_numpy(np.float64, na_value=np.nan),
    }
    for name in (*UNITS, "assignee_department_id"):
        cols[name] = frame[name].to_numpy(np.float64, na_value=np.nan)
    for name in TIMES:
        # Seconds since the epoch (NaN for NULL); pandas reads aware and naive (UTC) datetimes alike.
        stamps = pd.to_datetime(frame[name], utc=True)
        cols[name] = ((stamps - _EPOCH) / _SECOND).to_numpy(np.float64, na_value=np.nan)
    return {"id": frame["id"].to_numpy(np.int64), **cols}


class WorkingSet:
    """One store's KPI working set in this process; `kpis()` brings it up to the feed's head first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.pending = False  # a warm-up will load the set (it may be waiting for the first page to be answered)
        self._rows: _Rows | None = None
        self._head = 0
        self._head_marker: tuple | None = None  # (incident id, time) of event `_head`: a rebuilt store differs
        self._floor = np.inf  # rows touched before this (yesterday's midnight at the last prune) may go

    def kpis(self, conn: Connection, scope: Any, now: datetime, tz: Any) -> dict[str, dict]:
        """The same dictionary as kpis.overview_kpis(conn, scope, now, tz)."""
        scope, now, tz = normalise_args(scope, now, tz)
        w = day_window(now, tz)
        rows, mask = self._scoped(conn, scope, now)
        return _figures(rows, mask, w)

    def board(
        self, conn: Connection, scope: Any, now: datetime, tz: Any, thresholds: BoardThresholds = DEFAULT_THRESHOLDS
    ) -> list[dict]:
        """The same rows as board.department_board(conn, scope, now, tz, thresholds)."""
        scope, now, tz = normalise_args(scope, now, tz)
        rows, mask = self._scoped(conn, scope, now)
        figures = _board_figures(rows, mask, now.timestamp())
        for department_id, n in board_no_effect(conn, scope, now).items():
            figures.setdefault(department_id, dict(EMPTY_FIGURES))["no_effect"] = n
        return board_from_figures(conn, figures, thresholds)

    def loading(self) -> bool:
        """Whether the first load is running or about to run in another thread (a start's warm-up)."""
        return self._rows is None and (self.pending or self._lock.locked())

    def _scoped(self, conn: Connection, scope, now: datetime) -> tuple[_Rows, np.ndarray]:
        # The board's week reaches further back than the KPIs' yesterday-and-today in any time zone; a day spare.
        floor = (now - timedelta(days=BOARD_DAYS + 1)).timestamp()
        rows = self._current(conn, floor)
        if scope is None:
            return rows, np.ones(len(rows), bool)
        return rows, rows.cols[SCOPE_COLUMNS[scope.level]] == scope.unit_id

    # --- keeping current ------------------------------------------------------------------------

    def _current(self, conn: Connection, floor: float) -> _Rows:
        with self._lock:
            head = store.feed_head(conn)
            stale = self._rows is None or head < self._head or self._marker(conn, self._head) != self._head_marker
            if stale or floor < self._floor:  # a rebuilt store, or a window older than the set holds
                self._load(conn, head, floor)
            elif head > self._head:
                self._apply(conn, head)
            if floor > self._floor + REPRUNE_S:
                self._prune(floor)
            return self._rows

    @staticmethod
    def _marker(conn: Connection, event_id: int) -> tuple | None:
        row = conn.execute(select(EV.c.incident_id, EV.c.at).where(EV.c.id == event_id)).first()
        return None if row is None else tuple(row)

    def _load(self, conn: Connection, head: int, floor: float) -> None:
        since = datetime.fromtimestamp(floor, UTC)
        rows = conn.execute(select(*_COLUMNS).where(or_(INC.c.is_open.is_(True), INC.c.updated_at >= since))).all()
        cols = _frame(rows)
        self._rows = _Rows(cols.pop("id"), cols)
        self._head, self._head_marker, self._floor = head, self._marker(conn, head), floor

    def _apply(self, conn: Connection, head: int) -> None:
        """Re-read the incidents whose events came after the last look; replace or append their rows."""
        changed = sorted(conn.execute(select(EV.c.incident_id).where(EV.c.id > self._head, EV.c.id <= head).distinct()).scalars())
        fresh = []
        for i in range(0, len(changed), CHUNK):
            fresh += conn.execute(select(*_COLUMNS).where(INC.c.id.in_(changed[i : i + CHUNK]))).all()
        if fresh:
            new = _frame(fresh)
            new_ids = new.pop("id")
            old = self._rows
            keep = ~np.isin(old.ids, new_ids)
            cols = {name: np.concatenate([col[keep], new[name]]) for name, col in old.cols.items()}
            self._rows = _Rows(np.concatenate([old.ids[keep], new_ids]), cols)
        self._head, self._head_marker = head, self._marker(conn, head)

    def _prune(self, floor: float) -> None:
        """Time moved on: drop closed incidents last touched before the window (never needed again)."""
        rows = self._rows
        keep = rows.cols["is_open"] | (rows.cols["updated_at"] >= floor)
        self._rows = _Rows(rows.ids[keep], {name: col[keep] for name, col in rows.cols.items()})
        self._floor = floor


# --- the figures, as the statements of data/metrics/kpis.py and board.py count them ---------------------


def _between(values: np.ndarray, start: float, end: float) -> np.ndarray:
    return (values >= start) & (values <= end)


def _clock_state_at(c: dict[str, np.ndarray], t: float) -> np.ndarray:
    """The state code whose clock ran at instant t (kpis._clock_state_at): 1, 2, or 0 for none."""
    dispatched, returned = c["dispatched_at"], c["returned_at"]
    running = dispatched <= t  # False for NaN: never dispatched
    running &= ~((returned >= dispatched) & (returned <= t))
    acknowledged = c["acknowledged_at"] <= t
    resolved = c["resolved_at"] <= t
    return np.where(running & ~acknowledged, 1, np.where(running & acknowledged & ~resolved, 2, 0)).astype(np.int8)


def _due(c: dict[str, np.ndarray], state: np.ndarray) -> np.ndarray:
    """The due time the clock runs against (NaN when none runs): clock.active_due_expression."""
    return np.where(state == 1, c["ack_due_at"], np.where(state == 2, c["handle_due_at"], np.nan))


def _overdue(c: dict[str, np.ndarray], state: np.ndarray, t: float) -> np.ndarray:
    return _due(c, state) < t


def _near_due(c: dict[str, np.ndarray], state: np.ndarray, t: float) -> np.ndarray:
    due = _due(c, state)
    remaining, window = due - t, due - c["dispatched_at"]
    return (
        (due >= t)
        & (due <= t + NEAR_DUE_MAX.total_seconds())
        & (remaining * NEAR_DUE_SHARE.denominator <= window * NEAR_DUE_SHARE.numerator)
    )


def _median(values: np.ndarray) -> float | None:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if len(values) else None


def _figures(rows: _Rows, mask: np.ndarray, w: DayWindow) -> dict[str, dict]:
    now, ts, ys, yn = (x.timestamp() for x in (w.now, w.today_start, w.yesterday_start, w.yesterday_now))
    c = {name: col[mask] for name, col in rows.cols.items()}
    state, is_open, unlocated = c["state"], c["is_open"], c["unlocated"]
    state_y = _clock_state_at(c, yn)
    reported_by_y = c["reported_at"] <= yn

    o = is_open
    open_ = {
        "open_now": int(o.sum()),
        "open_at_y": int((o & reported_by_y).sum()),
        "overdue_now": int((o & _overdue(c, state, now)).sum()),
        "near_now": int((o & _near_due(c, state, now)).sum()),
        "overdue_at_y": int((o & _overdue(c, state_y, yn)).sum()),
        "near_at_y": int((o & _near_due(c, state_y, yn)).sum()),
        "unlocated_now": int((o & unlocated).sum()),
        "unlocated_at_y": int((o & unlocated & reported_by_y).sum()),
    }

    touched = c["updated_at"] >= ys
    closed_t, closed_y = _between(c["closed_at"], ts, now), _between(c["closed_at"], ys, yn)
    timed = ~np.isnan(c["resolved_at"]) & ~np.isnan(c["handle_due_at"])
    on_time = timed & (c["resolved_at"] <= c["handle_due_at"])
    score = c["satisfaction"]
    rated, satisfied = ~np.isnan(score), score >= SATISFIED_MIN
    terminal = np.select(
        [state == STATES[CLOSED], state == STATES[REJECTED], state == STATES[MERGED]],
        [c["closed_at"], c["rejected_at"], c["updated_at"]],
        np.nan,
    )
    ended = ~is_open
    ended_since = ended & reported_by_y & (terminal > yn)

    def count(condition: np.ndarray) -> int:
        return int((touched & condition).sum())

    def score_sum(condition: np.ndarray):
        chosen = touched & condition & rated
        return int(score[chosen].sum()) if chosen.any() else None

    new_t, new_y = _between(c["reported_at"], ts, now), _between(c["reported_at"], ys, yn)
    changed = {
        "new_today": count(new_t),
        "new_y": count(new_y),
        "unlocated_today": count(unlocated & new_t),
        "unlocated_y": count(unlocated & new_y),
        "closed_today": count(closed_t),
        "closed_y": count(closed_y),
        "timed_today": count(closed_t & timed),
        "timed_y": count(closed_y & timed),
        "on_time_today": count(closed_t & on_time),
        "on_time_y": count(closed_y & on_time),
        "rated_today": count(closed_t & rated),
        "rated_y": count(closed_y & rated),
        "satisfied_today": count(closed_t & satisfied),
        "satisfied_y": count(closed_y & satisfied),
        "score_sum_today": score_sum(closed_t) or 0,
        "score_sum_y": score_sum(closed_y) or 0,
        "ended_open_at_y": count(ended_since),
        "ended_unlocated_at_y": count(ended_since & unlocated),
        "ended_overdue_at_y": count(ended & _overdue(c, state_y, yn)),
        "ended_near_at_y": count(ended & _near_due(c, state_y, yn)),
    }
    # Durations to the millisecond, as the SQL's duration_seconds gives them.
    ack_s = np.round(c["acknowledged_at"] - c["dispatched_at"], 3)
    handle_s = np.round(c["resolved_at"] - c["dispatched_at"], 3)
    samples = {
        "ack_today": ack_s[touched & _between(c["acknowledged_at"], ts, now)],
        "ack_y": ack_s[touched & _between(c["acknowledged_at"], ys, yn)],
        "handle_today": handle_s[touched & _between(c["resolved_at"], ts, now)],
        "handle_y": handle_s[touched & _between(c["resolved_at"], ys, yn)],
    }
    medians = {name: _median(samples[name]) for name in MEDIAN_SAMPLES}
    return kpis_from_figures(open_, changed, {k: v for k, v in medians.items() if v is not None})


def _board_figures(rows: _Rows, mask: np.ndarray, now: float) -> dict[int, dict]:
    """Per department, as board.department_board's statements count them: open, overdue and waiting
    past the acknowledge limit now; acknowledgements and resolutions of the last BOARD_DAYS, late ones,
    on-time ones and the median times (no_effect comes from the events)."""
    since = now - BOARD_DAYS * 86400.0
    c = {name: col[mask] for name, col in rows.cols.items()}
    department = c["assignee_department_id"]
    assigned = ~np.isnan(department)
    overdue = _overdue(c, c["state"], now)
    ack, res = c["acknowledged_at"], c["resolved_at"]
    touched = (c["updated_at"] >= since) & ((ack >= since) | (res >= since))
    ack_in, res_in = touched & _between(ack, since, now), touched & _between(res, since, now)
    ack_s = np.round(ack - c["dispatched_at"], 3)
    handle_s = np.round(res - c["dispatched_at"], 3)
    on_time = res_in & (res <= c["handle_due_at"])
    figures: dict[int, dict] = {}
    for department_id in np.unique(department[assigned]):
        mine = department == department_id
        opened = mine & c["is_open"]
        if not (opened.any() or (mine & (ack_in | res_in)).any()):
            continue
        figures[int(department_id)] = {
            **EMPTY_FIGURES,
            "open": int(opened.sum()),
            "overdue": int((opened & overdue).sum()),
            "waiting_late": int((opened & overdue & (c["state"] == STATES[DISPATCHED])).sum()),
            "acknowledged": int((mine & ack_in).sum()),
            "ack_late": int((mine & ack_in & c["ack_late"]).sum()),
            "resolved": int((mine & res_in).sum()),
            "on_time": int((mine & on_time).sum()),
            "median_ack_s": _median(ack_s[mine & ack_in]),
            "median_handle_s": _median(handle_s[mine & res_in]),
        }
    return figures


_sets: weakref.WeakKeyDictionary[Engine, WorkingSet] = weakref.WeakKeyDictionary()
_sets_lock = threading.Lock()


def _working_set(conn: Connection) -> WorkingSet:
    return _working_set_of(conn.engine)


def _working_set_of(engine: Engine) -> WorkingSet:
    with _sets_lock:
        working = _sets.get(engine)
        if working is None:
            working = _sets[engine] = WorkingSet()
    return working


# While a start's warm-up loads the set (seconds at a million incidents), the statements answer instead
# (about 0.1 s): the first screen after a start does not wait for the load.


def overview_kpis(conn: Connection, scope: Any, now: datetime, tz: Any) -> dict[str, dict]:
    """kpis.overview_kpis read from this process's working set of conn's store (built on first use)."""
    working = _working_set(conn)
    if working.loading():
        return kpi_statements.overview_kpis(conn, scope, now, tz)
    return working.kpis(conn, scope, now, tz)


def department_board(conn: Connection, scope: Any, now: datetime, tz: Any) -> list[dict]:
    """board.department_board read from this process's working set of conn's store."""
    working = _working_set(conn)
    if working.loading():
        return board_statements.department_board(conn, scope, now, tz)
    return working.board(conn, scope, now, tz)


def warm(engine: Engine, tz: str, when: Callable[[], None] | None = None) -> threading.Thread:
    """Load the working set in a background thread, so the first screen after a start does not wait for it
    (seconds at a million incidents). `when()` blocks until the load may begin (the server answered its
    first page: the load would compete with it for the interpreter); until the set is loaded the
    statements answer."""
    working = _working_set_of(engine)
    working.pending = True

    def run():
        try:
            if when is not None:
                when()
            with store.reading(engine) as conn:
                working.kpis(conn, None, utc_now(), tz)
        except SQLAlchemyError as exc:  # the store is not reachable yet: the first request loads it
            log.warning("KPI working set warm-up skipped: %s", exc.__class__.__name__)
        finally:
            working.pending = False

    thread = threading.Thread(target=run, name="citybrain-kpi-warm-up", daemon=True)
    thread.start()
    return thread
