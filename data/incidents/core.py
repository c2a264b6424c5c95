"""Every write to an incident: intake, lifecycle transitions with their audit events, and the change feed.

Callers pass a connection inside a transaction (``with engine.begin() as conn``); each function
either does all it says in that transaction or raises a typed error from data/errors.py having
written nothing. A transition's notifications (data.notify.on_transition) are part of it. The
audit log (incident_events) is also the change feed screens follow by id.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import JSON, BigInteger, Text, any_, bindparam, cast, column, func, literal, null, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from data import schema
from data.errors import Conflict, NotFound, ValidationError
from data.geo.locate import GridLocator
from data.incidents import lifecycle, notify
from data.incidents.clock import compute_due_times, extended_due
from data.times import from_db, to_utc, utc_now

__all__ = [
    "IntakeResult",
    "apply_action",
    "compute_due_times",
    "events_after",
    "get_incident",
    "history",
    "lock_change_feed",
    "report_incidents",
]

INC, EV = schema.incidents, schema.incident_events

# The advisory lock every writer of incident_events takes on PostgreSQL (store.migrate uses 727001).
CHANGE_FEED_LOCK = 727002

INTAKE_FIELDS = frozenset(
    {
        "source",
        "external_id",
        "category_id",
        "category_code",
        "priority",
        "description",
        "lon",
        "lat",
        "address",
        "reported_at",
        "media_url",
        "attributes",
    }
)
# How far in the future a report time may lie (clock skew between a device and the server).
FUTURE_SKEW = timedelta(minutes=5)

# Keyword arguments of apply_action that only some actions use.
ACTION_PARAMS = {
    "dispatch": {"department_id", "worker_id"},
    "reassign": {"department_id", "worker_id"},
    "merge": {"merged_into_id"},
    "extend": {"extend_minutes"},
    "rate": {"satisfaction"},
}
MAX_EXTEND_MINUTES = 60 * 24 * 90

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


class IntakeResult(NamedTuple):
    """What became of one reported row: its incident, whether it is new, whether it has no grid.

    A named tuple, not a frozen dataclass: a file import makes one per row, and a frozen dataclass
    took a tenth of the writer's time to build them."""

    incident_id: int
    created: bool
    unlocated: bool


# --- the change feed's ordering guarantee -----------------------------------------------------


