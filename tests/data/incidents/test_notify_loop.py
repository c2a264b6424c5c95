"""The loop's notifications: every dispatch path tells its assignee once, undo withdraws, departments' answers reach the centre, ratings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from data import schema
from data.errors import InvalidTransition, ValidationError
from data.incidents import dispatch, lifecycle, notify, queue, webhooks
from data.incidents.escalation import escalate_overdue
from data.incidents.feed import get_incident, history
from data.incidents.transitions import apply_action
from data.incidents.webhook_targets import WebhookTargets
from tests.api_helpers import build_api_world
from tests.factories import T0, drive, drive_to, make_incident, make_world

SECRET = "s" * 32
# Nothing listens there; loopback is listed, as an administrator lists the departments' network.
HOOK, LOCAL = "http://127.0.0.1:9/hook", WebhookTargets.parse("127.0.0.1")


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        webhooks.set_webhook(conn, world.departments["zj"], HOOK, secret=SECRET, targets=LOCAL)
        webhooks.set_webhook(conn, world.departments["cg"], HOOK, secret=SECRET, targets=LOCAL)
    return world


def _new(conn, world, category="construction", state=lifecycle.REGISTERED):
    incident_id = make_incident(conn, world.categories[category], at=world.lattice.center(0), locator=world.locator)
    drive_to(conn, incident_id, state)
    return incident_id


def _told(conn, incident_id):
    """(kind, department, worker) of the incident's inbox rows and (kind, department, status) of its webhooks, oldest first."""
    n, d = schema.notifications, schema.webhook_deliveries
    inbox = conn.execute(
        select(n.c.kind, n.c.department_id, n.c.worker_id).where(n.c.incident_id == incident_id).order_by(n.c.id)
    )
    hooks = conn.execute(select(d.c.kind, d.c.department_id, d.c.status).where(d.c.incident_id == incident_id).order_by(d.c.id))
    return [tuple(r) for r in inbox], [tuple(r) for r in hooks]


def _act(conn, incident_id, action, **kwargs):
    at = history(conn, incident_id)[-1]["at"] + timedelta(minutes=10)
    return apply_action(conn, incident_id, action, at=at, **kwargs)


# --- one mechanism: every path that dispatches notifies, once ---------------------------------------


def test_a_plain_apply_action_dispatch_notifies_as_the_desk_does(engine, world):
    """The API, the simulator and any future caller go through apply_action: nobody has to remember to notify."""
    zj = world.departments["zj"]
    with engine.begin() as conn:
        by_desk, by_call = _new(conn, world), _new(conn, world)
    with engine.begin() as conn:
        dispatch.dispatch(conn, by_desk, actor="desk")
        apply_action(conn, by_call, "dispatch", actor="api:someone")
    with engine.connect() as conn:
        assert _told(conn, by_desk) == _told(conn, by_call) == ([("dispatch", zj, None)], [("dispatch", zj, "pending")])


def test_batch_and_reassign_notify_the_new_assignee_and_withdraw_from_the_old(engine, world):
    zj, cg = world.departments["zj"], world.departments["cg"]
    with engine.begin() as conn:
        first, second = _new(conn, world), _new(conn, world)
    results = dispatch.dispatch_many(engine, [first, second], actor="desk")
    assert all(r.ok for r in results)
    with engine.begin() as conn:
        dispatch.dispatch(conn, first, actor="desk", department_id=cg)
    with engine.connect() as conn:
        inbox, hooks = _told(conn, first)
        assert inbox == [("dispatch", zj, None), ("reassign", cg, None), ("withdrawn", zj, None)]
        # The first webhook had not gone out yet, but it was a real dispatch then: it stays and is followed.
        assert [h[:2] for h in hooks] == [("dispatch", zj), ("reassign", cg), ("withdrawn", zj)]
        assert _told(conn, second)[0] == [("dispatch", zj, None)]


def test_a_failed_dispatch_notifies_nobody(engine, world):
    with engine.begin() as conn:
        incident_id = _new(conn, world)
    with pytest.raises(ValidationError), engine.begin() as conn:
        apply_action(conn, incident_id, "dispatch", actor="d", worker_id=world.worker_id)  # construction: not for grid workers
    with engine.connect() as conn:
        assert _told(conn, incident_id) == ([], [])


