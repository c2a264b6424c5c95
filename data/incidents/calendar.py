"""The optional working-hours calendar (工作日历): working days and hours, holidays and make-up working days (调休).

When it is on, the time limits of a category count working time: a 4-hour handling limit from a
dispatch at 17:00 on a Friday falls due at 12:00 on Monday (with 09:00-12:00 and 13:30-18:00
working hours). Urgent cases (priority 1) stay on the wall clock unless configured otherwise:
an open manhole waits for nobody's office hours. When it is off (the default), every limit is
wall-clock minutes, as before.

The calendar lives in the store (tables work_calendar and work_calendar_days), so the desk, the
API, the simulator and the command line all count with the same one; `python app.py
work-calendar` sets it. data.incidents.clock.compute_due_times is where it is applied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.parse import id_or_none

CAL, DAYS = schema.work_calendar, schema.work_calendar_days

DEFAULT_HOURS = "09:00-12:00,13:30-18:00"
DEFAULT_WEEKDAYS = "1-5"  # ISO weekdays: Monday is 1
# How far ahead to look for working time before concluding there is none (a calendar of holidays only).
SEARCH_DAYS = 3 * 366
_DAY_NAMES = {"mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6, "sun": 7}


@dataclass(frozen=True)
class WorkCalendar:
    """Working time: `periods` (minutes after local midnight, [start, end)) on working days in `time_zone`.

    A working day is a make-up working day (`workdays`, 调休上班), or a day of `weekdays` (ISO,
    Monday=1) that is not a holiday. `urgent_wall_clock`: priority-1 limits ignore the calendar.
    """

    time_zone: str = "Asia/Shanghai"
    weekdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    periods: tuple[tuple[int, int], ...] = ((9 * 60, 12 * 60), (13 * 60 + 30, 18 * 60))
    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)
    urgent_wall_clock: bool = True

    def __post_init__(self):
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValidationError(f"unknown time zone {self.time_zone!r} (use a name such as Asia/Shanghai)") from None
        if not self.periods:
            raise ValidationError("a working calendar needs at least one period of working hours")
        previous_end = 0
        for start, end in self.periods:
            if not 0 <= start < end <= 24 * 60 or start < previous_end:
                raise ValidationError("working hours must be increasing, non-overlapping periods within one day")
            previous_end = end
        if not set(self.weekdays) <= set(range(1, 8)):
            raise ValidationError("working weekdays are ISO numbers 1 (Monday) to 7 (Sunday)")
        if not self.weekdays and not self.workdays:
            raise ValidationError("a working calendar needs working weekdays or make-up working days")
        both = self.holidays & self.workdays
        if both:
            raise ValidationError(f"{min(both).isoformat()} is listed as both a holiday and a make-up working day")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_working_day(self, day: date) -> bool:
        """Whether `day` (a local date) has working hours."""
        if day in self.workdays:
            return True
        return day.isoweekday() in self.weekdays and day not in self.holidays

    def intervals(self, day: date) -> list[tuple[datetime, datetime]]:
        """The working periods of a local date as UTC [start, end) pairs (none on a day off)."""
        if not self.is_working_day(day):
            return []
        zone, found = self.zone, []
        for start, end in self.periods:
            begin = datetime.combine(day, time(start // 60, start % 60), tzinfo=zone).astimezone(UTC)
            finish = (
                datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
                if end == 24 * 60
                else datetime.combine(day, time(end // 60, end % 60), tzinfo=zone)
            ).astimezone(UTC)
            # A clock change inside a period could fold it back over the previous one: keep order.
            if found:
                begin = max(begin, found[-1][1])
            if finish > begin:
                found.append((begin, finish))
        return found

    def _intervals_from(self, moment: datetime) -> Iterator[tuple[datetime, datetime]]:
        # From the local day before: a period of yesterday can still run at `moment` only when the
        # zone moved, but starting one day early costs nothing and is always right.
        day = moment.astimezone(self.zone).date() - timedelta(days=1)
        for offset in range(SEARCH_DAYS):
            for begin, end in self.intervals(day + timedelta(days=offset)):
                if end > moment:
                    yield max(begin, moment), end
        raise ValidationError(f"the working calendar has no working time within {SEARCH_DAYS} days of {moment.isoformat()}")

    def is_working_time(self, moment: datetime) -> bool:
        """Whether `moment` (aware) lies inside working hours."""
        moment = _aware(moment)
        return any(begin <= moment < end for begin, end in self.intervals(moment.astimezone(self.zone).date()))

    def add(self, start: datetime, minutes: float) -> datetime:
        """The moment `minutes` of working time after `start` (aware; UTC out).

        Time outside working hours does not count; a limit ending exactly when a period closes is
        due at that close (12:00, not 13:30). Adding a then b equals adding a + b.
        """
        start = _aware(start).astimezone(UTC)
        remaining = timedelta(minutes=minutes)
        if remaining < timedelta(0):
            raise ValidationError("working time to add cannot be negative")
        if remaining == timedelta(0):
            return start
        for begin, end in self._intervals_from(start):
            available = end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: _intervals_from raises when it runs out")

    def working_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much working time lies between two moments (zero when end is not after start)."""
        start, end = _aware(start).astimezone(UTC), _aware(end).astimezone(UTC)
        total = timedelta(0)
        if end <= start:
            return total
        for begin, finish in self._intervals_from(start):
            if begin >= end:
                break
            total += min(finish, end) - begin
        return total