def lock_change_feed(conn: Connection) -> None:
    """Serialise writers of incident_events on PostgreSQL until this transaction ends.

    Event ids come from a sequence, handed out when a row is inserted, not when its transaction
    commits: a transaction holding id 41 may commit after one holding 42, and a screen that has
    already read `id > 40` up to 42 would never see 41. Taking one transaction-scoped advisory
    lock before touching incidents makes writers commit in the order they drew ids. It is taken
    first, before any row lock, so two writers cannot deadlock on it (the one exception, a file
    import's COPY writer, takes it after its rows and steps back rather than wait: _copy_new).
    SQLite needs nothing: BEGIN IMMEDIATE already lets one writer at a time in. The lock is keyed by the schema too, so
    stores living in separate schemas of one database (tests, staging) do not queue behind each other.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key, hashtext(current_schema()))"), {"key": CHANGE_FEED_LOCK})


# --- intake ---------------------------------------------------------------------------------


def report_incidents(
    conn: Connection,
    rows: list[dict],
    *,
    actor: str,
    locator: GridLocator | None = None,
    now: datetime | None = None,
) -> list[IntakeResult]:
    """Store reported incidents (上报), one IntakeResult per row in order; idempotent by (source, external_id).

    A pair already stored (before, concurrently, or earlier in this batch) is left untouched and
    reported with created=False. Every row is checked before anything is written, so a bad row
    raises ValidationError naming it and the batch writes nothing. Rows without a grid are kept
    with unlocated=True. Pass a prebuilt `locator` when calling often: building one reads every grid.
    """
    actor = _require_actor(actor)
    now = to_utc(now, "now") if now is not None else utc_now()
    if not rows:
        return []
    categories = _active_categories(conn)
    records = [_intake_record(i, row, categories, now) for i, row in enumerate(rows)]
    return _store_reports(conn, records, actor, locator)


def report_checked_incidents(conn: Connection, records: list[dict], *, actor: str, copy: bool = False) -> list[IntakeResult]:
    """report_incidents for rows a bulk reader has already checked, typed and located (locate_reports)
    as report_incidents would (data/incidents/files.py checks whole columns at once, ahead of the writer):
    checking them again row by row cost a quarter of a file import's time. Fields a record leaves out
    (media_url, attributes) are stored empty.

    `copy=True` (a file import's writer, on PostgreSQL) first tries _copy_new: COPY, with the change
    feed's lock taken only for the events; records must then be new as far as the caller knows.
    """
    actor = _require_actor(actor)
    records = [{"media_url": None, "attributes": None, **rec} for rec in records]
    return _store_reports(conn, records, actor, None, located=True, copy=copy)


def _store_reports(
    conn: Connection,
    records: list[dict],
    actor: str,
    locator: GridLocator | None,
    *,
    located: bool = False,
    copy: bool = False,
) -> list[IntakeResult]:
    """Insert checked records (duplicates in the batch or the store kept once), with their events;
    located first with `locator` (built when None) unless a bulk reader did so (report_checked_incidents)."""
    # Duplicates inside the batch: the first occurrence is the one inserted.
    first_of: dict[tuple[str, str], int] = {}
    for i, rec in enumerate(records):
        first_of.setdefault((rec["source"], rec["external_id"]), i)
    batch = [records[i] for i in sorted(first_of.values())]

    if not located:
        locate_reports(locator if locator is not None else GridLocator.from_conn(conn), batch)

    created = _copy_new(conn, batch, actor) if copy and conn.dialect.name == "postgresql" else None
    if created is None:
        lock_change_feed(conn)
        created = _insert_new(conn, batch, actor)
    missing = [key for key in first_of if key not in created]
    existing = _existing_ids(conn, missing)
    unseen = [key for key in missing if key not in existing]
    if unseen:
        # Only possible under a stricter isolation level than the default: another transaction's row blocked ours.
        raise Conflict(f"{len(unseen)} incident(s) were being reported by someone else at the same time; try again")

    results = []
    seen: set[tuple[str, str]] = set()
    for rec in records:
        key = (rec["source"], rec["external_id"])
        if key in created and key not in seen:
            incident_id, unlocated = created[key]
            results.append(IntakeResult(incident_id, True, unlocated))
        else:
            incident_id, unlocated = created[key] if key in created else existing[key]
            results.append(IntakeResult(incident_id, False, unlocated))
        seen.add(key)
    return results


def _active_categories(conn: Connection) -> dict[str, Any]:
    c = schema.categories
    rows = conn.execute(select(c.c.id, c.c.code).where(c.c.active.is_(True)).order_by(c.c.code)).all()
    return {"by_code": {r.code: r.id for r in rows}, "ids": {r.id for r in rows}, "codes": [r.code for r in rows]}


def _intake_record(index: int, row: dict, categories: dict[str, Any], now: datetime) -> dict:
    """One validated insert row, or ValidationError naming the row and the problem."""

    def bad(message: str) -> ValidationError:
        return ValidationError(f"row {index}: {message}")

    if not isinstance(row, dict):
        raise bad(f"expected a mapping of fields, got {type(row).__name__}")
    unknown = set(row) - INTAKE_FIELDS
    if unknown:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(INTAKE_FIELDS))}")

    source = _text_field(row.get("source"), "source", 32, bad)
    external_id = _text_field(row.get("external_id"), "external_id", 128, bad)

    valid_codes = ", ".join(categories["codes"]) or "(none: create categories first)"
    category_id = row.get("category_id")
    if category_id is not None:
        if isinstance(category_id, bool) or not isinstance(category_id, int) or category_id not in categories["ids"]:
            raise bad(f"unknown category id {category_id!r}; valid codes: {valid_codes}")
    else:
        code = row.get("category_code")
        if code is None:
            raise bad(f"category_id or category_code is required; valid codes: {valid_codes}")
        category_id = categories["by_code"].get(str(code).strip())
        if category_id is None:
            raise bad(f"unknown category {code!r}; valid codes: {valid_codes}")

    priority = _priority(row.get("priority", 3), bad)
    lon, lat = _coordinate(row.get("lon"), "lon", bad), _coordinate(row.get("lat"), "lat", bad)

    reported_at = row.get("reported_at")
    if reported_at is None:
        reported_at = now
    else:
        try:
            reported_at = to_utc(reported_at, "reported_at")
        except ValidationError as exc:
            raise bad(str(exc)) from None
        if reported_at > now + FUTURE_SKEW:
            raise bad(f"reported_at {reported_at.isoformat()} is in the future")

    description = row.get("description") or ""
    if not isinstance(description, str):
        raise bad("description must be text")
    for name in ("address", "media_url"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise bad(f"{name} must be text")
    attributes = row.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise bad("attributes must be a mapping")
    if attributes:
        try:
            json.dumps(attributes)
        except (TypeError, ValueError) as exc:
            raise bad(f"attributes must be plain JSON values: {exc}") from None

    return {
        "source": source,
        "external_id": external_id,
        "category_id": category_id,
        "priority": priority,
        "description": description,
        "address": row.get("address"),
        "lon": lon,
        "lat": lat,
        "reported_at": reported_at,
        "media_url": row.get("media_url"),
        "attributes": attributes,
    }


def _text_field(value: Any, name: str, max_len: int, bad) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{name} is required")
    value = value.strip()
    if len(value) > max_len:
        raise bad(f"{name} is longer than {max_len} characters")
    return value


def _priority(value: Any, bad) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value not in lifecycle.PRIORITIES:
        raise bad(f"priority must be one of 1 (urgent), 2 (high), 3 (normal); got {value!r}")
    return value


def _coordinate(value: Any, name: str, bad) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise bad(f"{name} must be a number, got {value!r}") from None
    return number if math.isfinite(number) else None


def locate_reports(locator: GridLocator, records: list[dict]) -> None:
    """Fill in each checked record's grid and its ancestors (None and unlocated=True where no grid holds it)."""
    lons = [math.nan if r["lon"] is None else r["lon"] for r in records]
    lats = [math.nan if r["lat"] is None else r["lat"] for r in records]
    # Straight from the locator's arrays: building a Location per row costs more than the lookup.
    index = locator.grid_index(lons, lats)
    found = index >= 0
    grid_ids = np.where(found, locator.ids[index] if len(locator) else 0, 0).tolist()
    ancestors = locator.ancestors[index] if len(locator) else None
    for row, (rec, hit) in enumerate(zip(records, found.tolist(), strict=True)):
        if hit:
            community_id, street_id, district_id = ancestors[row]
            rec.update(
                grid_id=grid_ids[row],
                community_id=community_id,
                street_id=street_id,
                district_id=district_id,
                unlocated=False,
            )
        else:
            rec.update(grid_id=None, community_id=None, street_id=None, district_id=None, unlocated=True)


# Columns each intake row brings; the rest of a new incident is the same for every row.
_ROW_COLUMNS = (
    "source",
    "external_id",
    "category_id",
    "priority",
    "description",
    "address",
    "lon",
    "lat",
    "unlocated",
    "grid_id",
    "community_id",
    "street_id",
    "district_id",
    "reported_at",
    "media_url",
    "attributes",
)
_NEW_INCIDENT = {
    "state": lifecycle.REPORTED,
    "is_open": True,
    "reopen_count": 0,
    "escalation_level": 0,
    "extension_minutes": 0,
    "version": 1,
}
_INSERT_CHUNK = 5000
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_STAMP_AT, _ATTRIBUTES_AT = _ROW_COLUMNS.index("reported_at"), _ROW_COLUMNS.index("attributes")


def _insert_new(conn: Connection, records: list[dict], actor: str) -> dict[tuple[str, str], tuple[int, bool]]:
    """Insert rows whose (source, external_id) is new, each with its 'report' event (at its report time,
    in id order, the order of the batch); {key: (id, unlocated)} of those inserted.

    ON CONFLICT DO NOTHING lets the unique constraint decide, so two callers racing with the same
    pair get one row between them and neither fails. Each database gets its fastest bulk form:
    the driver's executemany on SQLite, one statement per chunk on PostgreSQL that parses a JSON
    document, inserts the incidents and, from what that insert returns, their events.
    """
    if not records:
        return {}
    if conn.dialect.name == "sqlite":
        return _insert_new_sqlite(conn, records, actor)
    created: dict[tuple[str, str], tuple[int, bool]] = {}
    for start in range(0, len(records), _INSERT_CHUNK):
        chunk = records[start : start + _INSERT_CHUNK]
        rows = conn.execute(_bulk_insert_statement(), {"payload": _json_payload(chunk), "actor": actor})
        created.update({(r.source, r.external_id): (int(r.id), bool(r.unlocated)) for r in rows})
    return created


def _insert_new_sqlite(conn: Connection, records: list[dict], actor: str) -> dict[tuple[str, str], tuple[int, bool]]:
    # sqlite3's executemany is several times faster than any per-row work in SQLAlchemy. It
    # cannot RETURN rows, but it needs not: SQLite lets one writer in at a time and gives new rows
    # ids above the largest, so the rows above `before` are exactly the ones inserted here.
    before = conn.execute(select(func.coalesce(func.max(INC.c.id), 0))).scalar_one()
    columns = (*_ROW_COLUMNS, *_NEW_INCIDENT, "updated_at")
    quote = conn.dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(INC.name)} ({', '.join(quote(c) for c in columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (source, external_id) DO NOTHING"
    )
    constants = tuple(_NEW_INCIDENT.values())
    params = []
    for rec in records:
        # Times as text in SQLAlchemy's own SQLite format, so they compare with bound values.
        stamp = rec["reported_at"].strftime(_SQLITE_TIME)
        attributes = None if rec["attributes"] is None else json.dumps(rec["attributes"], ensure_ascii=False)
        values = [rec[name] for name in _ROW_COLUMNS]
        values[_STAMP_AT], values[_ATTRIBUTES_AT] = stamp, attributes
        params.append((*values, *constants, stamp))
    conn.exec_driver_sql(sql, params)
    new_rows = select(INC.c.id, INC.c.reported_at).where(INC.c.id > before).order_by(INC.c.id)
    conn.execute(EV.insert().from_select(_REPORT_EVENT_COLUMNS, _report_events(new_rows.subquery())), {"actor": actor})
    after = conn.execute(select(func.coalesce(func.max(INC.c.id), 0))).scalar_one()
    if after - before == len(records):
        # Every row went in (none was known): n new ids above `before`, each larger than the last,
        # can only be before+1 .. before+n in the order given. Reading them back cost a tenth of an import.
        return {(rec["source"], rec["external_id"]): (before + 1 + i, rec["unlocated"]) for i, rec in enumerate(records)}
    rows = conn.execute(select(INC.c.id, INC.c.source, INC.c.external_id, INC.c.unlocated).where(INC.c.id > before))
    return {(r.source, r.external_id): (int(r.id), bool(r.unlocated)) for r in rows}


# SQLSTATEs after which _copy_new gives way: unique_violation (a row came in meanwhile), lock_not_available
# (its lock wait timed out) and deadlock_detected.
_GIVE_WAY = frozenset({"23505", "55P03", "40P01"})
# How long _copy_new waits for the change feed's lock while holding new rows. Whoever holds the lock may
# be waiting for one of those rows (the same report sent meanwhile): giving way well inside PostgreSQL's
# deadlock_timeout (1 s) makes the import, not the other writer, the one that steps back.
LATE_LOCK_TIMEOUT = "300ms"


def _copy_new(conn: Connection, records: list[dict], actor: str) -> dict[tuple[str, str], tuple[int, bool]] | None:
    """PostgreSQL, for a file import: COPY records the caller found new, then take the change feed's lock
    for their events only; {key: (id, unlocated)}, or None having written nothing when it had to give way.

    Every other writer takes the lock before touching incidents, so writers never overlap. Here the
    heavy part, the incidents and their index entries, is written before the lock: two import writers
    insert side by side and queue only for the events and the commit. Event ids are still drawn under
    the lock, so the feed's order guarantee holds. COPY knows no ON CONFLICT: when a row came in
    meanwhile (or the lock is not free within LATE_LOCK_TIMEOUT, or a deadlock is found) everything since
    the savepoint is undone and the caller inserts the usual way.
    """
    if not records:
        return {}
    savepoint = conn.begin_nested()
    try:
        ids = conn.execute(_DRAW_IDS, {"table": INC.name, "n": len(records)}).scalars().all()
        constants = tuple(_NEW_INCIDENT.values())
        columns = ", ".join(("id", *_ROW_COLUMNS, *_NEW_INCIDENT, "updated_at"))
        statement = f"COPY {conn.dialect.identifier_preparer.quote(INC.name)} ({columns}) FROM STDIN"
        with conn.connection.dbapi_connection.cursor() as cursor, cursor.copy(statement) as copy:
            for incident_id, rec in zip(ids, records, strict=True):
                values = [rec[name] for name in _ROW_COLUMNS]
                if values[_ATTRIBUTES_AT] is not None:
                    values[_ATTRIBUTES_AT] = json.dumps(values[_ATTRIBUTES_AT], ensure_ascii=False)
                copy.write_row((incident_id, *values, *constants, rec["reported_at"]))
        conn.execute(text(f"SET LOCAL lock_timeout = '{LATE_LOCK_TIMEOUT}'"))
        lock_change_feed(conn)
        conn.execute(text("SET LOCAL lock_timeout = DEFAULT"))
        new_rows = select(INC.c.id, INC.c.reported_at).where(
            INC.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(BigInteger)))
        )
        conn.execute(
            EV.insert().from_select(_REPORT_EVENT_COLUMNS, _report_events(new_rows.subquery())), {"ids": ids, "actor": actor}
        )
    except Exception as exc:
        if getattr(getattr(exc, "orig", exc), "sqlstate", None) not in _GIVE_WAY:
            raise
        savepoint.rollback()
        return None
    savepoint.commit()
    return {
        (rec["source"], rec["external_id"]): (incident_id, rec["unlocated"])
        for incident_id, rec in zip(ids, records, strict=True)
    }


