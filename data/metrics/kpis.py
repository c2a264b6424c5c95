"""Headline KPIs of the overview (reads only): each figure today against the same time yesterday.

Overdue and near due come from data/incidents/clock.py, the one definition. Figures "as at the same time
yesterday" for point-in-time KPIs (backlog, overdue, near due) are reconstructed from each
incident's stored timestamps (see ``_clock_state_at``): exact for its current assignee cycle, blind
to earlier cycles that a reassignment or redispatch overwrote and to extensions granted since.
The scope, time zone and day window are data/metrics/scope.py's; the SQL pieces data/metrics/sql_parts.py's.
"""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, case, false, func, literal, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from data import schema
from data.incidents.clock import near_due_expression, overdue_expression
from data.incidents.lifecycle import ACKNOWLEDGED, CLOSED, DISPATCHED, MERGED, REJECTED
from data.metrics.scope import SATISFIED_MIN, DayWindow, Scope, day_window, normalise_args
from data.metrics.sql_parts import (
    AT_NOW,
    AT_Y_NOW,
    NOW,
    TODAY_START,
    Y_NOW,
    Y_START,
    between,
    count_where,
    duration_seconds,
    median_where,
    prebuilt,
    ratio,
    register_median,
    scope_clause,
    scope_key,
    scope_params,
    ts_param,
)

__all__ = ["KPI_NAMES", "MEDIAN_SAMPLES", "kpis_from_figures", "overview_kpis"]

INC = schema.incidents

KPI_NAMES = (
    "open_backlog",
    "new_today",
    "closed_today",
    "overdue",
    "near_due",
    "on_time_rate",
    "median_ack_s",
    "median_handle_s",
    "satisfaction_rate",
    "satisfaction_mean",
    "unlocated_open",
    "unlocated_today",
)


# --- the state as at yesterday's instant ----------------------------------------------------


def _materialized(stmt, name: str):
    """A CTE computed once: the derived columns (state as at yesterday...) are evaluated once per row,
    not once per aggregate that mentions them."""
    return stmt.cte(name).prefix_with("MATERIALIZED")


def _terminal_at() -> ColumnElement:
    """When the incident left the open states (NULL while open). A merge has no column of its own:
    its latest event time stands in, later only if a note was added afterwards."""
    return case(
        (INC.c.state == CLOSED, INC.c.closed_at),
        (INC.c.state == REJECTED, INC.c.rejected_at),
        (INC.c.state == MERGED, INC.c.updated_at),
        else_=None,
    )


def _clock_state_at(t: datetime) -> ColumnElement:
    """SQL: the state whose clock ran against the current assignee at instant `t`, or NULL.

    The current cycle began at dispatched_at and ended at returned_at (when returned after it),
    or moved from the acknowledge clock to the handling clock at acknowledged_at and stopped at
    resolved_at. At t = now this gives 'dispatched'/'acknowledged' exactly when clock.py runs a clock.
    """
    return case(
        (or_(INC.c.dispatched_at.is_(None), INC.c.dispatched_at > t), None),
        (and_(INC.c.returned_at.is_not(None), INC.c.returned_at >= INC.c.dispatched_at, INC.c.returned_at <= t), None),
        (or_(INC.c.acknowledged_at.is_(None), INC.c.acknowledged_at > t), literal(DISPATCHED)),
        (or_(INC.c.resolved_at.is_(None), INC.c.resolved_at > t), literal(ACKNOWLEDGED)),
        else_=None,
    )


def _clock_columns(t: datetime) -> list:
    """Columns a CTE carries so clock.py's expressions can run on it, now and as at `t` (state_y)."""
    return [INC.c.state, INC.c.dispatched_at, INC.c.ack_due_at, INC.c.handle_due_at, _clock_state_at(t).label("state_y")]


def _as_at_y(rows) -> SimpleNamespace:
    """A stand-in 'table' for clock.py's expressions: the CTE `rows` with its reconstructed state_y as state."""
    return SimpleNamespace(
        c=SimpleNamespace(
            state=rows.c.state_y,
            ack_due_at=rows.c.ack_due_at,
            handle_due_at=rows.c.handle_due_at,
            dispatched_at=rows.c.dispatched_at,
        )
    )


def _incidents_as_at(t: datetime) -> SimpleNamespace:
    """The incidents table for clock.py's expressions, with the state reconstructed for instant `t`."""
    return SimpleNamespace(
        c=SimpleNamespace(
            state=_clock_state_at(t),
            ack_due_at=INC.c.ack_due_at,
            handle_due_at=INC.c.handle_due_at,
            dispatched_at=INC.c.dispatched_at,
        )
    )


