"""The secret key made when CITYBRAIN_SECRET_KEY is unset: one per store, shared by every process and restart."""

from __future__ import annotations

import multiprocessing
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from data import store
from data.secret_key import key_file_for, shared_secret_key
from tests.conftest import PG_URL


def _key_of(url: str, start) -> str:
    start.wait(10)  # every process asks at the same moment
    engine = store.make_engine(url)
    try:
        return shared_secret_key(engine)
    finally:
        engine.dispose()


def test_a_sqlite_store_keeps_its_key_in_a_file_beside_it_readable_by_the_owner_only(sqlite_engine):
    key = shared_secret_key(sqlite_engine)
    path = key_file_for(sqlite_engine)
    assert path.name == "store.db.secret-key" and str(path.parent) == os.path.dirname(sqlite_engine.url.database)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key) == 64 and path.read_text().strip() == key
    assert sorted(p.name for p in path.parent.iterdir() if "secret" in p.name) == [path.name]  # no drafts left


def test_a_restart_finds_the_same_key(sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    first = shared_secret_key(sqlite_engine)
    sqlite_engine.dispose()
    again = store.make_engine(url)
    try:
        assert shared_secret_key(again) == first
    finally:
        again.dispose()


def test_processes_starting_at_once_agree_on_one_key(sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Event()
        with context.Pool(4) as pool:
            pending = [pool.apply_async(_key_of, (url, start)) for _ in range(4)]
            start.set()
            keys = {p.get(timeout=120) for p in pending}
    assert keys == {key_file_for(sqlite_engine).read_text().strip()}


def test_a_key_file_cut_short_is_refused_rather_than_used(sqlite_engine):
    key_file_for(sqlite_engine).write_text("short\n")
    with pytest.raises(RuntimeError, match="shorter than"):
        shared_secret_key(sqlite_engine)


@pytest.mark.postgres
def test_postgres_keeps_one_key_in_the_store_for_every_server(pg_engine):
    assert key_file_for(pg_engine) is None  # a file would be per machine; the database is what servers share
    with store.reading(pg_engine) as conn:
        schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    # Four servers starting at once, each with its own engine on the same store.
    others = [store.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"}) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            keys = set(pool.map(shared_secret_key, others))
        assert len(keys) == 1
        assert shared_secret_key(pg_engine) in keys
        with store.reading(pg_engine) as conn:
            assert store.get_meta(conn, "secret_key") in keys
    finally:
        for other in others:
            other.dispose()
