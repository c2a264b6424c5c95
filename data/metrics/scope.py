"""What every metric is read for: the scope (the city or one unit), the city's time zone, today's window; what counts as satisfied.

Every reading takes ``(conn, scope, now, tz)``: `scope` is None for the whole city or a unit as
``(level, unit_id)``; `now` is an aware datetime; `tz` is the city's time zone name, in which
"today" runs from local midnight to `now` and "yesterday" is the same span one day earlier.
``normalise_args`` turns the three into a hashable, canonical key, so callers can memoise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from data import schema
from data.errors import ValidationError
from data.times import to_utc

__all__ = [
    "SATISFIED_MIN",
    "SCOPE_COLUMNS",
    "DayWindow",
    "Scope",
    "day_window",
    "normalise_args",
    "normalise_scope",
    "normalise_tz",
]

# The incidents column that places an incident in a unit of each level.
SCOPE_COLUMNS = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "grid_id",
}

# A rating of 4 or 5 out of 5 counts as satisfied (满意).
SATISFIED_MIN = 4


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
