"""The incident store: intake, every lifecycle transition with its audit event, clocks, merge rules and the change feed."""

from __future__ import annotations

import threading
from datetime import timedelta, timezone

import pytest
from sqlalchemy import func, select

from data import schema, times
from data.errors import Conflict, InvalidTransition, NotFound, ValidationError
from data.incidents import clock, lifecycle
from data.incidents.clock import compute_due_times
from data.incidents.feed import events_after, get_incident, history
from data.incidents.intake import report_incidents
from data.incidents.transitions import _update_if_unchanged, apply_action
from tests.factories import PATHS, T0, TEST_LIMITS, default_kwargs, drive, drive_to, make_incident, make_world

MIN = timedelta(minutes=1)


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _event_count(conn, incident_id=None):
    q = select(func.count()).select_from(schema.incident_events)
    if incident_id is not None:
        q = q.where(schema.incident_events.c.incident_id == incident_id)
    return conn.execute(q).scalar_one()


def _report(conn, world, category="garbage", *, grid=0, **kwargs):
    return make_incident(conn, world.categories[category], at=world.lattice.center(grid), locator=world.locator, **kwargs)


# --- the happy path ---------------------------------------------------------------------------


def test_full_loop_from_report_to_rating_records_every_step(engine, world):
    with engine.begin() as conn:
        (result,) = report_incidents(
            conn,
            [
                {
                    "source": "hotline",
                    "external_id": "12345-001",
                    "category_code": "garbage",
                    "priority": 2,
                    "description": "垃圾暴露",
                    "lon": world.lattice.center(4)[0],
                    "lat": world.lattice.center(4)[1],
                    "address": "解放碑",
                    # Any zone in, UTC out, to the microsecond.
                    "reported_at": (T0 + timedelta(microseconds=250)).astimezone(timezone(timedelta(hours=8))),
                    "attributes": {"caller": "anonymous"},
                }
            ],
            actor="hotline-gateway",
            locator=world.locator,
            now=T0,
        )
        assert result.created and not result.unlocated
        incident_id = result.incident_id
        steps = [
            ("register", {}),
            ("dispatch", {"department_id": world.departments["cg"]}),
            ("acknowledge", {}),
            ("resolve", {}),
            ("verify_pass", {}),
            ("rate", {"satisfaction": 4}),
        ]
        for n, (action, kwargs) in enumerate(steps, start=1):
            row = apply_action(conn, incident_id, action, actor=f"user{n}", at=T0 + n * 10 * MIN, **kwargs)

    with engine.connect() as conn:
        row = get_incident(conn, incident_id)
        events = history(conn, incident_id)
    assert row["state"] == lifecycle.CLOSED and row["is_open"] is False
    assert row["grid_id"] == world.lattice.grid_ids[4] and row["district_id"] == world.lattice.ancestors_of(4)[0]
    assert row["attributes"] == {"caller": "anonymous"} and row["description"] == "垃圾暴露"
    assert row["assignee_department_id"] == world.departments["cg"]
    assert row["reported_at"] == events[0]["at"] == T0 + timedelta(microseconds=250)
    assert row["reported_at"].utcoffset() == timedelta(0)
    assert row["registered_at"] == T0 + 10 * MIN
    assert row["dispatched_at"] == row["first_dispatched_at"] == T0 + 20 * MIN
    assert row["acknowledged_at"] == T0 + 30 * MIN and row["ack_late"] is False
    assert row["resolved_at"] == T0 + 40 * MIN and row["resolved_late"] is False
    assert row["closed_at"] == T0 + 50 * MIN and row["satisfaction"] == 4
    assert row["version"] == len(events) == 7
    assert row["updated_at"] == events[-1]["at"] == T0 + 60 * MIN
    assert [e["action"] for e in events] == ["report"] + [a for a, _ in steps]
    assert [e["actor"] for e in events] == ["hotline-gateway"] + [f"user{n}" for n in range(1, 7)]
    assert [(e["from_state"], e["to_state"]) for e in events[:3]] == [
        (None, "reported"),
        ("reported", "registered"),
        ("registered", "dispatched"),
    ]
    assert events[2]["data"]["department_id"] == world.departments["cg"]


