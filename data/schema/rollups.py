"""The leaders' review roll-ups (migration 0007; data/metrics/rollups.py): daily sums, what each incident last counted as, state."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Table, text

from data.schema.base import TS, BigId, metadata

# What each roll-up cell counts (data/metrics/rollup_cells.py adds them up).
ROLLUP_COUNTS = (
    "received",
    "closed",
    "first_time",
    "rated",
    "satisfied",
    "acknowledged",
    "ack_on_time",
    "ack_late",
    "waiting",  # dispatched, not acknowledged: 吹哨不到 once its due time has passed (by the ack_due_at day)
    "resolved",
    "resolved_timed",
    "on_time",
    "no_effect",
    "ended",  # closed or rejected, by the day of whichever came first (the backlog's outflow)
)
# An incident's times the review reads (seconds since 1970 in the roll-up's memory of it).
ROLLUP_TIMES = (
    "reported_at",
    "dispatched_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "rejected_at",
    "ack_due_at",
    "handle_due_at",
)

# Daily sums per (local day, unit, department): unit 0 is the whole city, department 0 all of them.
# Histograms and categories are little-endian int32 (key, count) pairs; hours 24 int32 counts.
trend_rollup = Table(
    "trend_rollup",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),  # days since 1970-01-01, local date
    Column("unit_id", Integer, primary_key=True, autoincrement=False),
    Column("department_id", Integer, primary_key=True, autoincrement=False),
    *(Column(name, Integer, nullable=False, server_default=text("0")) for name in ROLLUP_COUNTS),
    Column("ack_hist", LargeBinary, nullable=True),
    Column("handle_hist", LargeBinary, nullable=True),
    Column("hours", LargeBinary, nullable=True),
    Column("categories", LargeBinary, nullable=True),
    Index("ix_trend_rollup_cell", "unit_id", "department_id", "day"),
)

# Each incident as the roll-up last counted it (times as seconds since 1970), so a change can be
# applied as "add it now, subtract it then".
trend_rollup_seen = Table(
    "trend_rollup_seen",
    metadata,
    Column("incident_id", BigId, ForeignKey("incidents.id"), primary_key=True, autoincrement=False),
    Column("state", String(16), nullable=False),
    *(
        Column(name, Integer, nullable=True)
        for name in ("category_id", "district_id", "street_id", "community_id", "assignee_department_id")
    ),
    *(Column(name, Float, nullable=True) for name in ROLLUP_TIMES),
    Column("ack_late", Boolean, nullable=True),
    Column("satisfaction", SmallInteger, nullable=True),
    Column("reopen_count", SmallInteger, nullable=True),
)

# The roll-up's time zone and the last change-feed event applied. The foreign key makes a demo
# build (which clears the events) clear this row too, so the next refresh rebuilds the roll-up.
trend_rollup_state = Table(
    "trend_rollup_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("tz", String(64), nullable=False),
    Column("last_event_id", BigId, ForeignKey("incident_events.id"), nullable=True),
    Column("refreshed_at", TS, nullable=False),
)
