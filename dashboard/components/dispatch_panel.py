"""The incident panel of the dispatch desk: details, clocks in colour, suggestion with its reason, duplicates, actions, map, audit trail.

Built from data.incidents.dispatch.panel_facts; every button carries what it does in its pattern id
(`{"type": "dispatch-to", "index": "department:3"}`), so a click acts on what the user saw.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dash_leaflet as dl
from dash import dcc, html

from dashboard import access, ids
from dashboard.components.dispatch_queue import tf
from dashboard.i18n import duration, name, t
from data.incidents import clock, lifecycle

# Actions with their own controls (assignee buttons, merge buttons, the undo bar), or not for this desk.
NOT_AS_BUTTONS = frozenset({"dispatch", "reassign", "merge", "recall", "rate"})
# Actions that open the reason prompt first; the first group needs a reason, the second takes an optional note.
NEEDS_REASON = frozenset(lifecycle.NEEDS_NOTE | {"note"})
TAKES_NOTE = frozenset({"resolve"})
DISPATCHABLE = frozenset(lifecycle.NEEDS_DISPATCHER | lifecycle.WITH_ASSIGNEE)


def _local(moment: datetime | None, tz: str, with_date: bool = True) -> str:
    if moment is None:
        return "—"
    return f"{moment.astimezone(ZoneInfo(tz)):{'%m-%d %H:%M' if with_date else '%H:%M'}}"


def _named(row: dict | None, lang: str) -> str:
    return name(row, lang) if row else "—"


def empty_panel(lang: str, key: str = "dispatch.panel.empty") -> list:
    return [html.P(t(key, lang), className="cb-panel-empty")]


def _clock_line(label_key: str, due: datetime | None, status: str | None, now: datetime, lang: str, tz: str, done=None):
    """One clock: its due time, and while it runs the time left or over, coloured by status."""
    if due is None:
        return None
    if done is not None:
        late = done > due
        text = f"{_local(done, tz)} ✓" + (f" ({t('due.overdue', lang)})" if late else "")
        status = "overdue" if late else "on_time"
    else:
        minutes = abs((due - now).total_seconds()) / 60
        key = "dispatch.clock.over" if now > due else "dispatch.clock.left"
        text = f"{_local(due, tz)} · {tf(key, lang, t=duration(minutes, lang))}"
    return html.Div(
        className=f"cb-clock-line cb-due-{status or 'none'}",
        children=[html.Span(t(label_key, lang), className="cb-clock-label"), html.Span(text, className="cb-clock-value")],
    )


def _clocks(facts: dict, now: datetime, lang: str, tz: str) -> html.Section:
    incident = facts["incident"]
    state = incident["state"]
    lines = []
    target = facts.get("dispatch_by")
    if target is not None:
        lines.append(_clock_line("dispatch.clock.target", target, "overdue" if now > target else "on_time", now, lang, tz))
    running = clock.due_status(incident, now)
    if incident["ack_due_at"] is not None and state in lifecycle.OPEN_STATES:
        ack_done = incident["acknowledged_at"]
        lines.append(
            _clock_line(
                "dispatch.clock.ack",
                incident["ack_due_at"],
                running if state == lifecycle.DISPATCHED else None,
                now,
                lang,
                tz,
                done=ack_done,
            )
        )
    if incident["handle_due_at"] is not None and state in lifecycle.OPEN_STATES:
        lines.append(
            _clock_line(
                "dispatch.clock.handle",
                incident["handle_due_at"],
                running if state == lifecycle.ACKNOWLEDGED else None,
                now,
                lang,
                tz,
                done=incident["resolved_at"],
            )
        )
    lines = [line for line in lines if line is not None]
    if not lines:
        return html.Section()
    if facts.get("working_hours"):
        lines.append(html.P(t("dispatch.clock.working", lang), className="cb-muted cb-clock-working"))
    return html.Section([html.H3(t("dispatch.clocks", lang), className="cb-panel-sub"), *lines], className="cb-clocks")


def _send_label(state: str, target_name: str, lang: str) -> str:
    if state == lifecycle.REPORTED:
        return tf("dispatch.register_to", lang, name=target_name)
    if state in lifecycle.WITH_ASSIGNEE:
        return tf("dispatch.reassign_to", lang, name=target_name)
    return tf("dispatch.to", lang, name=target_name)


def _suggestion(facts: dict, lang: str, tz: str, departments: list[dict]) -> html.Section | None:
    incident, s = facts["incident"], facts["suggestion"]
    state = incident["state"]
    if s is None or (state not in DISPATCHABLE and state != lifecycle.REPORTED):
        return None
    children = [html.H3(t("dispatch.suggest.title", lang), className="cb-panel-sub")]
    choices = []
    current = {"department": incident["assignee_department_id"], "worker": incident["assignee_worker_id"]}
    if s.department:
        district = _named(s.district, lang)
        reason = tf(f"dispatch.reason.{s.department_reason}", lang, district=district)
        choices.append(("department", s.department, reason))
    if s.worker:
        choices.append(("worker", s.worker, t(f"dispatch.worker.{s.worker_reason}", lang)))
    # Already with the suggested assignee: sending it there again would only restart its clocks.
    choices = [c for c in choices if current[c[0]] != c[1]["id"]]
    # The one click goes to the primary suggestion, drawn first and larger.
    choices.sort(key=lambda c: c[0] != s.primary)
    for kind, who, reason in choices:
        children.append(
            html.Div(
                className="cb-suggestion",
                children=[
                    html.Button(
                        _send_label(state, name(who, lang), lang),
                        id={"type": ids.DISPATCH_TO, "index": f"{kind}:{who['id']}"},
                        className="cb-send cb-send-primary" if kind == s.primary else "cb-send",
                        n_clicks=0,
                    ),
                    html.Span(reason, className="cb-reason"),
                ],
            )
        )
    if s.primary_reason and len(choices) > 1:  # both could take it: say why the one click goes where it goes
        children.append(html.P(t(f"dispatch.first.{s.primary_reason}", lang), className="cb-reason cb-first-reason"))
    if s.worker is None:
        worker_name = name(s.candidates[0], lang) if s.candidates else ""
        children.append(
            html.P(tf(f"dispatch.worker.{s.worker_reason}", lang, worker=worker_name), className="cb-reason cb-worker-reason")
        )
    if s.returned_by:
        at = datetime.fromisoformat(s.returned_by["at"])
        children.append(html.P(tf("dispatch.returned_by", lang, at=_local(at, tz)), className="cb-warning"))
    children.append(
        html.Div(
            className="cb-other",
            children=[
                dcc.Dropdown(
                    id={"type": ids.DISPATCH_OTHER, "index": incident["id"]},
                    options=[{"label": name(d, lang), "value": d["id"]} for d in departments],
                    placeholder=t("dispatch.other", lang),
                    clearable=True,
                    className="cb-other-pick",
                ),
                html.Button(
                    t("dispatch.other.go", lang),
                    id={"type": ids.DISPATCH_OTHER_GO, "index": incident["id"]},
                    n_clicks=0,
                    className="cb-send",
                ),
            ],
        )
    )
    return html.Section(children, className="cb-suggest")


def _duplicates(facts: dict, lang: str) -> html.Section | None:
    incident = facts["incident"]
    if not incident["is_open"]:
        return None
    rows = []
    for d in facts["duplicates"]:
        line = tf(
            "dispatch.dup.line",
            lang,
            id=d["id"],
            distance=f"{d['distance_m']:.0f}",
            hours=f"{d['hours_apart']:g}",
            state=t(f"state.{d['state']}", lang),
        )
        merge = d["merge"]
        rows.append(
            html.Li(
                className="cb-duplicate",
                children=[
                    html.Span(line),
                    html.Button(
                        tf("dispatch.merge", lang, merged=merge["merged"], kept=merge["kept"]),
                        id={"type": ids.DISPATCH_MERGE, "index": d["id"]},
                        n_clicks=0,
                        className="cb-merge",
                    )
                    if merge
                    else None,
                ],
            )
        )
    body = html.Ul(rows, className="cb-duplicates") if rows else html.P(t("dispatch.duplicates.none", lang), className="cb-muted")
    return html.Section([html.H3(t("dispatch.duplicates", lang), className="cb-panel-sub"), body])


def _actions(facts: dict, lang: str) -> html.Section | None:
    buttons = [
        html.Button(
            t(f"action.{action}", lang),
            id={"type": ids.DISPATCH_ACTION, "index": action},
            n_clicks=0,
            className=f"cb-action cb-action-{action}",
            title=t("dispatch.prompt.reason", lang).format(action=t(f"action.{action}", lang))
            if action in NEEDS_REASON
            else None,
        )
        for action in facts["allowed"]
        if action not in NOT_AS_BUTTONS
    ]
    if not buttons:
        return None
    return html.Section(
        [html.H3(t("dispatch.actions", lang), className="cb-panel-sub"), html.Div(buttons, className="cb-actions")]
    )


def stars(score: int | None) -> str:
    """A satisfaction score as five stars, e.g. ★★★★☆."""
    return "★" * score + "☆" * (5 - score) if score else ""


def _rating(facts: dict, lang: str) -> html.Section | None:
    """After closing (结案), the citizen's satisfaction (评价): one click records it, audited as a 'rate' action."""
    incident = facts["incident"]
    if incident["state"] != lifecycle.CLOSED or "rate" not in facts["allowed"]:
        return None
    score = incident.get("satisfaction")
    children = [html.H3(t("dispatch.rating", lang), className="cb-panel-sub")]
    if score:
        children.append(
            html.P(tf("dispatch.rating.current", lang, stars=stars(score), score=score), className="cb-rating-current")
        )
    else:
        children.append(html.P(t("dispatch.rating.ask", lang), className="cb-rating-ask"))
        children.append(
            html.Div(
                [
                    html.Button(
                        f"{n} ★",
                        id={"type": ids.DISPATCH_RATE, "index": n},
                        n_clicks=0,
                        className=f"cb-rate cb-rate-{n}",
                        title=t(f"dispatch.rating.{n}", lang),
                        **{"aria-label": f"{n}/5 {t(f'dispatch.rating.{n}', lang)}"},
                    )
                    for n in range(1, 6)
                ],
                className="cb-rating-buttons",
            )
        )
    return html.Section(children, className="cb-rating")


