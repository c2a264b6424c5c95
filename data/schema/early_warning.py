"""Early warning (migration 0006): alerts, their audit log and the sensitivity per category."""

from __future__ import annotations

from sqlalchemy import Boolean, CheckConstraint, Column, Float, ForeignKey, Index, Integer, String, Table, Text, text, true

from data.schema.base import TS, BigId, metadata

ALERT_KINDS = ("surge", "hotspot", "chronic", "deadline")
ALERT_STATUSES = ("open", "acknowledged", "dismissed", "cased", "cleared")
ALERT_ACTIONS = ("raised", "updated", "acknowledge", "dismiss", "case", "cleared", "settings")

# What the early-warning pass (data/warnings/alerts.py) found: one row per condition episode. A condition
# re-detected while its alert is open updates that row (dedup_key is unique), never adds one.
alerts = Table(
    "alerts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    # The condition (kind, place, category) without its episode, e.g. "surge:grid:123:7".
    Column("condition_key", String(160), nullable=False),
    Column("dedup_key", String(200), nullable=False, unique=True),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("unit_id", Integer, ForeignKey("units.id"), nullable=True),
    Column("category_id", Integer, ForeignKey("categories.id"), nullable=True),
    Column("incident_id", BigId, ForeignKey("incidents.id"), nullable=True),
    Column("lon", Float, nullable=True),
    Column("lat", Float, nullable=True),
    Column("score", Float, nullable=False),
    Column("observed", Float, nullable=True),
    Column("expected", Float, nullable=True),
    Column("reason_en", Text, nullable=False),
    Column("reason_zh", Text, nullable=False),
    Column("details", Text, nullable=True),  # JSON text
    Column("first_seen_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("acted_at", TS, nullable=True),
    Column("acted_by", String(128), nullable=True),
    Column("act_note", Text, nullable=True),
    Column("case_incident_id", BigId, ForeignKey("incidents.id"), nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    CheckConstraint("kind IN ('surge','hotspot','chronic','deadline')", name="kind"),
    CheckConstraint("status IN ('open','acknowledged','dismissed','cased','cleared')", name="status"),
    Index("ix_alerts_status_score", "status", "score"),
    Index("ix_alerts_condition", "condition_key", "id"),
    Index("ix_alerts_unit", "unit_id"),
)

# The audit log of alerts (留痕) and, through its increasing id, the head screens poll.
# Sensitivity changes are logged here too, with alert_id NULL and action 'settings'.
alert_events = Table(
    "alert_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("alert_id", BigId, ForeignKey("alerts.id"), nullable=True),
    Column("at", TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("note", Text, nullable=True),
    CheckConstraint("action IN ('raised','updated','acknowledge','dismiss','case','cleared','settings')", name="action"),
    Index("ix_alert_events_alert", "alert_id", "id"),
)

# Early-warning sensitivity per category: higher = more sensitive (lower thresholds); a missing
# row means sensitivity 1.0, enabled.
warning_settings = Table(
    "warning_settings",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("sensitivity", Float, nullable=False, server_default=text("1.0")),
    Column("enabled", Boolean, nullable=False, server_default=true()),
    Column("updated_at", TS, nullable=True),
    Column("updated_by", String(128), nullable=True),
)
