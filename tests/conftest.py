"""Shared fixtures: a real SQLite file store and, where a server is reachable, a PostgreSQL store."""

from __future__ import annotations

import os
import uuid

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


def skip_or_fail(reason: str):
    """Skip on a developer's machine; in CI a missing service is a failure, never a silent skip."""
    if IN_CI:
        pytest.fail(f"required in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def sqlite_engine(tmp_path):
    """A migrated, empty SQLite file store in a temporary folder."""
    engine = store.make_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def pg_engine():
    """A migrated, empty PostgreSQL store in a schema of its own, dropped afterwards."""
    if not PG_AVAILABLE:
        skip_or_fail(f"no PostgreSQL server at {PG_URL}")
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    engine = store.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema_name}"})
    store.migrate(engine)
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request):
    """The same test on a real SQLite file and on a real PostgreSQL server."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")
