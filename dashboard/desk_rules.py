"""Who may do what on the dispatch desk: dispatchers everything inside their jurisdiction; a department user
only acknowledge, return, resolve and note on its own department's incidents; everyone else nothing."""

from __future__ import annotations

from dashboard import access, ids, jurisdiction
from data import store


def _touched(kind, trigger, current, selected_rows, undo_state) -> list[int]:
    """The incidents a desk click would change."""
    if kind == ids.DISPATCH_BATCH:
        return [int(r["id"]) for r in selected_rows or [] if str((r or {}).get("id", "")).isdigit()]
    if kind == ids.DISPATCH_UNDO:
        raw = (undo_state or {}).get("incident_id")
        return [int(raw)] if str(raw or "").isdigit() else []
    touched = [int(current["id"])] if current and str(current.get("id", "")).isdigit() else []
    if kind == ids.DISPATCH_MERGE and str(trigger.get("index", "")).isdigit():
        touched.append(int(trigger["index"]))
    return touched


def _action(kind, trigger, pending) -> str | None:
    if kind == ids.DISPATCH_ACTION:
        return trigger.get("index")
    if kind == ids.DISPATCH_PROMPT_OK:
        return (pending or {}).get("action")
    return None


def refusal(engine, kind, trigger, current, pending, selected_rows, undo_state) -> str | None:
    """The i18n key of why this desk click is refused for the signed-in user, or None when it may go ahead."""
    if kind == ids.DISPATCH_PROMPT_CANCEL:
        return None
    trigger = trigger if isinstance(trigger, dict) else {}
    department_may = access.can(access.ACT) and _action(kind, trigger, pending) in access.DEPARTMENT_ACTIONS
    if not access.can(access.DISPATCH) and not department_may:
        return "auth.not_allowed_action"
    touched = _touched(kind, trigger, current, selected_rows, undo_state)
    with store.reading(engine) as conn:
        if not all(jurisdiction.incident_visible(conn, incident_id) for incident_id in touched):
            return "auth.outside"
    return None
