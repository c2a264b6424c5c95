"""The dispatcher's desk: the queue and its order, suggestions and their reasons, duplicates, one-click, batch and racing dispatch, undo."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from data import schema
from data.errors import Conflict, InvalidTransition, ValidationError
from data.incidents import dispatch, duplicates, lifecycle, notify, queue, suggestions, webhooks
from data.incidents.feed import get_incident, history
from data.incidents.transitions import apply_action
from data.incidents.webhook_targets import WebhookTargets
from data.metrics.board import department_board
from tests.factories import T0, drive, drive_to, make_incident, make_world

H = timedelta(hours=1)


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _report(conn, world, category="garbage", *, grid=0, priority=3, **kwargs):
    return make_incident(
        conn, world.categories[category], at=world.lattice.center(grid), locator=world.locator, priority=priority, **kwargs
    )


def _inbox_count(conn, **recipient):
    return len(notify.inbox(conn, **recipient))


# --- the queue ----------------------------------------------------------------------------------


@pytest.fixture
def queue_world(engine, world):
    """Incidents in every situation the queue must tell apart; `now` is T0 + 2 h."""
    with engine.begin() as conn:
        ids = {
            "new": _report(conn, world, "garbage", priority=3),
            "registered_urgent": _report(conn, world, "garbage", grid=2, priority=1, reported_at=T0 + 30 * timedelta(minutes=1)),
            "returned": _report(conn, world, "construction", priority=3),
            "dispatched_overdue": _report(conn, world, "water", grid=2, priority=2),
            "dispatched_on_time": _report(conn, world, "garbage", grid=1, priority=3),
            "closed": _report(conn, world, "garbage", priority=1),
            "reopened": _report(conn, world, "noise", grid=1, priority=2),
            "acknowledged_overdue": _report(conn, world, "construction", priority=1),
            "acknowledged_on_time": _report(conn, world, "construction", priority=3),
        }
        drive_to(conn, ids["registered_urgent"], lifecycle.REGISTERED)
        drive_to(conn, ids["returned"], lifecycle.RETURNED)
        drive_to(conn, ids["dispatched_overdue"], lifecycle.DISPATCHED)
        drive_to(conn, ids["dispatched_on_time"], lifecycle.DISPATCHED)
        drive_to(conn, ids["closed"], lifecycle.CLOSED)
        drive_to(conn, ids["reopened"], lifecycle.REOPENED)
        drive_to(conn, ids["acknowledged_overdue"], lifecycle.ACKNOWLEDGED)
        drive_to(conn, ids["acknowledged_on_time"], lifecycle.ACKNOWLEDGED)
    return ids, T0 + 2 * H


def test_queue_holds_what_needs_a_dispatcher_most_urgent_first(engine, world, queue_world):
    ids, now = queue_world
    with engine.connect() as conn:
        rows = queue.queue(conn, now)
    # Priority first; within it, least time left: the urgent registered case's dispatch target
    # (reported T0+30 min, 15 min limit) passed before the acknowledged one's handling due (T0+80 min).
    expected = ["registered_urgent", "acknowledged_overdue", "dispatched_overdue", "reopened", "new", "returned"]
    assert [r["id"] for r in rows] == [ids[k] for k in expected]
    by_id = {r["id"]: r for r in rows}
    assert by_id[ids["dispatched_overdue"]]["due_status"] == "overdue"
    assert by_id[ids["new"]]["due_status"] is None and by_id[ids["new"]]["time_left_s"] == 2 * 3600
    assert by_id[ids["registered_urgent"]]["late"] and by_id[ids["registered_urgent"]]["time_left_s"] == -75 * 60
    # The noise category has no limits of its own: the default acknowledge limit (60 min at priority 2) counts from the reopening.
    with engine.connect() as conn:
        reopened_at = get_incident(conn, ids["reopened"])["updated_at"]
    assert by_id[ids["reopened"]]["time_left_s"] == int((reopened_at + H - now).total_seconds())
    assert by_id[ids["returned"]]["category_code"] == "construction" and by_id[ids["new"]]["grid_en"] == "Grid 0"


def test_queue_filters_by_area_category_priority_and_state(engine, world, queue_world):
    ids, now = queue_world
    district_1 = world.lattice.district_ids[1]
    with engine.connect() as conn:

        def ids_for(**filters):
            return {r["id"] for r in queue.queue(conn, now, **filters)}

        assert ids_for(area_id=district_1) == {ids["registered_urgent"], ids["dispatched_overdue"]}
        assert ids_for(area_id=world.lattice.grid_ids[1]) == {ids["reopened"]}
        assert ids_for(category_id=world.categories["construction"]) == {ids["returned"], ids["acknowledged_overdue"]}
        assert ids_for(priority=2) == {ids["dispatched_overdue"], ids["reopened"]}
        assert ids_for(state="overdue") == {ids["dispatched_overdue"], ids["acknowledged_overdue"]}
        assert ids_for(state="returned") == {ids["returned"]}
        # The "awaiting dispatch" view: every case waiting for a dispatcher, none a department holds.
        assert ids_for(state="awaiting") == {ids["registered_urgent"], ids["reopened"], ids["returned"]} | {
            r["id"] for r in queue.queue(conn, now) if r["state"] == lifecycle.REPORTED
        }
        assert all(r["state"] in lifecycle.NEEDS_DISPATCHER for r in queue.queue(conn, now, state="awaiting"))
        counts = queue.queue_counts(conn, now)
        assert counts["queue"] == len(queue.queue(conn, now)) == 6
        assert (counts["reported"], counts["registered"], counts["returned"], counts["reopened"], counts["overdue"]) == (
            1,
            1,
            1,
            1,
            2,
        )
        assert queue.queue_counts(conn, now, area_id=district_1)["queue"] == 2
        with pytest.raises(ValidationError, match="state filter"):
            queue.queue(conn, now, state="closed")
        with pytest.raises(ValidationError, match="does not exist"):
            queue.queue(conn, now, area_id=987654)


def test_queue_follows_the_clock_an_on_time_case_joins_when_overdue(engine, world, queue_world):
    ids, now = queue_world
    with engine.connect() as conn:
        later = {r["id"] for r in queue.queue(conn, now + 3 * H)}
    assert ids["dispatched_on_time"] in later  # its 240 min acknowledge limit from T0+20 min has passed
    assert ids["closed"] not in later


# --- suggestions ----------------------------------------------------------------------------------


def test_suggestion_names_the_grid_worker_only_for_matters_on_their_duty_list(engine, world):
    with engine.begin() as conn:
        garbage_here = _report(conn, world, "garbage", grid=0)
        garbage_elsewhere = _report(conn, world, "garbage", grid=1)
        water_here = _report(conn, world, "water", grid=0)
        construction_here = _report(conn, world, "construction", grid=0)
        nowhere = make_incident(conn, world.categories["garbage"], at=None)

        s = suggestions.suggest(conn, garbage_here)
        assert (s.primary, s.worker["id"], s.worker_reason) == ("worker", world.worker_id, suggestions.WORKER_ON_LIST)
        assert s.department["id"] == world.departments["cg"] and s.department_reason == suggestions.FROM_CATEGORY
        assert s.target() == {"worker_id": world.worker_id}

        for incident_id, reason in (
            (garbage_elsewhere, suggestions.WORKER_NONE),
            (water_here, suggestions.WORKER_NOT_ON_LIST),  # grid workers may take water, but it is not on this one's list
            (construction_here, suggestions.WORKER_CATEGORY_EXCLUDED),  # 清单外事项下派过滤
            (nowhere, suggestions.WORKER_NO_GRID),
        ):
            s = suggestions.suggest(conn, incident_id)
            assert (s.worker, s.worker_reason, s.primary) == (None, reason, "department")
        assert suggestions.suggest(conn, construction_here).target() == {"department_id": world.departments["zj"]}


def test_urgent_and_high_priority_safety_matters_go_to_the_department_first(engine, world):
    """The grid worker is the one click only for routine matters on their duty list; an emergency, or a
    high-priority safety matter (平安法治), goes to the responsible department first, the worker offered second."""
    with engine.begin() as conn:
        # garbage is on this grid worker's list and a livelihood matter; make one of its kind a safety matter too.
        conn.execute(
            schema.categories.update().where(schema.categories.c.id == world.categories["water"]).values(sector="safety")
        )
        conn.execute(schema.worker_duties.insert().values(worker_id=world.worker_id, category_id=world.categories["water"]))
        cases = {
            "routine": _report(conn, world, "garbage", grid=0, priority=3),
            "high_livelihood": _report(conn, world, "garbage", grid=0, priority=2),
            "urgent": _report(conn, world, "garbage", grid=0, priority=1),
            "high_safety": _report(conn, world, "water", grid=0, priority=2),
            "routine_safety": _report(conn, world, "water", grid=0, priority=3),
        }
        found = {k: suggestions.suggest(conn, v) for k, v in cases.items()}
    assert {k: (s.primary, s.primary_reason) for k, s in found.items()} == {
        "routine": ("worker", suggestions.FIRST_ROUTINE),
        "high_livelihood": ("worker", suggestions.FIRST_ROUTINE),
        "urgent": ("department", suggestions.FIRST_URGENT),
        "high_safety": ("department", suggestions.FIRST_SAFETY),
        "routine_safety": ("worker", suggestions.FIRST_ROUTINE),
    }
    # The worker stays offered; the one click (target) follows the rule.
    assert found["urgent"].worker["id"] == world.worker_id
    assert found["urgent"].target() == {"department_id": world.departments["cg"]}
    assert found["routine"].target() == {"worker_id": world.worker_id}


def test_a_district_responsibility_list_overrides_the_category_department(engine, world):
    d0, d1 = world.lattice.district_ids
    with engine.begin() as conn:
        suggestions.set_responsibility(conn, world.categories["construction"], d0, world.departments["ga"])
        in_d0 = _report(conn, world, "construction", grid=0)
        in_d1 = _report(conn, world, "construction", grid=2)
        s0, s1 = suggestions.suggest(conn, in_d0), suggestions.suggest(conn, in_d1)
        assert (s0.department["id"], s0.department_reason) == (world.departments["ga"], suggestions.FROM_DISTRICT_LIST)
        assert s0.district["id"] == d0
        assert (s1.department["id"], s1.department_reason) == (world.departments["zj"], suggestions.FROM_CATEGORY)
        # One click follows the district's list.
        row = dispatch.dispatch(conn, in_d0, actor="dispatcher")
        assert row["assignee_department_id"] == world.departments["ga"]
        suggestions.set_responsibility(conn, world.categories["construction"], d0, None)
        assert suggestions.suggest(conn, _report(conn, world, "construction", grid=0)).department["id"] == world.departments["zj"]
        with pytest.raises(ValidationError, match="not a district"):
            suggestions.set_responsibility(
                conn, world.categories["construction"], world.lattice.grid_ids[0], world.departments["ga"]
            )


def test_suggestion_warns_when_the_department_already_returned_the_case(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        drive_to(conn, incident_id, lifecycle.RETURNED)
        s = suggestions.suggest(conn, incident_id)
    assert s.department["id"] == world.departments["zj"]
    assert s.returned_by["department_id"] == world.departments["zj"]


# --- one click -------------------------------------------------------------------------------------


def test_one_click_registers_dispatches_to_the_suggestion_and_notifies(engine, world):
    with engine.begin() as conn:
        to_worker = _report(conn, world, "garbage", grid=0)
        to_department = _report(conn, world, "construction", grid=0)
        # Nothing listens there; loopback is listed, as an administrator lists the departments' network.
        webhooks.set_webhook(conn, world.departments["zj"], "http://127.0.0.1:9/hook", targets=WebhookTargets.parse("127.0.0.1"))
    with engine.begin() as conn:
        row = dispatch.dispatch(conn, to_worker, actor="dispatcher", expected_version=1)
        assert (row["state"], row["assignee_worker_id"], row["assignee_department_id"]) == ("dispatched", world.worker_id, None)
        assert [e["action"] for e in history(conn, to_worker)] == ["report", "register", "dispatch"]
        assert row["event_id"] == history(conn, to_worker)[-1]["id"]
        row = dispatch.dispatch(conn, to_department, actor="dispatcher")
        assert row["assignee_department_id"] == world.departments["zj"] and row["ack_due_at"] is not None
    with engine.connect() as conn:
        (worker_note,) = notify.inbox(conn, worker_id=world.worker_id)
        (dept_note,) = notify.inbox(conn, department_id=world.departments["zj"])
        assert (worker_note["incident_id"], worker_note["kind"]) == (to_worker, "dispatch")
        assert (dept_note["incident_id"], dept_note["kind"]) == (to_department, "dispatch")
        # Only the department with a webhook URL gets a webhook queued.
        (queued,) = webhooks.deliveries(conn)
        assert (queued["incident_id"], queued["status"], queued["kind"]) == (to_department, "pending", "dispatch")


def test_a_refused_dispatch_changes_nothing_and_notifies_nobody(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction", grid=0)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        before = get_incident(conn, incident_id)
        with pytest.raises(ValidationError, match="清单外"):
            dispatch.dispatch(conn, incident_id, actor="dispatcher", worker_id=world.worker_id)
    with engine.connect() as conn:
        assert get_incident(conn, incident_id) == before
        assert conn.execute(select(func.count()).select_from(schema.notifications)).scalar_one() == 0


def test_dispatching_an_assigned_case_reassigns_and_tells_both_sides(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        dispatch.dispatch(conn, incident_id, actor="dispatcher")
        with pytest.raises(ValidationError, match="already with that assignee"):
            dispatch.dispatch(conn, incident_id, actor="dispatcher")  # the same again would only restart its clocks
        row = dispatch.dispatch(conn, incident_id, actor="dispatcher", department_id=world.departments["ga"])
        assert row["assignee_department_id"] == world.departments["ga"]
        assert history(conn, incident_id)[-1]["action"] == "reassign"
        assert [n["kind"] for n in notify.inbox(conn, department_id=world.departments["zj"])] == ["withdrawn", "dispatch"]
        assert [n["kind"] for n in notify.inbox(conn, department_id=world.departments["ga"])] == ["reassign"]


def test_two_dispatchers_at_once_one_wins_the_other_gets_a_conflict(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        drive_to(conn, incident_id, lifecycle.REGISTERED)
        version = get_incident(conn, incident_id)["version"]
    barrier = threading.Barrier(2)
    outcomes: list = []

    def dispatcher(name, department):
        barrier.wait()
        try:
            with engine.begin() as conn:
                dispatch.dispatch(conn, incident_id, actor=name, expected_version=version, department_id=department)
            outcomes.append(("ok", name))
        except Conflict as exc:
            outcomes.append(("conflict", exc.current_state))

    threads = [
        threading.Thread(target=dispatcher, args=("alice", world.departments["zj"])),
        threading.Thread(target=dispatcher, args=("bob", world.departments["ga"])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "ok"]
    assert dict(outcomes)["conflict"] == "dispatched"  # the loser is told what the incident is now
    with engine.connect() as conn:
        assert [e["action"] for e in history(conn, incident_id)].count("dispatch") == 1
        assert conn.execute(select(func.count()).select_from(schema.notifications)).scalar_one() == 1


def test_batch_dispatch_reports_each_row_and_a_refusal_stops_nothing(engine, world):
    with engine.begin() as conn:
        fresh = [_report(conn, world, "construction", grid=g) for g in (0, 1, 2)]
        stale = _report(conn, world, "construction")
        closed = _report(conn, world, "construction")
        drive_to(conn, closed, lifecycle.CLOSED)
    results = dispatch.dispatch_many(engine, [*fresh, (stale, 99), closed], actor="dispatcher")
    assert [r.ok for r in results] == [True, True, True, False, False]
    assert [r.kind for r in results[3:]] == ["conflict", "invalid"]
    assert results[3].state == "reported" and results[4].state == "closed"
    with engine.connect() as conn:
        assert [get_incident(conn, i)["state"] for i in fresh] == ["dispatched"] * 3
        assert get_incident(conn, stale)["state"] == "reported"


# --- undo -----------------------------------------------------------------------------------------


def test_undo_within_ten_seconds_puts_the_case_back_in_the_queue(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        dispatched = dispatch.dispatch(conn, incident_id, actor="alice")
    with engine.begin() as conn, pytest.raises(ValidationError, match="only alice"):
        dispatch.undo_dispatch(conn, incident_id, actor="bob")
    with engine.begin() as conn:
        row = dispatch.undo_dispatch(conn, incident_id, actor="alice")
    assert row["state"] == lifecycle.REGISTERED and row["version"] == dispatched["version"] + 1
    assert (row["assignee_department_id"], row["dispatched_at"], row["first_dispatched_at"], row["ack_due_at"]) == (None,) * 4
    with engine.connect() as conn:
        last = history(conn, incident_id)[-1]
        assert (last["action"], last["actor"], last["from_state"], last["to_state"]) == (
            "recall",
            "alice",
            "dispatched",
            "registered",
        )
        assert [n["kind"] for n in notify.inbox(conn, department_id=world.departments["zj"])] == ["recall", "dispatch"]
        assert incident_id in {r["id"] for r in queue.queue(conn)}
        # Undone once; the recall is not a dispatch that could be undone again.
        with pytest.raises(InvalidTransition):
            dispatch.undo_dispatch(conn, incident_id, actor="alice")
    with engine.begin() as conn:  # and it can be dispatched again
        assert dispatch.dispatch(conn, incident_id, actor="alice")["state"] == "dispatched"


def test_undo_is_refused_after_ten_seconds_or_once_acknowledged(engine, world):
    with engine.begin() as conn:
        late, acknowledged = _report(conn, world, "construction"), _report(conn, world, "construction")
        drive_to(conn, late, lifecycle.REGISTERED)
        drive_to(conn, acknowledged, lifecycle.REGISTERED)
        at = history(conn, late)[-1]["at"] + timedelta(minutes=1)
        dispatch.dispatch(conn, late, actor="alice", at=at)
        dispatch.dispatch(conn, acknowledged, actor="alice")
        apply_action(conn, acknowledged, "acknowledge", actor="zj-clerk")
    with engine.begin() as conn:
        with pytest.raises(ValidationError, match="10 seconds"):
            dispatch.undo_dispatch(conn, late, actor="alice", now=at + timedelta(seconds=11))
        with pytest.raises(InvalidTransition):
            dispatch.undo_dispatch(conn, acknowledged, actor="alice")
        assert dispatch.undo_dispatch(conn, late, actor="alice", now=at + timedelta(seconds=9))["state"] == "registered"


def test_undoing_a_redispatch_restores_the_earlier_cycle_times(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        first = drive_to(conn, incident_id, lifecycle.RETURNED)
        dispatch.dispatch(conn, incident_id, actor="alice")
        row = dispatch.undo_dispatch(conn, incident_id, actor="alice")
    assert row["state"] == lifecycle.REGISTERED
    assert (row["dispatched_at"], row["first_dispatched_at"]) == (first["dispatched_at"], first["first_dispatched_at"])


# --- duplicates and merging -------------------------------------------------------------------------


def test_likely_duplicates_are_the_same_category_nearby_recent_and_open(engine, world):
    lon, lat = world.lattice.center(0)
    with engine.begin() as conn:

        def report(category="garbage", dlon=0.0, hours=0.0):
            return make_incident(
                conn, world.categories[category], at=(lon + dlon, lat), reported_at=T0 + hours * H, locator=world.locator
            )

        original = report()
        nearby = report(dlon=0.001, hours=2)  # ~97 m east, two hours later
        other_category = report("water", dlon=0.0005)
        far = report(dlon=0.01)  # ~970 m
        old = report(hours=-30)
        closed = report(dlon=0.0002)
        drive_to(conn, closed, lifecycle.CLOSED)
        found = duplicates.likely_duplicates(conn, original)
    assert [d["id"] for d in found] == [nearby]
    (dup,) = found
    assert 90 < dup["distance_m"] < 105 and dup["hours_apart"] == 2
    assert dup["merge"] == {"merged": nearby, "kept": original}  # the later report joins the earlier
    assert {other_category, far, old, closed}.isdisjoint(d["id"] for d in found)


def test_one_click_merge_joins_the_later_report_to_the_case_under_way(engine, world):
    with engine.begin() as conn:
        first = _report(conn, world, "garbage")
        second = _report(conn, world, "garbage", reported_at=T0 + H)
        drive(conn, first, ["register", "dispatch"])  # the first is under way: it cannot be merged
        merged = duplicates.merge_duplicates(conn, first, second, actor="dispatcher")
        assert (merged["id"], merged["state"], merged["merged_into_id"]) == (second, "merged", first)
        assert duplicates.likely_duplicates(conn, first) == []
        both_busy = [_report(conn, world, "garbage", reported_at=T0 + k * H) for k in (2, 3)]
        for incident_id in both_busy:
            drive_to(conn, incident_id, lifecycle.DISPATCHED)
        assert duplicates.merge_direction(get_incident(conn, both_busy[0]), get_incident(conn, both_busy[1])) is None
        with pytest.raises(InvalidTransition):
            duplicates.merge_duplicates(conn, *both_busy, actor="dispatcher")


# --- the rest of the loop from the dispatcher's screen ----------------------------------------------


def test_verification_failure_reopens_and_counts_as_came_no_effect(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        dispatch.dispatch(conn, incident_id, actor="dispatcher")
        dispatch.act(conn, incident_id, "acknowledge", actor="zj-clerk")
        dispatch.act(conn, incident_id, "resolve", actor="zj-clerk", note="cleared")
    with engine.connect() as conn:
        now = get_incident(conn, incident_id)["updated_at"] + timedelta(minutes=5)

    def no_effect():
        with engine.connect() as conn:
            board = department_board(conn, None, now, "Asia/Shanghai")
        return next(r["no_effect"] for r in board if r["department_id"] == world.departments["zj"])

    before = no_effect()
    with engine.begin() as conn:
        version = get_incident(conn, incident_id)["version"]
        row = dispatch.act(conn, incident_id, "verify_fail", actor="inspector", expected_version=version, note="still there")
    assert row["state"] == lifecycle.REOPENED and row["reopen_count"] == 1
    assert no_effect() == before + 1
    with engine.connect() as conn:
        assert incident_id in {r["id"] for r in queue.queue(conn, now)}


def test_manual_escalation_from_the_desk_tells_the_assignee(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        dispatch.dispatch(conn, incident_id, actor="dispatcher")
        row = dispatch.act(conn, incident_id, "escalate", actor="leader", note="督办: residents waiting")
        assert row["escalation_level"] == 1
        assert notify.inbox(conn, department_id=world.departments["zj"])[0]["kind"] == "escalate"


def test_the_panel_dispatch_target_is_the_queue_deadline(engine, world, queue_world):
    ids, now = queue_world
    with engine.connect() as conn:
        rows = {r["id"]: r for r in queue.queue(conn, now)}
        for key in ("new", "registered_urgent", "returned", "reopened"):
            target = queue.dispatch_target(conn, get_incident(conn, ids[key]))
            assert int(target.timestamp() * 1000) == rows[ids[key]]["deadline_ms"], key
        assert queue.dispatch_target(conn, get_incident(conn, ids["dispatched_overdue"])) is None


def test_panel_facts_gather_everything_the_panel_shows(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "garbage")
        twin = _report(conn, world, "garbage", reported_at=T0 + H)
        facts = dispatch.panel_facts(conn, incident_id)
    assert facts["incident"]["id"] == incident_id and facts["category"]["name_en"] == "garbage"
    assert [e["action"] for e in facts["history"]] == ["report"]
    assert facts["suggestion"].primary == "worker"
    assert [d["id"] for d in facts["duplicates"]] == [twin]
    assert "register" in facts["allowed"] and facts["deliveries"] == []