def test_dispatch_without_an_assignee_goes_to_the_categorys_department(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world, "construction")
        row = drive_to(conn, incident_id, lifecycle.DISPATCHED)
    assert row["assignee_department_id"] == world.departments["zj"] and row["assignee_worker_id"] is None


# --- refusals change nothing ------------------------------------------------------------------


def test_every_invalid_transition_raises_and_changes_nothing(engine, world):
    with engine.begin() as conn:
        target = _report(conn, world)
        incidents = {}
        for state in lifecycle.STATES:
            incidents[state] = _report(conn, world)
            drive_to(conn, incidents[state], state, merged_into_id=target)
    refused = 0
    with engine.begin() as conn:
        for state, incident_id in incidents.items():
            assert get_incident(conn, incident_id)["state"] == state
            for action in (*lifecycle.ACTIONS, "report", "teleport"):
                if action in lifecycle.allowed_actions(state):
                    continue
                before, count = get_incident(conn, incident_id), _event_count(conn)
                kwargs = default_kwargs(action)
                if action in {"merge"}:
                    kwargs["merged_into_id"] = target
                with pytest.raises(InvalidTransition) as info:
                    apply_action(conn, incident_id, action, actor="tester", at=T0 + timedelta(days=1), **kwargs)
                assert state in str(info.value) or "unknown action" in str(info.value)
                assert get_incident(conn, incident_id) == before
                assert _event_count(conn) == count
                refused += 1
    # Most of the 10 x 16 pairs are refusals; the loop must have checked them, not skipped them.
    assert refused > 80


