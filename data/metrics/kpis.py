"""Overview metrics (reads only): headline KPIs against yesterday, the department board, the 24-hour trend, breakdowns.

Every function takes ``(conn, scope, now, tz)``: `scope` is None for the whole city or a unit as
``(level, unit_id)``; `now` is an aware datetime; `tz` is the city's time zone name, in which
"today" runs from local midnight to `now` and "yesterday" is the same span one day earlier.
``normalise_args`` turns the three into a hashable, canonical key, so callers can memoise.

Overdue and near due come from data/incidents/clock.py, the one definition. Figures "as at the same time
yesterday" for point-in-time KPIs (backlog, overdue, near due) are reconstructed from each
incident's stored timestamps (see ``_clock_state_at``): exact for its current assignee cycle, blind
to earlier cycles that a reassignment or redispatch overwrote and to extensions granted since.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
from sqlalchemy import BigInteger, Float, and_, bindparam, case, false, func, literal, or_, select, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from data import schema
from data.errors import ValidationError
from data.incidents.clock import NamedNow, near_due_expression, overdue_expression
from data.incidents.lifecycle import ACKNOWLEDGED, CLOSED, DISPATCHED, MERGED, REJECTED, SECTORS
from data.times import epoch_seconds, to_utc

__all__ = [
    "KPI_NAMES",
    "BoardThresholds",
    "DayWindow",
    "Scope",
    "breakdown",
    "day_window",
    "department_board",
    "normalise_args",
    "normalise_scope",
    "overview_kpis",
    "trend_24h",
]

INC, EV = schema.incidents, schema.incident_events

# The incidents column that places an incident in a unit of each level.
SCOPE_COLUMNS = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "grid_id",
}

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
# A rating of 4 or 5 out of 5 counts as satisfied (满意).
SATISFIED_MIN = 4
BOARD_DAYS = 7


class Scope(NamedTuple):
    """A unit the figures are restricted to: its level (schema.DISTRICT ... schema.GRID) and id."""

    level: int
    unit_id: int


# --- arguments ------------------------------------------------------------------------------


def normalise_scope(scope: Any) -> Scope | None:
    """None for the city; a Scope for (level, unit_id) where level is a number or a name ('street')."""
    if scope is None:
        return None
    try:
        level, unit_id = scope
    except (TypeError, ValueError):
        raise ValidationError(f"scope must be None (the city) or (level, unit_id); got {scope!r}") from None
    if isinstance(level, str):
        name = level.strip().lower()
        if name not in schema.LEVELS:
            raise ValidationError(f"unknown level {level!r}; use one of {', '.join(schema.LEVELS)}")
        level = schema.LEVELS[name]
    if level == schema.CITY:
        return None
    if level not in SCOPE_COLUMNS:
        raise ValidationError("metrics can be scoped to a district, street, community or grid")
    if isinstance(unit_id, bool) or not isinstance(unit_id, int | np.integer):
        raise ValidationError(f"unit id must be a whole number; got {unit_id!r}")
    return Scope(int(level), int(unit_id))


def normalise_tz(tz: Any) -> str:
    """The canonical IANA name of a time zone, or ValidationError."""
    if isinstance(tz, ZoneInfo):
        return tz.key
    try:
        return ZoneInfo(str(tz).strip()).key
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai") from None


def normalise_args(scope: Any, now: datetime, tz: Any) -> tuple[Scope | None, datetime, str]:
    """(scope, now in UTC, time zone name): hashable and canonical, the key to memoise any metric on."""
    return normalise_scope(scope), to_utc(now, "now"), normalise_tz(tz)


@dataclass(frozen=True)
class DayWindow:
    """Today (local midnight to now) and the same span one day earlier, as UTC instants."""

    today_start: datetime
    now: datetime
    yesterday_start: datetime
    yesterday_now: datetime


def day_window(now: datetime, tz: str) -> DayWindow:
    """Today's and yesterday's spans in the city's time zone (wall-clock days, so DST days stay whole)."""
    zone = ZoneInfo(normalise_tz(tz))
    local = to_utc(now, "now").astimezone(zone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # Aware arithmetic in Python is wall-clock arithmetic: "a day earlier" keeps the local time.
    return DayWindow(
        today_start=midnight.astimezone(UTC),
        now=local.astimezone(UTC),
        yesterday_start=(midnight - timedelta(days=1)).astimezone(UTC),
        yesterday_now=(local - timedelta(days=1)).astimezone(UTC),
    )


# --- building blocks --------------------------------------------------------------------------

# Statements are built once per (query, database, scope level) with their instants and unit as
# named parameters, then run with values: building and compiling the KPI statement (hundreds of
# expression objects) cost as much as running it on SQLite, and more than that on PostgreSQL.
NOW, TODAY_START, Y_START, Y_NOW, SINCE, UNIT = "now", "today_start", "y_start", "y_now", "since", "scope_unit"
AT_NOW, AT_Y_NOW = NamedNow(NOW), NamedNow(Y_NOW)
_statements: dict[tuple, Any] = {}


def _t(name: str) -> ColumnElement:
    """A named timestamp parameter."""
    return bindparam(name, type_=schema.TS)


def _prebuilt(key: tuple, build: Callable[[], Any]):
    """The statement for `key`, built on first use (two threads building at once build the same thing)."""
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements.setdefault(key, build())
    return stmt


def _scope_key(conn: Connection, scope: Scope | None) -> tuple[str, int | None]:
    return conn.dialect.name, None if scope is None else scope.level


def _scope_params(scope: Scope | None) -> dict[str, int]:
    return {} if scope is None else {UNIT: scope.unit_id}


def _scope_clause(dialect: str, level: int | None, *, by_unit_index: bool = False) -> ColumnElement:
    """SQL: the incident lies in the scope unit of `level` (parameter scope_unit; always true for the city).

    On SQLite (no statistics unless ANALYZE ran) the planner would drive any query with a unit
    equality by that unit's (unit, reported_at) index, which spans all history; "+ 0" stops it, so
    the narrow open-incident or time-range index the query is built around is used. Queries that
    do range over reported_at pass by_unit_index=True.
    """
    if level is None:
        return true()
    column = INC.c[SCOPE_COLUMNS[level]]
    if dialect == "sqlite" and not by_unit_index:
        column = column + 0
    return column == bindparam(UNIT, type_=BigInteger)


def _count(condition) -> ColumnElement:
    return func.count().filter(condition)


def _between(column, start: datetime, end: datetime) -> ColumnElement:
    return and_(column >= start, column <= end)


class duration_seconds(FunctionElement):
    """Seconds from the second timestamp to the first (to the millisecond), as a float on both databases."""

    type = Float()
    inherit_cache = True
    name = "duration_seconds"


@compiles(duration_seconds, "sqlite")
def _duration_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"ROUND((julianday({later}) - julianday({earlier})) * 86400.0, 3)"


@compiles(duration_seconds, "postgresql")
def _duration_postgresql(element, compiler, **kw):
    # date_part gives double precision; EXTRACT gives numeric since PostgreSQL 14, several times slower.
    later, earlier = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"date_part('epoch', {later} - {earlier})"


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


class _MedianAggregate:
    """SQLite aggregate: the median of the non-null values (as statistics.median). SQLite has no
    percentile aggregate; gathering a few thousand floats in Python costs less than ranking them
    with window functions, which SQLite sorts once per window."""

    def __init__(self) -> None:
        self.values: list[float | None] = []
        # SQLite looks `step` up on the instance for every row: the bound list method spares a
        # Python frame per value (tens of thousands for the board's week); NULLs are dropped at the end.
        self.step = self.values.append

    def finalize(self) -> float | None:
        # numpy: NULLs become NaN and are dropped, and the middle is found by partial sort (a
        # few times quicker than statistics.median's full sort); an even count averages the two
        # middle values as (a + b) / 2, the same float statistics.median gives.
        values = np.array(self.values, dtype=float)
        values = values[~np.isnan(values)]
        return float(np.median(values)) if values.size else None


SQLITE_MEDIAN = "citybrain_median"


def _register_median(conn: Connection) -> None:
    """Make the median aggregate available on this SQLite connection (cheap, idempotent)."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.create_aggregate(SQLITE_MEDIAN, 1, _MedianAggregate)


def _median(dialect: str, value, condition) -> ColumnElement:
    """Aggregate: the median of `value` over the rows meeting `condition` (exact, as statistics.median)."""
    if dialect == "postgresql":
        return func.percentile_cont(0.5).within_group(value).filter(condition)
    return getattr(func, SQLITE_MEDIAN)(value, type_=Float).filter(condition)


def _group_key(dialect: str, column) -> ColumnElement:
    """A GROUP BY key SQLite cannot take from an index: otherwise it walks a whole (department, ...)
    index end to end just to meet the groups in order, instead of reading the few rows the WHERE picks."""
    return column + 0 if dialect == "sqlite" else column


def _ratio(part, whole) -> float | None:
    return float(part) / float(whole) if whole else None


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
            _ratio(changed["on_time_today"], changed["timed_today"]), _ratio(changed["on_time_y"], changed["timed_y"])
        ),
        "median_ack_s": _kpi(medians.get("ack_today"), medians.get("ack_y")),
        "median_handle_s": _kpi(medians.get("handle_today"), medians.get("handle_y")),
        "satisfaction_rate": _kpi(_ratio(changed["satisfied_today"], rated_t), _ratio(changed["satisfied_y"], rated_y)),
        "satisfaction_mean": _kpi(_ratio(changed["score_sum_today"], rated_t), _ratio(changed["score_sum_y"], rated_y)),
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
    stmt = _prebuilt(("open_figures", *_scope_key(conn, scope)), lambda: _open_statement(*_scope_key(conn, scope)))
    row = conn.execute(stmt, {**_window_params(w), **_scope_params(scope)}).one()
    return {key: int(value or 0) for key, value in row._mapping.items()}


def _open_statement(dialect: str, level: int | None):
    yn = _t(Y_NOW)
    rows = _materialized(
        select(INC.c.reported_at, INC.c.unlocated, *_clock_columns(yn)).where(
            INC.c.is_open == true(), _scope_clause(dialect, level)
        ),
        "open_rows",
    )
    at_y = _as_at_y(rows)
    return select(
        func.count().label("open_now"),
        _count(rows.c.reported_at <= yn).label("open_at_y"),
        _count(overdue_expression(AT_NOW, rows)).label("overdue_now"),
        _count(near_due_expression(AT_NOW, rows)).label("near_now"),
        _count(overdue_expression(AT_Y_NOW, at_y)).label("overdue_at_y"),
        _count(near_due_expression(AT_Y_NOW, at_y)).label("near_at_y"),
        _count(rows.c.unlocated == true()).label("unlocated_now"),
        _count(and_(rows.c.unlocated == true(), rows.c.reported_at <= yn)).label("unlocated_at_y"),
    ).select_from(rows)


MEDIAN_SAMPLES = ("ack_today", "ack_y", "handle_today", "handle_y")


def _changed_figures(conn: Connection, scope: Scope | None, w: DayWindow) -> tuple[dict[str, Any], dict[str, float]]:
    """Figures over incidents touched since yesterday's midnight, and the median acknowledge and
    handling times: anything reported, acknowledged, resolved or closed in either span has its latest
    event (updated_at) there too, so one narrow index range holds them all."""
    stmt = _prebuilt(("changed_figures", *_scope_key(conn, scope)), lambda: _changed_statement(*_scope_key(conn, scope)))
    _register_median(conn)
    row = conn.execute(stmt, {**_window_params(w), **_scope_params(scope)}).one()._mapping
    figures = {key: (row[key] or 0) for key in row if not key.startswith("median_")}
    medians = {name: row[f"median_{name}"] for name in MEDIAN_SAMPLES}
    return figures, {name: float(value) for name, value in medians.items() if value is not None}


def _changed_statement(dialect: str, level: int | None):
    ts, now, ys, yn = _t(TODAY_START), _t(NOW), _t(Y_START), _t(Y_NOW)
    closed_t, closed_y = _between(INC.c.closed_at, ts, now), _between(INC.c.closed_at, ys, yn)
    timed = and_(INC.c.resolved_at.is_not(None), INC.c.handle_due_at.is_not(None))
    on_time = and_(timed, INC.c.resolved_at <= INC.c.handle_due_at)
    rated = INC.c.satisfaction.is_not(None)
    satisfied = INC.c.satisfaction >= SATISFIED_MIN
    unlocated = INC.c.unlocated == true()
    # Open at yesterday's instant but ended since (those still open count in _open_figures).
    ended_since = and_(INC.c.is_open == false(), INC.c.reported_at <= yn, _terminal_at() > yn)
    at_y = _incidents_as_at(yn)
    columns = {
        "new_today": _count(_between(INC.c.reported_at, ts, now)),
        "new_y": _count(_between(INC.c.reported_at, ys, yn)),
        "unlocated_today": _count(and_(unlocated, _between(INC.c.reported_at, ts, now))),
        "unlocated_y": _count(and_(unlocated, _between(INC.c.reported_at, ys, yn))),
        "closed_today": _count(closed_t),
        "closed_y": _count(closed_y),
        "timed_today": _count(and_(closed_t, timed)),
        "timed_y": _count(and_(closed_y, timed)),
        "on_time_today": _count(and_(closed_t, on_time)),
        "on_time_y": _count(and_(closed_y, on_time)),
        "rated_today": _count(and_(closed_t, rated)),
        "rated_y": _count(and_(closed_y, rated)),
        "satisfied_today": _count(and_(closed_t, satisfied)),
        "satisfied_y": _count(and_(closed_y, satisfied)),
        "score_sum_today": func.sum(INC.c.satisfaction).filter(closed_t),
        "score_sum_y": func.sum(INC.c.satisfaction).filter(closed_y),
        "ended_open_at_y": _count(ended_since),
        "ended_unlocated_at_y": _count(and_(ended_since, unlocated)),
        "ended_overdue_at_y": _count(and_(INC.c.is_open == false(), overdue_expression(AT_Y_NOW, at_y))),
        "ended_near_at_y": _count(and_(INC.c.is_open == false(), near_due_expression(AT_Y_NOW, at_y))),
    }
    ack_s = duration_seconds(INC.c.acknowledged_at, INC.c.dispatched_at)
    handle_s = duration_seconds(INC.c.resolved_at, INC.c.dispatched_at)
    samples = {
        "ack_today": (ack_s, _between(INC.c.acknowledged_at, ts, now)),
        "ack_y": (ack_s, _between(INC.c.acknowledged_at, ys, yn)),
        "handle_today": (handle_s, _between(INC.c.resolved_at, ts, now)),
        "handle_y": (handle_s, _between(INC.c.resolved_at, ys, yn)),
    }
    where = and_(INC.c.updated_at >= ys, _scope_clause(dialect, level))
    columns.update({f"median_{name}": _median(dialect, value, cond) for name, (value, cond) in samples.items()})
    return select(*(col.label(key) for key, col in columns.items())).where(where)


# --- department board -------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardThresholds:
    """When a department's row turns red (alarm) or yellow (warning) on the board; hashable for memoising.

    Every threshold is a share 0..1 of the department's own volume in the board's window, so a big
    department is not flagged just for being big (absolute counts turned every department red at
    city scale). 吹哨不到 is a share of the acknowledgements that fell due; 人到无效 a share of the
    resolutions. Rows with fewer than `min_volume` cases are never flagged. Any one red condition
    makes the row red; otherwise any yellow one makes it yellow.
    """

    red_on_time: float = 0.80
    yellow_on_time: float = 0.90
    red_overdue_share: float = 0.20
    yellow_overdue_share: float = 0.10
    red_no_show_share: float = 0.20
    yellow_no_show_share: float = 0.10
    red_no_effect_share: float = 0.15
    yellow_no_effect_share: float = 0.08
    min_volume: int = 5


FLAG_RANK = {"red": 0, "yellow": 1, "none": 2}
_EMPTY_FIGURES = {
    "open": 0,
    "overdue": 0,
    "waiting_late": 0,
    "acknowledged": 0,
    "ack_late": 0,
    "resolved": 0,
    "on_time": 0,
    "no_effect": 0,
    "median_ack_s": None,
    "median_handle_s": None,
}


def department_board(
    conn: Connection, scope: Any, now: datetime, tz: Any, thresholds: BoardThresholds = BoardThresholds()
) -> list[dict]:
    """One row per department, worst first: how it answers the whistle (吹哨报到) over the last 7 days.

    Each row: department_id, code, name_en, name_zh; open and overdue (now, assigned to it);
    overdue_share; acknowledged and resolved (count in the window); median_ack_s and median_handle_s
    (dispatched -> acknowledged / resolved, seconds); on_time_rate (resolutions within the handling
    limit); no_show (吹哨不到: acknowledgements in the window that came late, plus incidents waiting
    for its acknowledgement past the limit now); no_effect (人到无效: its resolutions rejected at
    verification in the window); flag 'red' / 'yellow' / 'none' from `thresholds`.
    """
    scope, now, tz = normalise_args(scope, now, tz)
    since = now - timedelta(days=BOARD_DAYS)
    figures: dict[int, dict] = {}
    key = _scope_key(conn, scope)
    params = {**AT_NOW.params(now), SINCE: since, **_scope_params(scope)}

    def row_for(department_id) -> dict:
        return figures.setdefault(int(department_id), dict(_EMPTY_FIGURES))

    # Unassigned incidents form a group of their own, skipped here rather than filtered in SQL: a
    # "department IS NOT NULL" term would tempt SQLite into the (department, is_open) index too.
    for r in conn.execute(_prebuilt(("board_open", *key), lambda: _board_open_statement(*key)), params):
        if r.department_id is None:
            continue
        row_for(r.department_id).update(open=r.open, overdue=r.overdue, waiting_late=r.waiting_late)

    for r in _board_cycle(conn, key, params):
        if r["department_id"] is None:
            continue
        row_for(r["department_id"]).update({k: v for k, v in r.items() if k != "department_id"})

    for department_id, n in board_no_effect(conn, scope, now).items():
        row_for(department_id)["no_effect"] = n
    return board_from_figures(conn, figures, thresholds)


def board_no_effect(conn: Connection, scope: Any, now: datetime) -> dict[int, int]:
    """人到无效 per department over the board's window, from the verify_fail events (an index range)."""
    scope, now, _tz = normalise_args(scope, now, "UTC")
    key = _scope_key(conn, scope)
    params = {**AT_NOW.params(now), SINCE: now - timedelta(days=BOARD_DAYS), **_scope_params(scope)}
    stmt = _prebuilt(("board_no_effect", *key), lambda: _board_no_effect_statement(*key))
    return {int(r.department_id): int(r.n) for r in conn.execute(stmt, params)}


def board_from_figures(conn: Connection, figures: dict[int, dict], thresholds: BoardThresholds) -> list[dict]:
    """The board's rows, worst first, from figures per department (_EMPTY_FIGURES' keys; shared with
    data/metrics/working_set.py's in-memory reading)."""
    d = schema.departments
    board = [
        _board_row(dep, figures.get(dep.id, _EMPTY_FIGURES), thresholds)
        for dep in conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh, d.c.active))
        if dep.active or dep.id in figures
    ]
    board.sort(key=_worst_first)
    return board