_DRAW_IDS = text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)")


def _json_payload(records: list[dict]) -> str:
    return json.dumps(
        [{**{name: rec[name] for name in _ROW_COLUMNS}, "reported_at": rec["reported_at"].isoformat()} for rec in records],
        ensure_ascii=False,
    )


_REPORT_EVENT_COLUMNS = ["incident_id", "at", "actor", "action", "to_state"]


def _report_events(new_rows):
    """SELECT of one 'report' event by the bound `actor` per row of `new_rows` (columns id, reported_at), in id order."""
    return select(
        new_rows.c.id,
        new_rows.c.reported_at,
        bindparam("actor", type_=EV.c.actor.type),
        literal(lifecycle.REPORT, EV.c.action.type),
        literal(lifecycle.REPORTED, EV.c.to_state.type),
    ).order_by(new_rows.c.id)


@functools.cache
def _bulk_insert_statement():
    """PostgreSQL: insert the rows of a JSON document, skipping known pairs, and an event for each new
    one, in one statement (the events read what the insert returns); returns the new incidents.
    Built once: building it cost more CPU than a single report's whole transaction."""
    rows = (
        func.json_to_recordset(cast(bindparam("payload", type_=Text), JSON))
        .table_valued(*[column(name, INC.c[name].type) for name in _ROW_COLUMNS])
        .render_derived(name="r", with_types=True)
    )
    values = {name: rows.c[name] for name in _ROW_COLUMNS}
    values.update({name: literal(value, INC.c[name].type) for name, value in _NEW_INCIDENT.items()})
    # updated_at is always the time of the incident's latest event: here, its report.
    values["updated_at"] = rows.c.reported_at
    inserted = (
        postgresql.insert(INC)
        .from_select(list(values), select(*values.values()).select_from(rows))
        .on_conflict_do_nothing(index_elements=["source", "external_id"])
        .returning(INC.c.id, INC.c.source, INC.c.external_id, INC.c.unlocated, INC.c.reported_at)
        .cte("inserted")
    )
    events = EV.insert().from_select(_REPORT_EVENT_COLUMNS, _report_events(inserted)).cte("events")
    return select(inserted.c.id, inserted.c.source, inserted.c.external_id, inserted.c.unlocated).add_cte(events)