def _small_map(facts: dict, tile_url: str, tile_attribution: str) -> html.Div | None:
    incident = facts["incident"]
    if incident["lon"] is None or incident["lat"] is None:
        return None
    layers = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, attribution=tile_attribution or None, maxZoom=19))
    frame = {"center": [incident["lat"], incident["lon"]], "zoom": 16}
    grid = facts.get("grid_shape")
    if grid:
        minx, miny, maxx, maxy = grid["bounds"]
        frame = {"bounds": [[miny, minx], [maxy, maxx]], "center": [(miny + maxy) / 2, (minx + maxx) / 2]}
        layers.append(
            dl.GeoJSON(
                data={"type": "Feature", "properties": {}, "geometry": grid["geometry"]},
                style={"color": "#2b6cb0", "weight": 2, "fillOpacity": 0.06},
                interactive=False,
            )
        )
    for d in facts["duplicates"]:
        layers.append(
            dl.CircleMarker(
                center=[d["lat"], d["lon"]], radius=7, color="#805ad5", fillOpacity=0.7, children=dl.Tooltip(f"#{d['id']}")
            )
        )
    layers.append(
        dl.CircleMarker(
            center=[incident["lat"], incident["lon"]],
            radius=9,
            color="#c53030",
            fillOpacity=0.9,
            children=dl.Tooltip(f"#{incident['id']}"),
        )
    )
    return html.Div(
        dl.MapContainer(
            children=layers,
            **frame,
            preferCanvas=True,
            attributionControl=bool(tile_url),
            style={"width": "100%", "height": "100%"},
        ),
        className="cb-mini-map",
    )