def test_stale_version_is_a_conflict_carrying_the_current_state(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        seen = get_incident(conn, incident_id)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        with pytest.raises(Conflict) as info:
            apply_action(conn, incident_id, "reject", actor="d2", note="dup", expected_version=seen["version"], at=T0 + 20 * MIN)
        assert info.value.current_state == lifecycle.REGISTERED and info.value.current_version == seen["version"] + 1
        assert get_incident(conn, incident_id)["state"] == lifecycle.REGISTERED and _event_count(conn, incident_id) == 2
        row = apply_action(conn, incident_id, "reject", actor="d2", note="dup", expected_version=2, at=T0 + 20 * MIN)
    assert row["state"] == lifecycle.REJECTED and row["rejected_at"] == T0 + 20 * MIN and row["is_open"] is False


def test_conditional_update_refuses_a_row_changed_since_it_was_read(engine, world):
    # The guard under apply_action: even without expected_version, an UPDATE based on a stale read
    # matches no row and becomes a Conflict instead of overwriting someone else's change.
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        stale = get_incident(conn, incident_id)
        apply_action(conn, incident_id, "register", actor="a", at=T0 + MIN)
        with pytest.raises(Conflict) as info:
            _update_if_unchanged(conn, stale, {"state": lifecycle.REJECTED, "version": stale["version"] + 1})
        assert info.value.current_state == lifecycle.REGISTERED
        assert get_incident(conn, incident_id)["state"] == lifecycle.REGISTERED


@pytest.mark.parametrize(
    ("action", "kwargs", "message"),
    [
        ("reject", {}, "needs a note"),
        ("reject", {"note": "   "}, "needs a note"),
        ("register", {"satisfaction": 5}, "satisfaction not used by register"),
        ("register", {"at": T0 - MIN}, "earlier than the incident's latest event"),
    ],
)
def test_bad_arguments_are_refused_with_a_reason(engine, world, action, kwargs, message):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        before = get_incident(conn, incident_id)
        kwargs = {"at": T0 + MIN, **kwargs}
        with pytest.raises(ValidationError, match=message):
            apply_action(conn, incident_id, action, actor="tester", **kwargs)
        assert get_incident(conn, incident_id) == before and _event_count(conn, incident_id) == 1


def test_missing_incident_actor_and_naive_time(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        with pytest.raises(NotFound):
            apply_action(conn, 999_999, "register", actor="a")
        with pytest.raises(NotFound):
            history(conn, 999_999)
        with pytest.raises(ValidationError, match="actor"):
            apply_action(conn, incident_id, "register", actor=" ")
        with pytest.raises(ValidationError, match="timezone-aware"):
            apply_action(conn, incident_id, "register", actor="a", at=T0.replace(tzinfo=None) + MIN)
        closed = drive_to(conn, _report(conn, world), lifecycle.CLOSED)["id"]
        with pytest.raises(ValidationError, match="satisfaction must be a whole number from 1 to 5"):
            apply_action(conn, closed, "rate", actor="a", satisfaction=6)
        dispatched = drive_to(conn, _report(conn, world), lifecycle.DISPATCHED)["id"]
        with pytest.raises(ValidationError, match="extend needs extend_minutes"):
            apply_action(conn, dispatched, "extend", actor="a", note="x", extend_minutes=0)
        assert get_incident(conn, dispatched)["extension_minutes"] == 0


def test_an_action_without_a_time_happens_now_but_never_before_the_latest_event(engine, world):
    before = times.utc_now()
    with engine.begin() as conn:
        # A reporter whose clock runs three minutes ahead (within the allowed skew).
        (ahead,) = report_incidents(
            conn,
            [{"source": "app", "external_id": "ahead", "category_code": "garbage", "reported_at": before + 3 * MIN}],
            actor="app",
            locator=world.locator,
        )
        past = _report(conn, world)
        registered_ahead = apply_action(conn, ahead.incident_id, "register", actor="d")["registered_at"]
        registered_past = apply_action(conn, past, "register", actor="d")["registered_at"]
    assert registered_ahead == before + 3 * MIN
    assert before <= registered_past <= times.utc_now()


# --- intake ------------------------------------------------------------------------------------


def test_reporting_again_is_idempotent_and_changes_nothing(engine, world):
    rows = [
        {"source": "app", "external_id": "A1", "category_code": "garbage", "lon": 106.505, "lat": 29.505, "reported_at": T0},
        {"source": "app", "external_id": "A2", "category_code": "water", "priority": "1", "reported_at": T0},
        {"source": "app", "external_id": "A1", "category_code": "water", "description": "same again in one batch"},
    ]
    with engine.begin() as conn:
        first = report_incidents(conn, rows, actor="app", locator=world.locator, now=T0)
    assert [r.created for r in first] == [True, True, False]
    assert first[0].incident_id == first[2].incident_id != first[1].incident_id
    with engine.begin() as conn:
        before = [get_incident(conn, r.incident_id) for r in first[:2]]
        events = _event_count(conn)
        changed = [{**rows[0], "description": "edited", "priority": 1}, rows[1]]
        again = report_incidents(conn, changed, actor="app", locator=world.locator, now=T0 + MIN)
        assert [(r.incident_id, r.created, r.unlocated) for r in again] == [
            (first[0].incident_id, False, False),
            (first[1].incident_id, False, True),
        ]
        assert [get_incident(conn, r.incident_id) for r in first[:2]] == before
        assert _event_count(conn) == events == 2


def test_unknown_category_lists_the_valid_codes_and_writes_nothing(engine, world):
    rows = [
        {"source": "app", "external_id": "ok", "category_code": "garbage"},
        {"source": "app", "external_id": "bad", "category_code": "graffiti"},
    ]
    with engine.begin() as conn:
        with pytest.raises(ValidationError) as info:
            report_incidents(conn, rows, actor="app", locator=world.locator, now=T0)
        message = str(info.value)
        assert message.startswith("row 1: unknown category 'graffiti'")
        assert "construction, garbage, noise, water" in message
        assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one() == 0


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("priority", 4, "priority must be one of 1"),
        ("priority", "urgent", "priority must be one of 1"),
        ("priority", True, "priority must be one of 1"),
        ("lon", "east", "lon must be a number"),
        ("reported_at", T0.replace(tzinfo=None), "timezone-aware"),
        ("reported_at", T0 + timedelta(days=1), "in the future"),
        ("external_id", "", "external_id is required"),
        ("lng", 106.5, "unknown field"),
        ("attributes", {"seen": T0}, "attributes must be plain JSON values"),
    ],
)
def test_bad_rows_are_refused_naming_the_row(engine, world, field, value, message):
    row = {"source": "app", "external_id": "x1", "category_code": "garbage", field: value}
    with engine.begin() as conn:
        with pytest.raises(ValidationError, match=message) as info:
            report_incidents(conn, [row], actor="app", locator=world.locator, now=T0)
        assert str(info.value).startswith("row 0: ")
        assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one() == 0


