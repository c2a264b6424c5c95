"""The store's own secret key: made once when CITYBRAIN_SECRET_KEY is unset, kept beside the store, shared by every process.

Sessions and CSRF tokens are signed with the Flask secret key, so every web worker, every server and
every restart must hold the same one. When the operator sets none, the first process to start makes
one and every later process finds it:

- a SQLite file store: a file next to the database (`<database>.secret-key`), mode 0600. A SQLite
  store is served from the one machine that holds its file, so every process there finds the key,
  and the key stays out of the database file and its copies.
- PostgreSQL (and a store without a file): a row of the store's `meta` table, inserted if absent.
  Every server of a multi-server deployment reaches the same database, whereas a file would be per
  machine: each server would make its own key and refuse the sessions the others signed.

Either way several processes starting at once agree: the key is written so that exactly one write
wins (a hard link that fails when the file exists; an INSERT ... ON CONFLICT DO NOTHING), and every
process reads back the winner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from data import schema, store

log = logging.getLogger(__name__)

META_KEY = "secret_key"
FILE_SUFFIX = ".secret-key"
MIN_CHARS = 32  # a key shorter than this was not made here (or the file was cut short): refuse it


def shared_secret_key(engine: Engine) -> str:
    """The store's secret key, made on first use: from the file beside a SQLite database, else from the meta table."""
    key_file = key_file_for(engine)
    if key_file is not None:
        return _from_file(key_file)
    return _from_meta(engine)


def key_file_for(engine: Engine) -> Path | None:
    """Where a SQLite file store keeps its key; None for PostgreSQL and in-memory SQLite (the meta table keeps it)."""
    if not store.is_sqlite(engine):
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    path = Path(database)
    return path.with_name(path.name + FILE_SUFFIX)


def _from_file(path: Path) -> str:
    if not path.exists():
        _create_once(path, secrets.token_hex(32))
    if path.stat().st_mode & 0o077:
        log.warning("%s can be read by other users than the service's: chmod 600 it", path)
    return _checked(path.read_text(encoding="ascii").strip(), str(path))


def _create_once(path: Path, key: str) -> None:
    """Write `key` to `path` unless another process got there first: written whole to a private file (0600 from the
    start, never readable by others), then linked into place, which fails when `path` exists. A reader
    therefore never sees a half-written key, and the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(key + "\n")
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # another process made it first: its key is the one
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)


def _from_meta(engine: Engine) -> str:
    meta = schema.meta_kv
    insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert
    with engine.begin() as conn:
        # Several servers starting at once: the first insert wins, the others wait for it and read it back.
        conn.execute(insert(meta).values(key=META_KEY, value=secrets.token_hex(32)).on_conflict_do_nothing())
        key = conn.execute(select(meta.c.value).where(meta.c.key == META_KEY)).scalar_one()
    return _checked(key.strip(), "the store's meta table")


def _checked(key: str, where: str) -> str:
    if len(key) < MIN_CHARS:
        raise RuntimeError(
            f"the secret key in {where} is shorter than {MIN_CHARS} characters; remove it to make a new one "
            "(everyone is signed out) or set CITYBRAIN_SECRET_KEY"
        )
    return key
