"""Incident clocks: due times from category limits, and the one definition of overdue (超期) and near due (临期).

Every screen and metric asks "is this incident overdue / near due?" through this module, either as
a SQLAlchemy expression (to filter or count in the database) or as a Python function (for a row
already in hand); both give the same answer, which tests/data/incidents/test_incidents.py checks.

The clock runs against the assignee only while an incident is with them (lifecycle.WITH_ASSIGNEE):
- dispatched, not yet acknowledged: the acknowledge limit (签收时限), due at ``ack_due_at``;
- acknowledged: the handling limit (处置时限), due at ``handle_due_at``.
Both limits count from ``dispatched_at``, so "the limit" of the active clock is due - dispatched_at
(extensions included). Limits are wall-clock minutes unless the optional working-hours calendar
(data/incidents/calendar.py) is on: then they count working time (urgent cases may stay on the wall clock),
and an extension (延期) is counted the same way. Near due and overdue compare the due time with
the wall clock either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from typing import Any

from sqlalchemy import Float, and_, bindparam, case, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.expression import ColumnElement

from data import schema
from data.incidents import calendar as work_calendar
from data.incidents.calendar import WorkCalendar
from data.incidents.lifecycle import ACKNOWLEDGED, DISPATCHED
from data.times import epoch_seconds, from_db, to_utc, utc_now

# Near due (临期): the last 20% of the limit, or the last 2 hours, whichever is shorter.
NEAR_DUE_SHARE = Fraction(1, 5)
NEAR_DUE_MAX = timedelta(hours=2)

# Limits used when a category has no row for a priority, so a dispatch never fails on missing
# configuration: priority -> (acknowledge minutes, handling minutes).
DEFAULT_LIMITS = {1: (30, 120), 2: (60, 24 * 60), 3: (120, 3 * 24 * 60)}

OVERDUE, NEAR_DUE, ON_TIME = "overdue", "near_due", "on_time"


# --- due times -----------------------------------------------------------------------------


def limits_for(conn: Connection, category_id: int, priority: int) -> tuple[int, int]:
    """(acknowledge minutes, handling minutes) of a category at a priority, DEFAULT_LIMITS when unset."""
    lim = schema.category_limits
    row = conn.execute(
        select(lim.c.ack_minutes, lim.c.handle_minutes).where(lim.c.category_id == category_id, lim.c.priority == priority)
    ).first()
    if row is None:
        return DEFAULT_LIMITS[priority]
    return int(row.ack_minutes), int(row.handle_minutes)


def limit_calendar(conn: Connection, priority: int) -> WorkCalendar | None:
    """The working calendar a limit of `priority` counts in; None: the wall clock (calendar off, or urgent)."""
    calendar = work_calendar.load(conn)
    if calendar is None or (priority == 1 and calendar.urgent_wall_clock):
        return None
    return calendar


def add_limit(start: datetime, minutes: int, calendar: WorkCalendar | None) -> datetime:
    """`minutes` of limit after `start`: wall-clock minutes, or working minutes of `calendar`."""
    start = to_utc(start, "start")
    return start + timedelta(minutes=minutes) if calendar is None else calendar.add(start, minutes)


def due_after_seconds(start_s: int, minutes: int, calendar: WorkCalendar | None) -> int:
    """add_limit on epoch seconds, for the demo's bulk history (the same arithmetic, no datetime per call off-calendar)."""
    if calendar is None:
        return start_s + 60 * minutes
    return int(calendar.add(datetime.fromtimestamp(start_s, UTC), minutes).timestamp())


def limit_calendars(conn: Connection) -> dict[int, WorkCalendar | None]:
    """limit_calendar for every priority, read once (for code that computes many due times)."""
    calendar = work_calendar.load(conn)
    return {p: None if calendar is None or (p == 1 and calendar.urgent_wall_clock) else calendar for p in DEFAULT_LIMITS}


def compute_due_times(conn: Connection, category_id: int, priority: int, dispatched_at: datetime) -> tuple[datetime, datetime]:
    """(ack_due_at, handle_due_at) for an incident dispatched at `dispatched_at` (in working time when the calendar is on)."""
    start = to_utc(dispatched_at, "dispatched_at")
    ack_minutes, handle_minutes = limits_for(conn, category_id, priority)
    calendar = limit_calendar(conn, priority)
    return add_limit(start, ack_minutes, calendar), add_limit(start, handle_minutes, calendar)


def extended_due(conn: Connection, priority: int, due_at: datetime, minutes: int) -> datetime:
    """The handling due time after an extension (延期) of `minutes`, counted like the limit itself."""
    return add_limit(due_at, minutes, limit_calendar(conn, priority))


# --- Python: for a row in hand ---------------------------------------------------------------


def active_due_at(incident: Mapping[str, Any]) -> datetime | None:
    """The due time the clock runs against now, or None when no clock runs (not with an assignee)."""
    state = incident["state"]
    if state == DISPATCHED:
        return from_db(incident["ack_due_at"])
    if state == ACKNOWLEDGED:
        return from_db(incident["handle_due_at"])
    return None


