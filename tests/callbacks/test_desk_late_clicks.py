"""The desk's act callback refuses a click that waited, and acts on the version shown at the click, not the panel's newer one."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from app import create_app
from dashboard import ids
from dashboard.settings import Settings
from data.incidents import dispatch, lifecycle
from data.incidents.feed import get_incident
from tests.auth_helpers import signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import drive_to, make_incident, make_world

CONFIG = {"lang": "en"}


@pytest.fixture
def desk(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        row = drive_to(conn, incident_id, lifecycle.REGISTERED)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    return SimpleNamespace(engine=engine, world=world, app=app, client=signed_in_client(app, "dispatcher"), row=row)


def _send(desk, current: dict, click: dict) -> str:
    target = f"department:{desk.world.departments['cg']}"
    answer = fire_callback(
        desk.app,
        desk.client,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_TO, "index": target}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CLICK: click, ids.DISPATCH_CONFIG: CONFIG},
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    return answer.get_json()["response"][ids.DISPATCH_MESSAGE]["children"]


def _state(desk) -> str:
    with desk.engine.connect() as conn:
        return get_incident(conn, desk.row["id"])["state"]


def test_a_click_that_reaches_the_server_late_is_not_acted_on(desk):
    row = desk.row
    shown = {"id": row["id"], "version": row["version"]}
    message = _send(desk, shown, {**shown, "at": (time.time() - 25) * 1000})  # clicked 25 s ago
    assert message.startswith(f"Not done: your click on #{row['id']} reached the server 2") and "as it is now" in message
    assert _state(desk) == lifecycle.REGISTERED
    assert _send(desk, shown, {**shown, "at": time.time() * 1000}) == f"#{row['id']} dispatched to CG."


def test_a_click_acts_on_the_version_seen_not_on_the_panel_redrawn_since(desk):
    row = desk.row
    with desk.engine.begin() as conn:  # another desk dispatched it; this desk's panel has caught up by the time the request left
        moved = dispatch.dispatch(conn, row["id"], actor="bob", department_id=desk.world.departments["zj"])
    redrawn = {"id": row["id"], "version": moved["version"]}
    message = _send(desk, redrawn, {"id": row["id"], "version": row["version"], "at": time.time() * 1000})
    assert message.startswith("Someone else acted first") and "Dispatched" in message
    with desk.engine.connect() as conn:
        assert get_incident(conn, row["id"])["assignee_department_id"] == desk.world.departments["zj"]  # not reassigned
