"""The demo city: real districts subdivided into grids, a history true to the closed loop, and the live simulator."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import func, select

from data import schema, store
from data.demo.city import build_demo, ensure_demo
from data.demo.simulator import Simulator
from data.errors import ValidationError
from data.incidents import lifecycle
from data.incidents.clock import overdue_expression
from data.jobs.catalogue import simulator_job
from data.jobs.runner import start_jobs
from data.times import from_db

NOW = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
SMALL = {"grids": 200, "days": 5, "per_day": 100, "seed": 7, "now": NOW}
DISTRICTS = {
    ("Yuzhong District", "渝中区"),
    ("Jiangbei District", "江北区"),
    ("Nan'an District", "南岸区"),
    ("Jiulongpo District", "九龙坡区"),
    ("Shapingba District", "沙坪坝区"),
    ("Dadukou District", "大渡口区"),
    ("Beibei District", "北碚区"),
    ("Yubei District", "渝北区"),
    ("Banan District", "巴南区"),
}
U, INC, E = schema.units, schema.incidents, schema.incident_events


def _units(conn, level: int) -> dict[int, object]:
    return {r.id: r for r in conn.execute(select(U).where(U.c.level == level))}


def _events_by_incident(conn) -> dict[int, list]:
    events = defaultdict(list)
    for r in conn.execute(select(E).order_by(E.c.id)):
        events[r.incident_id].append(r)
    return events


def _snapshot(engine) -> dict:
    """What a user would compare between two builds: units, workers and incidents by their codes."""
    with store.reading(engine) as conn:
        return {
            "units": sorted(conn.execute(select(U.c.code, U.c.level, U.c.name_en, U.c.name_zh, U.c.geom)).all()),
            "workers": sorted(conn.execute(select(schema.workers.c.code, schema.workers.c.name_zh)).all()),
            "incidents": sorted(
                (r.external_id, r.state, r.priority, from_db(r.reported_at), r.lon, r.lat, r.version)
                for r in conn.execute(select(INC))
            ),
        }


def test_the_demo_city_is_chongqing_central_urban_area_named_in_both_languages(engine):
    report = build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        districts = _units(conn, schema.DISTRICT)
        assert {(d.name_en, d.name_zh) for d in districts.values()} == DISTRICTS
        assert {d.code for d in districts.values()} >= {"500103", "500112"}
        (city,) = _units(conn, schema.CITY).values()
        assert all(d.parent_id == city.id for d in districts.values())
        streets, communities = _units(conn, schema.STREET), _units(conn, schema.COMMUNITY)
        assert all(s.name_zh.endswith("街道") and s.name_en.endswith("Subdistrict") for s in streets.values())
        assert all(c.name_zh.endswith("社区") and c.name_en.endswith("Community") for c in communities.values())
        assert len({c.name_zh for c in communities.values()}) == len(communities)
        assert store.counts(conn)["grids"] == 200 == report.units["grid"]
        assert 9 <= len(streets) < len(communities) < 200
        assert store.get_meta(conn, "city_name_zh") == "重庆市中心城区"
        assert store.get_meta(conn, "demo_built_at") == NOW.isoformat()


def test_every_grid_has_its_ancestors_a_worker_and_lies_inside_its_district(engine):
    build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        districts, streets = _units(conn, schema.DISTRICT), _units(conn, schema.STREET)
        communities, grids = _units(conn, schema.COMMUNITY), _units(conn, schema.GRID)
        district_geoms = {i: shapely.from_wkb(d.geom) for i, d in districts.items()}
        workers = conn.execute(select(schema.workers)).all()
        duties = defaultdict(set)
        for r in conn.execute(select(schema.worker_duties)):
            duties[r.worker_id].add(r.category_id)
        worker_ok = set(
            conn.execute(select(schema.categories.c.id).where(schema.categories.c.grid_worker_ok.is_(True))).scalars()
        )

    for grid in grids.values():
        community = communities[grid.parent_id]
        street = streets[community.parent_id]
        assert (grid.community_id, grid.street_id, grid.district_id) == (community.id, street.id, street.parent_id)
        geom = shapely.from_wkb(grid.geom)
        assert geom.is_valid and geom.area > 0
        outside = geom.difference(district_geoms[grid.district_id]).area
        assert outside <= geom.area * 1e-6, f"grid {grid.code} pokes out of its district"
    # The grids tile the districts: no gaps, no overlaps.
    grid_area = sum(g.area_m2 for g in grids.values())
    district_area = sum(d.area_m2 for d in districts.values())
    assert grid_area == pytest.approx(district_area, rel=1e-4)

    assert sorted(w.grid_id for w in workers) == sorted(grids)
    assert all(w.name_en and w.name_zh for w in workers)
    assert len(worker_ok) >= 5
    assert all(duties[w.id] == worker_ok for w in workers)


def test_the_catalogue_has_departments_and_categories_across_the_four_sectors_with_limits(engine):
    build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        departments = conn.execute(select(schema.departments)).all()
        categories = conn.execute(select(schema.categories)).all()
        limits = conn.execute(select(schema.category_limits)).all()
    assert 12 <= len(departments) <= 20
    assert {"城市管理局", "公安分局", "消防救援支队", "市场监督管理局", "生态环境局", "民政局", "司法局"} <= {
        d.name_zh for d in departments
    }
    assert 25 <= len(categories) <= 40
    assert {c.sector for c in categories} == set(lifecycle.SECTORS)
    by_category = defaultdict(dict)
    for row in limits:
        by_category[row.category_id][row.priority] = (row.ack_minutes, row.handle_minutes)
    for category in categories:
        per_priority = by_category[category.id]
        assert sorted(per_priority) == [1, 2, 3]
        # Urgent matters never get more time than normal ones.
        assert per_priority[1][0] <= per_priority[3][0] and per_priority[1][1] <= per_priority[3][1]
        assert all(ack < handle for ack, handle in per_priority.values())


def test_every_historical_incident_agrees_with_the_state_machine_and_its_audit_log(engine):
    report = build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        incidents = conn.execute(select(INC)).all()
        events = _events_by_incident(conn)
        limits = {(r.category_id, r.priority): r for r in conn.execute(select(schema.category_limits))}
    assert len(incidents) == report.incidents > 300
    actions_seen = set()
    for row in incidents:
        log = events[row.id]
        actions = [e.action for e in log]
        actions_seen.update(actions)
        assert (log[0].action, log[0].from_state, log[0].to_state) == ("report", None, "reported")
        assert from_db(log[0].at) == from_db(row.reported_at)
        assert lifecycle.replay(actions) == row.state
        assert all(a.to_state == b.from_state for a, b in zip(log, log[1:], strict=False))
        times = [from_db(e.at) for e in log]
        assert times == sorted(times) and times[-1] <= NOW
        assert row.version == len(log) and from_db(row.updated_at) == times[-1]
        assert row.is_open == (row.state in lifecycle.OPEN_STATES)
        assert row.reopen_count == actions.count("verify_fail")
        assert row.escalation_level == actions.count("escalate")
        assert (row.satisfaction is not None) == ("rate" in actions)
        if row.dispatched_at is not None:
            limit = limits[(row.category_id, row.priority)]
            dispatched = from_db(row.dispatched_at)
            assert from_db(row.ack_due_at) == dispatched + timedelta(minutes=limit.ack_minutes)
            # Extensions granted since the last dispatch move the handling deadline.
            last_dispatch = max(k for k, action in enumerate(actions) if action == "dispatch")
            granted = sum(e.data["minutes"] for e in log[last_dispatch:] if e.action == "extend")
            assert from_db(row.handle_due_at) == dispatched + timedelta(minutes=limit.handle_minutes + granted)
            assert row.extension_minutes == sum(e.data["minutes"] for e in log if e.action == "extend")
        if row.acknowledged_at is not None:
            assert row.ack_late == (from_db(row.acknowledged_at) > from_db(row.ack_due_at))
        if row.state == lifecycle.CLOSED:
            assert row.closed_at is not None and row.resolved_at is not None
    # The loop's side branches all occur, not just the straight path.
    assert {"merge", "reject", "verify_fail", "escalate", "return", "extend", "rate"} <= actions_seen


def test_recent_incidents_are_still_open_at_several_stages_and_unlocated_ones_are_kept(engine):
    report = build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        open_states = conn.execute(select(INC.c.state).where(INC.c.is_open.is_(True))).scalars().all()
        overdue = conn.execute(select(func.count()).select_from(INC).where(overdue_expression(NOW))).scalar_one()
        unlocated = conn.execute(select(INC).where(INC.c.unlocated.is_(True))).all()
        total = store.counts(conn)["incidents"]
    assert len(set(open_states)) >= 3 and {"dispatched", "acknowledged"} <= set(open_states)
    assert overdue > 0
    assert report.unlocated == len(unlocated) > 0 and total == report.incidents
    assert all(r.grid_id is None and r.community_id is None and r.street_id is None and r.district_id is None for r in unlocated)


def test_the_same_seed_builds_the_same_city_and_a_rebuild_replaces_it(engine):
    build_demo(engine, **SMALL)
    first = _snapshot(engine)
    build_demo(engine, **SMALL)
    assert _snapshot(engine) == first
    build_demo(engine, **{**SMALL, "seed": 8})
    other = _snapshot(engine)
    assert len(other["units"]) >= len([u for u in first["units"] if u.level <= schema.DISTRICT])
    assert [u.geom for u in other["units"]] != [u.geom for u in first["units"]]
    with store.reading(engine) as conn:
        assert store.counts(conn)["grids"] == 200


def test_ensure_demo_builds_only_when_the_store_has_no_units(engine):
    assert ensure_demo(engine, grids=150, days=2, per_day=50) is not None
    with store.reading(engine) as conn:
        built_at, head = store.get_meta(conn, "demo_built_at"), store.feed_head(conn)
    assert head > 0
    assert ensure_demo(engine, grids=300, days=2, per_day=50) is None
    with store.reading(engine) as conn:
        assert store.get_meta(conn, "demo_built_at") == built_at and store.feed_head(conn) == head
        assert store.counts(conn)["grids"] == 150


def test_bad_build_arguments_are_refused_and_change_nothing(engine):
    build_demo(engine, **SMALL)
    before = _snapshot(engine)
    for bad in ({"grids": 5}, {"days": -1}, {"per_day": -3}):
        with pytest.raises(ValidationError):
            build_demo(engine, **{**SMALL, **bad})
    assert _snapshot(engine) == before


def test_a_simulator_tick_moves_the_city_on_through_audited_events(engine):
    build_demo(engine, **SMALL)
    with store.reading(engine) as conn:
        head = store.feed_head(conn)
        versions = dict(conn.execute(select(INC.c.id, INC.c.version)).all())
    simulator = Simulator(engine, speed=20, seed=3)
    result = simulator.tick(now=NOW + timedelta(minutes=1), seconds=60)
    assert result.reported > 0 and sum(result.actions.values()) > 0
    with store.reading(engine) as conn:
        new_events = conn.execute(select(E).where(E.c.id > head).order_by(E.c.id)).all()
        events = _events_by_incident(conn)
        changed = conn.execute(select(INC).where(INC.c.id.in_({e.incident_id for e in new_events}))).all()
    assert len(new_events) == result.reported + sum(result.actions.values())
    assert all(e.actor and from_db(e.at) <= NOW + timedelta(minutes=1) for e in new_events)
    for row in changed:
        log = events[row.id]
        assert lifecycle.replay([e.action for e in log]) == row.state and row.version == len(log)
        if row.id in versions:
            assert row.version > versions[row.id]
        else:
            assert log[0].action == "report" and row.external_id.startswith("live-")


def test_the_background_simulator_keeps_writing_until_stopped(sqlite_engine):
    build_demo(sqlite_engine, **{**SMALL, "now": None})
    with store.reading(sqlite_engine) as conn:
        head = store.feed_head(conn)
    background = start_jobs(sqlite_engine, [simulator_job(sqlite_engine, "Asia/Shanghai", every=0.2, speed=600)])
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.2)
            with store.reading(sqlite_engine) as conn:
                if store.feed_head(conn) > head:
                    break
        else:
            pytest.fail("the background simulator wrote nothing in 20 s")
    finally:
        background.stop()
    assert not background.runner("simulator").is_alive()


def test_the_demo_command_builds_the_city_and_says_what_it_made(tmp_path, monkeypatch):
    from app import cli

    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    result = CliRunner().invoke(cli, ["demo", "--grids", "120", "--days", "1", "--per-day", "40", "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "9 districts" in result.output and "120 grids" in result.output
    bad = CliRunner().invoke(cli, ["demo", "--grids", "3"])
    assert bad.exit_code != 0 and "grids must be between" in bad.output
