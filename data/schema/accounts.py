"""Accounts and their audit: users with roles and jurisdiction, kiosk links, API keys and their idempotency replays, the admin log."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Table,
    Text,
    text,
    true,
)

from data.schema.base import TS, BigId, metadata

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

# --- administration (migration 0009) ------------------------------------------------------------

# The admin audit log: every change an administrator makes (users, keys, departments, categories,
# limits, responsibility and duty lists), with the record before and after it. See data/accounts/admin/.
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
