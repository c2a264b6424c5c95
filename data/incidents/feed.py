"""The change feed (the audit log read by id, and the lock that keeps its ids in commit order) and the reads of one incident.

Every writer of incident_events (intake, transitions, dispatch, escalation) takes lock_change_feed
before touching incidents (a file import's COPY writer excepted: see lock_change_feed); screens
follow events_after by the last id they saw.
"""

from __future__ import annotations

from sqlalchemy import select, text
from sqlalchemy.engine import Connection

from data import schema
from data.errors import NotFound, ValidationError
from data.times import from_db

INC, EV = schema.incidents, schema.incident_events

# The advisory lock every writer of incident_events takes on PostgreSQL (store.migrate uses 727001).
CHANGE_FEED_LOCK = 727002

# Columns events_after carries along so a screen can update without another query.
FEED_INCIDENT_COLUMNS = (
    "state",
    "is_open",
    "version",
    "priority",
    "category_id",
    "lon",
    "lat",
    "unlocated",
    "grid_id",
    "community_id",
    "street_id",
    "district_id",
    "assignee_department_id",
    "assignee_worker_id",
    "reported_at",
    "dispatched_at",
    "ack_due_at",
    "handle_due_at",
    "escalation_level",
)


# --- the change feed's ordering guarantee -----------------------------------------------------


def lock_change_feed(conn: Connection) -> None:
    """Serialise writers of incident_events on PostgreSQL until this transaction ends.

    Event ids come from a sequence, handed out when a row is inserted, not when its transaction
    commits: a transaction holding id 41 may commit after one holding 42, and a screen that has
    already read `id > 40` up to 42 would never see 41. Taking one transaction-scoped advisory
    lock before touching incidents makes writers commit in the order they drew ids. It is taken
    first, before any row lock, so two writers cannot deadlock on it (the one exception, a file
    import's COPY writer, takes it after its rows and steps back rather than wait: _copy_new in
    data/incidents/bulk_insert.py).
    SQLite needs nothing: BEGIN IMMEDIATE already lets one writer at a time in. The lock is keyed by the schema too, so
    stores living in separate schemas of one database (tests, staging) do not queue behind each other.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": CHANGE_FEED_LOCK})


# --- reads ------------------------------------------------------------------------------------


def _as_dict(row) -> dict:
    return {key: from_db(value) for key, value in row._mapping.items()}


def get_incident(conn: Connection, incident_id: int) -> dict:
    """The incident's row as a dict (times aware UTC); NotFound when there is none."""
    row = conn.execute(select(INC).where(INC.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return _as_dict(row)


def history(conn: Connection, incident_id: int) -> list[dict]:
    """The incident's audit events (留痕) in the order they happened; NotFound when there is no incident."""
    if conn.execute(select(INC.c.id).where(INC.c.id == incident_id)).first() is None:
        raise NotFound(f"incident {incident_id} does not exist")
    rows = conn.execute(select(EV).where(EV.c.incident_id == incident_id).order_by(EV.c.id))
    return [_as_dict(r) for r in rows]


def events_after(conn: Connection, after_id: int, limit: int = 1000) -> list[dict]:
    """The change feed: up to `limit` events with id > after_id, ascending.

    Each carries the event (id, incident_id, at, actor, action, from_state, to_state, note, data)
    and the incident as it is now (FEED_INCIDENT_COLUMNS: state, priority, position, grid and
    ancestors, assignee, clock), so a screen can update without another query. Follow it by
    passing the last id seen.
    """
    if limit < 1:
        raise ValidationError("limit must be at least 1")
    # The events first (a range of the primary key), then each one's incident by its key: joined the
    # other way round, SQLite walked all the incidents (~0.65 s a read at a million, on every change).
    page = select(EV).where(EV.c.id > after_id).order_by(EV.c.id).limit(limit).subquery("page")
    columns = [*page.c] + [INC.c[name] for name in FEED_INCIDENT_COLUMNS]
    rows = conn.execute(select(*columns).join_from(page, INC, page.c.incident_id == INC.c.id).order_by(page.c.id))
    return [_as_dict(r) for r in rows]
