"""Accounts and their audit: users with roles and jurisdiction, sessions, kiosk links, API keys and their idempotency replays, the admin and sign-in logs."""

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
# sessions signed in before stop working on their next request. `password_changed_at` (migration 0014)
# ends a sign-in throttle: an administrator's new password lets the user in at once.
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
    Column("last_login_at", TS, nullable=True),
    Column("session_version", Integer, nullable=False, server_default=text("1")),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("password_changed_at", TS, nullable=True),
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

# --- sessions and the sign-in log (migration 0014) ----------------------------------------------

# One row per signed-in browser, a user's or a wall's (data/accounts/sessions.py). The session cookie
# carries a random key whose SHA-256 is `key_hash`; every request finds its row, so ending the row
# (sign-out) ends the session wherever the cookie was copied. `user_version` is the user's
# session_version at sign-in; `expires_at` is NULL for a wall's kiosk session (until revoked).
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("kiosk_token_id", Integer, ForeignKey("kiosk_tokens.id"), nullable=True),
    Column("user_version", Integer, nullable=True),
    Column("address", String(64), nullable=False, server_default=""),
    Column("created_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("expires_at", TS, nullable=True),
    Column("ended_at", TS, nullable=True),
    Column("ended_reason", String(32), nullable=True),
    CheckConstraint("(user_id IS NULL) <> (kiosk_token_id IS NULL)", name="one_principal"),
    Index("ix_sessions_user_id", "user_id"),
)

# The sign-in log (data/accounts/signins.py): every sign-in, failure, throttled or rate-limited attempt,
# sign-out and kiosk link use, with the user name as typed (truncated), the client's address and user
# agent. `login_name` is the normalised name the sign-in throttle counts failures by, per address.
SIGNIN_OUTCOMES = ("signed_in", "failed", "throttled", "rate_limited", "signed_out", "kiosk_signed_in", "kiosk_refused")
signin_events = Table(
    "signin_events",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", TS, nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("username", String(64), nullable=False, server_default=""),
    Column("login_name", String(64), nullable=False, server_default=""),
    Column("user_id", Integer, ForeignKey("users.id"), nullable=True),
    Column("address", String(64), nullable=False, server_default=""),
    Column("user_agent", String(256), nullable=False, server_default=""),
    Index("ix_signin_events_throttle", "login_name", "address", "at"),
    Index("ix_signin_events_at", "at"),
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