def test_incidents_outside_every_grid_or_without_position_are_kept_unlocated(engine, world):
    outside = world.lattice.outside()
    inside = world.lattice.center(5)
    rows = [
        {"source": "iot", "external_id": "out", "category_id": world.categories["noise"], "lon": outside[0], "lat": outside[1]},
        {"source": "iot", "external_id": "none", "category_id": world.categories["noise"]},
        {"source": "iot", "external_id": "nan", "category_id": world.categories["noise"], "lon": float("nan"), "lat": 29.5},
        {"source": "iot", "external_id": "in", "category_id": world.categories["noise"], "lon": inside[0], "lat": inside[1]},
    ]
    with engine.begin() as conn:
        results = report_incidents(conn, rows, actor="iot", locator=world.locator, now=T0)
    assert [r.unlocated for r in results] == [True, True, True, False]
    with engine.connect() as conn:
        kept = [get_incident(conn, r.incident_id) for r in results]
    assert kept[0]["lon"] == outside[0] and kept[0]["grid_id"] is None and kept[0]["district_id"] is None
    assert kept[1]["lon"] is None and kept[1]["unlocated"] is True
    assert kept[3]["grid_id"] == world.lattice.grid_ids[5] and kept[3]["street_id"] == world.lattice.ancestors_of(5)[1]
    assert all(k["state"] == lifecycle.REPORTED and k["is_open"] and k["version"] == 1 for k in kept)


# --- dispatch to grid workers (清单外事项下派过滤) ----------------------------------------------------


def test_grid_worker_dispatch_is_refused_outside_the_duty_list(engine, world):
    with engine.begin() as conn:
        not_allowed = _report(conn, world, "construction")
        not_listed = _report(conn, world, "water")
        listed = _report(conn, world, "garbage")
        for incident_id in (not_allowed, not_listed, listed):
            drive_to(conn, incident_id, lifecycle.REGISTERED)
    with engine.begin() as conn:
        with pytest.raises(ValidationError, match="may not be pushed down to grid workers"):
            apply_action(conn, not_allowed, "dispatch", actor="d", worker_id=world.worker_id, at=T0 + 20 * MIN)
        with pytest.raises(ValidationError, match="'water' is not on grid worker .*'s duty list"):
            apply_action(conn, not_listed, "dispatch", actor="d", worker_id=world.worker_id, at=T0 + 20 * MIN)
        with pytest.raises(ValidationError, match="does not exist"):
            apply_action(conn, listed, "dispatch", actor="d", worker_id=999, at=T0 + 20 * MIN)
        with pytest.raises(ValidationError, match="not both"):
            apply_action(conn, listed, "dispatch", actor="d", worker_id=world.worker_id, department_id=1, at=T0 + 20 * MIN)
        assert get_incident(conn, not_listed)["state"] == lifecycle.REGISTERED
        row = apply_action(conn, listed, "dispatch", actor="d", worker_id=world.worker_id, at=T0 + 20 * MIN)
    assert row["state"] == lifecycle.DISPATCHED
    assert row["assignee_worker_id"] == world.worker_id and row["assignee_department_id"] is None


