"""Times in the store: the current UTC time, conversions to and from stored values, epoch seconds in SQL."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement

from data.errors import ValidationError


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def to_utc(value: datetime, name: str = "time") -> datetime:
    """An aware datetime converted to UTC; a naive one is refused (its zone would be a guess)."""
    if not isinstance(value, datetime):
        raise ValidationError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(f"{name} must be timezone-aware (got {value.isoformat()})")
    return value.astimezone(UTC)


def day_bounds(first: date | None, last: date | None, tz: str) -> tuple[datetime | None, datetime | None]:
    """The UTC instants [start of `first`, end of `last`) of a range of whole days in the time zone `tz`
    (either end open when None): how a log is read "from 1 March to 31 March" in the city's own days."""
    zone = ZoneInfo(tz)
    start = None if first is None else datetime.combine(first, time.min, zone).astimezone(UTC)
    end = None if last is None else datetime.combine(last + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


def in_range(column, since: datetime | None, until: datetime | None) -> list:
    """SQL conditions `since` <= column < `until` (aware times, compared in UTC), for the bounds given."""
    conditions = []
    if since is not None:
        conditions.append(column >= to_utc(since, "since"))
    if until is not None:
        conditions.append(column < to_utc(until, "until"))
    return conditions


def from_db(value: Any) -> Any:
    """A value read from the store with datetimes made aware UTC (SQLite hands them back naive)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


class epoch_seconds(FunctionElement):
    """Seconds since 1970 of a timestamp column, on SQLite (julianday) and PostgreSQL (EXTRACT)."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element, compiler, **kw):
    # julianday() keeps milliseconds; rounding to them removes floating noise so whole-second
    # times compare exactly, as they do in Python.
    (arg,) = element.clauses
    return f"ROUND((julianday({compiler.process(arg, **kw)}) - 2440587.5) * 86400.0, 3)"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element, compiler, **kw):
    (arg,) = element.clauses
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(arg, **kw)}) AS DOUBLE PRECISION)"
