"""Seed a store once per test process and kind of seed; later tests get the same rows copied in.

Seeding a city with a history runs the lifecycle for every case (1-2 s a test); copying its rows into
the next test's empty store takes a few milliseconds. The copy is exact: every table's rows, with
their ids, and the id counters (PostgreSQL sequences, SQLite's sqlite_sequence), so what the seed
returned (ids of units, categories, departments) holds for the copy too.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import MetaData, text

T = TypeVar("T")


@dataclass
class _Snapshot:
    returned: Any
    tables: list  # reflected Table objects, parents before children
    rows: dict[str, list[dict]]  # PostgreSQL: each table's rows
    counters: list[tuple]  # PostgreSQL: (sequence, last value)
    copy: str | None = None  # SQLite: a copy of the whole file (VACUUM INTO), attached to read from


_taken: dict[tuple[str, str], _Snapshot] = {}


def seeded(engine, key: str, build: Callable[[Any], T]) -> T:
    """build(engine) the first time `key` is asked for on this kind of store; afterwards its rows, copied in.

    `engine` must be an empty, migrated store (the `engine` fixtures give one); `build` must depend on
    nothing but the store (a pinned clock, a seeded random generator)."""
    snapshot = _taken.get((key, engine.dialect.name))
    if snapshot is None:
        returned = build(engine)
        _taken[(key, engine.dialect.name)] = _take(engine, returned)
        return returned
    (_restore_postgres if engine.dialect.name == "postgresql" else _restore_sqlite)(engine, snapshot)
    return snapshot.returned


def _take(engine, returned) -> _Snapshot:
    metadata = MetaData()
    with engine.connect() as conn:
        metadata.reflect(conn)
        tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
        if engine.dialect.name != "postgresql":
            return _Snapshot(returned, tables, {}, [], _vacuum_into(engine))
        rows = {table.name: [dict(r._mapping) for r in conn.execute(table.select())] for table in tables}
        counters = conn.execute(
            text("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = current_schema()")
        ).all()
    return _Snapshot(returned, tables, rows, [tuple(c) for c in counters if c[1] is not None])


def _vacuum_into(engine) -> str:
    copy = str(Path(tempfile.mkdtemp(prefix="snapshot-")) / "store.db")
    raw = engine.raw_connection()  # VACUUM runs outside a transaction: SQLAlchemy would have begun one
    try:
        raw.cursor().execute("VACUUM INTO ?", (copy,))
    finally:
        raw.close()
    return copy


def _restore_postgres(engine, snapshot: _Snapshot) -> None:
    with engine.begin() as conn:
        # Replica mode: foreign keys are not checked by triggers (a case may point at one inserted later)
        # and the feed's NOTIFY trigger stays quiet.
        conn.execute(text("SET LOCAL session_replication_role = replica"))
        for table in reversed(snapshot.tables):  # whatever the migrations put in goes: the copy is the seed's
            conn.execute(table.delete())
        for table in snapshot.tables:
            if snapshot.rows[table.name]:
                conn.execute(table.insert(), snapshot.rows[table.name])
        for name, value in snapshot.counters:
            conn.execute(text("SELECT setval(:name, :value)"), {"name": name, "value": value})


def _restore_sqlite(engine, snapshot: _Snapshot) -> None:
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("ATTACH DATABASE ? AS snapshot", (snapshot.copy,))
        cursor.execute("BEGIN IMMEDIATE")
        cursor.execute("PRAGMA defer_foreign_keys = ON")  # a row may point at one inserted later
        for table in reversed(snapshot.tables):  # whatever the migrations put in goes: the copy is the seed's
            cursor.execute(f'DELETE FROM main."{table.name}"')
        for table in snapshot.tables:
            cursor.execute(f'INSERT INTO main."{table.name}" SELECT * FROM snapshot."{table.name}"')
        # Inserting rows with their ids made SQLite's counters (sqlite_sequence, for AUTOINCREMENT tables)
        # at least the highest id; the seed's own counters may be higher still (rows it deleted).
        if cursor.execute("SELECT 1 FROM snapshot.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            cursor.execute(
                "UPDATE main.sqlite_sequence SET seq = (SELECT s.seq FROM snapshot.sqlite_sequence s"
                " WHERE s.name = main.sqlite_sequence.name) WHERE name IN (SELECT name FROM snapshot.sqlite_sequence)"
            )
        cursor.execute("COMMIT")
        cursor.execute("DETACH DATABASE snapshot")
    finally:
        raw.close()