def _board_open_statement(dialect: str, level: int | None):
    """Per department: its open incidents now, how many overdue, how many still waiting for it past the limit."""
    dept = _group_key(dialect, INC.c.assignee_department_id)
    return (
        select(
            dept.label("department_id"),
            func.count().label("open"),
            _count(overdue_expression(AT_NOW)).label("overdue"),
            _count(and_(INC.c.state == DISPATCHED, overdue_expression(AT_NOW))).label("waiting_late"),
        )
        .where(INC.c.is_open == true(), _scope_clause(dialect, level))
        .group_by(dept)
    )


def _board_no_effect_statement(dialect: str, level: int | None):
    """人到无效 per department: the verify_fail event names the department whose resolution failed (the
    incident's assignee is cleared for redispatch, so only the event knows)."""
    vf_dept = EV.c.data["department_id"].as_integer()
    stmt = (
        select(vf_dept.label("department_id"), func.count().label("n"))
        .where(EV.c.action == "verify_fail", _between(EV.c.at, _t(SINCE), _t(NOW)), vf_dept.is_not(None))
        .group_by(vf_dept)
    )
    if level is not None:
        stmt = stmt.join_from(EV, INC, EV.c.incident_id == INC.c.id).where(_scope_clause(dialect, level))
    return stmt


