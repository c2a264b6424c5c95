"""How new incidents and their 'report' events are inserted: SQLite executemany, one PostgreSQL statement, COPY.

insert_new_reports is intake's one entry (data/incidents/intake.py); rows it is given are already
checked and located, and a (source, external_id) already stored is left to the unique constraint.
"""

from __future__ import annotations

import functools
import json

from sqlalchemy import JSON, BigInteger, Text, any_, bindparam, cast, column, func, literal, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from data import schema
from data.incidents import lifecycle
from data.incidents.feed import lock_change_feed

INC, EV = schema.incidents, schema.incident_events


def insert_new_reports(
    conn: Connection, records: list[dict], actor: str, *, copy: bool = False
) -> dict[tuple[str, str], tuple[int, bool]]:
    """Insert checked, located records whose (source, external_id) is new, each with its 'report' event;
    {key: (id, unlocated)} of those inserted. With `copy=True` on PostgreSQL (a file import's writer)
    _copy_new is tried first; otherwise, or when it gives way, the change feed's lock comes first."""
    created = _copy_new(conn, records, actor) if copy and conn.dialect.name == "postgresql" else None
    if created is None:
        lock_change_feed(conn)
        created = _insert_new(conn, records, actor)
    return created


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