def _existing_ids(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, bool]]:
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    found: dict[tuple[str, str], tuple[int, bool]] = {}
    for source, external_ids in by_source.items():
        rows = conn.execute(
            select(INC.c.id, INC.c.external_id, INC.c.unlocated).where(known_external_ids(conn, source, external_ids))
        )
        found.update({(source, r.external_id): (int(r.id), bool(r.unlocated)) for r in rows})
    return found


def known_external_ids(conn: Connection, source: str, external_ids: list[str]):
    """The condition "incident of `source` with one of `external_ids`", for a lookup of any size.

    Grouped by source, so both databases walk the unique (source, external_id) index (a row-value IN
    list makes PostgreSQL fall back to a slow scan). The ids go in as one parameter, an array on
    PostgreSQL and a JSON list on SQLite: thousands of separate IN parameters cost more to render and
    bind than the lookup itself."""
    if conn.dialect.name == "postgresql":
        wanted = INC.c.external_id == any_(bindparam("ids", external_ids, type_=postgresql.ARRAY(Text)))
    else:
        ids = select(func.json_each(bindparam("ids", json.dumps(external_ids), type_=Text)).table_valued("value").c.value)
        wanted = INC.c.external_id.in_(ids)
    return (INC.c.source == source) & wanted


# --- transitions ------------------------------------------------------------------------------