BOARD_COUNTS = ("acknowledged", "ack_late", "resolved", "on_time")
BOARD_MEDIANS = ("median_ack_s", "median_handle_s")


def _board_cycle(conn: Connection, key: tuple[str, int | None], params: dict) -> list[dict]:
    """Per department: acknowledgements and resolutions in the window, how many late, and median times."""
    stmt = _prebuilt(("board_cycle", *key), lambda: _board_cycle_statement(*key))
    _register_median(conn)
    out = []
    for r in conn.execute(stmt, params):
        entry = {"department_id": r.department_id, **{k: int(getattr(r, k)) for k in BOARD_COUNTS}}
        entry.update({k: None if getattr(r, k) is None else float(getattr(r, k)) for k in BOARD_MEDIANS})
        out.append(entry)
    return out


def _board_cycle_statement(dialect: str, level: int | None):
    since, now = _t(SINCE), _t(NOW)
    dept = INC.c.assignee_department_id
    ack, res = INC.c.acknowledged_at, INC.c.resolved_at
    ack_in, res_in = _between(ack, since, now), _between(res, since, now)
    ack_s, handle_s = duration_seconds(ack, INC.c.dispatched_at), duration_seconds(res, INC.c.dispatched_at)
    counts = {
        "acknowledged": _count(ack_in),
        "ack_late": _count(and_(ack_in, INC.c.ack_late == true())),
        "resolved": _count(res_in),
        "on_time": _count(and_(res_in, res <= INC.c.handle_due_at)),
    }
    # Whatever was acknowledged or resolved in the window had its latest event there too.
    where = and_(INC.c.updated_at >= since, or_(ack >= since, res >= since), _scope_clause(dialect, level))
    medians = {"median_ack_s": _median(dialect, ack_s, ack_in), "median_handle_s": _median(dialect, handle_s, res_in)}
    key = _group_key(dialect, dept)
    return select(key.label("department_id"), *(c.label(k) for k, c in {**counts, **medians}.items())).where(where).group_by(key)


