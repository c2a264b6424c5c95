"""The dispatcher's actions (一键调度): one-click and batch dispatch, undo, any loop action, and what the incident panel shows.

Every change goes through data.incidents.transitions.apply_action (one audited transition each),
which tells the assignee of every dispatch through data.incidents.notify in the same transaction,
so a dispatch and its notification are stored together or not at all. The queue lives in
queue.py, the suggested assignee in suggestions.py, likely duplicates in duplicates.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, actor_name, require_incident
from data.errors import CityBrainError, Conflict, InvalidTransition, LateClick, NotFound, ValidationError
from data.incidents import lifecycle, webhooks
from data.incidents.clock import limit_calendar
from data.incidents.duplicates import likely_duplicates
from data.incidents.feed import get_incident, history, lock_change_feed
from data.incidents.queue import dispatch_target
from data.incidents.suggestions import suggest
from data.incidents.transitions import apply_action, check_version
from data.parse import parse_id, parse_int
from data.times import from_db, to_utc, utc_now

__all__ = [
    "CLICK_MAX_AGE",
    "UNDO_SECONDS",
    "BatchResult",
    "act",
    "check_click",
    "dispatch",
    "dispatch_many",
    "panel_facts",
    "require_recent_click",
    "undo_dispatch",
]

EV = schema.incident_events

# A dispatch can be taken back this long after it was made, by whoever made it, until acknowledged.
UNDO_SECONDS = 10
# A desk click that reaches the store later than this after it was made is refused: by then the
# dispatcher has looked elsewhere, and acting on the case now would act on a case they left.
CLICK_MAX_AGE = timedelta(seconds=6)


def check_click(
    conn: Connection,
    incident_id: int,
    *,
    actor: str | Actor,
    seen_version: int,
    clicked_at: datetime,
    now: datetime | None = None,
) -> dict:
    """The incident's row when a desk click on it still fits: call it first in the action's transaction.

    Conflict (with the current state and version) when the case changed since the dispatcher saw
    `seen_version`; LateClick when the click reaches the store more than CLICK_MAX_AGE after it was
    made (`clicked_at`, in the server's time), whatever the case's state. NotFound outside the actor's reach.
    """
    lock_change_feed(conn)  # held to the end of the transaction: nothing changes the case after this check
    row = get_incident(conn, incident_id)
    check_version(conn, actor, row, seen_version)
    require_incident(conn, actor, row)
    if row["version"] != seen_version:
        raise Conflict(f"incident {incident_id} changed meanwhile", current_state=row["state"], current_version=row["version"])
    require_recent_click(clicked_at, now, row)
    return row


def require_recent_click(clicked_at: datetime, now: datetime | None = None, row: dict | None = None) -> None:
    """LateClick when a desk click made at `clicked_at` reaches the store more than CLICK_MAX_AGE later (`row`: the
    incident it was about, whose current state and version the refusal carries)."""
    age = ((now or utc_now()) - to_utc(clicked_at, "clicked_at")).total_seconds()
    if age > CLICK_MAX_AGE.total_seconds():
        about = f" on incident {row['id']}" if row else ""
        raise LateClick(
            f"the click{about} reached the store {age:.0f} s after it was made: not acted on",
            age,
            current_state=row["state"] if row else None,
            current_version=row["version"] if row else None,
        )


# --- dispatching ----------------------------------------------------------------------------------


def _latest_event(conn: Connection, incident_id: int):
    return conn.execute(select(EV).where(EV.c.incident_id == incident_id).order_by(EV.c.id.desc()).limit(1)).first()


def dispatch(
    conn: Connection,
    incident_id: int,
    *,
    actor: str | Actor,
    expected_version: int | None = None,
    department_id: int | None = None,
    worker_id: int | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Send an incident to an assignee (the suggestion when none is named) and notify them; the row after.

    A newly reported incident is registered (立案) first, in the same transaction: one click,
    two audited steps. An incident already with an assignee is reassigned instead. Refusals are
    apply_action's: Conflict when `expected_version` is stale, InvalidTransition, ValidationError
    (a grid worker for a matter outside their duty list, an inactive department...); NotFound or
    PermissionDenied for an Actor the incident or the action is out of reach of.
    """
    if department_id is not None and worker_id is not None:
        raise ValidationError("dispatch to a department or to a grid worker, not both")
    lock_change_feed(conn)
    row = get_incident(conn, incident_id)
    require_incident(conn, actor, row, "dispatch")
    if expected_version is not None and row["version"] != expected_version:
        raise Conflict(
            f"incident {incident_id} changed meanwhile: it is now {row['state']} (version {row['version']})",
            current_state=row["state"],
            current_version=row["version"],
        )
    if department_id is None and worker_id is None:
        target = suggest(conn, incident_id).target()
        if not target:
            raise ValidationError(f"incident {incident_id} has no department to suggest; choose one")
        department_id, worker_id = target.get("department_id"), target.get("worker_id")
    version = row["version"]
    if row["state"] == lifecycle.REPORTED:
        row = apply_action(conn, incident_id, "register", actor=actor, expected_version=version, at=at)
        version = row["version"]
    action = "reassign" if row["state"] in lifecycle.WITH_ASSIGNEE else "dispatch"
    previous = (row["assignee_department_id"], row["assignee_worker_id"])
    if action == "reassign" and previous == (department_id, worker_id):
        # Sending it to the same assignee again would only restart its clocks and hide that it is late.
        raise ValidationError(f"incident {incident_id} is already with that assignee; escalate or extend it instead")
    row = apply_action(
        conn,
        incident_id,
        action,
        actor=actor,
        expected_version=version,
        department_id=department_id,
        worker_id=worker_id,
        note=note,
        at=at,
    )
    # apply_action told the new assignee (and a replaced one) in this transaction.
    row["event_id"] = _latest_event(conn, incident_id).id
    return row


def undo_dispatch(conn: Connection, incident_id: int, *, actor: str | Actor, now: datetime | None = None) -> dict:
    """Take back a dispatch (撤回) within UNDO_SECONDS, by the dispatcher who made it, before it was acknowledged.

    The incident goes back to waiting for a dispatcher (registered) through the 'recall'
    transition, audited; the assignee's inbox says so and its webhook is cancelled if it has not
    gone out yet, or followed by a 'recall' webhook if it has.
    """
    lock_change_feed(conn)
    row = get_incident(conn, incident_id)
    require_incident(conn, actor, row, "recall")
    last = _latest_event(conn, incident_id)
    if row["state"] != lifecycle.DISPATCHED or last is None or last.action != "dispatch":
        raise InvalidTransition(
            "undo",
            row["state"],
            f"only a dispatch nobody has acted on since can be undone; incident "
            f"{incident_id} is {row['state']}" + (f" after {last.action}" if last is not None else ""),
        )
    if last.actor != actor_name(actor):
        raise ValidationError(f"only {last.actor}, who dispatched incident {incident_id}, can undo it")
    moment = to_utc(now, "now") if now is not None else utc_now()
    if (moment - from_db(last.at)).total_seconds() > UNDO_SECONDS:
        raise ValidationError(f"the {UNDO_SECONDS} seconds to undo this dispatch have passed; reassign it instead")
    recalled = apply_action(
        conn, incident_id, "recall", actor=actor, expected_version=row["version"], note="dispatch undone", at=now
    )
    recalled["event_id"] = _latest_event(conn, incident_id).id
    return recalled


def act(
    conn: Connection, incident_id: int, action: str, *, actor: str | Actor, expected_version: int | None = None, **kwargs
) -> dict:
    """Any loop action from the dispatcher's screen (dispatch and reassign through `dispatch`, recall through undo)."""
    if action in ("dispatch", "reassign"):
        return dispatch(conn, incident_id, actor=actor, expected_version=expected_version, **kwargs)
    if action == "recall":
        return undo_dispatch(conn, incident_id, actor=actor)
    return apply_action(conn, incident_id, action, actor=actor, expected_version=expected_version, **kwargs)


# --- several at once ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """What became of one incident of a batch: ok, or why not (and its current state)."""

    incident_id: int
    ok: bool
    state: str | None = None
    version: int | None = None
    error: str | None = None
    kind: str | None = None  # conflict, invalid, rejected, not_found


def _failure(incident_id: int, exc: CityBrainError) -> BatchResult:
    kinds = {Conflict: "conflict", InvalidTransition: "invalid", ValidationError: "rejected", NotFound: "not_found"}
    kind = next((k for cls, k in kinds.items() if isinstance(exc, cls)), "error")
    state = getattr(exc, "current_state", None) or getattr(exc, "state", None)
    return BatchResult(incident_id, False, state=state, version=getattr(exc, "current_version", None), error=str(exc), kind=kind)


def dispatch_many(
    engine: Engine,
    items: list[tuple[int, int | None]] | list[int],
    *,
    actor: str | Actor,
    department_id: int | None = None,
    worker_id: int | None = None,
) -> list[BatchResult]:
    """Dispatch several incidents, each in its own transaction, each to the given assignee or its own suggestion.

    `items` are incident ids or (id, expected version) pairs. An id or version that is not a plain
    positive whole number (' 9060', 9060.0, '²'), or an incident outside an Actor's reach, refuses the
    whole batch before anything changes (ValidationError, NotFound). Past that, one refusal (a
    conflict, a state that cannot be dispatched) is reported in its row and does not stop the others.
    """
    batch = [_batch_item(item) for item in items]
    with engine.connect() as conn:
        rows = conn.execute(select(schema.incidents).where(schema.incidents.c.id.in_([i for i, _ in batch]))).all()
        for row in rows:  # a missing id stays a row of its own ('not_found'), as before
            require_incident(conn, actor, dict(row._mapping), "dispatch")
    results = []
    for incident_id, expected in batch:
        try:
            with engine.begin() as conn:
                row = dispatch(
                    conn, incident_id, actor=actor, expected_version=expected, department_id=department_id, worker_id=worker_id
                )
            results.append(BatchResult(incident_id, True, state=row["state"], version=row["version"]))
        except CityBrainError as exc:
            results.append(_failure(incident_id, exc))
    return results


def _batch_item(item) -> tuple[int, int | None]:
    """(incident id, expected version or None) of one batch item, each parsed strictly."""
    if isinstance(item, tuple | list) and len(item) == 2:
        incident_id, version = item
        expected = None if version is None else parse_int(version, "version", minimum=1, maximum=2**31 - 1)
        return parse_id(incident_id, "incident id"), expected
    return parse_id(item, "incident id"), None


# --- the incident panel ---------------------------------------------------------------------------


def _grid_geometry(conn: Connection, grid_id: int | None) -> dict | None:
    """The incident's grid for the panel's small map: {geometry (GeoJSON), bounds (minx, miny, maxx, maxy)}."""
    if grid_id is None:
        return None
    import shapely
    from shapely.geometry import mapping

    wkb = conn.execute(select(schema.units.c.geom).where(schema.units.c.id == grid_id)).scalar()
    if not wkb:
        return None
    shape = shapely.from_wkb(wkb)
    return {"geometry": mapping(shape), "bounds": list(shape.bounds)}


def panel_facts(conn: Connection, incident_id: int) -> dict[str, Any]:
    """Everything the incident panel shows in one read: the row, names, audit history, suggestion, duplicates, deliveries."""
    incident = get_incident(conn, incident_id)
    c, d, u, w = schema.categories, schema.departments, schema.units, schema.workers

    def named(table, row_id):
        if row_id is None:
            return None
        found = conn.execute(select(table.c.id, table.c.name_en, table.c.name_zh).where(table.c.id == row_id)).first()
        return dict(found._mapping) if found else None

    open_now = incident["is_open"]
    return {
        "incident": incident,
        "category": named(c, incident["category_id"]),
        "department": named(d, incident["assignee_department_id"]),
        "worker": named(w, incident["assignee_worker_id"]),
        "grid": named(u, incident["grid_id"]),
        "district": named(u, incident["district_id"]),
        "history": history(conn, incident_id),
        "suggestion": suggest(conn, incident_id) if open_now else None,
        "duplicates": likely_duplicates(conn, incident_id) if open_now else [],
        "deliveries": webhooks.deliveries(conn, incident_id=incident_id, limit=10),
        "allowed": lifecycle.allowed_actions(incident["state"]),
        "grid_shape": _grid_geometry(conn, incident["grid_id"]),
        "dispatch_by": dispatch_target(conn, incident),
        # Whether this incident's limits count working hours (the calendar is on and it is not urgent-on-wall-clock).
        "working_hours": limit_calendar(conn, incident["priority"]) is not None,
    }