def apply_action(
    conn: Connection,
    incident_id: int,
    action: str,
    *,
    actor: str,
    expected_version: int | None = None,
    note: str | None = None,
    department_id: int | None = None,
    worker_id: int | None = None,
    satisfaction: int | None = None,
    extend_minutes: int | None = None,
    merged_into_id: int | None = None,
    at: datetime | None = None,
) -> dict:
    """Apply one lifecycle action and record its audit event; the incident row afterwards, as a dict.

    Raises NotFound, Conflict (stale `expected_version`, or changed by someone else meanwhile;
    carries current_state and current_version), InvalidTransition, or ValidationError, and then
    has changed nothing.
    """
    actor = _require_actor(actor)
    given_at = to_utc(at, "at") if at is not None else None
    params = {
        "department_id": department_id,
        "worker_id": worker_id,
        "satisfaction": satisfaction,
        "extend_minutes": extend_minutes,
        "merged_into_id": merged_into_id,
    }
    stray = sorted(name for name, value in params.items() if value is not None and name not in ACTION_PARAMS.get(action, ()))
    if action in lifecycle.TRANSITIONS and stray:
        raise ValidationError(f"{', '.join(stray)} not used by {action}")

    lock_change_feed(conn)
    row = _load(conn, incident_id)
    if expected_version is not None and row["version"] != expected_version:
        raise Conflict(
            f"incident {incident_id} changed meanwhile: it is now {row['state']} (version {row['version']})",
            current_state=row["state"],
            current_version=row["version"],
        )
    to_state = lifecycle.next_state(row["state"], action)
    note = note.strip() if isinstance(note, str) else note
    if (action in lifecycle.NEEDS_NOTE or action == "note") and not note:
        raise ValidationError(f"{action} needs a note saying why")
    last_at = _latest_event_at(conn, incident_id)
    if given_at is None:
        # "Now" never precedes the latest event, even when a reporter's clock ran a little ahead.
        at = utc_now() if last_at is None else max(utc_now(), last_at)
    elif last_at is not None and given_at < last_at:
        raise ValidationError(f"time {given_at.isoformat()} is earlier than the incident's latest event ({last_at.isoformat()})")
    else:
        at = given_at

    changes, data = _ACTION_EFFECTS.get(action, _no_effect)(conn, row, at, params)
    changes.update(state=to_state, is_open=to_state in lifecycle.OPEN_STATES, version=row["version"] + 1, updated_at=at)
    _update_if_unchanged(conn, row, changes)
    event_id = conn.execute(
        EV.insert()
        .values(
            incident_id=row["id"],
            at=at,
            actor=actor,
            action=action,
            from_state=row["state"],
            to_state=to_state,
            note=note or None,
            # SQL NULL rather than JSON null, so `data IS NULL` means "no data" on both databases.
            data=data if data else null(),
        )
        .returning(EV.c.id)
    ).scalar_one()
    after = get_incident(conn, incident_id)
    # Whoever the transition concerns is told in this same transaction (inbox, webhook outbox,
    # the centre's inbox), so no caller has to remember it and no path can skip it.
    notify.on_transition(conn, action, row, after, event_id, actor=actor, note=note or None)
    return after


