"""Automatic supervision (督办): overdue incidents escalated once per due period, audited, when configured.

A due period is the stretch in which one clock runs against the assignee: the acknowledge limit
from dispatch, then the handling limit from acknowledgement (moved by an extension). An
incident is escalated when its running clock is overdue and no escalation (automatic or by a
person) has been recorded since that clock's due time within the same period; so running the
sweep again, or from two processes at once, escalates nothing twice. Each escalation is an
ordinary 'escalate' action (data.incidents.transitions.apply_action) by AUTO_ACTOR with a note
saying which limit passed; apply_action tells the assignee's inbox.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Engine, case, exists, select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import CityBrainError
from data.incidents import lifecycle
from data.incidents.clock import active_due_expression, overdue_expression
from data.incidents.feed import lock_change_feed
from data.incidents.transitions import apply_action
from data.times import from_db, to_utc, utc_now

log = logging.getLogger(__name__)

INC, EV = schema.incidents, schema.incident_events
AUTO_ACTOR = "system:auto-escalation"
SWEEP_LIMIT = 500


def _period_start():
    """SQL: when the running clock's period began (dispatch for acknowledging, acknowledgement for handling)."""
    return case((INC.c.state == lifecycle.DISPATCHED, INC.c.dispatched_at), else_=INC.c.acknowledged_at)


def _escalated_this_period():
    due = active_due_expression()
    return exists().where(EV.c.incident_id == INC.c.id, EV.c.action == "escalate", EV.c.at >= due, EV.c.at >= _period_start())


def due_for_escalation(conn: Connection, now: datetime, limit: int = SWEEP_LIMIT, incident_id: int | None = None) -> list[dict]:
    """Overdue open incidents not yet escalated in their current due period: [{id, version, state, due_at}], most overdue first."""
    now = to_utc(now, "now")
    due = active_due_expression()
    stmt = (
        select(INC.c.id, INC.c.version, INC.c.state, due.label("due_at"))
        .where(INC.c.is_open.is_(True), overdue_expression(now), ~_escalated_this_period())
        .order_by(due, INC.c.id)
        .limit(limit)
    )
    if incident_id is not None:
        stmt = stmt.where(INC.c.id == incident_id)
    return [{**r._mapping, "due_at": from_db(r.due_at)} for r in conn.execute(stmt)]


def _note(candidate: dict) -> str:
    which = ("acknowledge", "签收") if candidate["state"] == lifecycle.DISPATCHED else ("handling", "处置")
    due = f"{candidate['due_at']:%Y-%m-%d %H:%M} UTC"
    return f"超期自动督办: {which[1]}时限 {due} 已过 / automatic escalation: the {which[0]} limit ({due}) has passed"


def escalate_overdue(
    engine: Engine, now: datetime | None = None, *, actor: str = AUTO_ACTOR, limit: int = SWEEP_LIMIT
) -> list[int]:
    """Escalate every overdue incident not yet escalated in its due period; the ids escalated.

    Each incident is its own transaction, re-checked under the change-feed lock, so a concurrent
    action or a second sweep makes it skip rather than escalate twice.
    """
    moment = to_utc(now, "now") if now is not None else None
    with engine.connect() as conn:
        conn.info["write"] = False
        with conn.begin():
            candidates = due_for_escalation(conn, moment or utc_now(), limit)
        conn.info["write"] = True
    escalated = []
    for candidate in candidates:
        try:
            with engine.begin() as conn:
                lock_change_feed(conn)
                still = due_for_escalation(conn, moment or utc_now(), 1, incident_id=candidate["id"])
                if not still:
                    continue
                # apply_action tells the assignee (notify.on_transition).
                apply_action(
                    conn,
                    candidate["id"],
                    "escalate",
                    actor=actor,
                    expected_version=still[0]["version"],
                    note=_note(still[0]),
                    at=moment,
                )
            escalated.append(candidate["id"])
        except CityBrainError as exc:  # changed meanwhile, or a clock behind the latest event: next sweep
            log.info("auto-escalation skipped incident %s: %s", candidate["id"], exc)
    return escalated


__all__ = ["AUTO_ACTOR", "due_for_escalation", "escalate_overdue"]
