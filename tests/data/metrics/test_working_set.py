"""The in-memory KPI working set gives the overview's KPIs exactly as the SQL reading does, and follows changes."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from data import schema
from data.demo.city import clear_store
from data.incidents import lifecycle
from data.incidents.transitions import apply_action
from data.metrics import working_set as kpi_set
from data.metrics.board import department_board
from data.metrics.kpis import overview_kpis
from data.metrics.scope import SCOPE_COLUMNS
from tests.data.metrics.test_kpis import NOW, TZ, _assert_kpis_match, _rows, reference_kpis, seed_history
from tests.factories import make_incident
from tests.snapshots import seeded


@pytest.fixture
def city(engine):
    """test_metrics' seeded three-day history with its edge cases."""
    return seeded(engine, "kpis-history", seed_history)


def _check(engine, working: kpi_set.WorkingSet, scope, now) -> dict:
    """The working set's KPIs at `now`, checked against the plain-Python reference and the SQL reading."""
    rows, _ = _rows(engine)
    if scope is not None:
        rows = [r for r in rows if r[SCOPE_COLUMNS[schema.DISTRICT]] == scope[1]]
    with engine.connect() as conn:
        got = working.kpis(conn, scope, now, TZ)
        sql = overview_kpis(conn, scope, now, TZ)
    _assert_kpis_match(got, reference_kpis(rows, now, TZ))
    _assert_kpis_match(got, sql)
    return got


def test_working_set_matches_the_reference_for_city_and_district_at_several_times(engine, city):
    working = kpi_set.WorkingSet()
    district = ("district", city.lattice.district_ids[1])
    for now in (NOW, NOW + timedelta(hours=3), NOW + timedelta(hours=30), NOW):  # back again: reloads the older window
        for scope in (None, district):
            got = _check(engine, working, scope, now)
    assert got["open_backlog"]["value"] > 0 and got["overdue"]["value"] > 0


def test_working_set_follows_the_change_feed(engine, city):
    working = kpi_set.WorkingSet()
    before = _check(engine, working, None, NOW)
    later = NOW + timedelta(minutes=20)
    with engine.connect() as conn:
        incidents = schema.incidents
        dispatched = conn.execute(
            incidents.select().where(incidents.c.state == lifecycle.DISPATCHED).order_by(incidents.c.id).limit(2)
        ).all()
        registered = conn.execute(
            incidents.select().where(incidents.c.state == lifecycle.REGISTERED).order_by(incidents.c.id).limit(1)
        ).all()
    assert dispatched and registered
    with engine.begin() as conn:
        apply_action(conn, dispatched[0].id, "acknowledge", actor="t", at=later - timedelta(minutes=5))
        apply_action(conn, registered[0].id, "reject", actor="t", at=later - timedelta(minutes=4), note="not ours")
        make_incident(conn, city.categories["garbage"], at=city.lattice.center(2), reported_at=later - timedelta(minutes=3))
        make_incident(conn, city.categories["garbage"], at=city.lattice.outside(), reported_at=later - timedelta(minutes=2))
    after = _check(engine, working, None, later)
    assert after["new_today"]["value"] == before["new_today"]["value"] + 2
    assert after["unlocated_open"]["value"] == before["unlocated_open"]["value"] + 1
    # The district the new report landed in follows too (the set re-read only the changed incidents).
    _check(engine, working, ("district", city.lattice.district_ids[0]), later)
    _check(engine, working, ("district", city.lattice.district_ids[1]), later)


def test_a_rebuilt_store_is_read_afresh(engine, city):
    working = kpi_set.WorkingSet()
    assert _check(engine, working, None, NOW)["open_backlog"]["value"] > 0
    # A demo build clears the store and the feed starts again: the set must not keep the old rows.
    with engine.begin() as conn:
        clear_store(conn)
    got = _check(engine, working, None, NOW)
    assert got["open_backlog"]["value"] == 0 and got["new_today"]["value"] == 0


def _same_board(got: list[dict], want: list[dict]) -> None:
    assert [r["code"] for r in got] == [r["code"] for r in want]  # the same departments, worst first
    for mine, theirs in zip(got, want, strict=True):
        for key, value in theirs.items():
            if isinstance(value, float) and mine[key] is not None:
                assert mine[key] == pytest.approx(value, abs=0.01), (theirs["code"], key)  # SQLite: milliseconds
            else:
                assert mine[key] == value, (theirs["code"], key)


def test_the_department_board_from_the_working_set_equals_the_sql_board(engine, city):
    working = kpi_set.WorkingSet()
    scopes = (None, ("district", city.lattice.district_ids[1]))
    for now in (NOW, NOW + timedelta(hours=5), NOW + timedelta(days=2)):
        for scope in scopes:
            with engine.connect() as conn:
                got, want = working.board(conn, scope, now, TZ), department_board(conn, scope, now, TZ)
            _same_board(got, want)
            assert any(r["acknowledged"] for r in want) or now > NOW + timedelta(days=1)
    # After changes (an acknowledgement, a failed verification) the board follows, as the SQL one does.
    later = NOW + timedelta(minutes=30)
    with engine.connect() as conn:
        incidents = schema.incidents
        dispatched = conn.execute(incidents.select().where(incidents.c.state == lifecycle.DISPATCHED).limit(1)).first()
        resolved = conn.execute(incidents.select().where(incidents.c.state == lifecycle.RESOLVED).limit(1)).first()
    with engine.begin() as conn:
        apply_action(conn, dispatched.id, "acknowledge", actor="t", at=later - timedelta(minutes=2))
        if resolved is not None:
            apply_action(conn, resolved.id, "verify_fail", actor="t", at=later - timedelta(minutes=1), note="still broken")
    for scope in scopes:
        with engine.connect() as conn:
            _same_board(working.board(conn, scope, later, TZ), department_board(conn, scope, later, TZ))


def test_while_a_start_loads_the_set_the_statements_answer_instead_of_waiting(engine, city):
    """The first screen after a start must not wait seconds for the warm-up's load of the set."""
    with engine.connect() as conn:
        working = kpi_set._working_set(conn)
        want_kpis, want_board = overview_kpis(conn, None, NOW, TZ), department_board(conn, None, NOW, TZ)
    answered: dict = {}

    def screen():
        with engine.connect() as conn:
            answered["kpis"] = kpi_set.overview_kpis(conn, None, NOW, TZ)
            answered["board"] = kpi_set.department_board(conn, None, NOW, TZ)

    with working._lock:  # the warm-up's first load, still running
        reader = threading.Thread(target=screen, daemon=True)
        reader.start()
        reader.join(30)
        assert not reader.is_alive(), "the screen waited for the working set's load"
    _assert_kpis_match(answered["kpis"], want_kpis)
    _same_board(answered["board"], want_board)