def _timeline(facts: dict, lang: str, tz: str) -> html.Section:
    items = []
    for e in reversed(facts["history"]):
        change = t(f"state.{e['to_state']}", lang) if e["from_state"] != e["to_state"] else ""
        if e["action"] == "rate" and isinstance(e.get("data"), dict):
            change = f"{stars(e['data'].get('satisfaction'))} {e['data'].get('satisfaction')}/5"
        items.append(
            html.Li(
                className=f"cb-event cb-event-{e['action']}",
                children=[
                    html.Span(_local(e["at"], tz), className="cb-event-at"),
                    html.Span(t(f"action.{e['action']}", lang), className="cb-event-action"),
                    html.Span(change if e["action"] == "rate" else f"→ {change}" if change else "", className="cb-event-state"),
                    html.Span(e["actor"], className="cb-event-actor"),
                    html.Div(e["note"], className="cb-event-note") if e.get("note") else None,
                ],
            )
        )
    return html.Section(
        [html.H3(t("dispatch.timeline", lang), className="cb-panel-sub"), html.Ol(items, className="cb-timeline")]
    )


def _deliveries(facts: dict, lang: str, departments: dict[int, dict]) -> html.Section:
    lines = [
        html.Li(
            tf(
                "dispatch.delivery.line",
                lang,
                kind=t(f"action.{d['kind']}", lang),
                department=_named(departments.get(d["department_id"]), lang),
                status=t(f"delivery.{d['status']}", lang),
                attempts=d["attempts"],
            ),
            className=f"cb-delivery cb-delivery-{d['status']}",
            title=d.get("last_error") or "",
        )
        for d in facts["deliveries"]
    ]
    body = html.Ul(lines) if lines else html.P(t("dispatch.delivery.none", lang), className="cb-muted")
    return html.Section([html.H3(t("dispatch.deliveries", lang), className="cb-panel-sub"), body], className="cb-deliveries")


