"""Shared fixtures: a real SQLite file store and, where a server is reachable, a PostgreSQL store."""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from data import store

PG_URL = os.environ.get("CITYBRAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _pg_available() -> bool:
    try:
        engine = store.make_engine(PG_URL, pool_size=1, max_overflow=0, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


PG_AVAILABLE = _pg_available()
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes():
    """Passwords hashed with a fast method in tests (scrypt's 0.1 s a hash is the point in production, and a
    minute of the suite here); tests/data/accounts/test_users.py checks that production uses scrypt."""
    from data.accounts import users

    users.PASSWORD_HASH_METHOD = "pbkdf2:sha256:1000"
    yield
    users.PASSWORD_HASH_METHOD = "scrypt"


# Files whose tests mostly wait (a 20 s outage, a session check, browsers loading pages) run first: on two
# cores their waits then overlap the CPU-bound rest instead of leaving a core idle at the end of the run.
# (xdist hands out files in this order only with --no-loadscope-reorder, as `make test` runs it; by default
# it sends the files with the most tests first.)
WAITING_FIRST = (
    "tests/browser/test_wall_faults.py",
    "tests/browser/test_auth_browser.py",
    "tests/browser/test_overview_resilience.py",
    "tests/browser/test_alerts_browser.py",
    "tests/browser/test_overview_browser.py",
    "tests/browser/test_dispatch_browser.py",
    "tests/dashboard/test_live.py",
    "tests/data/incidents/test_webhook_lease.py",
    "tests/data/incidents/test_notify_webhooks.py",
)


def _run_order(item) -> tuple[int, int]:
    path = item.nodeid.split("::", 1)[0]
    if path in WAITING_FIRST:
        return 0, WAITING_FIRST.index(path)
    return (1, 0) if "browser" in path else (2, 0)


def pytest_xdist_auto_num_workers(config):
    """`-n auto`: one worker more than the cores. The suite waits a good part of its time (browsers, servers
    starting, outages), so a third worker on two cores keeps both busy (measured: 4:41 against 4:56)."""
    return (os.cpu_count() or 1) + 1


def pytest_collection_modifyitems(items):
    """Waiting-heavy files first (WAITING_FIRST), then the other browser tests, then the rest, each in its order."""
    items.sort(key=_run_order)


def skip_or_fail(reason: str):
    """Skip on a developer's machine; in CI a missing service is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory):
    """One migrated, empty SQLite file per test process; each test gets a copy (migrating costs ~0.2 s)."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    engine = store.make_engine(f"sqlite:///{path}")
    store.migrate(engine)
    engine.dispose()  # the last connection to close checkpoints the WAL into the file
    return path


@pytest.fixture
def sqlite_engine(tmp_path, _sqlite_template):
    """A migrated, empty SQLite file store in a temporary folder."""
    for suffix in ("", "-wal"):
        if Path(f"{_sqlite_template}{suffix}").exists():
            shutil.copyfile(f"{_sqlite_template}{suffix}", tmp_path / f"store.db{suffix}")
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    yield engine
    engine.dispose()


def _new_pg_schema(admin) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    return name


def _pg_schema_engine(name: str):
    return store.make_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})


_HEADS: set[str] = set()


def _migration_heads(engine) -> set[str]:
    """The migrations' heads, read from the scripts once per test process."""
    if not _HEADS:
        from alembic.script import ScriptDirectory

        _HEADS.update(ScriptDirectory.from_config(store.alembic_config(engine)).get_heads())
    return _HEADS


def _emptied(engine) -> bool:
    """Empty every table and restart every sequence of a test's schema; False when it cannot be reused
    (a connection still holds a lock, or the test left the schema at another migration)."""
    heads = _migration_heads(engine)
    try:
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '2s'"))
            if {r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version"))} != heads:
                return False
            tables = conn.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> 'alembic_version'")
            ).scalars()
            # Replica mode skips foreign-key triggers, so tables empty in any order.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            for sequence in conn.execute(
                text("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
            ).scalars():
                conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def _pg_schemas():
    """Migrated schemas this test process reuses: emptied after each test (50x cheaper than a new one)."""
    if not PG_AVAILABLE:
        yield None
        return
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    free: list[str] = []
    made: list[str] = []
    yield admin, free, made
    with admin.begin() as conn:
        for name in made:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture
def pg_engine(_pg_schemas):
    """A migrated, empty PostgreSQL store in a schema of its own (a reused one, emptied)."""
    if not PG_AVAILABLE:
        skip_or_fail(f"no PostgreSQL server at {PG_URL}")
    admin, free, made = _pg_schemas
    if free:
        name = free.pop()  # emptied at its migrations' heads (_emptied checked): nothing to migrate
        engine = _pg_schema_engine(name)
    else:
        name = _new_pg_schema(admin)
        made.append(name)
        engine = _pg_schema_engine(name)
        store.migrate(engine)
    yield engine
    engine.dispose()
    cleaner = _pg_schema_engine(name)
    if _emptied(cleaner):
        free.append(name)
    else:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        made.remove(name)
    cleaner.dispose()


@contextlib.contextmanager
def own_pg_schema():
    """A brand-new PostgreSQL schema for servers and workers a test starts as processes of their own:
    (the URL that puts them in it, as a libpq search_path option; its name). Dropped with all in it afterwards."""
    if not PG_AVAILABLE:
        skip_or_fail(f"no PostgreSQL server at {PG_URL}")
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    name = _new_pg_schema(admin)
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{name}", name
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


@pytest.fixture
def own_pg_schema_url():
    """own_pg_schema()'s URL, for one test."""
    with own_pg_schema() as (url, _name):
        yield url


@pytest.fixture
def fresh_pg_engine():
    """A PostgreSQL store in a brand-new schema, migrated from nothing (for tests of the migration itself)."""
    if not PG_AVAILABLE:
        skip_or_fail(f"no PostgreSQL server at {PG_URL}")
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    name = _new_pg_schema(admin)
    engine = _pg_schema_engine(name)
    store.migrate(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine(request, tmp_path):
    """A store migrated from nothing, on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        return request.getfixturevalue("fresh_pg_engine")
    engine = store.make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    store.migrate(engine)
    request.addfinalizer(engine.dispose)
    return engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request):
    """The same test on a real SQLite file and on a real PostgreSQL server."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
