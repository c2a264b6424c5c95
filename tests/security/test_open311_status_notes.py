"""Open311 is public: status_notes shows the state's standard text and notes given for citizens, never internal notes (item 7)."""

from __future__ import annotations

from xml.etree import ElementTree as ET

import pytest

from data.incidents.transitions import apply_action
from tests.api_helpers import build_api_world
from tests.factories import drive_to, make_incident

BASE = "/open311/v2"
INTERNAL = "Call Mr Wang on 13800138000 before going up; the key is with the guard"


@pytest.fixture
def api(engine):
    return build_api_world(engine)


def _dispatched(api) -> dict:
    with api.engine.begin() as conn:
        incident_id = make_incident(conn, api.world.categories["garbage"], at=api.world.lattice.center(0))
        return drive_to(conn, incident_id, "dispatched", department_id=api.world.departments["cg"])


def _act(api, incident_id: int, version: int, **body) -> dict:
    response = api.client.post(
        f"/api/v1/incidents/{incident_id}/actions", json={"version": version, **body}, headers=api.headers(api.cg)
    )
    assert response.status_code == 200, response.data
    return response.get_json()["incident"]


def _notes(api, incident_id: int) -> tuple[str, str]:
    """status_notes of the request as anyone reads it (no key), in JSON and in XML."""
    (as_json,) = api.client.get(f"{BASE}/requests/{incident_id}.json").get_json()
    as_xml = ET.fromstring(api.client.get(f"{BASE}/requests/{incident_id}.xml").data).find("request/status_notes").text
    return as_json["status_notes"], as_xml


def test_a_departments_internal_note_is_never_published(api):
    row = _dispatched(api)
    acknowledged = _act(api, row["id"], row["version"], action="acknowledge")
    noted = _act(api, row["id"], acknowledged["version"], action="note", note=INTERNAL)
    for shown in _notes(api, row["id"]):
        assert "13800138000" not in shown and "Wang" not in shown
        assert shown == "Being handled by CG"
    # A return's reason is internal too (it names who should have taken the case).
    _act(api, row["id"], noted["version"], action="return", note=f"not ours: {INTERNAL}")
    for shown in _notes(api, row["id"]):
        assert shown == "Returned by the department; to be dispatched again"


def test_a_public_note_is_published_while_its_state_lasts(api):
    row = _dispatched(api)
    acknowledged = _act(api, row["id"], row["version"], action="acknowledge")
    _act(
        api,
        row["id"],
        acknowledged["version"],
        action="resolve",
        note=INTERNAL,
        public_note="The overflowing bins were emptied and the pavement washed.",
    )
    for shown in _notes(api, row["id"]):
        assert shown == "Resolved; waiting for verification: The overflowing bins were emptied and the pavement washed."
        assert "13800138000" not in shown
    (chinese,) = api.client.get(f"{BASE}/requests/{row['id']}.json?lang=zh").get_json()
    assert chinese["status_notes"].startswith("已处置，待核查")
    # Verification fails: the note about the fix belongs to the state that is over.
    with api.engine.begin() as conn:
        apply_action(conn, row["id"], "verify_fail", actor="checker", note=f"still dirty; {INTERNAL}")
    for shown in _notes(api, row["id"]):
        assert shown == "Verification failed; to be dispatched again"


def test_a_public_note_must_be_printable_text(api):
    row = _dispatched(api)
    for bad in ({"public_note": 5}, {"public_note": "x" * 1001}, {"public_note": "bins\x02 emptied"}):
        response = api.client.post(
            f"/api/v1/incidents/{row['id']}/actions",
            json={"version": row["version"], "action": "acknowledge", **bad},
            headers=api.headers(api.cg),
        )
        assert response.status_code == 400, (bad, response.data)
