"""Audited administration of API keys (data/accounts/apikeys.py): create and revoke, never their secrets in the log."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.engine import Connection

from data.accounts import apikeys
from data.accounts.admin.audit import API_KEY, check_actor, record
from data.accounts.admin.checks import CITY_WIDE, require_record_inside, unit_code_inside
from data.actors import Actor


def key_snapshot(key: apikeys.ApiKey) -> dict:
    """What the audit log keeps of an API key: never its secret or hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scopes),
        "source": key.source,
        "department": key.department_code,
        "rate_limit": key.rate_limit,
        "unit": key.unit_code,
        "revoked_at": key.revoked_at,
    }


def create_api_key(
    conn: Connection,
    actor: str | Actor,
    name: str,
    scopes,
    *,
    source: str | None = None,
    department_code: str | None = None,
    rate_limit: str | None = None,
    unit_code: str | None = None,
    now: datetime | None = None,
) -> apikeys.NewKey:
    """A new API key (see data/accounts/apikeys.create_key); the secret is in the answer only, never in the audit log.

    `unit_code` is its jurisdiction; None, '' or CITY_WIDE is the whole city (for an administrator limited
    to a unit: that unit; one outside it is refused).
    """
    check_actor(actor)
    unit_code = unit_code_inside(conn, actor, unit_code)
    new = apikeys.create_key(
        conn,
        name,
        scopes,
        source=source or None,
        department_code=department_code or None,
        rate_limit=rate_limit or None,
        unit_code=None if unit_code in (None, "", CITY_WIDE) else unit_code,
        now=now,
    )
    record(conn, actor, API_KEY, new.key.name, "create", None, key_snapshot(new.key), now=now)
    return new


def revoke_api_key(conn: Connection, actor: str | Actor, name_or_id: str | int, now: datetime | None = None) -> apikeys.ApiKey:
    """Revoke a key by name, id or shown prefix; revoking a revoked key changes and audits nothing.

    An administrator limited to a unit revokes only keys bound inside it."""
    check_actor(actor)
    before = apikeys.named_key(conn, name_or_id)
    require_record_inside(conn, actor, before.unit_id, f"API key {before.name!r}")
    key = apikeys.revoke_key(conn, before.id, now=now)
    if before.revoked_at is None:
        record(conn, actor, API_KEY, key.name, "revoke", key_snapshot(before), key_snapshot(key), now=now)
    return key
