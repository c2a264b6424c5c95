"""Bulk load of the demo history: one executemany (SQLite) or COPY (PostgreSQL) per table, indexes rebuilt after."""

from __future__ import annotations

import csv
import io

import numpy as np
from sqlalchemy import text
from sqlalchemy.engine import Connection

from data.demo.history import History

TIME_COLUMNS = frozenset(
    {"reported_at", "registered_at", "dispatched_at", "first_dispatched_at", "acknowledged_at", "returned_at",
     "resolved_at", "closed_at", "rejected_at", "ack_due_at", "handle_due_at", "updated_at", "at"}
)  # fmt: skip


def _stamps(values: list, sqlite: bool) -> list:
    """Epoch seconds as the text each database reads as a UTC timestamp; None stays None."""
    arr = np.array([-1 if v is None else v for v in values], dtype=np.int64)
    text_ = np.datetime_as_string(arr.astype("datetime64[s]").astype("datetime64[us]"), unit="us")
    text_ = np.char.replace(text_, "T", " ") if sqlite else np.char.add(text_, "+00")
    out = text_.astype(object)
    out[arr == -1] = None
    return out.tolist()


def _prepared(columns: dict[str, list], sqlite: bool) -> list[list]:
    return [_stamps(values, sqlite) if name in TIME_COLUMNS else values for name, values in columns.items()]


def _secondary_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, exact CREATE statement) of a table's indexes, leaving out those behind primary keys and unique constraints."""
    if conn.dialect.name == "sqlite":
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
    else:
        query = (
            "SELECT i.relname, pg_get_indexdef(i.oid) FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = :t AND pg_table_is_visible(t.oid) "
            "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)"
        )
    return [(name, sql) for name, sql in conn.execute(text(query), {"t": table})]


def _foreign_keys(conn: Connection, tables: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the PostgreSQL foreign keys of `tables`."""
    query = "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = to_regclass(:t) AND contype = 'f'"
    return [(table, name, definition) for table in tables for name, definition in conn.execute(text(query), {"t": table})]


def load_history(conn: Connection, history: History, chunk: int = 200_000) -> None:
    """Append the history to the store inside the caller's transaction (ids as generated; tables must be empty).

    The tables' secondary indexes (and on PostgreSQL their foreign keys) are dropped for the load
    and rebuilt from their own stored definitions afterwards, all in the same transaction:
    building an index once is several times faster than updating a dozen of them row by row.
    """
    sqlite = conn.dialect.name == "sqlite"
    raw = conn.connection.driver_connection
    foreign_keys = [] if sqlite else _foreign_keys(conn, ("incidents", "incident_events"))
    for table, name, _ in foreign_keys:
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for table, columns in (("incidents", history.incidents), ("incident_events", history.events)):
        indexes = _secondary_indexes(conn, table)
        for name, _ in indexes:
            conn.execute(text(f'DROP INDEX "{name}"'))
        names = list(columns)
        total = len(columns[names[0]])
        for begin in range(0, total, chunk):
            part = {name: values[begin : begin + chunk] for name, values in columns.items()}
            values = _prepared(part, sqlite)
            if sqlite:
                sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
                cursor = raw.cursor()
                cursor.executemany(sql, zip(*values, strict=True))
                cursor.close()
            else:
                buffer = io.StringIO()
                csv.writer(buffer).writerows(zip(*values, strict=True))
                copy_sql = f"COPY {table} ({', '.join(names)}) FROM STDIN WITH (FORMAT csv)"
                with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
                    copy.write(buffer.getvalue())
        for _, create in indexes:
            conn.execute(text(create))
    # Re-adding a foreign key checks every row in one join, where COPY would check them one by one.
    for table, name, definition in foreign_keys:
        conn.execute(text(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}'))
    if sqlite:
        conn.execute(text("ANALYZE incidents"))
        conn.execute(text("ANALYZE incident_events"))
    else:
        for table in ("incidents", "incident_events"):
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)"
                )
            )
        conn.execute(text("ANALYZE incidents, incident_events"))
