"""A desk click is acted on only while it fits: the case still at the version the dispatcher saw, the click a few seconds old."""

from __future__ import annotations

from datetime import timedelta

import pytest

from data.errors import Conflict, LateClick
from data.incidents import dispatch, lifecycle
from data.incidents.feed import get_incident
from data.times import utc_now
from tests.factories import drive_to, make_incident, make_world


@pytest.fixture
def case(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        return world, drive_to(conn, incident_id, lifecycle.REGISTERED)


def test_a_fresh_click_on_the_version_seen_is_acted_on(engine, case):
    _world, row = case
    with engine.begin() as conn:
        fits = dispatch.check_click(conn, row["id"], actor="alice", seen_version=row["version"], clicked_at=utc_now())
        assert fits["version"] == row["version"]
        assert dispatch.dispatch(conn, row["id"], actor="alice", expected_version=row["version"])["state"] == "dispatched"


def test_a_click_that_arrives_late_is_refused_with_the_case_as_it_is_whatever_its_state(engine, case):
    _world, row = case
    clicked = utc_now()
    with engine.begin() as conn:
        dispatch.check_click(  # just inside the limit
            conn, row["id"], actor="alice", seen_version=row["version"], clicked_at=clicked, now=clicked + dispatch.CLICK_MAX_AGE
        )
    with engine.begin() as conn, pytest.raises(LateClick) as late:
        dispatch.check_click(
            conn, row["id"], actor="alice", seen_version=row["version"], clicked_at=clicked - timedelta(seconds=20)
        )
    assert (late.value.current_state, late.value.current_version) == (lifecycle.REGISTERED, row["version"])
    assert late.value.age_seconds >= 20 and isinstance(late.value, Conflict)
    with engine.connect() as conn:
        assert get_incident(conn, row["id"])["version"] == row["version"]  # nothing done


def test_a_click_on_a_case_that_moved_on_is_refused_even_when_recent(engine, case):
    world, row = case
    with engine.begin() as conn:  # the other desk dispatches first
        dispatch.dispatch(conn, row["id"], actor="bob", department_id=world.departments["cg"])
    with engine.begin() as conn, pytest.raises(Conflict) as changed:
        dispatch.check_click(conn, row["id"], actor="alice", seen_version=row["version"], clicked_at=utc_now())
    assert not isinstance(changed.value, LateClick)
    assert (changed.value.current_state, changed.value.current_version) == (lifecycle.DISPATCHED, row["version"] + 1)
    with pytest.raises(LateClick):  # a batch: no case of its own, only the click's age
        dispatch.require_recent_click(utc_now() - timedelta(seconds=30))
