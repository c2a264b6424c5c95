"""SQLAlchemy Core tables of the store, one module per domain, all re-exported here with `metadata`.

`from data import schema; schema.incidents` is how the app names a table. Times are timezone-aware
UTC. Geometry is WGS84 stored as WKB, with its bounding box and centroid in plain columns so "what
is in view" is an indexed range query on any database. Alembic migrations in data/migrations
mirror these tables (its env.py reads `metadata`).

- base.py: the MetaData and its naming convention, column types, the store's key/value facts
- geo.py: the administrative levels and units, the map geometry prepared per units version
- catalogue.py: departments, categories, time limits, attributes, responsibility list, grid workers, duty lists
- casework.py: incidents and their audit log (the change feed)
- delivery.py: notifications, webhook deliveries and attempts, the centre's inbox
- working_calendar.py: the working-hours calendar
- early_warning.py: alerts, their events, sensitivity settings
- accounts.py: users, sessions, kiosk links, API keys, idempotency replays, the admin and sign-in logs
- rollups.py: the leaders' review roll-ups
"""

from __future__ import annotations

from data.schema.accounts import (
    ROLES,
    SIGNIN_OUTCOMES,
    admin_events,
    api_idempotency,
    api_keys,
    kiosk_tokens,
    sessions,
    signin_events,
    users,
)
from data.schema.base import TS, BigId, meta_kv, metadata
from data.schema.casework import incident_events, incidents
from data.schema.catalogue import (
    categories,
    category_attributes,
    category_district_departments,
    category_limits,
    departments,
    worker_duties,
    workers,
)
from data.schema.delivery import centre_notifications, notifications, webhook_attempts, webhook_deliveries
from data.schema.early_warning import ALERT_ACTIONS, ALERT_KINDS, ALERT_STATUSES, alert_events, alerts, warning_settings
from data.schema.geo import CITY, COMMUNITY, DISTRICT, GRID, LEVEL_NAMES, LEVELS, MICRO, STREET, prepared_geometry, units
from data.schema.operations import job_runs
from data.schema.rollups import trend_rollup, trend_rollup_seen, trend_rollup_state
from data.schema.working_calendar import work_calendar, work_calendar_days

__all__ = [
    "ALERT_ACTIONS",
    "ALERT_KINDS",
    "ALERT_STATUSES",
    "CITY",
    "COMMUNITY",
    "DISTRICT",
    "GRID",
    "LEVELS",
    "LEVEL_NAMES",
    "MICRO",
    "ROLES",
    "SIGNIN_OUTCOMES",
    "STREET",
    "TS",
    "BigId",
    "admin_events",
    "alert_events",
    "alerts",
    "api_idempotency",
    "api_keys",
    "categories",
    "category_attributes",
    "category_district_departments",
    "category_limits",
    "centre_notifications",
    "departments",
    "incident_events",
    "incidents",
    "job_runs",
    "kiosk_tokens",
    "meta_kv",
    "metadata",
    "notifications",
    "prepared_geometry",
    "sessions",
    "signin_events",
    "trend_rollup",
    "trend_rollup_seen",
    "trend_rollup_state",
    "units",
    "users",
    "warning_settings",
    "webhook_attempts",
    "webhook_deliveries",
    "work_calendar",
    "work_calendar_days",
    "worker_duties",
    "workers",
]
