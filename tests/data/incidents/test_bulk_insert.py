"""The file import's writers: every incident with its one report event, and on PostgreSQL the COPY path that
takes the change feed's lock late giving way to any other writer instead of failing it or duplicating a report."""

from __future__ import annotations

import csv
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from data import schema
from data.incidents.feed import lock_change_feed
from data.incidents.file_import import import_incident_file
from data.incidents.file_reading import ColumnMapping
from data.incidents.intake import locate_reports, report_checked_incidents, report_incidents
from tests.factories import make_world

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
INC, EV = schema.incidents, schema.incident_events


def _checked(world, keys: list[str], source: str = "hotline") -> list[dict]:
    """Records as the file import's checker hands them to a writer: typed and located."""
    records = []
    for i, key in enumerate(keys):
        lon, lat = world.lattice.center(i % len(world.lattice.grid_ids))
        records.append(
            {
                "source": source,
                "external_id": key,
                "category_id": world.categories["garbage"],
                "priority": 3,
                "description": f"overflowing bin {key}",
                "address": None,
                "lon": lon,
                "lat": lat,
                "reported_at": NOW - timedelta(minutes=i),
            }
        )
    locate_reports(world.locator, records)
    return records


def _stored(engine, source: str, external_id: str) -> tuple[int, int]:
    """(incidents, report events) stored for one (source, external_id)."""
    with engine.connect() as conn:
        ids = conn.execute(select(INC.c.id).where(INC.c.source == source, INC.c.external_id == external_id)).scalars().all()
        events = conn.execute(select(func.count()).select_from(EV).where(EV.c.incident_id.in_(ids), EV.c.action == "report"))
        return len(ids), events.scalar_one()


def test_every_imported_incident_has_one_report_event_at_its_report_time(engine, tmp_path):
    with engine.begin() as conn:
        world = make_world(conn)
    path = tmp_path / "cases.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "time", "lon", "lat", "category"])
        for i in range(2500):
            lon, lat = world.lattice.center(i % len(world.lattice.grid_ids))
            out.writerow([f"c{i}", (NOW - timedelta(minutes=i)).strftime("%Y-%m-%dT%H:%M:%SZ"), lon, lat, "garbage"])

    report = import_incident_file(engine, path, ColumnMapping(), source="hotline", crs="EPSG:4326", now=NOW, chunk_rows=400)

    assert report.imported == 2500 and report.rejected == 0
    with engine.connect() as conn:
        rows = conn.execute(
            select(INC.c.external_id, INC.c.reported_at, EV.c.at, EV.c.to_state).join(EV, EV.c.incident_id == INC.c.id)
        ).all()
    assert len(rows) == 2500 and len({r.external_id for r in rows}) == 2500
    assert all(r.at == r.reported_at and r.to_state == "reported" for r in rows)


def test_copy_gives_way_to_a_report_stored_after_the_import_looked(pg_engine):
    """Between the import's check for known ids and its COPY another writer stored one of the rows:
    COPY would fail on it, so the piece is written the usual way and that row is reported as known."""
    with pg_engine.begin() as conn:
        world = make_world(conn)
        earlier = report_incidents(conn, [_api_row(world, "k1")], actor="api:hotline", locator=world.locator)[0]

    with pg_engine.begin() as conn:
        results = report_checked_incidents(conn, _checked(world, ["k0", "k1", "k2"]), actor="import:test", copy=True)

    assert [r.created for r in results] == [True, False, True]
    assert results[1].incident_id == earlier.incident_id
    assert [_stored(pg_engine, "hotline", k) for k in ("k0", "k1", "k2")] == [(1, 1)] * 3


def test_a_report_sent_while_an_import_holds_the_same_row_is_stored_once_and_neither_fails(pg_engine):
    """The import COPYs its rows before taking the change feed's lock. A writer that holds the lock and
    then reports one of those rows waits for the import, which waits for the lock: the import steps back
    within LATE_LOCK_TIMEOUT (before PostgreSQL would call it a deadlock and fail one of them), the other
    writer stores the report, and the import then finds it stored."""
    with pg_engine.begin() as conn:
        world = make_world(conn)
    api = pg_engine.connect()
    api_transaction = api.begin()
    lock_change_feed(api)  # the API writer holds the lock from here to its commit

    outcome: dict = {}

    def import_piece():
        with pg_engine.begin() as conn:
            outcome["pid"] = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            outcome["results"] = report_checked_incidents(
                conn, _checked(world, ["d0", "d1", "d2"]), actor="import:test", copy=True
            )

    writer = threading.Thread(target=import_piece)
    writer.start()
    # The import has written its rows and queues for the lock.
    _wait_until_waiting(
        pg_engine, lambda: outcome.get("pid", -1), "advisory", "the import never queued for the change feed's lock"
    )
    sent = report_incidents(api, [_api_row(world, "d1")], actor="api:hotline", locator=world.locator)[0]
    api_transaction.commit()
    api.close()
    writer.join(timeout=30)

    assert sent.created
    assert [r.created for r in outcome["results"]] == [True, False, True]
    assert outcome["results"][1].incident_id == sent.incident_id
    assert [_stored(pg_engine, "hotline", k) for k in ("d0", "d1", "d2")] == [(1, 1)] * 3


