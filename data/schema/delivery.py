"""Who is told: the in-app inbox of departments and grid workers, the webhook outbox and its log, the centre's inbox."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, ForeignKey, Index, Integer, String, Table, Text, UniqueConstraint, text

from data.schema.base import TS, BigId, metadata

# --- one-click dispatch and reach (migration 0004) ----------------------------------------------

# The in-app inbox (一键智达) of departments and grid workers: one row per thing they are told.
notifications = Table(
    "notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=True),
    Column("worker_id", Integer, ForeignKey("workers.id"), nullable=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("event_id", BigId, ForeignKey("incident_events.id"), nullable=True),
    Column("kind", String(16), nullable=False),  # dispatch, reassign, recall, withdrawn, escalate
    Column("created_at", TS, nullable=False),
    Column("read_at", TS, nullable=True),
    CheckConstraint("department_id IS NOT NULL OR worker_id IS NOT NULL", name="recipient"),
    Index("ix_notifications_department", "department_id", "id"),
    Index("ix_notifications_worker", "worker_id", "id"),
)

# The webhook outbox: one row per (event, department) to post, with its state and next try.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=False),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("event_id", BigId, ForeignKey("incident_events.id"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("url", Text, nullable=False),
    Column("body", Text, nullable=False),  # the exact JSON posted and signed
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", TS, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("delivered_at", TS, nullable=True),
    Column("last_error", Text, nullable=True),
    UniqueConstraint("event_id", "department_id", name="uq_webhook_deliveries_event_department"),
    CheckConstraint("status IN ('pending','delivered','failed','cancelled')", name="status"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    Index("ix_webhook_deliveries_incident", "incident_id", "id"),
)

# The delivery log: every attempt to post a webhook, with what came back.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("delivery_id", BigId, ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", TS, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
    Index("ix_webhook_attempts_delivery", "delivery_id", "id"),
)

# --- the centre's inbox (migration 0008) ----------------------------------------------------------

# The command centre's inbox (网格吹哨、部门报到): a department's answer to a whistle (acknowledge,
# return, resolve) reported back to the dispatchers, whichever way it came in.
centre_notifications = Table(
    "centre_notifications",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=False),
    Column("event_id", BigId, ForeignKey("incident_events.id"), nullable=False),
    Column("action", String(16), nullable=False),  # acknowledge, return, resolve
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=True),
    Column("worker_id", Integer, ForeignKey("workers.id"), nullable=True),
    Column("actor", String(128), nullable=False),
    Column("note", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("read_at", TS, nullable=True),
    Column("read_by", String(128), nullable=True),
    Index("ix_centre_notifications_unread", "read_at", "id"),
    Index("ix_centre_notifications_incident", "incident_id"),
)