def _board_row(dep, f: dict, t: BoardThresholds) -> dict:
    overdue_share = _ratio(f["overdue"], f["open"])
    on_time_rate = _ratio(f["on_time"], f["resolved"])
    no_show = f["ack_late"] + f["waiting_late"]
    # Acknowledgements that fell due in the window: those made, plus those still missing past their limit.
    no_show_share = _ratio(no_show, f["acknowledged"] + f["waiting_late"])
    no_effect_share = _ratio(f["no_effect"], f["resolved"])
    volume = max(f["open"], f["acknowledged"] + f["waiting_late"], f["resolved"])

    def beyond(share_and_limits: tuple) -> tuple[bool, bool]:
        share, red_limit, yellow_limit, worse_when_low = share_and_limits
        if share is None:
            return False, False
        if worse_when_low:
            return share < red_limit, share < yellow_limit
        return share >= red_limit, share >= yellow_limit

    checks = [
        beyond(c)
        for c in (
            (on_time_rate, t.red_on_time, t.yellow_on_time, True),
            (overdue_share, t.red_overdue_share, t.yellow_overdue_share, False),
            (no_show_share, t.red_no_show_share, t.yellow_no_show_share, False),
            (no_effect_share, t.red_no_effect_share, t.yellow_no_effect_share, False),
        )
    ]
    flaggable = volume >= t.min_volume
    red = flaggable and any(r for r, _ in checks)
    yellow = flaggable and any(y for _, y in checks)
    return {
        "department_id": dep.id,
        "code": dep.code,
        "name_en": dep.name_en,
        "name_zh": dep.name_zh,
        "open": f["open"],
        "overdue": f["overdue"],
        "overdue_share": overdue_share,
        "acknowledged": f["acknowledged"],
        "resolved": f["resolved"],
        "median_ack_s": f["median_ack_s"],
        "median_handle_s": f["median_handle_s"],
        "on_time_rate": on_time_rate,
        "no_show": no_show,
        "no_show_share": no_show_share,
        "no_effect": f["no_effect"],
        "no_effect_share": no_effect_share,
        "flag": "red" if red else "yellow" if yellow else "none",
    }