def test_undo_cancels_the_unsent_webhook_and_tells_the_inbox(engine, world):
    zj = world.departments["zj"]
    with engine.begin() as conn:
        incident_id = _new(conn, world)
    with engine.begin() as conn:
        row = dispatch.dispatch(conn, incident_id, actor="desk")
    with engine.begin() as conn:
        dispatch.undo_dispatch(conn, incident_id, actor="desk", now=row["dispatched_at"] + timedelta(seconds=3))
    with engine.connect() as conn:
        inbox, hooks = _told(conn, incident_id)
    assert inbox == [("dispatch", zj, None), ("recall", zj, None)]
    assert hooks == [("dispatch", zj, "cancelled")]
    # Nobody had read the dispatch: the undone case leaves nothing unread in the department's inbox.
    with engine.connect() as conn:
        assert notify.inbox(conn, department_id=zj, unread_only=True) == []
        assert len(notify.inbox(conn, department_id=zj)) == 2


def test_undo_after_the_assignee_read_it_leaves_the_recall_unread(engine, world):
    zj = world.departments["zj"]
    with engine.begin() as conn:
        incident_id = _new(conn, world)
    with engine.begin() as conn:
        row = dispatch.dispatch(conn, incident_id, actor="desk")
        (seen,) = notify.inbox(conn, department_id=zj)
        notify.mark_read(conn, [seen["id"]], department_id=zj)
    with engine.begin() as conn:
        dispatch.undo_dispatch(conn, incident_id, actor="desk", now=row["dispatched_at"] + timedelta(seconds=3))
    with engine.connect() as conn:
        assert [n["kind"] for n in notify.inbox(conn, department_id=zj, unread_only=True)] == ["recall"]


def test_automatic_escalation_tells_the_assignee_through_the_transition(engine, world):
    zj = world.departments["zj"]
    with engine.begin() as conn:
        incident_id = _new(conn, world, state=lifecycle.DISPATCHED)
        due = get_incident(conn, incident_id)["ack_due_at"]
    assert escalate_overdue(engine, due + timedelta(minutes=1)) == [incident_id]
    with engine.connect() as conn:
        assert _told(conn, incident_id)[0][-1] == ("escalate", zj, None)


# --- whistle and report: departments' answers reach the centre -------------------------------------


def test_acknowledge_return_and_resolve_reach_the_centre_with_the_reason(engine, world):
    zj = world.departments["zj"]
    with engine.begin() as conn:
        returned, resolved = _new(conn, world, state=lifecycle.DISPATCHED), _new(conn, world, state=lifecycle.DISPATCHED)
        _act(conn, returned, "return", actor="api:zj-system", note="not ours: a water main")
        _act(conn, resolved, "acknowledge", actor="api:zj-system")
        _act(conn, resolved, "resolve", actor="api:zj-system", note="fenced off")
    with engine.connect() as conn:
        rows = notify.centre_inbox(conn)
        counts = notify.centre_unread(conn)
    assert [(r["incident_id"], r["action"]) for r in rows] == [
        (resolved, "resolve"),
        (resolved, "acknowledge"),
        (returned, "return"),
    ]
    back = rows[-1]
    assert back["department_id"] == zj and back["note"] == "not ours: a water main" and back["actor"] == "api:zj-system"
    assert back["department_en"] and back["category_en"] and back["incident_state"] == lifecycle.RETURNED
    # The badge (total) counts what needs the centre: the return and the resolution awaiting verification,
    # not the acknowledgement (listed above all the same).
    assert counts == {"acknowledge": 1, "return": 1, "resolve": 1, "total": 2}
    with engine.begin() as conn:
        _act(conn, resolved, "verify_pass", actor="desk")
        assert notify.centre_unread(conn)["total"] == 1, "a verified resolution needs nobody any more"
    # Returned incidents wait in the dispatcher's queue again.
    with engine.connect() as conn:
        assert returned in {r["id"] for r in queue.queue(conn, T0 + timedelta(hours=2))}


