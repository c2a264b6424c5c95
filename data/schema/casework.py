"""Incidents and their audit log (the change feed), with the partial indexes the leaders' review ranks hard cases by."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

from data.schema.base import TS, BigId, metadata

incidents = Table(
    "incidents",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("category_id", Integer, ForeignKey("categories.id"), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("address", Text, nullable=True),
    Column("lon", Float, nullable=True),
    Column("lat", Float, nullable=True),
    Column("unlocated", Boolean, nullable=False, server_default=false()),
    Column("grid_id", Integer, nullable=True),
    Column("community_id", Integer, nullable=True),
    Column("street_id", Integer, nullable=True),
    Column("district_id", Integer, nullable=True),
    Column("state", String(16), nullable=False),
    Column("is_open", Boolean, nullable=False),
    Column("assignee_department_id", Integer, ForeignKey("departments.id"), nullable=True),
    Column("assignee_worker_id", Integer, ForeignKey("workers.id"), nullable=True),
    Column("reported_at", TS, nullable=False),
    Column("registered_at", TS, nullable=True),
    Column("dispatched_at", TS, nullable=True),
    Column("first_dispatched_at", TS, nullable=True),
    Column("acknowledged_at", TS, nullable=True),
    Column("returned_at", TS, nullable=True),
    Column("resolved_at", TS, nullable=True),
    Column("closed_at", TS, nullable=True),
    Column("rejected_at", TS, nullable=True),
    Column("ack_due_at", TS, nullable=True),
    Column("handle_due_at", TS, nullable=True),
    # Whether the department acknowledged within its limit (吹哨不到 when false).
    Column("ack_late", Boolean, nullable=True),
    Column("resolved_late", Boolean, nullable=True),
    Column("satisfaction", SmallInteger, nullable=True),
    Column("reopen_count", SmallInteger, nullable=False, server_default=text("0")),
    Column("escalation_level", SmallInteger, nullable=False, server_default=text("0")),
    Column("extension_minutes", Integer, nullable=False, server_default=false()),
    Column("merged_into_id", BigId, ForeignKey("incidents.id"), nullable=True),
    Column("media_url", Text, nullable=True),
    Column("attributes", JSON, nullable=True),
    Column("version", Integer, nullable=False, server_default=true()),
    Column("updated_at", TS, nullable=False),
    UniqueConstraint("source", "external_id", name="uq_incidents_source_external_id"),
    CheckConstraint("priority BETWEEN 1 AND 3", name="priority"),
    CheckConstraint("satisfaction IS NULL OR satisfaction BETWEEN 1 AND 5", name="satisfaction"),
    Index("ix_incidents_closed_at", "closed_at"),
    Index("ix_incidents_district_reported", "district_id", "reported_at"),
    Index("ix_incidents_street_reported", "street_id", "reported_at"),
    Index("ix_incidents_community_reported", "community_id", "reported_at"),
    Index("ix_incidents_grid_reported", "grid_id", "reported_at"),
    Index("ix_incidents_dept_open", "assignee_department_id", "is_open"),
    Index("ix_incidents_category_reported", "category_id", "reported_at"),
    # Overview metrics (migration 0002): what changed since yesterday, and the open incidents with
    # every column their KPIs read, so those come from a small index alone.
    Index("ix_incidents_updated_at", "updated_at"),
    # Early warning (migration 0006): six weeks of reports read from the index alone. It also serves any
    # range on reported_at, as ix_incidents_open_cover serves open incidents by district: 0012 dropped the
    # two single-purpose indexes that did so, which every insert paid for.
    Index("ix_incidents_warning_cover", "reported_at", "grid_id", "category_id", "state", "lon", "lat"),
    Index(
        "ix_incidents_open_cover",
        "is_open",
        "district_id",
        "street_id",
        "community_id",
        "grid_id",
        "state",
        "assignee_department_id",
        "category_id",
        "unlocated",
        "reported_at",
        "dispatched_at",
        "acknowledged_at",
        "resolved_at",
        "returned_at",
        "ack_due_at",
        "handle_due_at",
        sqlite_where=text("is_open = 1"),
        postgresql_where=text("is_open"),
    ),
)

# The audit log (留痕) and, through its increasing id, the change feed screens follow.
incident_events = Table(
    "incident_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Column("data", JSON, nullable=True),
    Index("ix_incident_events_incident", "incident_id", "id"),
    Index("ix_incident_events_action_at", "action", "at"),
)

# --- the leaders' review (migration 0007) ---------------------------------------------------------

# Hard cases of the review (longest open, most reopened, escalated) read through small partial indexes in
# the order they are ranked, carrying every column their filters read: the first ten rows that match end the walk.
_HARD_CASE_COVER = ("reported_at", "id", "state", "closed_at", "rejected_at", "district_id", "street_id")
Index(
    "ix_incidents_open_reported",
    *(incidents.c[c] for c in _HARD_CASE_COVER),
    sqlite_where=text("is_open = 1"),
    postgresql_where=text("is_open"),
)
Index(
    "ix_incidents_reopened",
    incidents.c.reopen_count.desc(),
    *(incidents.c[c] for c in _HARD_CASE_COVER),
    sqlite_where=text("reopen_count > 0"),
    postgresql_where=text("reopen_count > 0"),
)
Index(
    "ix_incidents_escalated",
    incidents.c.escalation_level.desc(),
    *(incidents.c[c] for c in _HARD_CASE_COVER),
    sqlite_where=text("escalation_level > 0"),
    postgresql_where=text("escalation_level > 0"),
)
