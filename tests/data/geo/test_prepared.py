"""Map geometry prepared once per units version: stored, shared by every process, rebuilt after an import, pruned."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, text

from data import schema, store
from data.geo import prepared
from data.geo import units as geo
from data.times import utc_now
from tests.data.geo.test_boundary_import import DISTRICTS, import_districts

P = schema.prepared_geometry


@pytest.fixture
def builds(monkeypatch):
    """Every simplification, as (level, thread name): the slow step each units version should take once."""
    made: list[tuple[int, str]] = []
    real = prepared.build_level

    def counted(conn, level):
        made.append((level, threading.current_thread().name))
        return real(conn, level)

    monkeypatch.setattr(prepared, "build_level", counted)
    return made


def _version(engine) -> str:
    with store.reading(engine) as conn:
        return geo.units_version(conn)


def _rows(engine) -> list:
    with store.reading(engine) as conn:
        return conn.execute(select(P.c.units_version, P.c.level, P.c.detail, P.c.builder, P.c.features).order_by(P.c.level)).all()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def another_engine(engine):
    """A second engine on the same store, as another process or server would have."""
    if store.is_sqlite(engine):
        return store.make_engine(engine.url.render_as_string(hide_password=False))
    from tests.conftest import _pg_schema_engine

    with engine.connect() as conn:
        return _pg_schema_engine(conn.execute(text("SELECT current_schema()")).scalar_one())


def test_a_level_is_simplified_once_then_read_from_the_store(engine, tmp_path, builds):
    import_districts(engine, tmp_path)
    version = _version(engine)
    first = prepared.prepared_level(engine, version, schema.DISTRICT)
    again = prepared.prepared_level(engine, version, schema.DISTRICT)
    assert builds == [(schema.DISTRICT, threading.current_thread().name)]
    assert sorted(again.ids.tolist()) == sorted(first.ids.tolist()) and len(again.ids) == 3
    assert again.fragments == first.fragments
    np.testing.assert_array_equal(again.bboxes, first.bboxes)
    assert b'"name_en":"West"' in b"".join(again.fragments)
    [row] = _rows(engine)
    assert (row.units_version, row.level, row.builder, row.features) == (
        version,
        schema.DISTRICT,
        prepared.this_process(),
        3,
    )


def test_the_packed_payload_round_trips():
    ids = np.array([3, 1, 2], dtype=np.int64)
    boxes = np.arange(12, dtype=float).reshape(3, 4)
    fragments = [b'{"id":3}', b"", '{"name":"渝中"}'.encode()]
    back = prepared.unpack(prepared.pack(ids, boxes, fragments))
    assert back[0].tolist() == ids.tolist() and back[1].tolist() == boxes.tolist() and back[2] == fragments


def test_a_level_without_units_packs_and_unpacks_empty():
    # A store with districts but no micro-grids yet has empty levels; their warm-up must not fail.
    back = prepared.unpack(prepared.pack(np.array([], dtype=np.int64), np.zeros((0, 4)), []))
    assert back[0].tolist() == [] and back[1].shape == (0, 4) and back[2] == []


def test_two_app_instances_on_one_store_share_the_prepared_geometry(engine, tmp_path, builds):
    """The second server (its own engine and an empty memory, as after a start) loads what the first built."""
    from app import create_app
    from dashboard import geo_routes
    from dashboard.settings import Settings
    from tests.auth_helpers import signed_in_client

    import_districts(engine, tmp_path)
    settings = Settings.from_env({}, live=False, build_demo=False)
    first = signed_in_client(create_app(settings, engine=engine, testing=True)).get("/geo/units/district.json")
    assert first.status_code == 200
    geo_routes._indexes.items.clear()  # another process: nothing in memory
    other = another_engine(engine)
    try:
        second = signed_in_client(create_app(settings, engine=other, testing=True)).get("/geo/units/district.json")
    finally:
        other.dispose()
    assert second.status_code == 200 and second.data == first.data
    assert len(builds) == 1  # the second server did not simplify
    assert [row.builder for row in _rows(engine)] == [prepared.this_process()]


def test_a_process_asking_during_a_build_waits_for_it_instead_of_building_again(engine, tmp_path, builds, caplog):
    import_districts(engine, tmp_path)
    version = _version(engine)
    caplog.set_level(logging.INFO, logger=prepared.__name__)
    release = threading.Event()
    real = prepared.simplified_geojson

    def held(conn, level, tolerance=None):
        release.wait(30)  # until the second process is waiting for this build
        return real(conn, level, tolerance)

    prepared.simplified_geojson = held
    results, engines = {}, [engine, another_engine(engine)]
    try:
        threads = [
            threading.Thread(
                target=lambda n=n: results.__setitem__(n, prepared.prepared_level(engines[n], version, schema.DISTRICT)),
                name=f"process-{n}",
            )
            for n in (0, 1)
        ]
        threads[0].start()
        wait_for(lambda: builds, timeout=10, what="the first process building")
        threads[1].start()
        wait_for(lambda: "waiting for it" in caplog.text, timeout=10, what="the second process waiting")
        release.set()
        for thread in threads:
            thread.join(30)
    finally:
        release.set()
        prepared.simplified_geojson = real
        engines[1].dispose()
    assert builds == [(schema.DISTRICT, "process-0")]
    assert results[1].fragments == results[0].fragments and len(results[1].ids) == 3


def test_an_import_bumps_the_units_version(engine, tmp_path):
    import_districts(engine, tmp_path)
    before = _version(engine)
    renamed = DISTRICTS.assign(name=["West", "East", "Harbour"])
    import_districts(engine, tmp_path / "again", frame=renamed)  # same codes, same count and ids: rewritten in place
    after_import = _version(engine)
    assert after_import != before
    from data.geo import grid as geo_grid

    with engine.begin() as conn:
        geo_grid.generate_grid_cells(conn, schema.DISTRICT, "square", 2000)
    assert _version(engine) not in (before, after_import)


def test_a_new_version_prunes_the_old_ones(engine, tmp_path, builds):
    import_districts(engine, tmp_path)
    old = _version(engine)
    for level in (schema.CITY, schema.DISTRICT):
        prepared.prepared_level(engine, old, level)
    with engine.begin() as conn:  # a row of an older level of detail (another tolerance or format)
        conn.execute(
            P.insert().values(
                units_version=old, level=schema.STREET, detail="9/0", features=0, builder="gone:1", built_at=utc_now()
            )
        )
    import_districts(engine, tmp_path / "again", frame=DISTRICTS.assign(name=["Hill", "East", "North East"]))
    new = _version(engine)
    level = prepared.prepared_level(engine, new, schema.DISTRICT)
    assert b'"name_en":"Hill"' in b"".join(level.fragments)
    assert [(row.units_version, row.level) for row in _rows(engine)] == [(new, schema.DISTRICT)]


def test_units_that_changed_during_a_build_are_not_stored_under_the_old_version(engine, tmp_path):
    import_districts(engine, tmp_path)
    stale = _version(engine)
    import_districts(engine, tmp_path / "again", frame=DISTRICTS.assign(name=["Hill", "East", "North East"]))
    level = prepared.prepared_level(engine, stale, schema.DISTRICT)  # a screen that read the version just before
    assert b'"name_en":"Hill"' in b"".join(level.fragments) and level.version == _version(engine)
    assert _rows(engine) == []  # nor a claim left behind


def _ended_process() -> str:
    """host:pid of a process of this host that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return f"{socket.gethostname()}:{done.stdout.strip()}"


@pytest.mark.parametrize("claimed", ["long ago, elsewhere", "just now, by a process that has ended"])
def test_a_claim_whose_builder_died_is_taken_over(sqlite_engine, tmp_path, builds, claimed, monkeypatch):
    def no_waiting(_seconds):
        raise AssertionError("waited for a builder that is gone")

    monkeypatch.setattr(prepared.time, "sleep", no_waiting)
    import_districts(sqlite_engine, tmp_path)
    version = _version(sqlite_engine)
    if claimed.startswith("long ago"):
        builder, at = "elsewhere:1", utc_now() - timedelta(seconds=prepared.CLAIM_SECONDS + 1)
    else:
        builder, at = _ended_process(), utc_now()
    with sqlite_engine.begin() as conn:
        conn.execute(
            P.insert().values(
                units_version=version,
                level=schema.DISTRICT,
                detail=prepared.detail_for(schema.DISTRICT),
                features=0,
                builder=builder,
                built_at=at,
            )
        )
    assert len(prepared.prepared_level(sqlite_engine, version, schema.DISTRICT).ids) == 3
    assert [row.builder for row in _rows(sqlite_engine)] == [prepared.this_process()]
    assert len(builds) == 1
