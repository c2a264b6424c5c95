"""apply_action checks the version before whose case it is: a department that lost a race hears Conflict, a stranger NotFound."""

from __future__ import annotations

import pytest

from data.actors import Actor
from data.errors import Conflict, NotFound
from data.incidents import lifecycle
from data.incidents.transitions import apply_action
from tests.factories import drive_to, make_incident, make_world


def test_a_department_acting_on_a_case_returned_meanwhile_gets_conflict_not_not_found(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))  # cg's
        row = drive_to(conn, incident_id, lifecycle.DISPATCHED)
        desk = Actor("cg-desk", department_id=world.departments["cg"], actions=lifecycle.DEPARTMENT_ACTIONS)
        apply_action(conn, incident_id, "return", actor=desk, expected_version=row["version"], note="a private road")
    with engine.begin() as conn, pytest.raises(Conflict) as lost:
        apply_action(conn, incident_id, "acknowledge", actor=desk, expected_version=row["version"])
    assert (lost.value.current_state, lost.value.current_version) == (lifecycle.RETURNED, row["version"] + 1)
    stranger = Actor("zj-desk", department_id=world.departments["zj"], actions=lifecycle.DEPARTMENT_ACTIONS)
    with engine.begin() as conn, pytest.raises(NotFound):
        apply_action(conn, incident_id, "acknowledge", actor=stranger, expected_version=row["version"])
