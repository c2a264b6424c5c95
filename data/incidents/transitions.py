"""Lifecycle transitions: apply_action, each action's effect on the row, and its checks of departments and grid workers.

Callers pass a connection inside a transaction (``with engine.begin() as conn``); apply_action
either does all it says in that transaction or raises a typed error from data/errors.py having
written nothing. A transition's audit event (the change feed, data/incidents/feed.py) and its
notifications (data/incidents/notify.py on_transition) are part of it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import null, select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, incident_reachable, require_incident
from data.errors import Conflict, ValidationError
from data.incidents import lifecycle, notify
from data.incidents.clock import compute_due_times, extended_due
from data.incidents.feed import get_incident, lock_change_feed
from data.incidents.lifecycle import require_actor
from data.times import from_db, to_utc, utc_now
from data.xml_chars import check_xml_text

INC, EV = schema.incidents, schema.incident_events

# Keyword arguments of apply_action that only some actions use.
ACTION_PARAMS = {
    "dispatch": {"department_id", "worker_id"},
    "reassign": {"department_id", "worker_id"},
    "merge": {"merged_into_id"},
    "extend": {"extend_minutes"},
    "rate": {"satisfaction"},
}
MAX_EXTEND_MINUTES = 60 * 24 * 90
# The key of an event's data holding the note meant for citizens (Open311 status_notes); internal notes never are.
PUBLIC_NOTE = "public_note"
MAX_PUBLIC_NOTE = 1000


def apply_action(
    conn: Connection,
    incident_id: int,
    action: str,
    *,
    actor: str | Actor,
    expected_version: int | None = None,
    note: str | None = None,
    department_id: int | None = None,
    worker_id: int | None = None,
    satisfaction: int | None = None,
    extend_minutes: int | None = None,
    merged_into_id: int | None = None,
    at: datetime | None = None,
    public_note: str | None = None,
) -> dict:
    """Apply one lifecycle action and record its audit event; the incident row afterwards, as a dict.

    `note` is internal (the desk, departments, the audit log); `public_note` is what the citizen who
    reported it may read (Open311's status_notes), kept in the event's data.

    Raises NotFound (also for an incident outside an Actor's jurisdiction or department), Conflict
    (stale `expected_version`, or changed by someone else meanwhile; carries current_state and
    current_version), InvalidTransition, ValidationError, or PermissionDenied (an action the Actor's
    role may not take), and then has changed nothing.
    """
    reach, actor = actor, require_actor(actor)
    given_at = to_utc(at, "at") if at is not None else None
    params = {
        "department_id": department_id,
        "worker_id": worker_id,
        "satisfaction": satisfaction,
        "extend_minutes": extend_minutes,
        "merged_into_id": merged_into_id,
    }
    stray = sorted(name for name, value in params.items() if value is not None and name not in ACTION_PARAMS.get(action, ()))
    if action in lifecycle.TRANSITIONS and stray:
        raise ValidationError(f"{', '.join(stray)} not used by {action}")

    lock_change_feed(conn)
    row = get_incident(conn, incident_id)
    check_version(conn, reach, row, expected_version)
    # Checked on the row this id resolved to, in the transaction that changes it.
    require_incident(conn, reach, row, action)
    if expected_version is not None and row["version"] != expected_version:
        raise _changed(row)
    to_state = lifecycle.next_state(row["state"], action)
    if action == "merge" and merged_into_id is not None:
        _require_reachable_target(conn, reach, merged_into_id)
    note = note.strip() if isinstance(note, str) else note
    if (action in lifecycle.NEEDS_NOTE or action == "note") and not note:
        raise ValidationError(f"{action} needs a note saying why")
    if isinstance(note, str):
        check_xml_text(note, "note")
    public_note = _public_note(public_note)
    last_at = _latest_event_at(conn, incident_id)
    if given_at is None:
        # "Now" never precedes the latest event, even when a reporter's clock ran a little ahead.
        at = utc_now() if last_at is None else max(utc_now(), last_at)
    elif last_at is not None and given_at < last_at:
        raise ValidationError(f"time {given_at.isoformat()} is earlier than the incident's latest event ({last_at.isoformat()})")
    else:
        at = given_at

    changes, data = _ACTION_EFFECTS.get(action, _no_effect)(conn, row, at, params)
    if public_note:
        data = {**(data or {}), PUBLIC_NOTE: public_note}
    changes.update(state=to_state, is_open=to_state in lifecycle.OPEN_STATES, version=row["version"] + 1, updated_at=at)
    _update_if_unchanged(conn, row, changes)
    event_id = conn.execute(
        EV.insert()
        .values(
            incident_id=row["id"],
            at=at,
            actor=actor,
            action=action,
            from_state=row["state"],
            to_state=to_state,
            note=note or None,
            # SQL NULL rather than JSON null, so `data IS NULL` means "no data" on both databases.
            data=data if data else null(),
        )
        .returning(EV.c.id)
    ).scalar_one()
    after = get_incident(conn, incident_id)
    # Whoever the transition concerns is told in this same transaction (inbox, webhook outbox,
    # the centre's inbox), so no caller has to remember it and no path can skip it.
    notify.on_transition(conn, action, row, after, event_id, actor=actor, note=note or None)
    return after


def check_version(conn: Connection, reach: str | Actor, row: dict, expected_version: int | None) -> None:
    """Conflict (with the current state and version) when `expected_version` is stale and the actor had the case in hand.

    Checked before whose case it is: the loser of a race (a department acknowledging a case another of its desks
    returned meanwhile, a dispatcher clicking a case recalled a moment ago) hears that it changed and how it stands
    now, not that it is no longer theirs. An actor who never had it (outside its jurisdiction, or a department it
    was never assigned to) learns nothing here: the reach check that follows answers "not found".
    """
    if expected_version is None or row["version"] == expected_version:
        return
    if _had_in_hand(conn, reach, row):
        raise _changed(row)


def _changed(row: dict) -> Conflict:
    return Conflict(
        f"incident {row['id']} changed meanwhile: it is now {row['state']} (version {row['version']})",
        current_state=row["state"],
        current_version=row["version"],
    )


def _had_in_hand(conn: Connection, reach: str | Actor, row: dict) -> bool:
    """Whether the incident lies in the actor's jurisdiction and, for a department, is or was assigned to it."""
    if not isinstance(reach, Actor):
        return True
    if not incident_reachable(conn, replace(reach, department_id=None), row):
        return False
    if reach.department_id is None or row["assignee_department_id"] == reach.department_id:
        return True
    assigned = conn.execute(
        select(EV.c.data).where(EV.c.incident_id == row["id"], EV.c.action.in_(("dispatch", "reassign")))
    ).scalars()
    return any((data or {}).get("department_id") == reach.department_id for data in assigned)


def _public_note(text: str | None) -> str | None:
    """The note for citizens, stripped (None when blank); ValidationError when it is not text, too long or unprintable."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValidationError("public_note must be text")
    text = text.strip()
    if len(text) > MAX_PUBLIC_NOTE:
        raise ValidationError(f"public_note is longer than {MAX_PUBLIC_NOTE} characters")
    return check_xml_text(text, "public_note") or None


def _require_reachable_target(conn: Connection, reach: str | Actor, target_id: int) -> None:
    """A merge target outside the actor's reach is refused exactly as a missing one."""
    target = conn.execute(select(INC).where(INC.c.id == target_id)).first()
    if target is not None and not incident_reachable(conn, reach, dict(target._mapping)):
        raise ValidationError(f"incident {target_id} to merge into does not exist")


def _update_if_unchanged(conn: Connection, row: dict, changes: dict) -> None:
    """UPDATE only if the incident still has the version and state we read, else Conflict.

    The check is in the WHERE clause, so whoever commits second finds no row to update: two
    dispatchers at once give one success and one Conflict on any database and isolation level.
    """
    result = conn.execute(
        INC.update().where(INC.c.id == row["id"], INC.c.version == row["version"], INC.c.state == row["state"]).values(**changes)
    )
    if result.rowcount != 1:
        current = conn.execute(select(INC.c.state, INC.c.version).where(INC.c.id == row["id"])).first()
        raise Conflict(
            f"incident {row['id']} changed meanwhile; reload it and try again",
            current_state=current.state if current else None,
            current_version=current.version if current else None,
        )


def _latest_event_at(conn: Connection, incident_id: int) -> datetime | None:
    # Times never go backwards, so the newest event by id is also the latest by time.
    at = conn.execute(select(EV.c.at).where(EV.c.incident_id == incident_id).order_by(EV.c.id.desc()).limit(1)).scalar()
    return from_db(at)


# Each effect returns (column changes, event data) for its action; state, is_open, version and
# updated_at are set for every action by apply_action.


def _no_effect(conn, row, at, params):
    return {}, None


def _register(conn, row, at, params):
    return {"registered_at": at}, None


def _reject(conn, row, at, params):
    return {"rejected_at": at}, None


def _merge(conn, row, at, params):
    target_id = params["merged_into_id"]
    if target_id is None:
        raise ValidationError("merge needs merged_into_id: the incident this one duplicates")
    if target_id == row["id"]:
        raise ValidationError("an incident cannot be merged into itself")
    target = conn.execute(select(INC.c.id, INC.c.state, INC.c.is_open).where(INC.c.id == target_id)).first()
    if target is None:
        raise ValidationError(f"incident {target_id} to merge into does not exist")
    # A closed, rejected or merged target would hide this report behind a dead case (and merged
    # ones would make chains): only an open incident can absorb a duplicate.
    if not target.is_open:
        raise ValidationError(f"incident {target_id} is {target.state}; merge only into an open incident")
    return {"merged_into_id": target_id}, {"merged_into_id": target_id}


def _dispatch(conn, row, at, params):
    department_id, worker_id = params["department_id"], params["worker_id"]
    category = conn.execute(select(schema.categories).where(schema.categories.c.id == row["category_id"])).first()
    if department_id is not None and worker_id is not None:
        raise ValidationError("dispatch to a department or to a grid worker, not both")
    if worker_id is not None:
        _check_worker(conn, worker_id, category)
    else:
        # With no assignee named, the category's responsible department (职责清单) takes it.
        department_id = department_id if department_id is not None else category.department_id
        _check_department(conn, department_id)
    ack_due_at, handle_due_at = compute_due_times(conn, row["category_id"], row["priority"], at)
    changes = {
        "assignee_department_id": department_id,
        "assignee_worker_id": worker_id,
        "dispatched_at": at,
        "first_dispatched_at": row["first_dispatched_at"] or at,
        "ack_due_at": ack_due_at,
        "handle_due_at": handle_due_at,
        # A new assignee starts a new cycle; earlier cycles live on in the audit log.
        "acknowledged_at": None,
        "ack_late": None,
        "resolved_at": None,
        "resolved_late": None,
    }
    data = {"department_id": department_id, "worker_id": worker_id}
    if row["assignee_department_id"] is not None or row["assignee_worker_id"] is not None:
        data["previous"] = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    return changes, data


def _check_department(conn, department_id):
    d = schema.departments
    dept = conn.execute(select(d.c.id, d.c.active).where(d.c.id == department_id)).first()
    if dept is None:
        raise ValidationError(f"department {department_id} does not exist")
    if not dept.active:
        raise ValidationError(f"department {department_id} is inactive")


def _check_worker(conn, worker_id, category):
    """Refuse a grid worker for matters outside their duty list (清单外事项下派过滤)."""
    w = schema.workers
    worker = conn.execute(select(w.c.id, w.c.code, w.c.active).where(w.c.id == worker_id)).first()
    if worker is None:
        raise ValidationError(f"grid worker {worker_id} does not exist")
    if not worker.active:
        raise ValidationError(f"grid worker {worker.code} is inactive")
    if not category.grid_worker_ok:
        raise ValidationError(
            f"category {category.code!r} may not be pushed down to grid workers (清单外事项); dispatch it to a department"
        )
    duty = schema.worker_duties
    on_list = conn.execute(
        select(duty.c.worker_id).where(duty.c.worker_id == worker_id, duty.c.category_id == category.id)
    ).first()
    if on_list is None:
        raise ValidationError(f"category {category.code!r} is not on grid worker {worker.code}'s duty list (清单外事项不得下派)")


def _recall(conn, row, at, params):
    # The withdrawn dispatch never happened for the clocks: the incident waits for a dispatcher
    # again, its dispatch times those of the dispatches before the withdrawn one (if any).
    earlier = conn.execute(
        select(EV.c.action, EV.c.at)
        .where(EV.c.incident_id == row["id"], EV.c.action.in_(("dispatch", "reassign")))
        .order_by(EV.c.id)
    ).all()
    last_dispatch = max((i for i, e in enumerate(earlier) if e.action == "dispatch"), default=len(earlier))
    before = earlier[:last_dispatch]
    changes = {
        "assignee_department_id": None,
        "assignee_worker_id": None,
        "dispatched_at": from_db(before[-1].at) if before else None,
        "first_dispatched_at": from_db(before[0].at) if before else None,
        "ack_due_at": None,
        "handle_due_at": None,
    }
    return changes, {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}


def _acknowledge(conn, row, at, params):
    due = row["ack_due_at"]
    return {"acknowledged_at": at, "ack_late": due is not None and at > due}, None


def _return(conn, row, at, params):
    previous = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    return {"returned_at": at, "assignee_department_id": None, "assignee_worker_id": None}, previous


def _resolve(conn, row, at, params):
    due = row["handle_due_at"]
    return {"resolved_at": at, "resolved_late": due is not None and at > due}, None


def _verify_pass(conn, row, at, params):
    return {"closed_at": at}, None


def _verify_fail(conn, row, at, params):
    # 人到无效: the event keeps who resolved it, since the assignee is cleared for redispatch.
    resolver = {"department_id": row["assignee_department_id"], "worker_id": row["assignee_worker_id"]}
    changes = {"reopen_count": row["reopen_count"] + 1, "assignee_department_id": None, "assignee_worker_id": None}
    return changes, resolver


def _escalate(conn, row, at, params):
    level = row["escalation_level"] + 1
    return {"escalation_level": level}, {"level": level}


def _extend(conn, row, at, params):
    minutes = params["extend_minutes"]
    if isinstance(minutes, bool) or not isinstance(minutes, int) or not 0 < minutes <= MAX_EXTEND_MINUTES:
        raise ValidationError(f"extend needs extend_minutes between 1 and {MAX_EXTEND_MINUTES}; got {minutes!r}")
    changes = {
        "handle_due_at": extended_due(conn, row["priority"], row["handle_due_at"], minutes),
        "extension_minutes": row["extension_minutes"] + minutes,
    }
    return changes, {"minutes": minutes}


def _rate(conn, row, at, params):
    score = params["satisfaction"]
    if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
        raise ValidationError(f"satisfaction must be a whole number from 1 to 5; got {score!r}")
    return {"satisfaction": score}, {"satisfaction": score}


_ACTION_EFFECTS = {
    "register": _register,
    "reject": _reject,
    "merge": _merge,
    "dispatch": _dispatch,
    "reassign": _dispatch,
    "acknowledge": _acknowledge,
    "return": _return,
    "resolve": _resolve,
    "verify_pass": _verify_pass,
    "verify_fail": _verify_fail,
    "escalate": _escalate,
    "extend": _extend,
    "rate": _rate,
    "recall": _recall,
}