def panel(
    facts: dict, lang: str, tz: str, now: datetime, departments: list[dict], tile_url: str = "", tile_attribution: str = ""
) -> list:
    """The panel's children for one incident (only the controls the signed-in user's role may use)."""
    dispatches = access.can(access.DISPATCH)
    if not dispatches:  # the server refuses the rest anyway; a department sees its own four actions
        own = access.DEPARTMENT_ACTIONS if access.can(access.ACT) else frozenset()
        facts = {**facts, "allowed": [a for a in facts["allowed"] if a in own]}
    incident = facts["incident"]
    state, priority = incident["state"], incident["priority"]
    where = " · ".join(x for x in (_named(facts["district"], lang), _named(facts["grid"], lang)) if x != "—")
    assignee = facts["department"] or facts["worker"]
    details = [
        ("card.category", _named(facts["category"], lang)),
        ("card.reported", _local(incident["reported_at"], tz)),
        ("card.grid", where or t("dispatch.unlocated", lang)),
        ("card.address", incident.get("address") or "—"),
        ("card.assignee", _named(assignee, lang)),
        ("dispatch.panel.source", incident["source"]),
    ]
    by_id = {d["id"]: d for d in departments}
    sections = [
        html.Div(
            className="cb-panel-head",
            children=[
                html.H2(f"#{incident['id']} {_named(facts['category'], lang)}", className="cb-panel-title"),
                html.Span(t(f"state.{state}", lang), className=f"cb-badge cb-state-{state}", id="dispatch-panel-state"),
                html.Span(t(f"priority.{priority}", lang), className=f"cb-badge cb-priority-{priority}"),
            ],
            **{"data-incident": str(incident["id"]), "data-version": str(incident["version"]), "data-state": state},
        ),
        html.P(incident.get("description") or "", className="cb-panel-text"),
        html.Dl([item for key, value in details for item in (html.Dt(t(key, lang)), html.Dd(value))], className="cb-facts"),
        _clocks(facts, now, lang, tz),
        _suggestion(facts, lang, tz, departments) if dispatches else None,
        _actions(facts, lang),
        _rating(facts, lang) if dispatches else None,
        _duplicates(facts, lang) if dispatches else None,
        _small_map(facts, tile_url, tile_attribution),
        _timeline(facts, lang, tz),
        _deliveries(facts, lang, by_id),
    ]
    return [s for s in sections if s is not None]
