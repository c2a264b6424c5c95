"""The leaders' review (reads only): received vs closed, backlog, the three rates, times, rankings, heat calendar, hard cases.

Every figure is defined in docs/metrics.md. One call, ``review(conn, scope, now, tz, ...)``, reads the
incidents that overlap the period (and the equally long period before it) once and derives every
figure from those rows, so each figure of the page agrees with every other.

Periods and buckets are wall-clock spans in the city's time zone: a day runs from local midnight to
local midnight, a week from Monday, a month from the 1st. Instants are compared half-open:
``start <= t < end``. Merged duplicates (一件事一次办) are left out of every figure.

The period (review_periods.py), the rows read (review_rows.py) and the rules shared with the roll-up
(review_rules.py) live beside this module; a built roll-up answers instead (trends_rollup.py).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import DISPATCHED, SECTORS
from data.metrics import trends_rollup
from data.metrics.review_periods import Period, bucket_starts, period_window
from data.metrics.review_rows import HARD_CASES, Columns, hard_case, read_columns, read_names
from data.metrics.review_rules import (
    CHILD_LEVEL,
    LeagueThresholds,
    category_table,
    league_table,
    ratio,
    rising_categories,
)
from data.metrics.scope import SATISFIED_MIN, SCOPE_COLUMNS, Scope, normalise_scope
from data.times import to_utc

__all__ = ["review"]


# --- figures, per group ---------------------------------------------------------------------------------


class Grouping:
    """How rows fall into groups for one instant column: a label 0..n-1 per row, or -1 for none.

    For a time series the label is the bucket the instant falls in; for units or departments it is
    the row's unit or department, when the instant falls in the period."""

    def __init__(self, edges: np.ndarray, end: float, row_group: np.ndarray | None = None, n: int | None = None):
        self.edges, self.end, self.row_group = edges, end, row_group
        self.n = n if n is not None else len(edges)

    def labels(self, t: np.ndarray) -> np.ndarray:
        inside = (t >= self.edges[0]) & (t < self.end)  # NaN compares false: never happened
        if self.row_group is None:
            idx = np.searchsorted(self.edges, np.where(inside, t, self.edges[0]), side="right") - 1
            return np.where(inside, idx, -1)
        return np.where(inside, self.row_group, -1)

    def backlog_at(self, cols: Columns, now: float) -> np.ndarray:
        """Open incidents at the end of each group's span (or now): reported before, not yet closed or rejected."""
        if self.row_group is None:
            ends = np.minimum(np.append(self.edges[1:], self.end), now)
            reported = np.sort(cols["reported_at"])
            ended = np.sort(cols["ended_at"][~np.isnan(cols["ended_at"])])
            # An incident ends after it is reported, so "reported before t" minus "ended before t" is open at t.
            return np.searchsorted(reported, ends, side="left") - np.searchsorted(ended, ends, side="left")
        at = min(self.end, now)
        open_then = (cols["reported_at"] < at) & ~(cols["ended_at"] < at) & (self.row_group >= 0)
        return np.bincount(self.row_group[open_then], minlength=self.n)


def _count(labels: np.ndarray, n: int, where: np.ndarray | None = None) -> np.ndarray:
    keep = labels >= 0 if where is None else (labels >= 0) & where
    return np.bincount(labels[keep], minlength=n)


def _quantiles(labels: np.ndarray, values: np.ndarray, n: int) -> tuple[list, list]:
    """Per group: the median and p90 (linear interpolation, as PostgreSQL's percentile_cont)."""
    keep = (labels >= 0) & ~np.isnan(values)
    labels, values = labels[keep], values[keep]
    order = np.lexsort((values, labels))
    labels, values = labels[order], values[order]
    bounds = np.searchsorted(labels, np.arange(n + 1))
    med, p90 = [None] * n, [None] * n
    for g in range(n):
        chunk = values[bounds[g] : bounds[g + 1]]
        if len(chunk):
            med[g], p90[g] = (float(x) for x in np.quantile(chunk, [0.5, 0.9]))
    return med, p90


