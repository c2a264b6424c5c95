"""Engine and connection helpers: SQLite (WAL) by default, PostgreSQL (psycopg 3) by URL; migrations."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import Connection, make_url

from data import deadlines, schema

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for any PostgreSQL URL, whatever driver name the user wrote."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername != "postgresql+psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


# A connection may be held this long unless a caller says otherwise (data/deadlines.py).
DEFAULT_TIMEOUT_SECONDS = 60.0


def make_engine(url: str, timeout: float = DEFAULT_TIMEOUT_SECONDS, **kwargs) -> Engine:
    """An engine for `url`; SQLite files get WAL, foreign keys and a generous busy timeout; PostgreSQL
    connections have connect, keepalive and hold time-outs (`timeout` seconds, data/deadlines.py)."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # Let SQLAlchemy issue BEGIN itself so writers take the lock at the start (BEGIN IMMEDIATE).
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    # Waiting for a free pooled connection is bounded too; the checkout ping is deadlines.guard's.
    kwargs.setdefault("pool_timeout", min(timeout, 10.0))
    connect_args = {
        "connect_timeout": 2,  # libpq (its minimum): the whole handshake, so a stalled server cannot hold a new connection
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 3,
        "keepalives_count": 3,
        "tcp_user_timeout": 10000,  # ms: unacknowledged data (a cut network) fails the socket
        **kwargs.pop("connect_args", {}),
    }
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    deadlines.guard(engine, timeout)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # autocommit at the driver; we send BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # IMMEDIATE takes the write lock up front, so two writers queue instead of failing with
    # "database is locked" when one upgrades a read lock; readers are never blocked under WAL.
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.info.get("write", True) else "BEGIN")


def is_sqlite(engine_or_conn) -> bool:
    """Whether this engine or connection talks to SQLite."""
    return engine_or_conn.dialect.name == "sqlite"


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads only (a deferred transaction on SQLite, never blocking writers)."""
    with engine.connect() as conn:
        conn.info["write"] = False
        try:
            with conn.begin():
                yield conn
        finally:
            conn.info["write"] = True


def alembic_config(engine: Engine):
    """An Alembic config pointing at our migrations and this engine."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (creates every table on an empty database)."""
    from alembic import command

    with deadlines.time_limit(math.inf):  # a migration at a million rows takes what it takes
        _upgrade(engine, command)


def _upgrade(engine: Engine, command) -> None:
    if is_sqlite(engine):
        command.upgrade(alembic_config(engine), "heads")
        return
    # Several gunicorn workers may start at once: one migrates, the others wait for it.
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(727001, hashtext(current_schema()))"))
        try:
            command.upgrade(alembic_config(engine), "heads")
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(727001, hashtext(current_schema()))"))
            conn.commit()


def get_meta(conn: Connection, key: str, default: str | None = None) -> str | None:
    """One value of the meta table."""
    value = conn.execute(select(schema.meta_kv.c.value).where(schema.meta_kv.c.key == key)).scalar()
    return default if value is None else value


def set_meta(conn: Connection, key: str, value: str) -> None:
    """Insert or replace one value of the meta table."""
    conn.execute(schema.meta_kv.delete().where(schema.meta_kv.c.key == key))
    conn.execute(schema.meta_kv.insert().values(key=key, value=value))


def feed_head(conn: Connection) -> int:
    """The newest change-feed id: also the store-wide change counter caches key on."""
    return conn.execute(select(func.coalesce(func.max(schema.incident_events.c.id), 0))).scalar_one()


def counts(conn: Connection) -> dict[str, int]:
    """The headline counts /healthz reports."""
    u, i = schema.units, schema.incidents
    return {
        "grids": conn.execute(select(func.count()).select_from(u).where(u.c.level == schema.GRID)).scalar_one(),
        "incidents": conn.execute(select(func.count()).select_from(i)).scalar_one(),
        "open_incidents": conn.execute(select(func.count()).select_from(i).where(i.c.is_open.is_(True))).scalar_one(),
    }


def ping(engine: Engine) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.info["write"] = False
        conn.execute(text("SELECT 1"))