def _update_if_unchanged(conn: Connection, row: dict, changes: dict) -> None:
    """UPDATE only if the incident still has the version and state we read, else Conflict.

    The check is in the WHERE clause, so whoever commits second finds no row to update: two
    dispatchers at once give one success and one Conflict on any database and isolation level.
    """
    result = conn.execute(
        INC.update().where(INC.c.id == row["id"], INC.c.version == row["version"], INC.c.state == row["state"]).values(**changes)
    )
    if result.rowcount != 1:
        current = conn.execute(select(INC.c.state, INC.c.version).where(INC.c.id == row["id"])).first()
        raise Conflict(
            f"incident {row['id']} changed meanwhile; reload it and try again",
            current_state=current.state if current else None,
            current_version=current.version if current else None,
        )


def _load(conn: Connection, incident_id: int) -> dict:
    row = conn.execute(select(INC).where(INC.c.id == incident_id)).first()
    if row is None:
        raise NotFound(f"incident {incident_id} does not exist")
    return _as_dict(row)


def _latest_event_at(conn: Connection, incident_id: int) -> datetime | None:
    # Times never go backwards, so the newest event by id is also the latest by time.
    at = conn.execute(select(EV.c.at).where(EV.c.incident_id == incident_id).order_by(EV.c.id.desc()).limit(1)).scalar()
    return from_db(at)


