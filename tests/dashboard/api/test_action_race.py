"""Two of a department's systems racing on one case through the API: the loser hears 409 and how the case stands, never 403."""

from __future__ import annotations

import threading

import pytest

from data.accounts.apikeys import create_key
from data.incidents import lifecycle
from tests.api_helpers import build_api_world
from tests.factories import drive_to, make_incident


@pytest.fixture
def api(engine):
    return build_api_world(engine)


def _dispatched(api) -> dict:
    with api.engine.begin() as conn:
        incident_id = make_incident(conn, api.world.categories["garbage"], at=api.world.lattice.center(0))  # cg's
        return drive_to(conn, incident_id, lifecycle.DISPATCHED)


def _act(api, incident_id, secret, **body):
    return api.client.post(f"/api/v1/incidents/{incident_id}/actions", json=body, headers=api.headers(secret))


def test_acknowledging_a_case_returned_meanwhile_is_409_with_its_state_and_version(api):
    row = _dispatched(api)
    returned = _act(api, row["id"], api.cg, action="return", version=row["version"], note="not ours: a private road")
    assert returned.status_code == 200
    late = _act(api, row["id"], api.cg, action="acknowledge", version=row["version"])
    assert late.status_code == 409, late.get_json()
    error = late.get_json()["error"]
    assert (error["code"], error["current_state"], error["current_version"]) == (
        "version_conflict",
        lifecycle.RETURNED,
        row["version"] + 1,
    )
    # A department that never had the case learns nothing of it from a stale version: still 403 as before.
    stranger = _act(api, row["id"], api.zj, action="acknowledge", version=row["version"])
    assert stranger.status_code == 403 and stranger.get_json()["error"]["code"] == "not_assigned"
    assert "current_state" not in stranger.get_json()["error"]


def test_return_and_acknowledge_at_once_one_wins_the_other_gets_409(api):
    with api.engine.begin() as conn:
        second_key = create_key(conn, "cg-desk-2", ["actions", "read"], department_code="cg").secret
    for _ in range(4):
        row = _dispatched(api)
        start = threading.Barrier(2)
        answers = {}

        def send(name, secret, body, row=row, start=start, answers=answers):
            start.wait()
            answers[name] = _act(api, row["id"], secret, version=row["version"], **body)

        threads = [
            threading.Thread(target=send, args=("return", api.cg, {"action": "return", "note": "outside our remit"})),
            threading.Thread(target=send, args=("acknowledge", second_key, {"action": "acknowledge"})),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        codes = sorted(answer.status_code for answer in answers.values())
        assert codes == [200, 409], {name: answer.get_json() for name, answer in answers.items()}
        (loser,) = [answer for answer in answers.values() if answer.status_code == 409]
        error = loser.get_json()["error"]
        assert error["code"] == "version_conflict" and error["current_version"] == row["version"] + 1
        assert error["current_state"] in (lifecycle.RETURNED, lifecycle.ACKNOWLEDGED)
