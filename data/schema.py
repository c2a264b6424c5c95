"""SQLAlchemy Core tables of the store: units, departments, categories, workers, incidents, audit events.

Times are timezone-aware UTC. Geometry is WGS84 stored as WKB, with its bounding box and
centroid in plain columns so "what is in view" is an indexed range query on any database.
Alembic migrations in data/migrations mirror these tables.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Identity columns: BIGINT on PostgreSQL, INTEGER (rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
TS = DateTime(timezone=True)

# Levels of the administrative ladder (五级贯通).
CITY, DISTRICT, STREET, COMMUNITY, GRID, MICRO = 0, 1, 2, 3, 4, 5
LEVEL_NAMES = {CITY: "city", DISTRICT: "district", STREET: "street", COMMUNITY: "community", GRID: "grid", MICRO: "micro"}
LEVELS = {name: level for level, name in LEVEL_NAMES.items()}

units = Table(
    "units",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("level", SmallInteger, nullable=False),
    Column("parent_id", Integer, ForeignKey("units.id"), nullable=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("geom", LargeBinary, nullable=True),  # WKB, WGS84
    Column("centroid_lon", Float),
    Column("centroid_lat", Float),
    Column("area_m2", Float),
    Column("minx", Float),
    Column("miny", Float),
    Column("maxx", Float),
    Column("maxy", Float),
    # Ancestors, denormalised so roll-ups never walk the tree.
    Column("district_id", Integer, nullable=True),
    Column("street_id", Integer, nullable=True),
    Column("community_id", Integer, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_units_level_parent", "level", "parent_id"),
    Index("ix_units_level_bbox", "level", "minx", "maxx", "miny", "maxy"),
    # Early warning (migration 0006) reads every grid's ancestors and centroid without touching geometry.
    Index("ix_units_grid_cover", "level", "id", "community_id", "street_id", "centroid_lon", "centroid_lat", "area_m2"),
)

departments = Table(
    "departments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("kind", String(32), nullable=False, server_default="department"),
    Column("webhook_url", Text, nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    # The key its webhooks are signed with (HMAC-SHA256; migration 0004, see data/incidents/notify.py).
    Column("webhook_secret", Text, nullable=True),
)

categories = Table(
    "categories",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("sector", String(32), nullable=False),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=False),
    Column("grid_worker_ok", Boolean, nullable=False, server_default=false()),
    Column("active", Boolean, nullable=False, server_default=true()),
    CheckConstraint("sector IN ('party','economy','livelihood','safety')", name="sector"),
)

# Acknowledge and handling limits per category and priority, in minutes.
category_limits = Table(
    "category_limits",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("priority", SmallInteger, primary_key=True),
    Column("ack_minutes", Integer, nullable=False),
    Column("handle_minutes", Integer, nullable=False),
)

workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("grid_id", Integer, ForeignKey("units.id"), nullable=False, index=True),
    Column("role", String(32), nullable=False, server_default="full_time"),
    Column("phone", String(32), nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
)

# A grid worker's duty list (职责清单): the categories that may be pushed down to them.
worker_duties = Table(
    "worker_duties",
    metadata,
    Column("worker_id", Integer, ForeignKey("workers.id"), primary_key=True),
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
)

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

# Small key/value facts about the store (demo built, city name, schema notes).
meta_kv = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# --- the intake API (migration 0003) -----------------------------------------------------------

# API keys of sources and departments' systems. Only the SHA-256 of a key is stored; `prefix`
# (the key's first characters) lets a person tell keys apart in `api-key list`.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(64), nullable=False),  # space-separated: intake actions read
    Column("source", String(32), nullable=True),  # the channel its reports are stored under
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=True),  # actions: the only one it acts for
    Column("rate_limit", String(64), nullable=True),  # e.g. "600/minute"; NULL = the API's default
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    # Jurisdiction (migration 0011): what the key reads, reports and acts on; NULL = the whole city.
    Column("unit_id", Integer, ForeignKey("units.id"), nullable=True),
)

# Answers already given to an Idempotency-Key, replayed when a client retries the same request.
api_idempotency = Table(
    "api_idempotency",
    metadata,
    Column("api_key_id", Integer, ForeignKey("api_keys.id"), primary_key=True),
    Column("idem_key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("response", Text, nullable=False),
    Column("created_at", TS, nullable=False, index=True),
)

# Open311 service attributes: the extra questions a report of a category answers (service definitions).
category_attributes = Table(
    "category_attributes",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("datatype", String(16), nullable=False),
    Column("required", Boolean, nullable=False, server_default=false()),
    Column("variable", Boolean, nullable=False, server_default=true()),
    Column("description", Text, nullable=False),  # the question asked
    Column("datatype_description", Text, nullable=True),
    Column("position", Integer, nullable=False, server_default=text("0")),
    Column("value_list", JSON, nullable=True),  # [{"key": ..., "name": ...}] for the list datatypes
    CheckConstraint("datatype IN ('string','number','datetime','text','singlevaluelist','multivaluelist')", name="datatype"),
)


# --- one-click dispatch and reach (migration 0004) ----------------------------------------------

# The responsibility list (职责清单) per district: who handles a category there, overriding the
# category's own department (categories.department_id) in that district.
category_district_departments = Table(
    "category_district_departments",
    metadata,
    Column("category_id", Integer, ForeignKey("categories.id"), primary_key=True),
    Column("district_id", Integer, ForeignKey("units.id"), primary_key=True),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=False),
)

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


# --- early warning (migration 0006) -------------------------------------------------------------

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


# --- administration (migration 0009) ------------------------------------------------------------

# The admin audit log: every change an administrator makes (users, keys, departments, categories,
# limits, responsibility and duty lists), with the record before and after it. See data/accounts/admin.py.
admin_events = Table(
    "admin_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("entity", String(32), nullable=False),
    Column("entity_key", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("before", JSON, nullable=True),
    Column("after", JSON, nullable=True),
    Column("note", Text, nullable=True),
    Index("ix_admin_events_entity", "entity", "entity_key", "id"),
    Index("ix_admin_events_at", "at"),
)


# --- accounts, roles and jurisdiction (migration 0005) ------------------------------------------

# Who may sign in (data/accounts/users.py). `unit_id` is the jurisdiction (NULL = the whole city): every
# scope the user sees is clamped to it. `department_id` is the one department a 'department' user
# acts for. `session_version` changes when a password is set or the user is deactivated, so the
# sessions signed in before stop working on their next request.
ROLES = ("viewer", "dispatcher", "department", "leader", "admin")

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("display_name", String(200), nullable=False, server_default=""),
    Column("password_hash", String(256), nullable=False),
    Column("role", String(16), nullable=False),
    Column("unit_id", Integer, ForeignKey("units.id"), nullable=True),
    Column("department_id", Integer, ForeignKey("departments.id"), nullable=True),
    Column("active", Boolean, nullable=False, server_default=true()),
    Column("failed_logins", Integer, nullable=False, server_default=text("0")),
    Column("locked_until", TS, nullable=True),
    Column("last_login_at", TS, nullable=True),
    Column("session_version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    CheckConstraint("role IN ('viewer','dispatcher','department','leader','admin')", name="role"),
)

# Read-only kiosk links of wall displays: only the SHA-256 of a token is stored.
kiosk_tokens = Table(
    "kiosk_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("label", String(128), nullable=False),
    Column("prefix", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("unit_id", Integer, ForeignKey("units.id"), nullable=True),
    Column("created_by", String(128), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("revoked_at", TS, nullable=True),
    Column("last_used_at", TS, nullable=True),
)


# --- working calendar and the centre's inbox (migration 0008) -------------------------------------

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

# --- the leaders' review roll-ups (migration 0007; data/metrics/rollups.py) ------------------------------

# Daily sums per (local day, unit, department): unit 0 is the whole city, department 0 all of them.
# Histograms and categories are little-endian int32 (key, count) pairs; hours 24 int32 counts.
trend_rollup = Table(
    "trend_rollup",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),  # days since 1970-01-01, local date
    Column("unit_id", Integer, primary_key=True, autoincrement=False),
    Column("department_id", Integer, primary_key=True, autoincrement=False),
    *(
        Column(name, Integer, nullable=False, server_default=text("0"))
        for name in (
            "received",
            "closed",
            "first_time",
            "rated",
            "satisfied",
            "acknowledged",
            "ack_on_time",
            "ack_late",
            "waiting",
            "resolved",
            "resolved_timed",
            "on_time",
            "no_effect",
            "ended",
        )
    ),
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
    *(
        Column(name, Float, nullable=True)
        for name in (
            "reported_at",
            "dispatched_at",
            "acknowledged_at",
            "resolved_at",
            "closed_at",
            "rejected_at",
            "ack_due_at",
            "handle_due_at",
        )
    ),
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
