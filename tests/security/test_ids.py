"""Item 1: an incident id that is not a plain positive whole number refuses the whole desk click, and jurisdiction,
department and role are checked by the data layer on the ids actually used.

Before: the desk's check skipped ids failing str.isdigit() (" 9060", 9060.0) while the action went on with
int(" 9060"), so a street dispatcher dispatched another district's incident through the batch button and a
department user acknowledged another department's incident.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from app import create_app
from dashboard import ids
from dashboard.settings import Settings
from data import schema
from data.actors import Actor
from data.errors import NotFound, PermissionDenied, ValidationError
from data.incidents import dispatch, duplicates, lifecycle
from data.incidents.feed import get_incident
from data.incidents.transitions import apply_action
from tests.auth_helpers import signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import drive_to, make_incident, make_world

CONFIG = {"lang": "en"}
MESSAGE = "dispatch-message.children"


def _events(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.incident_events)).scalar_one()


def _incident(engine, world, state: str, grid: int, category: str = "garbage") -> dict:
    """An incident in grid `grid`: 0 lies in the first district, 2 in the second."""
    with engine.begin() as conn:
        incident_id = make_incident(conn, world.categories[category], at=world.lattice.center(grid))
        return drive_to(conn, incident_id, state)


# --- the desk, as a browser would send the click ------------------------------------------------------------


@pytest.fixture
def desk(sqlite_engine):
    # SQLite: where ' 9060' and 9060.0 used to match the incident 9060.
    with sqlite_engine.begin() as conn:
        world = make_world(conn)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=sqlite_engine, testing=True)
    return SimpleNamespace(engine=sqlite_engine, world=world, app=app)


@pytest.mark.parametrize(
    "forge", [lambda i: f" {i}", float, lambda i: f"{i}.0", lambda i: f"+{i}"], ids=["space", "float", "text-float", "plus"]
)
def test_a_batch_with_a_forged_row_id_is_refused_whole(desk, forge):
    mine = _incident(desk.engine, desk.world, lifecycle.REGISTERED, grid=0)
    theirs = _incident(desk.engine, desk.world, lifecycle.REGISTERED, grid=2)
    street = signed_in_client(desk.app, "dispatcher", unit_id=mine["district_id"])
    rows = [{"id": mine["id"], "version": mine["version"]}, {"id": forge(theirs["id"]), "version": theirs["version"]}]
    before = _events(desk.engine)
    answer = fire_callback(
        desk.app, street, MESSAGE, (ids.DISPATCH_BATCH, "n_clicks", 1), {ids.DISPATCH_GRID: rows, ids.DISPATCH_CONFIG: CONFIG}
    )
    assert answer.status_code == 200
    assert "Not done" in answer.get_json()["response"][ids.DISPATCH_MESSAGE]["children"]
    with desk.engine.connect() as conn:
        assert get_incident(conn, theirs["id"])["state"] == lifecycle.REGISTERED
        assert get_incident(conn, mine["id"])["state"] == lifecycle.REGISTERED  # nothing of the batch went out
    assert _events(desk.engine) == before


def test_a_department_user_cannot_act_on_another_departments_incident_by_a_forged_id(desk):
    theirs = _incident(desk.engine, desk.world, lifecycle.DISPATCHED, grid=0, category="construction")  # to zj
    assert theirs["assignee_department_id"] == desk.world.departments["zj"]
    cg = signed_in_client(desk.app, "department", department_id=desk.world.departments["cg"])
    before = _events(desk.engine)
    for forged in (f" {theirs['id']}", float(theirs["id"]), theirs["id"]):
        current = {"id": forged, "version": theirs["version"], "state": theirs["state"]}
        answer = fire_callback(
            desk.app,
            cg,
            MESSAGE,
            ({"type": ids.DISPATCH_ACTION, "index": "acknowledge"}, "n_clicks", 1),
            {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CONFIG: CONFIG},
        )
        assert answer.status_code == 200
        assert "Not done" in answer.get_json()["response"][ids.DISPATCH_MESSAGE]["children"], forged
    with desk.engine.connect() as conn:
        assert get_incident(conn, theirs["id"])["state"] == lifecycle.DISPATCHED
    assert _events(desk.engine) == before


def test_a_district_dispatcher_still_dispatches_a_batch_inside(desk):
    mine = [_incident(desk.engine, desk.world, lifecycle.REGISTERED, grid=0) for _ in range(2)]
    street = signed_in_client(desk.app, "dispatcher", unit_id=mine[0]["district_id"])
    rows = [{"id": m["id"], "version": m["version"]} for m in mine]
    answer = fire_callback(
        desk.app, street, MESSAGE, (ids.DISPATCH_BATCH, "n_clicks", 1), {ids.DISPATCH_GRID: rows, ids.DISPATCH_CONFIG: CONFIG}
    )
    assert "2 dispatched" in answer.get_json()["response"][ids.DISPATCH_MESSAGE]["children"]


# --- the data layer, whoever calls it ----------------------------------------------------------------------


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def test_the_data_layer_refuses_an_incident_outside_the_actors_jurisdiction(engine, world):
    mine = _incident(engine, world, lifecycle.REGISTERED, grid=0)
    theirs = _incident(engine, world, lifecycle.REGISTERED, grid=2)
    street = Actor("street", unit_id=mine["district_id"])
    before = _events(engine)
    with pytest.raises(NotFound), engine.begin() as conn:
        dispatch.dispatch(conn, theirs["id"], actor=street)
    with pytest.raises(NotFound), engine.begin() as conn:
        apply_action(conn, theirs["id"], "escalate", actor=street)
    with pytest.raises(NotFound), engine.begin() as conn:  # a merge reaching across the boundary
        duplicates.merge_duplicates(conn, mine["id"], theirs["id"], actor=street)
    with pytest.raises(NotFound):  # a batch holding one incident outside changes none of them
        dispatch.dispatch_many(engine, [(mine["id"], mine["version"]), (theirs["id"], theirs["version"])], actor=street)
    assert _events(engine) == before
    with engine.begin() as conn:
        assert dispatch.dispatch(conn, mine["id"], actor=street)["state"] == lifecycle.DISPATCHED


@pytest.mark.parametrize("forged", [" 1", "1.0", 1.0, "²", "①", "٣", "+1", "-1", 0, True, 2**63, "9" * 5000, None, [1]])
def test_a_batch_id_that_is_not_a_plain_whole_number_refuses_the_whole_batch(engine, world, forged):
    mine = _incident(engine, world, lifecycle.REGISTERED, grid=0)
    before = _events(engine)
    with pytest.raises(ValidationError):
        dispatch.dispatch_many(engine, [mine["id"], forged], actor="dispatcher")
    if forged is not None:  # a pair without a version is a batch item without the staleness check
        with pytest.raises(ValidationError):
            dispatch.dispatch_many(engine, [(mine["id"], mine["version"]), (mine["id"], forged)], actor="dispatcher")
    assert _events(engine) == before


def test_a_department_actor_acts_only_on_its_own_incidents_and_only_as_a_department(engine, world):
    ours = _incident(engine, world, lifecycle.DISPATCHED, grid=0)  # garbage: to cg
    theirs = _incident(engine, world, lifecycle.DISPATCHED, grid=0, category="construction")  # to zj
    cg = Actor("cg-user", department_id=world.departments["cg"], actions=lifecycle.DEPARTMENT_ACTIONS)
    with pytest.raises(NotFound), engine.begin() as conn:
        apply_action(conn, theirs["id"], "acknowledge", actor=cg)
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        apply_action(conn, ours["id"], "escalate", actor=cg)
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        dispatch.dispatch(conn, ours["id"], actor=cg, department_id=world.departments["zj"])
    with engine.begin() as conn:
        assert apply_action(conn, ours["id"], "acknowledge", actor=cg)["state"] == lifecycle.ACKNOWLEDGED
        assert get_incident(conn, theirs["id"])["state"] == lifecycle.DISPATCHED
