"""Random action sequences against the real store keep every incident and its audit log consistent (hypothesis)."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select

from data import schema
from data.errors import Conflict, InvalidTransition, ValidationError
from data.incidents import lifecycle
from data.incidents.intake import report_incidents
from data.incidents.transitions import apply_action
from data.times import from_db
from tests.factories import T0, default_kwargs, make_world

MAX_INCIDENTS = 4
# The way forward from each state (terminal states only take notes, closed ones a rating).
FORWARD = {
    lifecycle.REPORTED: ["register"],
    lifecycle.REGISTERED: ["dispatch"],
    lifecycle.DISPATCHED: ["acknowledge"],
    lifecycle.ACKNOWLEDGED: ["resolve"],
    lifecycle.RESOLVED: ["verify_pass", "verify_fail"],
    lifecycle.RETURNED: ["dispatch"],
    lifecycle.REOPENED: ["dispatch"],
    lifecycle.CLOSED: ["rate"],
    lifecycle.REJECTED: ["note"],
    lifecycle.MERGED: ["note"],
}
ACTORS = ("dispatcher", "cg-clerk", "leader", "网格员07")
CATEGORIES = ("garbage", "water", "construction", "noise")
_runs = itertools.count()


class IncidentMachine(RuleBasedStateMachine):
    """Reports incidents and throws valid and invalid actions at them, predicting each outcome.

    The prediction is a small model (state, version, latest time per incident); after every step
    the store itself is checked against the lifecycle rules and its own audit log.
    """

    incidents = Bundle("incidents")

    def __init__(self, engine, world, seen: Counter):
        super().__init__()
        self.seen = seen  # what the run exercised, so the test can tell it went deep
        self.engine, self.world = engine, world
        self.run = next(_runs)
        self.now = T0 + timedelta(days=self.run)
        self.model: dict[int, dict] = {}

    @precondition(lambda self: len(self.model) < MAX_INCIDENTS)
    @rule(
        target=incidents,
        category=st.sampled_from(CATEGORIES),
        priority=st.integers(1, 3),
        where=st.sampled_from(["grid", "outside", "nowhere"]),
        minutes=st.integers(0, 120),
    )
    def report(self, category, priority, where, minutes):
        self.now += timedelta(minutes=minutes)
        row = {
            "source": "prop",
            "external_id": f"{self.run}-{len(self.model)}",
            "category_code": category,
            "priority": priority,
            "reported_at": self.now,
        }
        if where != "nowhere":
            row["lon"], row["lat"] = (
                self.world.lattice.center(len(self.model) % 6) if where == "grid" else self.world.lattice.outside()
            )
        with self.engine.begin() as conn:
            (result,) = report_incidents(conn, [row], actor="reporter", locator=self.world.locator, now=self.now)
            # Reporting the same matter again is a no-op.
            (again,) = report_incidents(conn, [row], actor="reporter", locator=self.world.locator, now=self.now)
        assert result.created and not again.created and again.incident_id == result.incident_id
        assert result.unlocated == (where != "grid")
        self.model[result.incident_id] = {"state": lifecycle.REPORTED, "version": 1, "last_at": self.now, "category": category}
        return result.incident_id

    @rule(incident_id=incidents, data=st.data())
    def act(self, incident_id, data):
        m = self.model[incident_id]
        allowed = lifecycle.allowed_actions(m["state"])
        action = data.draw(st.one_of(st.sampled_from(allowed), st.sampled_from(lifecycle.ACTIONS)), label="action")
        actor = data.draw(st.sampled_from(ACTORS), label="actor")
        at = m["last_at"] + timedelta(minutes=data.draw(st.integers(-20, 600), label="minutes later"))
        note = data.draw(st.sampled_from(["why", "why", "原因", None]), label="note")
        version = data.draw(st.sampled_from(["current", "current", None, "stale"]), label="expected version")
        expected_version = {"current": m["version"], "stale": m["version"] - 1, None: None}[version]
        params, params_ok = self._draw_params(action, incident_id, data)

        if version == "stale":
            expected = Conflict
        elif action not in allowed:
            expected = InvalidTransition
        elif (action in lifecycle.NEEDS_NOTE or action == "note") and not note or at < m["last_at"] or not params_ok:
            expected = ValidationError
        else:
            expected = None

        try:
            with self.engine.begin() as conn:
                row = apply_action(
                    conn, incident_id, action, actor=actor, expected_version=expected_version, note=note, at=at, **params
                )
        except (Conflict, InvalidTransition, ValidationError) as exc:
            self.seen[type(exc).__name__] += 1
            assert type(exc) is expected, f"{action} from {m['state']}: expected {expected}, got {exc!r}"
            if expected is Conflict:
                assert (exc.current_state, exc.current_version) == (m["state"], m["version"])
            return
        assert expected is None, f"{action} from {m['state']} succeeded; expected {expected.__name__}"
        assert row["state"] == lifecycle.next_state(m["state"], action)
        m.update(state=row["state"], version=m["version"] + 1, last_at=at)
        self.seen[row["state"]] += 1

    @rule(incident_id=incidents, data=st.data())
    def advance(self, incident_id, data):
        """The next step along the loop, done right: sequences reach closing and reopening this way."""
        m = self.model[incident_id]
        action = data.draw(st.sampled_from(FORWARD[m["state"]]), label="forward action")
        at = m["last_at"] + timedelta(minutes=data.draw(st.integers(0, 600), label="minutes later"))
        with self.engine.begin() as conn:
            row = apply_action(
                conn,
                incident_id,
                action,
                actor="dispatcher",
                expected_version=m["version"],
                at=at,
                **{"note": "forward", **default_kwargs(action)},
            )
        assert row["state"] == lifecycle.next_state(m["state"], action)
        m.update(state=row["state"], version=m["version"] + 1, last_at=at)
        self.seen[row["state"]] += 1

    def _draw_params(self, action, incident_id, data) -> tuple[dict, bool]:
        """Keyword arguments for `action` (sometimes wrong ones) and whether they are acceptable."""
        if action in {"dispatch", "reassign"}:
            to = data.draw(st.sampled_from(["default", "department", "worker"]), label="to")
            if to == "worker":
                return {"worker_id": self.world.worker_id}, self.model[incident_id]["category"] == "garbage"
            if to == "department":
                return {"department_id": self.world.departments["zj"]}, True
            return {}, True
        if action == "merge":
            target = data.draw(st.sampled_from(sorted(self.model)), label="merge into")
            return {"merged_into_id": target}, target != incident_id and self.model[target]["state"] in lifecycle.OPEN_STATES
        if action == "extend":
            minutes = data.draw(st.sampled_from([30, 120, 0, None]), label="extend minutes")
            return {"extend_minutes": minutes}, bool(minutes)
        if action == "rate":
            score = data.draw(st.sampled_from([1, 3, 5, 0, 6, None]), label="satisfaction")
            return {"satisfaction": score}, score in range(1, 6)
        return {}, True

    @invariant()
    def store_agrees_with_its_audit_log(self):
        if not self.model:
            return
        inc, ev = schema.incidents, schema.incident_events
        with self.engine.connect() as conn:
            rows = {
                r.id: {k: from_db(v) for k, v in r._mapping.items()}
                for r in conn.execute(select(inc).where(inc.c.id.in_(list(self.model))))
            }
            events: dict[int, list] = {i: [] for i in self.model}
            for e in conn.execute(select(ev).where(ev.c.incident_id.in_(list(self.model))).order_by(ev.c.id)):
                events[e.incident_id].append(e)
        for incident_id, m in self.model.items():
            row, log = rows[incident_id], events[incident_id]
            actions = [e.action for e in log]
            counts = Counter(actions)
            times = [from_db(e.at) for e in log]
            assert row["state"] in lifecycle.STATES
            assert lifecycle.replay(actions) == row["state"] == m["state"]
            assert [e.to_state for e in log][-1] == row["state"]
            assert all(e.from_state == prev.to_state for prev, e in itertools.pairwise(log))
            assert times == sorted(times) and row["updated_at"] == times[-1] == m["last_at"]
            assert row["version"] == len(log) == m["version"]
            assert row["is_open"] == (row["state"] in lifecycle.OPEN_STATES)
            assert row["reopen_count"] == counts["verify_fail"]
            assert row["escalation_level"] == counts["escalate"]
            assert row["extension_minutes"] == sum(e.data["minutes"] for e in log if e.action == "extend")
            ratings = [e.data["satisfaction"] for e in log if e.action == "rate"]
            assert row["satisfaction"] == (ratings[-1] if ratings else None)
            assert (row["merged_into_id"] is not None) == (row["state"] == lifecycle.MERGED) and row[
                "merged_into_id"
            ] != incident_id
            if row["state"] in lifecycle.WITH_ASSIGNEE:
                assert row["ack_due_at"] and row["handle_due_at"] and row["dispatched_at"] >= row["first_dispatched_at"]
                assert (row["assignee_department_id"] is None) != (row["assignee_worker_id"] is None)


def test_random_action_sequences_keep_the_store_consistent(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    on_sqlite = engine.dialect.name == "sqlite"
    seen: Counter = Counter()
    wanted = {lifecycle.CLOSED, lifecycle.REOPENED, lifecycle.MERGED, "Conflict", "InvalidTransition", "ValidationError"}
    # The sequences must reach the far end of the loop and try every kind of refusal. They are random, and
    # a round of 12 on PostgreSQL now and then misses one: another round of new sequences, at most four.
    for _round in range(4):
        run_state_machine_as_test(
            lambda: IncidentMachine(engine, world, seen),
            settings=settings(
                max_examples=40 if on_sqlite else 12,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
            ),
        )
        if set(seen) >= wanted:
            break
    assert set(seen) >= wanted, seen