# --- clocks ------------------------------------------------------------------------------------


@pytest.mark.parametrize("priority", [1, 2, 3])
def test_due_times_follow_the_category_limits(engine, world, priority):
    ack_minutes, handle_minutes = TEST_LIMITS[priority]
    with engine.begin() as conn:
        incident_id = _report(conn, world, priority=priority)
        row = drive_to(conn, incident_id, lifecycle.DISPATCHED)
        start = row["dispatched_at"]
        assert (row["ack_due_at"], row["handle_due_at"]) == (
            start + timedelta(minutes=ack_minutes),
            start + timedelta(minutes=handle_minutes),
        )
        assert compute_due_times(conn, world.categories["garbage"], priority, start) == (row["ack_due_at"], row["handle_due_at"])
        # Acknowledged a minute late: 吹哨不到 is recorded.
        row = apply_action(conn, incident_id, "acknowledge", actor="cg", at=row["ack_due_at"] + MIN)
        assert row["ack_late"] is True
        row = apply_action(
            conn, incident_id, "extend", actor="d", note="heavy rain", extend_minutes=30, at=row["acknowledged_at"]
        )
        assert row["handle_due_at"] == start + timedelta(minutes=handle_minutes + 30) and row["extension_minutes"] == 30
        row = apply_action(conn, incident_id, "resolve", actor="cg", at=row["handle_due_at"])
        assert row["resolved_late"] is False


def test_categories_without_limits_use_the_defaults(engine, world):
    with engine.begin() as conn:
        row = drive_to(conn, _report(conn, world, "noise", priority=1), lifecycle.DISPATCHED)
    ack, handle = clock.DEFAULT_LIMITS[1]
    assert row["ack_due_at"] - row["dispatched_at"] == timedelta(minutes=ack)
    assert row["handle_due_at"] - row["dispatched_at"] == timedelta(minutes=handle)