def _aware(moment: datetime) -> datetime:
    if not isinstance(moment, datetime) or moment.tzinfo is None or moment.utcoffset() is None:
        raise ValidationError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment


# --- text forms (command line, settings, storage) -----------------------------------------------------

_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def parse_hours(text: str) -> tuple[tuple[int, int], ...]:
    """'09:00-12:00,13:30-18:00' -> ((540, 720), (810, 1080)); 24:00 may end the last period."""
    periods = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _PERIOD.match(part)
        if not match:
            raise ValidationError(f"working hours must look like 09:00-12:00,13:30-18:00; got {part.strip()!r}")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2):
            raise ValidationError(f"not a time of day in {part.strip()!r}")
        periods.append((h1 * 60 + m1, h2 * 60 + m2))
    if not periods:
        raise ValidationError("working hours are empty; give periods such as 09:00-12:00,13:30-18:00")
    return tuple(periods)


def format_hours(periods: Iterable[tuple[int, int]]) -> str:
    return ",".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in periods)


def parse_weekdays(text: str) -> frozenset[int]:
    """'1-5', 'mon-fri', '1,2,3,4,5,6' -> ISO weekday numbers."""

    def number(token: str) -> int:
        token = token.strip().lower()
        if token[:3] in _DAY_NAMES:
            return _DAY_NAMES[token[:3]]
        day = id_or_none(token)
        if day is not None and day <= 7:
            return day
        raise ValidationError(f"working weekdays are 1-7 (Monday=1) or mon..sun; got {token!r}")

    days: set[int] = set()
    for part in (text or "").split(","):
        if not part.strip():
            continue
        low, _, high = part.partition("-")
        first, last = number(low), number(high) if high else number(low)
        if last < first:
            raise ValidationError(f"weekday range {part.strip()!r} runs backwards")
        days.update(range(first, last + 1))
    return frozenset(days)


def format_weekdays(days: Iterable[int]) -> str:
    return ",".join(str(d) for d in sorted(days))


def parse_dates(text: str) -> frozenset[date]:
    """'2026-10-01..2026-10-07,2026-12-25' -> the dates (ranges inclusive)."""
    found: set[date] = set()
    for part in (text or "").replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("..")
        try:
            first = date.fromisoformat(low.strip())
            last = date.fromisoformat(high.strip()) if high else first
        except ValueError:
            raise ValidationError(f"dates are YYYY-MM-DD, ranges YYYY-MM-DD..YYYY-MM-DD; got {part!r}") from None
        if last < first or (last - first).days > 366:
            raise ValidationError(f"date range {part!r} runs backwards or spans more than a year")
        found.update(first + timedelta(days=i) for i in range((last - first).days + 1))
    return frozenset(found)


# --- the store ---------------------------------------------------------------------------------------


def load(conn: Connection) -> WorkCalendar | None:
    """The store's working calendar, or None when it is off (the default: limits on the wall clock)."""
    calendar, enabled = stored(conn)
    return calendar if enabled else None


def _as_date(value) -> date:
    return value.date() if isinstance(value, datetime) else value


def save(conn: Connection, calendar: WorkCalendar | None, *, enabled: bool = True) -> None:
    """Store `calendar` (validated on construction) and turn it on or off; None with enabled=False turns it off."""
    if calendar is None:
        if enabled:
            raise ValidationError("give a calendar to turn on")
        conn.execute(update(CAL).where(CAL.c.id == 1).values(enabled=False))
        return
    values = {
        "enabled": enabled,
        "time_zone": calendar.time_zone,
        "weekdays": format_weekdays(calendar.weekdays),
        "hours": format_hours(calendar.periods),
        "urgent_wall_clock": calendar.urgent_wall_clock,
        "updated_at": datetime.now(UTC),
    }
    if conn.execute(select(CAL.c.id).where(CAL.c.id == 1)).first() is None:
        conn.execute(insert(CAL).values(id=1, **values))
    else:
        conn.execute(update(CAL).where(CAL.c.id == 1).values(**values))
    conn.execute(delete(DAYS))
    rows = [{"day": d, "working": False} for d in sorted(calendar.holidays)]
    rows += [{"day": d, "working": True} for d in sorted(calendar.workdays)]
    if rows:
        conn.execute(insert(DAYS), rows)


def stored(conn: Connection) -> tuple[WorkCalendar | None, bool]:
    """The stored calendar whether on or off (None when never set), and whether it is on."""
    row = conn.execute(select(CAL).where(CAL.c.id == 1)).first()
    if row is None:
        return None, False
    days = conn.execute(select(DAYS.c.day, DAYS.c.working)).all()
    calendar = WorkCalendar(
        time_zone=row.time_zone,
        weekdays=parse_weekdays(row.weekdays),
        periods=parse_hours(row.hours),
        holidays=frozenset(_as_date(d.day) for d in days if not d.working),
        workdays=frozenset(_as_date(d.day) for d in days if d.working),
        urgent_wall_clock=bool(row.urgent_wall_clock),
    )
    return calendar, bool(row.enabled)


__all__ = [
    "DEFAULT_HOURS",
    "DEFAULT_WEEKDAYS",
    "WorkCalendar",
    "format_hours",
    "format_weekdays",
    "load",
    "parse_dates",
    "parse_hours",
    "parse_weekdays",
    "save",
    "stored",
]