def _figures(cols: Columns, grouping: Grouping, now: float) -> list[dict]:
    """Every per-span figure of docs/metrics.md for each group (see Grouping)."""
    n = grouping.n
    received = _count(grouping.labels(cols["reported_at"]), n)
    closed_l = grouping.labels(cols["closed_at"])
    closed = _count(closed_l, n)
    first_time = _count(closed_l, n, cols["reopen_count"] == 0)
    rated_mask = ~np.isnan(cols["satisfaction"])
    rated = _count(closed_l, n, rated_mask)
    satisfied = _count(closed_l, n, rated_mask & (cols["satisfaction"] >= SATISFIED_MIN))
    ack_l = grouping.labels(cols["acknowledged_at"])
    acknowledged = _count(ack_l, n)
    ack_on_time = _count(ack_l, n, cols["ack_late"] == 0)
    ack_late = _count(ack_l, n, cols["ack_late"] == 1)
    # Still waiting for someone to come, their acknowledge deadline passed within the span (before now).
    waiting = (cols.state == DISPATCHED) & np.isnan(cols["acknowledged_at"]) & (cols["ack_due_at"] < now)
    waiting_late = _count(grouping.labels(cols["ack_due_at"]), n, waiting)
    res_l = grouping.labels(cols["resolved_at"])
    timed_mask = ~np.isnan(cols["handle_due_at"])
    resolved = _count(res_l, n)
    resolved_timed = _count(res_l, n, timed_mask)
    on_time = _count(res_l, n, timed_mask & (cols["resolved_at"] <= cols["handle_due_at"]))
    no_effect = _count(res_l, n, cols["reopen_count"] > 0)
    med_ack, p90_ack = _quantiles(ack_l, cols["acknowledged_at"] - cols["dispatched_at"], n)
    med_handle, p90_handle = _quantiles(res_l, cols["resolved_at"] - cols["dispatched_at"], n)
    backlog = grouping.backlog_at(cols, now)
    out = []
    for g in range(n):
        due = int(acknowledged[g] + waiting_late[g])
        out.append(
            {
                "received": int(received[g]),
                "closed": int(closed[g]),
                "backlog": int(backlog[g]),
                "response_rate": ratio(ack_on_time[g], due),
                "resolution_rate": ratio(first_time[g], closed[g]),
                "satisfaction_rate": ratio(satisfied[g], rated[g]),
                "on_time_rate": ratio(on_time[g], resolved_timed[g]),
                "median_ack_s": med_ack[g],
                "p90_ack_s": p90_ack[g],
                "median_handle_s": med_handle[g],
                "p90_handle_s": p90_handle[g],
                # the counts the rates are made of, for the league table and the exports
                "due_for_ack": due,
                "ack_on_time": int(ack_on_time[g]),
                "nobody_came": int(ack_late[g] + waiting_late[g]),
                "rated": int(rated[g]),
                "satisfied": int(satisfied[g]),
                "first_time": int(first_time[g]),
                "resolved": int(resolved[g]),
                "resolved_timed": int(resolved_timed[g]),
                "on_time": int(on_time[g]),
                "no_effect": int(no_effect[g]),
            }
        )
    return out


def _span(start: datetime, end: datetime) -> Grouping:
    return Grouping(np.array([start.timestamp()]), end.timestamp())


def _by_key(keys: np.ndarray, start: datetime, end: datetime) -> tuple[list[int], Grouping]:
    """Group rows by an id column (unit or department) over [start, end): (the ids, in label order; the grouping)."""
    unique = np.unique(keys[keys >= 0])
    row_group = np.where(keys >= 0, np.searchsorted(unique, keys), -1).astype(np.int64)
    return [int(k) for k in unique], Grouping(np.array([start.timestamp()]), end.timestamp(), row_group, len(unique))


# --- the review ----------------------------------------------------------------------------------


def review(
    conn: Connection,
    scope: Any,
    now: datetime,
    tz: Any,
    days: int | None = 30,
    granularity: str = "day",
    first: date | None = None,
    last: date | None = None,
    thresholds: LeagueThresholds | None = None,
    use_rollups: bool = True,
) -> dict:
    """Every figure of /trends for a scope and period, as plain data (see docs/metrics.md).

    {"period": {start, end, previous_start, tz, granularity}, "totals": figures, "previous": figures,
     "series": [{start, **figures}], "sectors": [{start, sector, received}], "categories": [...],
     "rising": [...], "units": [...], "league": [...], "heat": 7×24 counts, "hard_cases": {...}}.
    With `use_rollups` (the default) a city, district or street is answered from the roll-up when it
    has been built in this time zone: the same figures, medians and p90s within 4.5%.
    """
    scope = normalise_scope(scope)
    now = to_utc(now, "now")
    period = period_window(now, tz, days, first, last)
    starts = bucket_starts(period, granularity)
    thresholds = thresholds or LeagueThresholds()
    if use_rollups:
        # The roll-up (data/metrics/rollups.py) answers a city, district or street in milliseconds once built.
        answer = trends_rollup.review(conn, scope, now, period, starts, granularity, thresholds)
        if answer is not None:
            return answer
    cols = read_columns(conn, scope, period)
    t_now = now.timestamp()
    series_grouping = Grouping(np.array([s.timestamp() for s in starts]), period.end.timestamp())
    series = [{"start": s, **f} for s, f in zip(starts, _figures(cols, series_grouping, t_now), strict=True)]
    names = read_names(conn)
    categories = _categories(cols, period, names["categories"])
    return {
        "period": {
            "start": period.start,
            "end": period.end,
            "previous_start": period.previous_start,
            "tz": period.tz,
            "granularity": granularity,
        },
        "totals": _figures(cols, _span(period.start, period.end), t_now)[0],
        "previous": _figures(cols, _span(period.previous_start, period.start), t_now)[0],
        "series": series,
        "sectors": _sectors(cols, starts, series_grouping, names["categories"]),
        "categories": categories,
        "rising": rising_categories(categories),
        "units": _units(conn, cols, scope, period, t_now),
        "league": _league(cols, period, t_now, names["departments"], thresholds),
        "heat": _heat(cols, period),
        "hard_cases": _hard_cases(cols, period, t_now, names["categories"]),
    }


