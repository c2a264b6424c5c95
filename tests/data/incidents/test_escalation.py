"""Automatic escalation (督办) of overdue incidents: once per due period, audited, told to the assignee, never twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from data.incidents import dispatch, escalation, lifecycle, notify
from data.incidents.feed import get_incident, history
from data.incidents.transitions import apply_action
from tests.factories import T0, TEST_LIMITS, make_incident, make_world

MIN = timedelta(minutes=1)
ACK, HANDLE = TEST_LIMITS[3]  # priority 3: 240 min to acknowledge, 1440 to handle


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


@pytest.fixture
def dispatched(engine, world):
    """A construction case dispatched to 住建 at T0 + 10 min (acknowledge due T0 + 250 min)."""
    with engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0), locator=world.locator)
        apply_action(conn, incident_id, "register", actor="dispatcher", at=T0 + 5 * MIN)
        dispatch.dispatch(conn, incident_id, actor="dispatcher", at=T0 + 10 * MIN)
    return incident_id


def _escalations(engine, incident_id):
    with engine.connect() as conn:
        return [e for e in history(conn, incident_id) if e["action"] == "escalate"]


def test_an_overdue_case_is_escalated_once_with_an_audited_reason(engine, world, dispatched):
    ack_due = T0 + 10 * MIN + ACK * MIN
    assert escalation.escalate_overdue(engine, now=ack_due - MIN) == []  # not overdue yet
    assert escalation.escalate_overdue(engine, now=ack_due + MIN) == [dispatched]
    assert escalation.escalate_overdue(engine, now=ack_due + 30 * MIN) == []  # the same period: never twice
    (event,) = _escalations(engine, dispatched)
    assert event["actor"] == escalation.AUTO_ACTOR and "签收" in event["note"] and "acknowledge" in event["note"]
    assert event["data"] == {"level": 1}
    with engine.connect() as conn:
        assert get_incident(conn, dispatched)["escalation_level"] == 1
        assert notify.inbox(conn, department_id=world.departments["zj"])[0]["kind"] == "escalate"


def test_a_new_due_period_can_be_escalated_again(engine, world, dispatched):
    ack_due = T0 + 10 * MIN + ACK * MIN
    handle_due = T0 + 10 * MIN + HANDLE * MIN
    assert escalation.escalate_overdue(engine, now=ack_due + MIN) == [dispatched]
    with engine.begin() as conn:
        apply_action(conn, dispatched, "acknowledge", actor="zj-clerk", at=ack_due + 10 * MIN)
    assert escalation.escalate_overdue(engine, now=handle_due - MIN) == []
    assert escalation.escalate_overdue(engine, now=handle_due + MIN) == [dispatched]  # the handling limit now
    with engine.begin() as conn:
        apply_action(
            conn, dispatched, "extend", actor="leader", note="parts on order", extend_minutes=60, at=handle_due + 2 * MIN
        )
    assert escalation.escalate_overdue(engine, now=handle_due + 30 * MIN) == []  # extended: on time again
    assert escalation.escalate_overdue(engine, now=handle_due + 61 * MIN) == [dispatched]
    assert [e["data"]["level"] for e in _escalations(engine, dispatched)] == [1, 2, 3]
    assert "处置" in _escalations(engine, dispatched)[-1]["note"]


def test_a_person_escalating_after_the_due_time_counts_for_the_period(engine, world, dispatched):
    ack_due = T0 + 10 * MIN + ACK * MIN
    with engine.begin() as conn:
        apply_action(conn, dispatched, "escalate", actor="leader", note="督办", at=ack_due + MIN)
    assert escalation.escalate_overdue(engine, now=ack_due + 5 * MIN) == []
    assert [e["actor"] for e in _escalations(engine, dispatched)] == ["leader"]


def test_only_open_cases_with_a_running_clock_are_escalated(engine, world):
    with engine.begin() as conn:
        waiting = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
        resolved = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
        for action, minutes in (("register", 1), ("dispatch", 2), ("acknowledge", 3), ("resolve", 4)):
            apply_action(
                conn, resolved, action, actor="x", at=T0 + minutes * MIN, **({"note": "done"} if action == "resolve" else {})
            )
    assert escalation.escalate_overdue(engine, now=T0 + 30 * 24 * 60 * MIN) == []
    assert _escalations(engine, waiting) == [] and _escalations(engine, resolved) == []
    with engine.connect() as conn:
        assert get_incident(conn, resolved)["state"] == lifecycle.RESOLVED


def test_two_sweeps_at_once_escalate_each_case_once(engine, world):
    with engine.begin() as conn:
        ids = []
        for _ in range(4):
            incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
            apply_action(conn, incident_id, "register", actor="d", at=T0 + MIN)
            dispatch.dispatch(conn, incident_id, actor="d", at=T0 + 2 * MIN)
            ids.append(incident_id)
    now = T0 + 2 * MIN + (ACK + 1) * MIN
    results: list[list[int]] = []
    barrier = threading.Barrier(2)

    def sweep():
        barrier.wait()
        results.append(escalation.escalate_overdue(engine, now=now))

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results[0] + results[1]) == sorted(ids)
    for incident_id in ids:
        assert len(_escalations(engine, incident_id)) == 1


def test_the_job_runs_only_when_configured(engine):
    from data.jobs.catalogue import standard_jobs

    def names(every):
        return [j.name for j in standard_jobs(engine, timezone="UTC", warnings_every=0, rollups_every=0, escalate_every=every)]

    assert "escalation" not in names(0)
    assert "escalation" in names(30)