def is_overdue(incident: Mapping[str, Any], now: datetime) -> bool:
    """Whether the incident's running clock has passed its due time (超期)."""
    due = active_due_at(incident)
    return due is not None and to_utc(now, "now") > due


def is_near_due(incident: Mapping[str, Any], now: datetime) -> bool:
    """Whether the running clock is in its warning window (临期): not overdue, but close to due."""
    due = active_due_at(incident)
    start = from_db(incident["dispatched_at"])
    if due is None or start is None:
        return False
    now = to_utc(now, "now")
    remaining, window = due - now, due - start
    # Integer arithmetic on timedeltas, the same comparison the SQL makes.
    return (
        timedelta(0) <= remaining <= NEAR_DUE_MAX and remaining * NEAR_DUE_SHARE.denominator <= window * NEAR_DUE_SHARE.numerator
    )


def due_status(incident: Mapping[str, Any], now: datetime) -> str | None:
    """'overdue', 'near_due' or 'on_time' while a clock runs; None otherwise."""
    if active_due_at(incident) is None:
        return None
    if is_overdue(incident, now):
        return OVERDUE
    return NEAR_DUE if is_near_due(incident, now) else ON_TIME


# --- SQL: to filter and count in the database ------------------------------------------------


def active_due_expression(table=schema.incidents) -> ColumnElement:
    """SQL: the due time the clock runs against (NULL when no clock runs); `table` may be an alias."""
    return case(
        (table.c.state == DISPATCHED, table.c.ack_due_at),
        (table.c.state == ACKNOWLEDGED, table.c.handle_due_at),
        else_=None,
    )


@dataclass(frozen=True)
class NamedNow:
    """The instant "now" as bound parameters named after `name`, given at execution by ``params(now)``.

    Pass one instead of a datetime to overdue_expression / near_due_expression to build a statement
    once and run it at any instant: building and compiling a large statement costs more than
    running it against the few thousand rows it reads.
    """

    name: str

    def params(self, now: datetime) -> dict[str, Any]:
        now = to_utc(now, "now")
        return {self.name: now, f"{self.name}_near_limit": now + NEAR_DUE_MAX, f"{self.name}_epoch": now.timestamp()}


def _now_param(now: datetime | NamedNow, name: str, suffix: str = ""):
    if isinstance(now, NamedNow):
        return bindparam(now.name + suffix, type_=Float if suffix == "_epoch" else schema.TS)
    # unique=True: one query may hold several of these with different times.
    return bindparam(name, to_utc(now, "now"), type_=schema.TS, unique=True)


def overdue_expression(now: datetime | NamedNow, table=schema.incidents) -> ColumnElement:
    """SQL boolean: the incident is overdue at `now` (same rule as is_overdue)."""
    due = active_due_expression(table)
    return and_(table.c.state.in_((DISPATCHED, ACKNOWLEDGED)), due.is_not(None), due < _now_param(now, "overdue_now"))


def near_due_expression(now: datetime | NamedNow, table=schema.incidents) -> ColumnElement:
    """SQL boolean: the incident is near due at `now` (same rule as is_near_due)."""
    if isinstance(now, NamedNow):
        now_s, limit = _now_param(now, "", "_epoch"), _now_param(now, "", "_near_limit")
    else:
        now = to_utc(now, "now")
        now_s, limit = literal(now.timestamp(), Float), _now_param(now + NEAR_DUE_MAX, "near_due_limit")
    due = active_due_expression(table)
    remaining = epoch_seconds(due) - now_s
    window = epoch_seconds(due) - epoch_seconds(table.c.dispatched_at)
    return and_(
        table.c.state.in_((DISPATCHED, ACKNOWLEDGED)),
        due.is_not(None),
        table.c.dispatched_at.is_not(None),
        due >= _now_param(now, "near_due_now"),
        due <= limit,
        remaining * NEAR_DUE_SHARE.denominator <= window * NEAR_DUE_SHARE.numerator,
    )


def due_status_expression(now: datetime, table=schema.incidents) -> ColumnElement:
    """SQL: 'overdue', 'near_due' or 'on_time' while a clock runs, NULL otherwise (same as due_status)."""
    return case(
        (overdue_expression(now, table), literal(OVERDUE)),
        (near_due_expression(now, table), literal(NEAR_DUE)),
        (table.c.state.in_((DISPATCHED, ACKNOWLEDGED)) & active_due_expression(table).is_not(None), literal(ON_TIME)),
        else_=None,
    )


__all__ = [
    "DEFAULT_LIMITS",
    "NEAR_DUE",
    "NEAR_DUE_MAX",
    "NEAR_DUE_SHARE",
    "ON_TIME",
    "NamedNow",
    "OVERDUE",
    "active_due_at",
    "active_due_expression",
    "add_limit",
    "compute_due_times",
    "due_status",
    "due_after_seconds",
    "due_status_expression",
    "epoch_seconds",
    "extended_due",
    "from_db",
    "is_near_due",
    "is_overdue",
    "limit_calendar",
    "limit_calendars",
    "limits_for",
    "near_due_expression",
    "overdue_expression",
    "to_utc",
    "utc_now",
]