def _require_actor(actor: Any) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise ValidationError("actor is required: who is doing this (留痕)")
    if len(actor.strip()) > 128:
        raise ValidationError("actor is longer than 128 characters")
    return actor.strip()


# Each effect returns (column changes, event data) for its action; state, is_open, version and
# updated_at are set for every action by apply_action.


def _no_effect(conn, row, at, params):
    return {}, None


def _register(conn, row, at, params):
    return {"registered_at": at}, None


def _reject(conn, row, at, params):
    return {"rejected_at": at}, None


def _merge(conn, row, at, params):
    target_id = params["merged_into_id"]
    if target_id is None:
        raise ValidationError("merge needs merged_into_id: the incident this one duplicates")
    if target_id == row["id"]:
        raise ValidationError("an incident cannot be merged into itself")
    target = conn.execute(select(INC.c.id, INC.c.state, INC.c.is_open).where(INC.c.id == target_id)).first()
    if target is None:
        raise ValidationError(f"incident {target_id} to merge into does not exist")
    # A closed, rejected or merged target would hide this report behind a dead case (and merged
    # ones would make chains): only an open incident can absorb a duplicate.
    if not target.is_open:
        raise ValidationError(f"incident {target_id} is {target.state}; merge only into an open incident")
    return {"merged_into_id": target_id}, {"merged_into_id": target_id}


def _dispatch(conn, row, at, params):
    department_id, worker_id = params["department_id"], params["worker_id"]
    category = conn.execute(select(schema.categories).where(schema.categories.c.id == row["category_id"])).first()
    if department_id is not None and worker_id is not None:
        raise ValidationError("dispatch to a department or to a grid worker, not both")
    if worker_id is not None:
        _check_worker(conn, worker_id, category)
    else:
        # With no assignee named, the category's responsible department (职责清单) takes it.
        department_id = department_id if department_id is not None else category.department_id
        _check_department(conn, department_id)
    ack_due_at, handle_due_at = compute_due_times(conn, row["category_id"], row["priority"], at)
    changes = {
        "assignee_department_id": department_id,
        "assignee_worker_id": worker_id,
        "dispatched_at": at,
        "first_dispatched_at": row["first_dispatched_at"] or at,
        "ack_due_at": ack_due_at,
        "handle_due_at": handle_due_at,
        # A new assignee starts a new cycle; earlier cycles live on in the audit log.
        "acknowledged_at": None,
        "ack_late": None,
        "resolved_at": None,
        "resolved_late": None,
    }
    data = {"department_id": department_id, "worker_id": worker_id}
    if row["assignee_department_id"] is not None or row["assignee_worker_id"] is not None:
        data["previous"] = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    return changes, data


def _check_department(conn, department_id):
    d = schema.departments
    dept = conn.execute(select(d.c.id, d.c.active).where(d.c.id == department_id)).first()
    if dept is None:
        raise ValidationError(f"department {department_id} does not exist")
    if not dept.active:
        raise ValidationError(f"department {department_id} is inactive")