def test_the_centre_marks_answers_read_and_sees_only_its_jurisdiction(engine, world):
    with engine.begin() as conn:
        here = _new(conn, world, state=lifecycle.DISPATCHED)
        far = make_incident(conn, world.categories["construction"], at=world.lattice.center(5), locator=world.locator)
        drive_to(conn, far, lifecycle.DISPATCHED)
        drive(conn, here, ["return"])
        drive(conn, far, ["return"])
        district_here = get_incident(conn, here)["district_id"]
        district_far = get_incident(conn, far)["district_id"]
    assert district_here != district_far
    scope = (schema.DISTRICT, district_here)
    with engine.connect() as conn:
        assert [r["incident_id"] for r in notify.centre_inbox(conn, scope=scope)] == [here]
        assert notify.centre_unread(conn, scope=scope)["total"] == 1
    with engine.begin() as conn:
        assert notify.mark_centre_read(conn, actor="desk", scope=scope) == 1
    with engine.connect() as conn:
        assert notify.centre_unread(conn)["total"] == 1
        assert notify.centre_inbox(conn, unread_only=True)[0]["incident_id"] == far
        assert notify.centre_inbox(conn, scope=scope)[0]["read_by"] == "desk"
    with engine.begin() as conn:
        assert notify.mark_centre_read(conn, actor="desk", ids=[]) == 0
        assert notify.mark_centre_read(conn, actor="desk") == 1


def test_notes_and_dispatcher_actions_do_not_fill_the_centres_inbox(engine, world):
    with engine.begin() as conn:
        incident_id = _new(conn, world, state=lifecycle.DISPATCHED)
        drive(conn, incident_id, ["note", "escalate", "extend"])
    with engine.connect() as conn:
        assert notify.centre_inbox(conn) == []


# --- satisfaction (评价) ---------------------------------------------------------------------------


def test_a_closed_incident_is_rated_with_an_audited_event(engine, world):
    with engine.begin() as conn:
        incident_id = _new(conn, world, state=lifecycle.CLOSED)
        row = dispatch.act(conn, incident_id, "rate", actor="desk", satisfaction=4, note="12345 回访")
        assert row["satisfaction"] == 4 and row["state"] == lifecycle.CLOSED
        event = history(conn, incident_id)[-1]
        assert (event["action"], event["data"], event["actor"], event["note"]) == (
            "rate",
            {"satisfaction": 4},
            "desk",
            "12345 回访",
        )
    with engine.begin() as conn:
        open_id = _new(conn, world, state=lifecycle.RESOLVED)
        with pytest.raises(InvalidTransition):
            dispatch.act(conn, open_id, "rate", actor="desk", satisfaction=5)
    for bad in (0, 6, "5", True):
        with pytest.raises(ValidationError, match="1 to 5"), engine.begin() as conn:
            dispatch.act(conn, incident_id, "rate", actor="desk", satisfaction=bad)
    with engine.connect() as conn:
        assert get_incident(conn, incident_id)["satisfaction"] == 4
        ev = schema.incident_events
        assert conn.execute(select(func.count()).where(ev.c.incident_id == incident_id, ev.c.action == "rate")).scalar() == 1


def test_a_department_answering_through_the_api_reports_to_the_centre(engine):
    api = build_api_world(engine)
    with engine.begin() as conn:
        incident_id = make_incident(conn, api.world.categories["garbage"], at=api.world.lattice.center(0))
        row = drive_to(conn, incident_id, lifecycle.DISPATCHED)
    body = {"action": "return", "version": row["version"], "note": "outside our remit"}
    answer = api.client.post(f"/api/v1/incidents/{incident_id}/actions", json=body, headers=api.headers(api.cg))
    assert answer.status_code == 200, answer.get_json()
    with engine.connect() as conn:
        (told,) = notify.centre_inbox(conn)
    assert (told["incident_id"], told["action"], told["note"]) == (incident_id, "return", "outside our remit")
    assert told["actor"] == "api:cg-system" and told["department_id"] == api.world.departments["cg"]
