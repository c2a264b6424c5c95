"""Who may do what on the dispatch desk: dispatchers everything inside their jurisdiction; a department user
only acknowledge, return, resolve and note on its own department's incidents; everyone else nothing.

This is the desk's early answer (a message instead of a failed call); the data layer checks the same
on the rows it changes (data/actors.py), with the Actor dashboard.access.acting() gives it.
"""

from __future__ import annotations

from dashboard import access, ids, jurisdiction
from data import store
from data.errors import ValidationError
from data.parse import parse_id


def touched(kind, trigger, current, selected_rows, undo_state) -> list[int]:
    """The incidents a desk click would change, each id parsed strictly: ValidationError when one is not a
    plain positive whole number (' 9060', 9060.0, '²'), which refuses the whole click."""
    if kind == ids.DISPATCH_BATCH:
        rows = selected_rows if isinstance(selected_rows, list) else []
        return [parse_id((row or {}).get("id") if isinstance(row, dict) else row, "incident id") for row in rows]
    if kind == ids.DISPATCH_UNDO:
        raw = (undo_state or {}).get("incident_id") if isinstance(undo_state, dict) else None
        return [] if raw is None else [parse_id(raw, "incident id")]
    ids_used = [parse_id(current.get("id"), "incident id")] if isinstance(current, dict) and current else []
    if kind == ids.DISPATCH_MERGE:
        ids_used.append(parse_id(trigger.get("index"), "incident id"))
    return ids_used


def _action(kind, trigger, pending) -> str | None:
    if kind == ids.DISPATCH_ACTION:
        return trigger.get("index")
    if kind == ids.DISPATCH_PROMPT_OK:
        return (pending or {}).get("action") if isinstance(pending, dict) else None
    return None


def refusal(engine, kind, trigger, current, pending, selected_rows, undo_state) -> str | None:
    """The i18n key of why this desk click is refused for the signed-in user, or None when it may go ahead."""
    if kind == ids.DISPATCH_PROMPT_CANCEL:
        return None
    trigger = trigger if isinstance(trigger, dict) else {}
    department_may = access.can(access.ACT) and _action(kind, trigger, pending) in access.DEPARTMENT_ACTIONS
    if not access.can(access.DISPATCH) and not department_may:
        return "auth.not_allowed_action"
    try:
        incident_ids = touched(kind, trigger, current, selected_rows, undo_state)
    except ValidationError:
        return "auth.bad_request"
    with store.reading(engine) as conn:
        if not all(jurisdiction.incident_visible(conn, incident_id) for incident_id in incident_ids):
            return "auth.outside"
    return None
