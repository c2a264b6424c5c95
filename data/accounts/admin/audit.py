"""The admin audit log (admin_events): one row per change an administrator makes, who made it, the record before and after."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, actor_name
from data.errors import ValidationError
from data.times import from_db, in_range, to_utc, utc_now

EV = schema.admin_events

# What an audit row is about (admin_events.entity).
USER, API_KEY, DEPARTMENT, CATEGORY, LIMITS, RESPONSIBILITY, DUTIES = (
    "user",
    "api_key",
    "department",
    "category",
    "category_limits",
    "responsibility",
    "worker_duties",
)
ENTITIES = (USER, API_KEY, DEPARTMENT, CATEGORY, LIMITS, RESPONSIBILITY, DUTIES)


def record(
    conn: Connection,
    actor: str | Actor,
    entity: str,
    entity_key: str,
    action: str,
    before: Any,
    after: Any,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Write one audit row and return its id (every module of data/accounts/admin/ calls this; so may other admin writers)."""
    if entity not in ENTITIES:
        raise ValidationError(f"unknown audit entity {entity!r}")
    conn_actor = check_actor(actor)
    at = to_utc(now, "now") if now is not None else utc_now()
    return conn.execute(
        EV.insert()
        .values(
            at=at,
            actor=conn_actor,
            entity=entity,
            entity_key=str(entity_key)[:128],
            action=action,
            before=_jsonable(before),
            after=_jsonable(after),
            note=note,
        )
        .returning(EV.c.id)
    ).scalar_one()


def check_actor(actor: str | Actor) -> str:
    """The actor's name as stored ('cli:alice', 'user:bob'); ValidationError when missing, since an unnamed change cannot be audited."""
    return actor_name(actor)


def events(
    conn: Connection,
    *,
    entity: str | None = None,
    entity_key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 200,
) -> list[dict]:
    """The newest audit rows first, optionally about one entity (and key), with `since` <= at < `until` (UTC)
    when given; every row in the range when limit is None (exports)."""
    query = select(EV).where(*in_range(EV.c.at, since, until)).order_by(EV.c.id.desc())
    if limit is not None:
        query = query.limit(max(1, min(int(limit), 5000)))
    if entity:
        query = query.where(EV.c.entity == entity)
    if entity_key:
        query = query.where(EV.c.entity_key == entity_key)
    return [{**row._mapping, "at": from_db(row.at)} for row in conn.execute(query)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return from_db(value).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value
