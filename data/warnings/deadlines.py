"""Deadlines at risk: open incidents whose running clock will likely expire before the assignee department finishes.

From the department's recent durations (conditional on the time already spent) stretched by its
current queue against its usual one (Little's law); the clocks are those of data/incidents/clock.py.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
from sqlalchemy import case, func, select, true
from sqlalchemy.engine import Connection

from data.incidents.clock import active_due_expression, overdue_expression
from data.incidents.lifecycle import ACKNOWLEDGED, DISPATCHED
from data.times import epoch_seconds
from data.warnings.context import DAY, HOUR, INC, MAX_SCORE, Context, fetch, store_key

DEADLINE_PACE_SAMPLE = 20_000  # the department pace comes from the latest acknowledged incidents
DEADLINE_MIN_LEFT = 10 * 60.0  # less time than this is no longer "time to act": the overdue alarm takes over
DEADLINE_HORIZON = 8 * HOUR
DEADLINE_MIN_SAMPLES = 20
DEADLINE_MIN_QUEUE = 5.0
DEADLINE_COOLDOWN = 6 * HOUR


def _running_clocks(conn: Connection, now: datetime) -> np.ndarray:
    """Open incidents whose clock runs (data/incidents/clock.py), one row of numbers each, the last saying whether it is overdue."""
    due = active_due_expression()
    stmt = select(
        INC.c.id,
        INC.c.category_id,
        INC.c.priority,
        case((INC.c.state == ACKNOWLEDGED, 1), else_=0),
        func.coalesce(INC.c.assignee_department_id, -1),
        epoch_seconds(INC.c.dispatched_at),
        func.coalesce(epoch_seconds(INC.c.acknowledged_at), -1.0),
        epoch_seconds(due),
        func.coalesce(INC.c.grid_id, -1),
        func.coalesce(INC.c.lon, -999.0),
        func.coalesce(INC.c.lat, -999.0),
        case((overdue_expression(now), 1), else_=0),
    ).where(
        INC.c.is_open == true(),
        INC.c.state.in_((DISPATCHED, ACKNOWLEDGED)),
        due.is_not(None),
        INC.c.dispatched_at.is_not(None),
    )
    return fetch(conn, stmt, 12)


_PACE_CACHE: dict[str, tuple[float, np.ndarray]] = {}
PACE_TTL = 300.0  # a department's pace is re-read at most every five minutes


def clear_caches() -> None:
    """Forget the departments' pace kept between passes."""
    _PACE_CACHE.clear()


def _recent_pace_cached(conn: Connection, now: float) -> np.ndarray:
    key = store_key(conn)
    cached = _PACE_CACHE.get(key)
    if cached is not None and 0 <= now - cached[0] < PACE_TTL:
        return cached[1]
    pace = _recent_pace(conn)
    _PACE_CACHE[key] = (now, pace)
    return pace


def _recent_pace(conn: Connection) -> np.ndarray:
    """The most recently touched acknowledged incidents: department, dispatched, acknowledged, resolved (-1: not
    yet), updated (epoch seconds). Every incident touched after the oldest one's update is in it."""
    stmt = (
        select(
            func.coalesce(INC.c.assignee_department_id, -1),
            epoch_seconds(INC.c.dispatched_at),
            epoch_seconds(INC.c.acknowledged_at),
            func.coalesce(epoch_seconds(INC.c.resolved_at), -1.0),
            epoch_seconds(INC.c.updated_at),
        )
        .where(INC.c.acknowledged_at.is_not(None), INC.c.dispatched_at.is_not(None))
        .order_by(INC.c.updated_at.desc())
        .limit(DEADLINE_PACE_SAMPLE)
    )
    return fetch(conn, stmt, 5)