def _worst_first(row: dict) -> tuple:
    return (
        FLAG_RANK[row["flag"]],
        -(row["overdue_share"] or 0.0),
        -row["no_show"],
        -row["no_effect"],
        row["on_time_rate"] if row["on_time_rate"] is not None else 1.0,
        -row["overdue"],
        row["code"],
    )


# --- trend and breakdown ----------------------------------------------------------------------


def trend_24h(conn: Connection, scope: Any, now: datetime, tz: Any) -> list[dict]:
    """24 hourly buckets ending with the current local hour: [{start (local, aware), received, closed}]."""
    scope, now, tz = normalise_args(scope, now, tz)
    zone = ZoneInfo(tz)
    hour = now.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    first = hour - timedelta(hours=23)
    counts = {}
    for name, column in (("received", INC.c.reported_at), ("closed", INC.c.closed_at)):
        dialect, level = _scope_key(conn, scope)
        stmt = _prebuilt(
            ("trend", name, dialect, level),
            lambda column=column, name=name, dialect=dialect, level=level: select(epoch_seconds(column)).where(
                _between(column, _t(SINCE), _t(NOW)), _scope_clause(dialect, level, by_unit_index=name == "received")
            ),
        )
        seconds = np.array(conn.execute(stmt, {SINCE: first, NOW: now, **_scope_params(scope)}).scalars().all(), dtype=float)
        buckets = np.floor((seconds - first.timestamp()) / 3600.0).astype(int)
        counts[name] = np.bincount(buckets[(buckets >= 0) & (buckets < 24)], minlength=24)
    return [
        {
            "start": (first + timedelta(hours=i)).astimezone(zone),
            "received": int(counts["received"][i]),
            "closed": int(counts["closed"][i]),
        }
        for i in range(24)
    ]