def _kpi(value, yesterday) -> dict:
    delta = None if value is None or yesterday is None else value - yesterday
    return {"value": value, "yesterday": yesterday, "delta": delta}


# --- headline KPIs ----------------------------------------------------------------------------


def overview_kpis(conn: Connection, scope: Any, now: datetime, tz: Any) -> dict[str, dict]:
    """{kpi: {value, yesterday, delta}} for every name in KPI_NAMES.

    Counts are whole numbers; rates are fractions 0..1 (None with nothing to rate); medians are
    seconds (None with nothing measured); satisfaction_mean is on the 1..5 scale.
    """
    scope, now, tz = normalise_args(scope, now, tz)
    w = day_window(now, tz)
    open_ = _open_figures(conn, scope, w)
    changed, medians = _changed_figures(conn, scope, w)
    return kpis_from_figures(open_, changed, medians)


def kpis_from_figures(open_: dict[str, int], changed: dict[str, Any], medians: dict[str, float]) -> dict[str, dict]:
    """The KPI dictionary from the raw figures over open incidents, over those touched since
    yesterday's midnight, and the median samples (shared with data/metrics/working_set.py's in-memory reading)."""

    def both(key: str) -> tuple[Any, Any]:
        return changed[f"{key}_today"], changed[f"{key}_y"]

    rated_t, rated_y = both("rated")
    return {
        "open_backlog": _kpi(open_["open_now"], open_["open_at_y"] + changed["ended_open_at_y"]),
        "new_today": _kpi(*both("new")),
        "closed_today": _kpi(*both("closed")),
        "overdue": _kpi(open_["overdue_now"], open_["overdue_at_y"] + changed["ended_overdue_at_y"]),
        "near_due": _kpi(open_["near_now"], open_["near_at_y"] + changed["ended_near_at_y"]),
        "on_time_rate": _kpi(
            ratio(changed["on_time_today"], changed["timed_today"]), ratio(changed["on_time_y"], changed["timed_y"])
        ),
        "median_ack_s": _kpi(medians.get("ack_today"), medians.get("ack_y")),
        "median_handle_s": _kpi(medians.get("handle_today"), medians.get("handle_y")),
        "satisfaction_rate": _kpi(ratio(changed["satisfied_today"], rated_t), ratio(changed["satisfied_y"], rated_y)),
        "satisfaction_mean": _kpi(ratio(changed["score_sum_today"], rated_t), ratio(changed["score_sum_y"], rated_y)),
        "unlocated_open": _kpi(open_["unlocated_now"], open_["unlocated_at_y"] + changed["ended_unlocated_at_y"]),
        "unlocated_today": _kpi(*both("unlocated")),
    }


def _window_params(w: DayWindow) -> dict[str, Any]:
    """Values of the named instants for a day window (clock expressions' parameters included)."""
    return {
        TODAY_START: w.today_start,
        Y_START: w.yesterday_start,
        **AT_NOW.params(w.now),
        **AT_Y_NOW.params(w.yesterday_now),
    }


def _open_figures(conn: Connection, scope: Scope | None, w: DayWindow) -> dict[str, int]:
    """Figures over the incidents open now: a few percent of all, read from the partial index on them."""
    stmt = prebuilt(("open_figures", *scope_key(conn, scope)), lambda: _open_statement(*scope_key(conn, scope)))
    row = conn.execute(stmt, {**_window_params(w), **scope_params(scope)}).one()
    return {key: int(value or 0) for key, value in row._mapping.items()}


def _open_statement(dialect: str, level: int | None):
    yn = ts_param(Y_NOW)
    rows = _materialized(
        select(INC.c.reported_at, INC.c.unlocated, *_clock_columns(yn)).where(
            INC.c.is_open == true(), scope_clause(dialect, level)
        ),
        "open_rows",
    )
    at_y = _as_at_y(rows)
    return select(
        func.count().label("open_now"),
        count_where(rows.c.reported_at <= yn).label("open_at_y"),
        count_where(overdue_expression(AT_NOW, rows)).label("overdue_now"),
        count_where(near_due_expression(AT_NOW, rows)).label("near_now"),
        count_where(overdue_expression(AT_Y_NOW, at_y)).label("overdue_at_y"),
        count_where(near_due_expression(AT_Y_NOW, at_y)).label("near_at_y"),
        count_where(rows.c.unlocated == true()).label("unlocated_now"),
        count_where(and_(rows.c.unlocated == true(), rows.c.reported_at <= yn)).label("unlocated_at_y"),
    ).select_from(rows)


