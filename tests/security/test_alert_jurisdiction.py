"""Item 2: acting on an early-warning alert is checked against the alert's place, in the data layer.

Before: act_on_alert checked the role only, so a street dispatcher acknowledged an alert in another district
and opened a case from one, filing an incident there.
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
from data.errors import NotFound
from data.warnings import alerts as warnings
from tests.auth_helpers import signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import T0, make_world

MESSAGE = "alerts-message.children"


def _alerts(engine, world, *grids: int) -> list[int]:
    """Open surge alerts on these grids, raised by one pass (0 lies in the first district, 2 in the second)."""
    findings = []
    for grid in grids:
        grid_id = world.lattice.grid_ids[grid]
        lon, lat = world.lattice.center(grid)
        findings.append(
            {
                "kind": "surge",
                "condition_key": f"surge:grid:{grid_id}",
                "score": 10.0,
                "observed": 12.0,
                "expected": 2.0,
                "unit_id": grid_id,
                "category_id": world.categories["garbage"],
                "lon": lon,
                "lat": lat,
                "reason_en": "12 garbage reports; 2 expected",
                "reason_zh": "垃圾12件,预期2件",
            }
        )
    with engine.begin() as conn:
        warnings.record_findings(conn, findings, ("surge",), T0)
        by_unit = dict(conn.execute(select(schema.alerts.c.unit_id, schema.alerts.c.id)).all())
    return [by_unit[world.lattice.grid_ids[grid]] for grid in grids]


def _status(engine, alert_id: int) -> str:
    with engine.connect() as conn:
        return warnings.get_alert(conn, alert_id)["status"]


def _incidents(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one()


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def test_an_actor_reaches_only_alerts_inside_its_jurisdiction(engine, world):
    mine, theirs = _alerts(engine, world, 0, 2)
    street = Actor("street", unit_id=world.lattice.street_ids[0])
    for action in ("acknowledge", "case"):
        with pytest.raises(NotFound, match=f"alert {theirs} does not exist"), engine.begin() as conn:
            warnings.act_on_alert(conn, theirs, action, street)
    with pytest.raises(NotFound), engine.begin() as conn:
        warnings.act_on_alert(conn, theirs, "dismiss", street, note="not ours")
    assert _status(engine, theirs) == "open" and _incidents(engine) == 0
    with engine.begin() as conn:
        assert warnings.act_on_alert(conn, mine, "case", street)["status"] == "cased"
    assert _incidents(engine) == 1
    with engine.begin() as conn:  # the city's actors reach every alert
        assert warnings.act_on_alert(conn, theirs, "acknowledge", Actor("city"))["status"] == "acknowledged"


@pytest.fixture
def screen(sqlite_engine):
    with sqlite_engine.begin() as conn:
        world = make_world(conn)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=sqlite_engine, testing=True)
    return SimpleNamespace(engine=sqlite_engine, world=world, app=app)


@pytest.mark.parametrize("button", [ids.ALERTS_ACK, ids.ALERTS_CASE])
def test_a_street_dispatcher_cannot_act_on_another_districts_alert_from_the_overview(screen, button):
    (theirs,) = _alerts(screen.engine, screen.world, 2)
    street = signed_in_client(screen.app, "dispatcher", unit_id=screen.world.lattice.street_ids[0])
    answer = fire_callback(screen.app, street, MESSAGE, ({"type": button, "index": theirs}, "n_clicks", 1), {})
    assert answer.status_code == 200
    assert answer.get_json()["response"][ids.ALERTS_MESSAGE]["children"] == [f"Alert #{theirs} no longer exists."]
    assert _status(screen.engine, theirs) == "open"
    assert _incidents(screen.engine) == 0  # no case was filed in the other district


def test_a_street_dispatcher_still_acts_on_its_own_alerts(screen):
    (mine,) = _alerts(screen.engine, screen.world, 0)
    street = signed_in_client(screen.app, "dispatcher", unit_id=screen.world.lattice.street_ids[0])
    answer = fire_callback(screen.app, street, MESSAGE, ({"type": ids.ALERTS_ACK, "index": mine}, "n_clicks", 1), {})
    assert answer.get_json()["response"][ids.ALERTS_MESSAGE]["children"] == [f"Alert #{mine} acknowledged."]
    assert _status(screen.engine, mine) == "acknowledged"