def breakdown(conn: Connection, scope: Any, now: datetime, tz: Any) -> dict[str, list[dict]]:
    """Open incidents and those reported today, by sector (四板块) and by category.

    {"by_sector": [{sector, open, new_today}] in SECTORS order,
     "by_category": [{category_id, code, name_en, name_zh, sector, open, new_today}] busiest first}.
    """
    scope, now, tz = normalise_args(scope, now, tz)
    w = day_window(now, tz)
    dialect, level = _scope_key(conn, scope)
    category = _group_key(dialect, INC.c.category_id)
    open_stmt = _prebuilt(
        ("breakdown_open", dialect, level),
        lambda: (
            select(category.label("category_id"), func.count().label("n"))
            .where(INC.c.is_open == true(), _scope_clause(dialect, level))
            .group_by(category)
        ),
    )
    new_stmt = _prebuilt(
        ("breakdown_new", dialect, level),
        lambda: (
            select(category.label("category_id"), func.count().label("n"))
            .where(_between(INC.c.reported_at, _t(TODAY_START), _t(NOW)), _scope_clause(dialect, level, by_unit_index=True))
            .group_by(category)
        ),
    )
    params = _scope_params(scope)
    open_by = {r.category_id: r.n for r in conn.execute(open_stmt, params)}
    new_by = {r.category_id: r.n for r in conn.execute(new_stmt, {TODAY_START: w.today_start, NOW: w.now, **params})}
    c = schema.categories
    by_category = []
    by_sector = {sector: {"sector": sector, "open": 0, "new_today": 0} for sector in SECTORS}
    for cat in conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh, c.c.sector, c.c.active).order_by(c.c.code)):
        n_open, n_new = int(open_by.get(cat.id, 0)), int(new_by.get(cat.id, 0))
        if not cat.active and not (n_open or n_new):
            continue
        by_category.append(
            {
                "category_id": cat.id,
                "code": cat.code,
                "name_en": cat.name_en,
                "name_zh": cat.name_zh,
                "sector": cat.sector,
                "open": n_open,
                "new_today": n_new,
            }
        )
        by_sector[cat.sector]["open"] += n_open
        by_sector[cat.sector]["new_today"] += n_new
    by_category.sort(key=lambda r: (-r["open"], -r["new_today"], r["code"]))
    return {"by_sector": list(by_sector.values()), "by_category": by_category}