def _conditional(durations: np.ndarray, elapsed: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From sorted `durations`: P(T > elapsed + left | T > elapsed) and the median of T - elapsed given T > elapsed."""
    n = len(durations)
    done = np.searchsorted(durations, elapsed, side="right")
    alive = n - done
    late = n - np.searchsorted(durations, elapsed + left, side="right")
    p = np.where(alive > 0, late / np.maximum(alive, 1), 1.0)
    mid = np.clip(done + alive // 2, 0, n - 1)
    return p, np.where(alive > 0, durations[mid] - elapsed, np.nan)


def detect_deadlines(conn: Connection, ctx: Context) -> list[dict]:
    """Open incidents with a running clock that their department will likely not finish in time."""
    now_dt = datetime.fromtimestamp(ctx.now, UTC)
    arr = _running_clocks(conn, now_dt)
    if len(arr) == 0:
        return []
    pace = _recent_pace_cached(conn, ctx.now)
    # Every incident with the department counts in its queue, overdue ones too.
    queue = pd.Series(1, index=arr[:, 4].astype(np.int64)).groupby(level=0).sum()
    arr = arr[arr[:, 11] == 0]
    dept = arr[:, 4].astype(np.int64)
    acked = arr[:, 3] > 0
    start = np.where(acked, arr[:, 6], arr[:, 5])  # the active clock's work began at dispatch / acknowledge
    due_t = arr[:, 7]
    left = due_t - ctx.now
    elapsed = np.maximum(ctx.now - start, 0.0)
    ack_d = pace[:, 2] - pace[:, 1]
    handle_d = np.where(pace[:, 3] > 0, pace[:, 3] - pace[:, 2], np.nan)
    pace_dept = pace[:, 0].astype(np.int64)
    resolved_at = np.where(pace[:, 3] > 0, pace[:, 3], np.nan)
    # The sample holds every incident touched since its oldest update: resolutions since then are complete.
    sample_start = float(pace[:, 4].min()) if len(pace) else ctx.now - DAY
    span = max(ctx.now - sample_start, HOUR)
    cat_index = np.clip(np.searchsorted(ctx.cat_ids, arr[:, 1].astype(np.int64)), 0, max(len(ctx.cat_ids) - 1, 0))
    sens = ctx.sensitivity[cat_index] if len(ctx.cat_ids) else np.zeros(len(arr))
    p_breach = np.zeros(len(arr))
    median_left = np.full(len(arr), np.nan)
    load = np.ones(len(arr))
    pooled_a = np.sort(ack_d[ack_d >= 0])
    pooled_h = np.sort(handle_d[np.isfinite(handle_d) & (handle_d >= 0)])
    for d in np.unique(dept):
        mine = dept == d
        sel = pace_dept == d
        a = np.sort(ack_d[sel & (ack_d >= 0)])
        h = np.sort(handle_d[sel & np.isfinite(handle_d) & (handle_d >= 0)])
        a = a if len(a) >= DEADLINE_MIN_SAMPLES else pooled_a
        h = h if len(h) >= DEADLINE_MIN_SAMPLES else pooled_h
        # Its usual queue by Little's law (throughput x mean time with it); a longer one now slows everything.
        throughput = (sel & (resolved_at >= sample_start)).sum() / span
        usual = throughput * ((a.mean() if len(a) else 0.0) + (h.mean() if len(h) else 0.0))
        # A handful of open cases is nobody's overload, whatever a quiet history says.
        factor = float(np.clip(queue.get(d, 0) / max(usual, DEADLINE_MIN_QUEUE), 1.0, 3.0))
        load[mine] = factor
        for is_ack, durations in ((False, a), (True, h)):
            rows = mine & (acked == is_ack)
            if rows.any() and len(durations):
                p_breach[rows], median_left[rows] = _conditional(durations * factor, elapsed[rows], left[rows])
    # At sensitivity 1 an incident is flagged from an even chance of missing its limit; 2 -> 29%, 0.5 -> 75%.
    need = 1.0 - np.power(0.5, 1.0 / np.maximum(sens, 1e-9))
    keys = [f"deadline:{int(i)}:{'handle' if a else 'ack'}:{int(t)}" for i, a, t in zip(arr[:, 0], acked, due_t, strict=True)]
    live = np.fromiter((k in ctx.live_keys for k in keys), dtype=bool, count=len(keys))
    hit = (sens > 0) & (left >= DEADLINE_MIN_LEFT) & (left <= DEADLINE_HORIZON) & (p_breach >= need * np.where(live, 0.8, 1.0))
    out = []
    priority_weight = {1: 1.5, 2: 1.2, 3: 1.0}
    for j in np.nonzero(hit)[0]:
        hours_left = left[j] / HOUR
        score = 10.0 * p_breach[j] * priority_weight.get(int(arr[j, 2]), 1.0) * (1.0 + 1.0 / (1.0 + hours_left))
        out.append(
            {
                "kind": "deadline",
                "condition_key": keys[j],
                "score": float(min(MAX_SCORE, score)),
                "observed": float(round(p_breach[j], 3)),
                "expected": float(round(hours_left, 2)),
                "unit_id": int(arr[j, 8]) if arr[j, 8] > 0 else None,
                "category_id": int(arr[j, 1]),
                "incident_id": int(arr[j, 0]),
                "lon": float(arr[j, 9]) if arr[j, 9] > -900 else None,
                "lat": float(arr[j, 10]) if arr[j, 10] > -900 else None,
                "cooldown": DEADLINE_COOLDOWN,
                "details": {
                    "clock": "handle" if acked[j] else "ack",
                    "department_id": int(dept[j]) if dept[j] > 0 else None,
                    "queue": int(queue.get(dept[j], 0)),
                    "load": round(float(load[j]), 2),
                    "p_breach": round(float(p_breach[j]), 3),
                    "hours_left": round(float(hours_left), 2),
                    "median_left_h": None if np.isnan(median_left[j]) else round(float(median_left[j] / HOUR), 2),
                    "due_at": datetime.fromtimestamp(due_t[j], UTC).isoformat(),
                },
                "_text": ("deadline",),
            }
        )
    return out