def test_reassign_restarts_the_clock_but_keeps_the_first_dispatch(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        first = drive_to(conn, incident_id, lifecycle.ACKNOWLEDGED)
        row = apply_action(conn, incident_id, "reassign", actor="d", department_id=world.departments["zj"], at=T0 + 2 * 60 * MIN)
    assert row["state"] == lifecycle.DISPATCHED and row["assignee_department_id"] == world.departments["zj"]
    assert row["first_dispatched_at"] == first["dispatched_at"] and row["dispatched_at"] == T0 + 2 * 60 * MIN
    assert row["ack_due_at"] == row["dispatched_at"] + timedelta(minutes=TEST_LIMITS[3][0])
    assert row["acknowledged_at"] is None and row["ack_late"] is None


def test_overdue_and_near_due_agree_between_python_and_sql(engine, world):
    # Priority 1 (15 min / 60 min): near due is the last 20%; priority 3 (4 h / 24 h): the last 2 h.
    with engine.begin() as conn:
        ids = {}
        for priority in (1, 3):
            for state in (lifecycle.DISPATCHED, lifecycle.ACKNOWLEDGED, lifecycle.RESOLVED, lifecycle.REGISTERED):
                ids[priority, state] = _report(conn, world, priority=priority)
                drive_to(conn, ids[priority, state], state, step=MIN)
    with engine.connect() as conn:
        rows = {r.id: r._mapping for r in conn.execute(select(schema.incidents))}
    # Raw rows on purpose: the Python rules must accept them as read (naive UTC on SQLite).
    dispatched_at = times.from_db(rows[ids[1, lifecycle.DISPATCHED]]["dispatched_at"])
    moments = sorted(
        {dispatched_at + timedelta(minutes=m) + timedelta(seconds=s) for m in range(0, 26 * 60, 7) for s in (0, 1)}
        | {
            times.from_db(r[k]) + d
            for r in rows.values()
            for k in ("ack_due_at", "handle_due_at")
            if r[k]
            for d in (timedelta(0), timedelta(seconds=-1), timedelta(seconds=1), -2 * 60 * MIN, -3 * MIN, -12 * MIN, -13 * MIN)
        }
    )
    statuses = set()
    with engine.connect() as conn:
        for now in moments:
            sql = dict(
                conn.execute(
                    select(schema.incidents.c.id, clock.due_status_expression(now)).where(schema.incidents.c.id.in_(list(rows)))
                ).all()
            )
            overdue = set(conn.execute(select(schema.incidents.c.id).where(clock.overdue_expression(now))).scalars())
            near = set(conn.execute(select(schema.incidents.c.id).where(clock.near_due_expression(now))).scalars())
            python = {i: clock.due_status(r, now) for i, r in rows.items()}
            assert sql == python, now
            assert overdue == {i for i, r in rows.items() if clock.is_overdue(r, now)}, now
            assert near == {i for i, r in rows.items() if clock.is_near_due(r, now)}, now
            statuses |= set(python.values())
    assert statuses == {None, clock.ON_TIME, clock.NEAR_DUE, clock.OVERDUE}

    # The rule itself, on the urgent incident (ack limit 15 min: near due in its last 3 minutes).
    urgent = rows[ids[1, lifecycle.DISPATCHED]]
    due = times.from_db(urgent["ack_due_at"])
    assert not clock.is_near_due(urgent, due - 3 * MIN - timedelta(seconds=1))
    assert clock.is_near_due(urgent, due - 3 * MIN) and clock.is_near_due(urgent, due)
    assert not clock.is_overdue(urgent, due) and clock.is_overdue(urgent, due + timedelta(seconds=1))
    # Normal priority, acknowledged (24 h limit): near due only in the last 2 hours, not the last 20%.
    normal = rows[ids[3, lifecycle.ACKNOWLEDGED]]
    due = times.from_db(normal["handle_due_at"])
    assert clock.is_near_due(normal, due - 120 * MIN) and not clock.is_near_due(normal, due - 121 * MIN)
    # Resolved incidents have no running clock, however late.
    assert clock.due_status(rows[ids[1, lifecycle.RESOLVED]], due + timedelta(days=30)) is None


# --- reopen, return, escalate, merge ------------------------------------------------------------


def test_failed_verification_reopens_and_remembers_who_resolved_it(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        row = drive_to(conn, incident_id, lifecycle.REOPENED)
        assert row["reopen_count"] == 1 and row["assignee_department_id"] is None and row["is_open"]
        last = history(conn, incident_id)[-1]
        assert last["action"] == "verify_fail" and last["data"]["department_id"] == world.departments["cg"]
        row = drive(conn, incident_id, ["dispatch", "acknowledge", "resolve", "verify_fail", "escalate"])
    assert row["reopen_count"] == 2 and row["escalation_level"] == 1 and row["state"] == lifecycle.REOPENED


def test_return_clears_the_assignee(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        row = drive_to(conn, incident_id, lifecycle.RETURNED)
        event = history(conn, incident_id)[-1]
    assert row["assignee_department_id"] is None and row["returned_at"] == event["at"]
    assert event["note"] == "test return" and event["data"]["department_id"] == world.departments["cg"]


def test_merge_only_into_another_open_incident(engine, world):
    with engine.begin() as conn:
        main = _report(conn, world)
        duplicate = _report(conn, world)
        closed = drive_to(conn, _report(conn, world), lifecycle.CLOSED)["id"]
        merged = drive_to(conn, _report(conn, world), lifecycle.MERGED, merged_into_id=main)["id"]
    at = T0 + timedelta(hours=3)
    with engine.begin() as conn:
        for target, message in [
            (duplicate, "cannot be merged into itself"),
            (closed, "is closed; merge only into an open incident"),
            (merged, "is merged; merge only into an open incident"),
            (999_999, "does not exist"),
            (None, "needs merged_into_id"),
        ]:
            with pytest.raises(ValidationError, match=message):
                apply_action(conn, duplicate, "merge", actor="d", merged_into_id=target, at=at)
        assert get_incident(conn, duplicate)["state"] == lifecycle.REPORTED
        row = apply_action(conn, duplicate, "merge", actor="d", merged_into_id=main, at=at)
    assert row["state"] == lifecycle.MERGED and row["merged_into_id"] == main and row["is_open"] is False


# --- the change feed ---------------------------------------------------------------------------


def test_feed_returns_events_after_an_id_in_order_with_the_incident(engine, world):
    with engine.begin() as conn:
        a = _report(conn, world, grid=1)
        b = _report(conn, world, grid=2)
        drive_to(conn, a, lifecycle.DISPATCHED)
        drive_to(conn, b, lifecycle.REGISTERED)
    with engine.connect() as conn:
        feed = events_after(conn, 0)
        assert [e["id"] for e in feed] == sorted(e["id"] for e in feed)
        assert [(e["incident_id"], e["action"]) for e in feed] == [
            (a, "report"),
            (b, "report"),
            (a, "register"),
            (a, "dispatch"),
            (b, "register"),
        ]
        newest = feed[-1]
        assert newest["to_state"] == newest["state"] == lifecycle.REGISTERED
        assert (
            newest["grid_id"] == world.lattice.grid_ids[2]
            and newest["district_id"] == world.lattice.ancestors_of(2)[0] == world.lattice.district_ids[1]
        )
        assert feed[3]["assignee_department_id"] == world.departments["cg"] and feed[3]["ack_due_at"] is not None
        assert events_after(conn, feed[1]["id"], limit=2) == feed[2:4]
        assert events_after(conn, newest["id"]) == []


# --- two people at once -----------------------------------------------------------------------


def _race(engine, work):
    """Run `work(conn)` in two threads at once, each in its own transaction; their outcomes."""
    barrier = threading.Barrier(2)
    outcomes: list = [None, None]

    def run(slot):
        barrier.wait()
        try:
            with engine.begin() as conn:
                outcomes[slot] = work(conn)
        except Exception as exc:  # noqa: BLE001 - the test inspects whatever each thread ended with
            outcomes[slot] = exc

    threads = [threading.Thread(target=run, args=(slot,)) for slot in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def test_two_dispatchers_at_once_one_wins_one_conflicts(engine, world):
    with engine.begin() as conn:
        incident_id = _report(conn, world)
        version = drive_to(conn, incident_id, lifecycle.REGISTERED)["version"]

    def dispatch(conn):
        return apply_action(conn, incident_id, "dispatch", actor="d", expected_version=version, at=T0 + 30 * MIN)

    outcomes = _race(engine, dispatch)
    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "dict"]
    conflict = next(o for o in outcomes if isinstance(o, Conflict))
    assert conflict.current_state == lifecycle.DISPATCHED and conflict.current_version == version + 1
    with engine.connect() as conn:
        assert [e["action"] for e in history(conn, incident_id)].count("dispatch") == 1


def test_two_reports_of_the_same_matter_at_once_make_one_incident(engine, world):
    row = {"source": "hotline", "external_id": "same-call", "category_code": "garbage", "reported_at": T0}

    def report(conn):
        return report_incidents(conn, [row], actor="hotline", locator=world.locator, now=T0)[0]

    outcomes = _race(engine, report)
    assert sorted(o.created for o in outcomes) == [False, True]
    assert outcomes[0].incident_id == outcomes[1].incident_id
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one() == 1
        assert _event_count(conn) == 1


def test_paths_reach_their_states(engine, world):
    # The factory's roads are what other tests stand on.
    with engine.begin() as conn:
        target = _report(conn, world)
        for state in PATHS:
            assert drive_to(conn, _report(conn, world), state, merged_into_id=target)["state"] == state