def _check_worker(conn, worker_id, category):
    """Refuse a grid worker for matters outside their duty list (清单外事项下派过滤)."""
    w = schema.workers
    worker = conn.execute(select(w.c.id, w.c.code, w.c.active).where(w.c.id == worker_id)).first()
    if worker is None:
        raise ValidationError(f"grid worker {worker_id} does not exist")
    if not worker.active:
        raise ValidationError(f"grid worker {worker.code} is inactive")
    if not category.grid_worker_ok:
        raise ValidationError(
            f"category {category.code!r} may not be pushed down to grid workers (清单外事项); dispatch it to a department"
        )
    duty = schema.worker_duties
    on_list = conn.execute(
        select(duty.c.worker_id).where(duty.c.worker_id == worker_id, duty.c.category_id == category.id)
    ).first()
    if on_list is None:
        raise ValidationError(f"category {category.code!r} is not on grid worker {worker.code}'s duty list (清单外事项不得下派)")


def _recall(conn, row, at, params):
    # The withdrawn dispatch never happened for the clocks: the incident waits for a dispatcher
    # again, its dispatch times those of the dispatches before the withdrawn one (if any).
    earlier = conn.execute(
        select(EV.c.action, EV.c.at)
        .where(EV.c.incident_id == row["id"], EV.c.action.in_(("dispatch", "reassign")))
        .order_by(EV.c.id)
    ).all()
    last_dispatch = max((i for i, e in enumerate(earlier) if e.action == "dispatch"), default=len(earlier))
    before = earlier[:last_dispatch]
    changes = {
        "assignee_department_id": None,
        "assignee_worker_id": None,
        "dispatched_at": from_db(before[-1].at) if before else None,
        "first_dispatched_at": from_db(before[0].at) if before else None,
        "ack_due_at": None,
        "handle_due_at": None,
    }
    return changes, {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}


def _acknowledge(conn, row, at, params):
    due = row["ack_due_at"]
    return {"acknowledged_at": at, "ack_late": due is not None and at > due}, None


def _return(conn, row, at, params):
    previous = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    return {"returned_at": at, "assignee_department_id": None, "assignee_worker_id": None}, previous


def _resolve(conn, row, at, params):
    due = row["handle_due_at"]
    return {"resolved_at": at, "resolved_late": due is not None and at > due}, None


def _verify_pass(conn, row, at, params):
    return {"closed_at": at}, None


def _verify_fail(conn, row, at, params):
    # 人到无效: the event keeps who resolved it, since the assignee is cleared for redispatch.
    resolver = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    changes = {"reopen_count": row["reopen_count"] + 1, "assignee_department_id": None, "assignee_worker_id": None}
    return changes, resolver


def _escalate(conn, row, at, params):
    level = row["escalation_level"] + 1
    return {"escalation_level": level}, {"level": level}


def _extend(conn, row, at, params):
    minutes = params["extend_minutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= MAX_EXTEND_MINUTES:
        raise ValidationError(f"extend needs extend_minutes between 1 and {MAX_EXTEND_MINUTES}; got {minutes!r}")
    changes = {
        "handle_due_at": extended_due(conn, row["priority"], row["handle_due_at"], minutes),
        "extension_minutes": row["extension_minutes"] + minutes,
    }
    return changes, {"minutes": minutes}


def _rate(conn, row, at, params):
    score = params["satisfaction"]
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError(f"satisfaction must be a whole number from 1 to 5; got {score!r}")
    return {"satisfaction": score}, {"satisfaction": score}


_ACTION_EFFECTS = {
    "register": _register,
    "reject": _reject,
    "merge": _merge,
    "dispatch": _dispatch,
    "reassign": _dispatch,
    "acknowledge": _acknowledge,
    "return": _return,
    "resolve": _resolve,
    "verify_pass": _verify_pass,
    "verify_fail": _verify_fail,
    "escalate": _escalate,
    "extend": _extend,
    "rate": _rate,
    "recall": _recall,
}


# --- reads ------------------------------------------------------------------------------------


def _as_dict(row) -> dict:
    return {key: from_db(value) for key, value in row._mapping.items()}


def get_incident(conn: Connection, incident_id: int) -> dict:
    """The incident's row as a dict (times aware UTC); NotFound when there is none."""
    return _load(conn, incident_id)


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
