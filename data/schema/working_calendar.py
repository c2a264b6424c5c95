"""The optional working-hours calendar and the days that break its weekly pattern (migration 0008)."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Date, Integer, String, Table, false, true

from data.schema.base import TS, metadata

# The optional working-hours calendar (data/incidents/calendar.py): one row, id 1; off unless enabled.
work_calendar = Table(
    "work_calendar",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("enabled", Boolean, nullable=False, server_default=false()),
    Column("time_zone", String(64), nullable=False),
    Column("weekdays", String(32), nullable=False),  # ISO weekdays, "1,2,3,4,5"
    Column("hours", String(200), nullable=False),  # "09:00-12:00,13:30-18:00"
    Column("urgent_wall_clock", Boolean, nullable=False, server_default=true()),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Days that break the weekly pattern: holidays (working false) and make-up working days (调休, working true).
work_calendar_days = Table(
    "work_calendar_days",
    metadata,
    Column("day", Date, primary_key=True),
    Column("working", Boolean, nullable=False),
)