def _wait_until_waiting(engine, pid_of, locktype: str, failure: str) -> None:
    """Poll pg_locks until the backend `pid_of()` waits for a lock of `locktype` (10 s at most)."""
    deadline = time.monotonic() + 10
    with engine.connect() as watcher:
        while not watcher.execute(
            text("SELECT count(*) FROM pg_locks WHERE pid = :pid AND locktype = :type AND NOT granted"),
            {"pid": pid_of(), "type": locktype},
        ).scalar_one():
            assert time.monotonic() < deadline, failure
            time.sleep(0.01)


def _api_row(world, external_id: str) -> dict:
    lon, lat = world.lattice.center(0)
    return {"source": "hotline", "external_id": external_id, "category_code": "garbage", "lon": lon, "lat": lat}


def test_the_import_steps_back_even_when_the_other_writer_began_waiting_first(pg_engine, monkeypatch):
    """The harder order: the other writer queues for the import's row before the import asks for the lock.
    PostgreSQL's deadlock check would then fail the other writer (it waited longest); the import's short
    lock timeout makes it step back first."""
    from data.incidents import bulk_insert

    with pg_engine.begin() as conn:
        world = make_world(conn)
    api = pg_engine.connect()
    api_transaction = api.begin()
    lock_change_feed(api)
    api_pid = api.execute(text("SELECT pg_backend_pid()")).scalar_one()

    copied, api_waiting = threading.Event(), threading.Event()
    real_lock = bulk_insert.lock_change_feed

    def lock_after_the_api_queued(conn):
        if threading.current_thread().name == "import-piece" and not copied.is_set():
            copied.set()
            assert api_waiting.wait(10)
        real_lock(conn)

    monkeypatch.setattr(bulk_insert, "lock_change_feed", lock_after_the_api_queued)
    outcome: dict = {}

    def import_piece():
        with pg_engine.begin() as conn:
            outcome["results"] = report_checked_incidents(conn, _checked(world, ["w0", "w1"]), actor="import:test", copy=True)

    def send():
        outcome["sent"] = report_incidents(api, [_api_row(world, "w1")], actor="api:hotline", locator=world.locator)[0]

    writer = threading.Thread(target=import_piece, name="import-piece")
    writer.start()
    assert copied.wait(10)
    sender = threading.Thread(target=send)
    sender.start()
    _wait_until_waiting(pg_engine, lambda: api_pid, "transactionid", "the API writer never queued for the import's row")
    api_waiting.set()
    sender.join(timeout=30)
    api_transaction.commit()
    api.close()
    writer.join(timeout=30)

    assert outcome["sent"].created
    assert [r.created for r in outcome["results"]] == [True, False]
    assert [_stored(pg_engine, "hotline", k) for k in ("w0", "w1")] == [(1, 1)] * 2


def test_copy_stores_awkward_text_and_missing_positions_exactly(pg_engine, monkeypatch):
    """COPY's text format has its own escapes (tab, newline, backslash, \\N): a description using them,
    an address, and a row with no position must come back exactly as reported."""
    from data.incidents import bulk_insert

    def no_fallback(*args):
        raise AssertionError("COPY gave way: this test is about what COPY stores")

    monkeypatch.setattr(bulk_insert, "_insert_new", no_fallback)
    with pg_engine.begin() as conn:
        world = make_world(conn)
    records = _checked(world, ["t0", "t1"])
    records[0].update(description="bin\tfull\nagain \\ and \\N, 垃圾满溢", address="渝中区 解放碑\\1号")
    records[1].update(lon=None, lat=None)
    locate_reports(world.locator, records)

    with pg_engine.begin() as conn:
        results = report_checked_incidents(conn, records, actor="import:test", copy=True)

    with pg_engine.connect() as conn:
        rows = {
            r.external_id: r
            for r in conn.execute(
                select(INC.c.external_id, INC.c.description, INC.c.address, INC.c.lon, INC.c.unlocated, INC.c.grid_id)
            )
        }
    assert [r.created for r in results] == [True, True]
    assert rows["t0"].description == records[0]["description"] and rows["t0"].address == records[0]["address"]
    assert rows["t0"].grid_id is not None and not rows["t0"].unlocated
    assert rows["t1"].lon is None and rows["t1"].unlocated and rows["t1"].grid_id is None
