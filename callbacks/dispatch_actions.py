"""The dispatch desk's actions: each runs one call into data.incidents.dispatch and words its result for the desk."""

from __future__ import annotations

import time
from datetime import datetime

from dash import no_update
from sqlalchemy import select

from dashboard.components.dispatch_panel import NEEDS_REASON
from dashboard.components.dispatch_queue import tf
from dashboard.i18n import name, t
from data import schema, store
from data.actors import Actor
from data.errors import CityBrainError, Conflict, LateClick, ValidationError
from data.incidents import dispatch, duplicates
from data.incidents.transitions import MAX_EXTEND_MINUTES
from data.parse import parse_float, parse_id


class Outcome:
    """Runs one desk action and words its result: (message, class, pending, acted, undo, reason, selected).

    `clicked_at` is when the dispatcher clicked (in the server's time, dispatch.js): every action first checks,
    in its own transaction, that the case is still the version they saw and that the click is recent
    (data.incidents.dispatch.check_click), so a click that waited is refused instead of acting on a case they left."""

    def __init__(self, lang: str, clicked_at: datetime | None = None):
        self.lang, self.clicked_at = lang, clicked_at

    def _click_time(self) -> datetime:
        if self.clicked_at is None:  # a page from before clicks carried their time: never acted on blind
            raise ValidationError("the click carried no time: reload the desk")
        return self.clicked_at

    def _fits(self, conn, incident_id: int, version: int, actor: Actor) -> None:
        dispatch.check_click(conn, incident_id, actor=actor, seen_version=version, clicked_at=self._click_time())

    def _done(self, message: str, ids: list[int], *, undo=no_update, selected=no_update, reason=no_update):
        # `ids`: the incidents changed, so the queue re-reads only their rows.
        return message, "cb-message cb-message-ok", None, _acted(ids), undo, reason, selected

    def refused(self, reason: str):
        return (
            tf("dispatch.msg.refused", self.lang, reason=reason),
            "cb-message cb-message-refused",
            no_update,
            no_update,
            no_update,
            no_update,
            no_update,
        )

    def _failed(self, incident_id: int, exc: CityBrainError):
        if isinstance(exc, LateClick):
            message = tf("dispatch.msg.late", self.lang, id=incident_id, seconds=f"{exc.age_seconds:.0f}")
            return message, "cb-message cb-message-conflict", None, _acted([incident_id]), no_update, no_update, no_update
        if isinstance(exc, Conflict):
            message = tf(
                "dispatch.msg.conflict",
                self.lang,
                id=incident_id,
                state=t(f"state.{exc.current_state}", self.lang) if exc.current_state else "—",
                version=exc.current_version,
            )
            # Draw the panel again: the user sees the state that won.
            return message, "cb-message cb-message-conflict", None, _acted([incident_id]), no_update, no_update, no_update
        return self.refused(str(exc))

    def send(self, engine, incident_id: int, version: int, target: dict, actor: Actor):
        try:
            with engine.begin() as conn:
                self._fits(conn, incident_id, version, actor)
                row = dispatch.dispatch(conn, incident_id, actor=actor, expected_version=version, **target)
        except CityBrainError as exc:
            return self._failed(incident_id, exc)
        message = tf("dispatch.msg.dispatched", self.lang, id=incident_id, name=_assignee_name(engine, row, self.lang))
        undo = {"incident_id": incident_id, "key": row["event_id"], "seconds": dispatch.UNDO_SECONDS - 0.5}
        # Only a first dispatch can be undone; a reassignment is changed by another reassignment.
        return self._done(
            message, [incident_id], undo=undo if row["state"] == "dispatched" and _was_dispatch(engine, row) else None
        )

    def run(self, engine, incident_id: int, action: str, actor: Actor, version: int, **params):
        try:
            with engine.begin() as conn:
                self._fits(conn, incident_id, version, actor)
                row = dispatch.act(conn, incident_id, action, actor=actor, expected_version=version, **params)
        except CityBrainError as exc:
            return self._failed(incident_id, exc)
        message = tf(
            "dispatch.msg.done",
            self.lang,
            action=t(f"action.{action}", self.lang),
            id=incident_id,
            state=t(f"state.{row['state']}", self.lang),
        )
        return self._done(message, [incident_id], reason="")

    def confirm(self, engine, pending, current, reason, hours, actor):
        action = (pending or {}).get("action")
        if not action or pending.get("id") != current["id"]:
            return None, "cb-message", None, no_update, no_update, no_update, no_update
        note = (reason or "").strip()
        if action in NEEDS_REASON and not note:
            return (
                t("dispatch.msg.need_reason", self.lang),
                "cb-message cb-message-refused",
                no_update,
                no_update,
                no_update,
                no_update,
                no_update,
            )
        params = {"note": note or None}
        if action == "extend":
            try:
                hours = hours.strip() if isinstance(hours, str) else hours  # typed by a person
                params["extend_minutes"] = int(parse_float(hours, "hours", minimum=1, maximum=MAX_EXTEND_MINUTES // 60)) * 60
            except ValidationError:
                return self.refused(t("dispatch.prompt.hours", self.lang) + "?")
        return self.run(engine, current["id"], action, actor, current["version"], **params)

    def rate(self, engine, incident_id: int, score: int, actor: Actor, version: int):
        """The citizen's satisfaction (评价) after closing: one audited 'rate' transition."""
        try:
            with engine.begin() as conn:
                self._fits(conn, incident_id, version, actor)
                dispatch.act(conn, incident_id, "rate", actor=actor, expected_version=version, satisfaction=score)
        except CityBrainError as exc:
            return self._failed(incident_id, exc)
        return self._done(tf("dispatch.msg.rated", self.lang, id=incident_id, score=score), [incident_id])

    def merge(self, engine, incident_id: int, other_id: int, actor: Actor, version: int):
        try:
            with engine.begin() as conn:
                self._fits(conn, incident_id, version, actor)
                row = duplicates.merge_duplicates(
                    conn, incident_id, other_id, actor=actor, expected_versions={incident_id: version}
                )
        except CityBrainError as exc:
            return self._failed(incident_id, exc)
        kept = row["merged_into_id"]
        message = tf("dispatch.msg.merged", self.lang, merged=row["id"], kept=kept)
        return self._done(message, [incident_id, other_id, kept], selected={"id": kept})

    def undo(self, engine, undo_state, actor: Actor):
        raw = (undo_state or {}).get("incident_id")
        if not raw:
            return (no_update,) * 7
        try:
            incident_id = parse_id(raw, "incident id")
            with engine.begin() as conn:
                dispatch.undo_dispatch(conn, incident_id, actor=actor)
        except CityBrainError as exc:
            failed = self._failed(incident_id, exc)
            return (*failed[:4], None, *failed[5:])
        return self._done(
            tf("dispatch.msg.undone", self.lang, id=incident_id), [incident_id], undo=None, selected={"id": incident_id}
        )

    def batch(self, engine, selected_rows, actor: Actor):
        if not selected_rows:
            return self.refused(t("dispatch.msg.batch_none", self.lang))
        # Rows as the page sent them: dispatch_many parses every id and version and refuses the whole
        # batch when one is not a plain whole number or lies outside the actor's reach.
        items = [(r.get("id"), r.get("version")) if isinstance(r, dict) else (r, None) for r in selected_rows]
        try:
            # Each row carries the version the table showed; the click itself must be recent.
            dispatch.require_recent_click(self._click_time())
            results = dispatch.dispatch_many(engine, items, actor=actor)
        except CityBrainError as exc:
            return self.refused(str(exc))
        items = [(r.incident_id, None) for r in results]
        failed = [r for r in results if not r.ok]
        message = tf("dispatch.msg.batch", self.lang, ok=len(results) - len(failed), failed=len(failed))
        if failed:
            message += " " + "; ".join(
                f"#{r.incident_id}: {t(f'state.{r.state}', self.lang) if r.state else ''} {r.error or ''}".strip()
                for r in failed[:5]
            )
        return (
            message,
            "cb-message " + ("cb-message-refused" if failed else "cb-message-ok"),
            None,
            _acted([incident_id for incident_id, _ in items]),
            no_update,
            no_update,
            no_update,
        )


def _acted(ids: list[int]) -> dict:
    """DISPATCH_ACTED's value after an action: when, and which incidents it changed."""
    return {"at": time.time(), "ids": sorted({int(i) for i in ids if i is not None})}


def _was_dispatch(engine, row: dict) -> bool:
    """Whether the incident's latest event is a dispatch (undoable), not a reassignment."""
    events = schema.incident_events
    with store.reading(engine) as conn:
        action = conn.execute(select(events.c.action).where(events.c.id == row["event_id"])).scalar()
    return action == "dispatch"


def _assignee_name(engine, row: dict, lang: str) -> str:
    table, key = (
        (schema.workers, row["assignee_worker_id"])
        if row.get("assignee_worker_id") is not None
        else (schema.departments, row.get("assignee_department_id"))
    )
    if key is None:
        return "—"
    with store.reading(engine) as conn:
        found = conn.execute(select(table.c.name_en, table.c.name_zh).where(table.c.id == key)).first()
    return name(dict(found._mapping), lang) if found else "—"