MEDIAN_SAMPLES = ("ack_today", "ack_y", "handle_today", "handle_y")


def _changed_figures(conn: Connection, scope: Scope | None, w: DayWindow) -> tuple[dict[str, Any], dict[str, float]]:
    """Figures over incidents touched since yesterday's midnight, and the median acknowledge and
    handling times: anything reported, acknowledged, resolved or closed in either span has its latest
    event (updated_at) there too, so one narrow index range holds them all."""
    stmt = prebuilt(("changed_figures", *scope_key(conn, scope)), lambda: _changed_statement(*scope_key(conn, scope)))
    register_median(conn)
    row = conn.execute(stmt, {**_window_params(w), **scope_params(scope)}).one()._mapping
    figures = {key: (row[key] or 0) for key in row if not key.startswith("median_")}
    medians = {name: row[f"median_{name}"] for name in MEDIAN_SAMPLES}
    return figures, {name: float(value) for name, value in medians.items() if value is not None}


def _changed_statement(dialect: str, level: int | None):
    ts, now, ys, yn = ts_param(TODAY_START), ts_param(NOW), ts_param(Y_START), ts_param(Y_NOW)
    closed_t, closed_y = between(INC.c.closed_at, ts, now), between(INC.c.closed_at, ys, yn)
    timed = and_(INC.c.resolved_at.is_not(None), INC.c.handle_due_at.is_not(None))
    on_time = and_(timed, INC.c.resolved_at <= INC.c.handle_due_at)
    rated = INC.c.satisfaction.is_not(None)
    satisfied = INC.c.satisfaction >= SATISFIED_MIN
    unlocated = INC.c.unlocated == true()
    # Open at yesterday's instant but ended since (those still open count in _open_figures).
    ended_since = and_(INC.c.is_open == false(), INC.c.reported_at <= yn, _terminal_at() > yn)
    at_y = _incidents_as_at(yn)
    columns = {
        "new_today": count_where(between(INC.c.reported_at, ts, now)),
        "new_y": count_where(between(INC.c.reported_at, ys, yn)),
        "unlocated_today": count_where(and_(unlocated, between(INC.c.reported_at, ts, now))),
        "unlocated_y": count_where(and_(unlocated, between(INC.c.reported_at, ys, yn))),
        "closed_today": count_where(closed_t),
        "closed_y": count_where(closed_y),
        "timed_today": count_where(and_(closed_t, timed)),
        "timed_y": count_where(and_(closed_y, timed)),
        "on_time_today": count_where(and_(closed_t, on_time)),
        "on_time_y": count_where(and_(closed_y, on_time)),
        "rated_today": count_where(and_(closed_t, rated)),
        "rated_y": count_where(and_(closed_y, rated)),
        "satisfied_today": count_where(and_(closed_t, satisfied)),
        "satisfied_y": count_where(and_(closed_y, satisfied)),
        "score_sum_today": func.sum(INC.c.satisfaction).filter(closed_t),
        "score_sum_y": func.sum(INC.c.satisfaction).filter(closed_y),
        "ended_open_at_y": count_where(ended_since),
        "ended_unlocated_at_y": count_where(and_(ended_since, unlocated)),
        "ended_overdue_at_y": count_where(and_(INC.c.is_open == false(), overdue_expression(AT_Y_NOW, at_y))),
        "ended_near_at_y": count_where(and_(INC.c.is_open == false(), near_due_expression(AT_Y_NOW, at_y))),
    }
    ack_s = duration_seconds(INC.c.acknowledged_at, INC.c.dispatched_at)
    handle_s = duration_seconds(INC.c.resolved_at, INC.c.dispatched_at)
    samples = {
        "ack_today": (ack_s, between(INC.c.acknowledged_at, ts, now)),
        "ack_y": (ack_s, between(INC.c.acknowledged_at, ys, yn)),
        "handle_today": (handle_s, between(INC.c.resolved_at, ts, now)),
        "handle_y": (handle_s, between(INC.c.resolved_at, ys, yn)),
    }
    where = and_(INC.c.updated_at >= ys, scope_clause(dialect, level))
    columns.update({f"median_{name}": median_where(dialect, value, cond) for name, (value, cond) in samples.items()})
    return select(*(col.label(key) for key, col in columns.items())).where(where)
