"""One demo incident's life: a Case played through the closed loop by the rules apply_action enforces, stopping at now.

Every action is checked with lifecycle.next_state and has the same column effects as apply_action
(due times from the category limits at dispatch, through the store's own clock arithmetic); the
centre registers, dispatches and verifies, departments and grid workers acknowledge, return,
resolve, with their own speed, and some cases are rejected, merged, escalated, extended or reopened.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from data.demo.catalogue import CATEGORIES, DEPARTMENTS_BY_CODE, GRID_WORKER, Department
from data.incidents import lifecycle
from data.incidents.clock import due_after_seconds

HOUR, DAY = 3600, 86400
REJECT_SHARE = 0.03
MISDISPATCH_SHARE = 0.025
RETURN_SHARE = 0.015
WORKER_SHARE = 0.55  # of matters on the grid worker duty list, how many the centre pushes down
RATED_SHARE = 0.75
MAX_CYCLES = 3

NOTE_REJECT = ("不属于受理范围 (outside the scope of the service)", "信息不全，无法核实 (too little information to verify)")
NOTE_RETURN = "不属于本单位职责，申请退回 (not this unit's remit: returned)"
NOTE_ESCALATE_ACK = "超期未签收，升级督办 (not acknowledged in time: escalated)"
NOTE_ESCALATE_HANDLE = "超期未办结，挂牌督办 (not handled in time: escalated)"
NOTE_EXTEND = "情况复杂，申请延期 (complex case: extension granted)"
NOTE_VERIFY_FAIL = "现场核查未通过，问题依旧 (checked on site: not fixed)"

# The columns a Case carries from report to its last event (times as whole epoch seconds).
CASE_STATE = (
    "state", "assignee_department_id", "assignee_worker_id", "registered_at", "dispatched_at", "first_dispatched_at",
    "acknowledged_at", "returned_at", "resolved_at", "closed_at", "rejected_at", "ack_due_at", "handle_due_at",
    "ack_late", "resolved_late", "satisfaction", "reopen_count", "escalation_level", "extension_minutes",
    "merged_into_id", "version", "updated_at",
)  # fmt: skip


def _assignee_json(department_id, worker_id) -> str:
    # The same document apply_action writes for dispatch, return and verify_fail.
    d = "null" if department_id is None else department_id
    w = "null" if worker_id is None else worker_id
    return f'{{"department_id": {d}, "worker_id": {w}}}'


class Case:
    """One incident played through the closed loop: the same transitions and column effects as apply_action.

    Every action is checked with lifecycle.next_state. An action timed after `now` is not taken
    and stops the case there, so the row ends in the state it had reached by `now`.
    """

    __slots__ = (*CASE_STATE, "incident_id", "now", "stopped", "last_at", "events", "limits", "calendars", "calendar")

    def __init__(
        self, incident_id: int, reported_at: int, actor: str, now: int, limits: dict, events: list, calendars: dict | None = None
    ):
        self.incident_id, self.now, self.limits, self.events = incident_id, now, limits, events
        # Per priority, the working calendar its limits count in (clock.limit_calendars; None: wall clock).
        self.calendars, self.calendar = calendars or {}, None
        for name in CASE_STATE:
            setattr(self, name, None)
        self.reopen_count = self.escalation_level = self.extension_minutes = self.version = 0
        self.stopped = False
        self.state = None
        self.last_at = reported_at
        self.act(reported_at, lifecycle.REPORT, actor)

    def act(self, at: int, action: str, actor: str, note: str | None = None, **params) -> bool:
        """Take `action` at `at` (epoch seconds); False, and the case stops, when `at` is after now."""
        if self.stopped or at > self.now:
            self.stopped = True
            return False
        at = max(int(at), self.last_at)
        to_state = lifecycle.next_state(self.state, action)
        data = None
        if action == "register":
            self.registered_at = at
        elif action == "reject":
            self.rejected_at = at
        elif action == "merge":
            self.merged_into_id = params["merged_into_id"]
            data = f'{{"merged_into_id": {self.merged_into_id}}}'
        elif action == "dispatch":
            dept, worker, priority = params.get("department_id"), params.get("worker_id"), params["priority"]
            ack_minutes, handle_minutes = self.limits[priority]
            self.assignee_department_id, self.assignee_worker_id = dept, worker
            self.dispatched_at = at
            self.first_dispatched_at = self.first_dispatched_at or at
            # The store's own due-time arithmetic (data.clock), so a demo built with the calendar on counts working hours.
            self.calendar = self.calendars.get(priority)
            self.ack_due_at = due_after_seconds(at, ack_minutes, self.calendar)
            self.handle_due_at = due_after_seconds(at, handle_minutes, self.calendar)
            self.acknowledged_at = self.ack_late = self.resolved_at = self.resolved_late = None
            data = _assignee_json(dept, worker)
        elif action == "acknowledge":
            self.acknowledged_at, self.ack_late = at, at > self.ack_due_at
        elif action == "return":
            data = _assignee_json(self.assignee_department_id, self.assignee_worker_id)
            self.returned_at, self.assignee_department_id, self.assignee_worker_id = at, None, None
        elif action == "resolve":
            self.resolved_at, self.resolved_late = at, at > self.handle_due_at
        elif action == "verify_pass":
            self.closed_at = at
        elif action == "verify_fail":
            data = _assignee_json(self.assignee_department_id, self.assignee_worker_id)
            self.reopen_count += 1
            self.assignee_department_id = self.assignee_worker_id = None
        elif action == "escalate":
            self.escalation_level += 1
            data = f'{{"level": {self.escalation_level}}}'
        elif action == "extend":
            minutes = params["extend_minutes"]
            self.handle_due_at = due_after_seconds(self.handle_due_at, minutes, self.calendar)
            self.extension_minutes += minutes
            data = f'{{"minutes": {minutes}}}'
        elif action == "rate":
            self.satisfaction = params["satisfaction"]
            data = f'{{"satisfaction": {self.satisfaction}}}'
        self.events.append((self.incident_id, at, actor, action, self.state, to_state, note, data))
        self.state, self.last_at, self.updated_at = to_state, at, at
        self.version += 1
        return True

    def terminal_at(self) -> float:
        """When the case left the open states, or infinity when it is still open at `now`."""
        if self.state in lifecycle.OPEN_STATES:
            return math.inf
        return self.closed_at or self.rejected_at or self.last_at


def _lognormal_seconds(rnd: random.Random, median_seconds: float, sigma: float) -> float:
    return median_seconds * math.exp(sigma * rnd.gauss(0.0, 1.0))


def _is_night(at: int, offset: int) -> bool:
    hour = ((at + offset) // HOUR) % 24
    return hour >= 22 or hour < 7


@dataclass
class LifeContext:
    """Everything the life of one incident may look up."""

    rnd: random.Random
    now: int
    offset: int
    category_ids: list[int]
    department_ids: dict[str, int]
    limits: list[dict]


def _dispatch_target(ctx: LifeContext, cat_index: int, worker: tuple[int, str] | None, first: bool) -> tuple:
    """(department_id, worker_id, profile, actor of the assignee, misdispatched) for a dispatch."""
    cat = CATEGORIES[cat_index]
    rnd = ctx.rnd
    if worker is not None and cat.grid_worker_ok and rnd.random() < WORKER_SHARE:
        return None, worker[0], GRID_WORKER, f"worker:{worker[1]}", False
    code = cat.department
    misdispatched = first and rnd.random() < MISDISPATCH_SHARE
    if misdispatched:
        code = rnd.choice([d for d in DEPARTMENTS_BY_CODE if d != cat.department])
    return ctx.department_ids[code], None, DEPARTMENTS_BY_CODE[code], f"dept:{code}", misdispatched


def _satisfaction(rnd: random.Random, profile: Department, case: Case) -> int:
    mean = 4.55 + profile.satisfaction_bias - 0.6 * bool(case.resolved_late) - 0.3 * bool(case.ack_late)
    mean -= 0.8 * case.reopen_count
    return min(5, max(1, round(rnd.gauss(mean, 0.75))))


def live_case(ctx: LifeContext, case: Case, cat_index: int, priority: int, centre: str, worker, merge_target) -> None:
    """Play one incident's life after its report, stopping at now."""
    rnd, cat = ctx.rnd, CATEGORIES[cat_index]
    t = case.last_at
    night = 2.0 if _is_night(t, ctx.offset) else 1.0
    t += 60 + _lognormal_seconds(rnd, 360 * night, 0.8)
    if merge_target is not None and merge_target[1] > t:
        # The matter is already open as another case: merged into it, not dispatched twice.
        case.act(t, "merge", centre, merged_into_id=merge_target[0])
        return
    if rnd.random() < REJECT_SHARE:
        case.act(t, "reject", centre, rnd.choice(NOTE_REJECT))
        return
    if not case.act(t, "register", centre):
        return
    first, assignee = True, None
    for cycle in range(MAX_CYCLES + 2):
        t = case.last_at + 60 + _lognormal_seconds(rnd, 480 * night, 0.8)
        if assignee is None or case.state == lifecycle.RETURNED:
            assignee = _dispatch_target(ctx, cat_index, worker, first)
        dept_id, worker_id, profile, assignee_actor, misdispatched = assignee
        first = False
        if not case.act(t, "dispatch", centre, department_id=dept_id, worker_id=worker_id, priority=priority):
            return
        ack_minutes, handle_minutes = ctx.limits[cat_index][priority]
        slow = 1.6 if priority > 1 and _is_night(t, ctx.offset) else 1.0
        ack_at = t + 30 + _lognormal_seconds(rnd, profile.ack_share * ack_minutes * 60 * slow, profile.ack_sigma)

        escalate_at = case.ack_due_at + rnd.uniform(300, 3600)
        if misdispatched or rnd.random() < RETURN_SHARE:
            if escalate_at < ack_at and rnd.random() < 0.5:
                case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_ACK)
            if not case.act(ack_at, "return", assignee_actor, NOTE_RETURN):
                return
            # The centre sends it to the department the responsibility list names.
            code = cat.department
            assignee = (ctx.department_ids[code], None, DEPARTMENTS_BY_CODE[code], f"dept:{code}", False)
            continue

        if escalate_at < ack_at and rnd.random() < 0.6:
            case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_ACK)
        if not case.act(ack_at, "acknowledge", assignee_actor):
            return
        resolve_at = max(ack_at + 300, t + _lognormal_seconds(rnd, profile.handle_share * handle_minutes * 60, 0.6))
        if resolve_at > case.handle_due_at:
            if rnd.random() < 0.3:
                until = min(case.handle_due_at, resolve_at)
                extend_at = ack_at + (until - ack_at) * rnd.uniform(0.3, 0.9)
                minutes = 60 * math.ceil((resolve_at - case.handle_due_at) / 3600 + rnd.uniform(0.5, 12))
                case.act(extend_at, "extend", centre, NOTE_EXTEND, extend_minutes=minutes)
            elif rnd.random() < 0.5:
                escalate_at = case.handle_due_at + rnd.uniform(600, 7200)
                if escalate_at < resolve_at:
                    case.act(escalate_at, "escalate", centre, NOTE_ESCALATE_HANDLE)
        if not case.act(resolve_at, "resolve", assignee_actor):
            return
        verify_at = resolve_at + 120 + _lognormal_seconds(rnd, 5400, 0.9)
        if cycle < MAX_CYCLES - 1 and rnd.random() < profile.verify_fail:
            # 人到无效: came, but no effect. Sent back to the same assignee.
            if not case.act(verify_at, "verify_fail", centre, NOTE_VERIFY_FAIL):
                return
            continue
        if not case.act(verify_at, "verify_pass", centre):
            return
        if rnd.random() < RATED_SHARE:
            case.act(
                verify_at + rnd.uniform(1800, 2 * DAY), "rate", "12345 callback", satisfaction=_satisfaction(rnd, profile, case)
            )
        return
    # Returned or reopened too often: it stays with the centre, an open backlog item (挂账).
