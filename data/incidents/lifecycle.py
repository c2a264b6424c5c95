"""The closed loop of an incident as pure rules: states, actions, which action leads where, and the actor each write names.

Kept free of the database so the store (data/incidents/intake.py and transitions.py), the demo
history builder and property-based tests all use the very same table.
"""

from __future__ import annotations

from typing import Any

from data.actors import actor_name
from data.errors import InvalidTransition

REPORTED = "reported"  # 上报
REGISTERED = "registered"  # 立案
REJECTED = "rejected"  # 不予立案 / 作废
MERGED = "merged"  # 合并 (一件事一次办)
DISPATCHED = "dispatched"  # 派遣
ACKNOWLEDGED = "acknowledged"  # 签收
RETURNED = "returned"  # 退回
RESOLVED = "resolved"  # 处置反馈
REOPENED = "reopened"  # 核查不通过, 重新派遣
CLOSED = "closed"  # 结案

STATES = (REPORTED, REGISTERED, REJECTED, MERGED, DISPATCHED, ACKNOWLEDGED, RETURNED, RESOLVED, REOPENED, CLOSED)
TERMINAL_STATES = frozenset({REJECTED, MERGED, CLOSED})
OPEN_STATES = frozenset(STATES) - TERMINAL_STATES
# States in which a dispatcher must act (the dispatch queue).
NEEDS_DISPATCHER = frozenset({REPORTED, REGISTERED, RETURNED, REOPENED})
# States in which the handling clock runs against the assignee.
WITH_ASSIGNEE = frozenset({DISPATCHED, ACKNOWLEDGED})

REPORT = "report"
_ANY_OPEN = tuple(sorted(OPEN_STATES))

# action -> {from_state: to_state}
TRANSITIONS: dict[str, dict[str, str]] = {
    "register": {REPORTED: REGISTERED},
    "reject": {REPORTED: REJECTED, REGISTERED: REJECTED, RETURNED: REJECTED},
    "merge": {REPORTED: MERGED, REGISTERED: MERGED, RETURNED: MERGED},
    "dispatch": {REGISTERED: DISPATCHED, RETURNED: DISPATCHED, REOPENED: DISPATCHED},
    "reassign": {DISPATCHED: DISPATCHED, ACKNOWLEDGED: DISPATCHED},
    "acknowledge": {DISPATCHED: ACKNOWLEDGED},
    "return": {DISPATCHED: RETURNED, ACKNOWLEDGED: RETURNED},
    "resolve": {ACKNOWLEDGED: RESOLVED},
    "verify_pass": {RESOLVED: CLOSED},
    "verify_fail": {RESOLVED: REOPENED},
    "escalate": {s: s for s in _ANY_OPEN},
    "extend": {DISPATCHED: DISPATCHED, ACKNOWLEDGED: ACKNOWLEDGED},
    "note": {s: s for s in STATES},
    "rate": {CLOSED: CLOSED},
    # 撤回: a dispatch withdrawn before anyone acknowledged it, back to awaiting dispatch.
    # data/incidents/dispatch.py offers it only as the dispatcher's undo within seconds of dispatching.
    "recall": {DISPATCHED: REGISTERED},
}
ACTIONS = tuple(TRANSITIONS)
# Actions a department's own system may take through the API.
DEPARTMENT_ACTIONS = frozenset({"acknowledge", "return", "resolve", "note"})
# Actions that need a written reason.
NEEDS_NOTE = frozenset({"reject", "return", "escalate", "extend", "verify_fail"})

PRIORITIES = {1: "urgent", 2: "high", 3: "normal"}
SECTORS = ("party", "economy", "livelihood", "safety")


def next_state(state: str | None, action: str) -> str:
    """The state after `action`, or InvalidTransition when the loop does not allow it."""
    if action == REPORT:
        if state is not None:
            raise InvalidTransition(action, state)
        return REPORTED
    if action not in TRANSITIONS:
        raise InvalidTransition(action, state or "new", f"unknown action {action!r}")
    table = TRANSITIONS[action]
    if state not in table:
        raise InvalidTransition(action, state or "new")
    return table[state]


def allowed_actions(state: str) -> list[str]:
    """Every action valid in `state`, in the order the UI offers them."""
    return [a for a in ACTIONS if state in TRANSITIONS[a]]


def replay(actions: list[str]) -> str:
    """The state reached by running `actions` from nothing (used to check audit logs)."""
    state: str | None = None
    for action in actions:
        state = next_state(state, action)
    assert state is not None
    return state


def require_actor(actor: Any) -> str:
    """The name of whoever acts, stripped (every write records it: 留痕); ValidationError when blank or too long."""
    return actor_name(actor)