def _sectors(cols: Columns, starts: list[datetime], grouping: Grouping, cats: dict) -> list[dict]:
    """Incidents received per bucket and sector (四板块), every sector in every bucket."""
    labels = grouping.labels(cols["reported_at"])
    sector_of = np.zeros(max(cats, default=0) + 1, dtype=np.int64)
    for cid, c in cats.items():
        sector_of[cid] = SECTORS.index(c["sector"])
    sector = sector_of[cols["category_id"]]
    keep = labels >= 0
    counts = np.bincount(labels[keep] * len(SECTORS) + sector[keep], minlength=len(starts) * len(SECTORS))
    return [
        {"start": starts[i], "sector": s, "received": int(counts[i * len(SECTORS) + j])}
        for i in range(len(starts))
        for j, s in enumerate(SECTORS)
    ]


def _category_counts(cols: Columns, start: datetime, end: datetime) -> dict[int, int]:
    t = cols["reported_at"]
    inside = (t >= start.timestamp()) & (t < end.timestamp())
    ids, counts = np.unique(cols["category_id"][inside], return_counts=True)
    return {int(i): int(n) for i, n in zip(ids, counts, strict=True)}


def _categories(cols: Columns, period: Period, cats: dict) -> list[dict]:
    """Received per category in the period and the one before, busiest first."""
    return category_table(
        _category_counts(cols, period.start, period.end), _category_counts(cols, period.previous_start, period.start), cats
    )


def _units(conn: Connection, cols: Columns, scope: Scope | None, period: Period, now: float) -> list[dict]:
    """The figures of each unit one level below the scope (districts for the city, streets for a district...)."""
    level = CHILD_LEVEL[scope.level if scope else schema.CITY]
    u = schema.units
    stmt = select(u.c.id, u.c.code, u.c.name_en, u.c.name_zh).where(u.c.level == level)
    if scope is not None and scope.level == schema.GRID:
        stmt = stmt.where(u.c.id == scope.unit_id)
    elif scope is not None:
        stmt = stmt.where(u.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    units = {r.id: dict(r._mapping) for r in conn.execute(stmt)}
    keys = cols[SCOPE_COLUMNS[level]]
    ids, grouping = _by_key(np.where(np.isin(keys, list(units)), keys, -1), period.start, period.end)
    figures = dict(zip(ids, _figures(cols, grouping, now), strict=True))
    empty = _figures(cols.take(np.zeros(len(cols), bool)), _span(period.start, period.end), now)[0]
    out = [{"unit_id": uid, "level": level, **units[uid], **figures.get(uid, empty)} for uid in units]
    for row in out:
        row.pop("id", None)
    return sorted(out, key=lambda r: (-r["received"], r["code"]))


def _league(cols: Columns, period: Period, now: float, deps: dict, t: LeagueThresholds) -> list[dict]:
    """The department league table: each department's figures over the period, ranked, with red list and yellow cards."""
    ids, grouping = _by_key(cols["assignee_department_id"], period.start, period.end)
    return league_table(zip(ids, _figures(cols, grouping, now), strict=True), deps, t)


def _heat(cols: Columns, period: Period) -> list[list[int]]:
    """Incidents received in the period by local weekday (Monday first) and hour: 7 lists of 24 counts."""
    t = cols["reported_at"]
    t = t[(t >= period.start.timestamp()) & (t < period.end.timestamp())]
    grid = np.zeros((7, 24), dtype=np.int64)
    if len(t):
        # Local wall-clock time through pandas, so daylight-saving zones place each hour right.
        local = pd.to_datetime(t, unit="s", utc=True).tz_convert(period.tz)
        np.add.at(grid, (local.day_of_week.to_numpy(), local.hour.to_numpy()), 1)
    return grid.tolist()


def _hard_cases(cols: Columns, period: Period, now: float, cats: dict) -> dict[str, list[dict]]:
    """Hard cases: the longest open now, the most reopened and the escalated among those live in the period."""
    ended, reported, ids = cols["ended_at"], cols["reported_at"], cols["id"]
    live = (reported < period.end.timestamp()) & ~(ended < period.start.timestamp())

    def top(mask: np.ndarray, *keys: np.ndarray) -> list[dict]:
        rows = np.flatnonzero(mask)
        order = np.lexsort(tuple(k[rows] for k in reversed(keys)))  # first key sorts first
        return [hard_case(cols, i, now, cats) for i in rows[order][:HARD_CASES]]

    return {
        "longest_open": top(np.isnan(ended), reported, ids),
        "most_reopened": top(live & (cols["reopen_count"] > 0), -cols["reopen_count"], reported, ids),
        "escalated": top(live & (cols["escalation_level"] > 0), -cols["escalation_level"], reported, ids),
    }
