"""Pieces of the metrics' SQL: named parameters and prebuilt statements, the scope clause, counts, durations, medians, ratios."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import BigInteger, Float, and_, bindparam, func, true
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement

from data import schema
from data.incidents.clock import NamedNow
from data.metrics.scope import SCOPE_COLUMNS, Scope

__all__ = [
    "AT_NOW",
    "AT_Y_NOW",
    "NOW",
    "SINCE",
    "SQLITE_MEDIAN",
    "TODAY_START",
    "UNIT",
    "Y_NOW",
    "Y_START",
    "MedianAggregate",
    "between",
    "count_where",
    "duration_seconds",
    "group_key",
    "median_where",
    "prebuilt",
    "ratio",
    "register_median",
    "scope_clause",
    "scope_key",
    "scope_params",
    "ts_param",
]

INC = schema.incidents

# Statements are built once per (query, database, scope level) with their instants and unit as
# named parameters, then run with values: building and compiling the KPI statement (hundreds of
# expression objects) cost as much as running it on SQLite, and more than that on PostgreSQL.
NOW, TODAY_START, Y_START, Y_NOW, SINCE, UNIT = "now", "today_start", "y_start", "y_now", "since", "scope_unit"
AT_NOW, AT_Y_NOW = NamedNow(NOW), NamedNow(Y_NOW)
_statements: dict[tuple, Any] = {}


def ts_param(name: str) -> ColumnElement:
    """A named timestamp parameter."""
    return bindparam(name, type_=schema.TS)


def prebuilt(key: tuple, build: Callable[[], Any]):
    """The statement for `key`, built on first use (two threads building at once build the same thing)."""
    stmt = _statements.get(key)
    if stmt is None:
        stmt = _statements.setdefault(key, build())
    return stmt


def scope_key(conn: Connection, scope: Scope | None) -> tuple[str, int | None]:
    """What a prebuilt statement depends on besides its query: the database and the scope's level."""
    return conn.dialect.name, None if scope is None else scope.level


def scope_params(scope: Scope | None) -> dict[str, int]:
    """The value of the scope_unit parameter (none for the city)."""
    return {} if scope is None else {UNIT: scope.unit_id}


def scope_clause(dialect: str, level: int | None, *, by_unit_index: bool = False) -> ColumnElement:
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


def count_where(condition) -> ColumnElement:
    """Aggregate: the rows meeting `condition`."""
    return func.count().filter(condition)


def between(column, start: datetime, end: datetime) -> ColumnElement:
    """SQL: start <= column <= end."""
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


class MedianAggregate:
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


def register_median(conn: Connection) -> None:
    """Make the median aggregate available on this SQLite connection (cheap, idempotent)."""
    if conn.dialect.name == "sqlite":
        conn.connection.driver_connection.create_aggregate(SQLITE_MEDIAN, 1, MedianAggregate)


def median_where(dialect: str, value, condition) -> ColumnElement:
    """Aggregate: the median of `value` over the rows meeting `condition` (exact, as statistics.median)."""
    if dialect == "postgresql":
        return func.percentile_cont(0.5).within_group(value).filter(condition)
    return getattr(func, SQLITE_MEDIAN)(value, type_=Float).filter(condition)


def group_key(dialect: str, column) -> ColumnElement:
    """A GROUP BY key SQLite cannot take from an index: otherwise it walks a whole (department, ...)
    index end to end just to meet the groups in order, instead of reading the few rows the WHERE picks."""
    return column + 0 if dialect == "sqlite" else column


def ratio(part, whole) -> float | None:
    """part / whole, or None when there is nothing to divide by."""
    return float(part) / float(whole) if whole else None
