"""The leaders' review's periods and buckets: the span reviewed and the one before it, and where each day, week or month begins.

Periods and buckets are wall-clock spans in the city's time zone: a day runs from local midnight to
local midnight, a week from Monday, a month from the 1st. Instants are compared half-open:
``start <= t < end``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from data.errors import ValidationError
from data.metrics.scope import normalise_tz
from data.times import to_utc

__all__ = ["GRANULARITIES", "PERIOD_DAYS", "Period", "bucket_starts", "period_window"]

PERIOD_DAYS = (7, 30, 90, 365)
GRANULARITIES = ("day", "week", "month")


@dataclass(frozen=True)
class Period:
    """The span reviewed, [start, end), and the equally long span before it, [previous_start, start), in UTC."""

    start: datetime
    end: datetime
    previous_start: datetime
    tz: str


def _local_midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)


def period_window(now: datetime, tz: Any, days: int | None = 30, first: date | None = None, last: date | None = None) -> Period:
    """The last `days` local days up to `now` (today included), or the custom local dates first..last inclusive."""
    tz = normalise_tz(tz)
    zone = ZoneInfo(tz)
    now = to_utc(now, "now")
    today = now.astimezone(zone).date()
    if first is not None or last is not None:
        if first is None or last is None or first > last:
            raise ValidationError("a custom period needs a first and a last date, the first not after the last")
        start = _local_midnight(first, zone)
        end = min(_local_midnight(last + timedelta(days=1), zone), now)
        if end <= start:
            raise ValidationError("a custom period must start before now")
        length = (last - first).days + 1
        previous_start = _local_midnight(first - timedelta(days=length), zone)
        return Period(start, end, previous_start, tz)
    if days not in PERIOD_DAYS:
        raise ValidationError(f"period must be one of {', '.join(map(str, PERIOD_DAYS))} days or a custom range")
    first_day = today - timedelta(days=days - 1)
    return Period(_local_midnight(first_day, zone), now, _local_midnight(first_day - timedelta(days=days), zone), tz)


def bucket_starts(period: Period, granularity: str) -> list[datetime]:
    """UTC instants at which each bucket begins; the first is clipped to the period's start."""
    if granularity not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    zone = ZoneInfo(period.tz)
    d = period.start.astimezone(zone).date()
    if granularity == "week":
        d -= timedelta(days=d.weekday())
    elif granularity == "month":
        d = d.replace(day=1)
    starts = []
    while _local_midnight(d, zone) < period.end:
        starts.append(max(_local_midnight(d, zone), period.start))
        if granularity == "day":
            d += timedelta(days=1)
        elif granularity == "week":
            d += timedelta(days=7)
        else:
            d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts
