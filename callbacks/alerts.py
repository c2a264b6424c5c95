"""Alerts panel callbacks (overview and wall): redraw on a change or a new scope, and the operator's three actions.

Thin: the redraw reads data.warnings.alerts.list_alerts for the overview's scope; each button is one
data.warnings.act_on_alert call whose typed error becomes a message. The clientside ones
(window.citybrain in dashboard/assets/warnings.js) poll /alerts/head and fly the map to an alert.
"""

from __future__ import annotations

import time

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, html, no_update

from dashboard import access, ids
from dashboard.components import alerts_panel
from dashboard.i18n import t
from dashboard.pages import overview_model as model
from data.actors import Actor
from data.errors import CityBrainError, NotFound, ValidationError
from data.parse import parse_id
from layers import alerts as alert_layer

ACTIONS = {ids.ALERTS_ACK: "acknowledge", ids.ALERTS_CASE: "case"}


def act(engine, alert_id: int, action: str, actor: str | Actor, lang: str, note: str | None = None) -> tuple[list, bool]:
    """Run one operator action on an alert; (message children, done?). Refusals change nothing."""
    from data.warnings import alerts as warnings

    try:
        with engine.begin() as conn:
            alert = warnings.act_on_alert(conn, alert_id, action, actor, note=note)
    except ValidationError as exc:
        if action == "dismiss" and not (note or "").strip():
            return [t("alerts.msg.reason_required", lang)], False
        return [alerts_panel.tf("alerts.msg.refused", lang, reason=str(exc))], False
    except NotFound:
        return [alerts_panel.tf("alerts.msg.gone", lang, id=alert_id)], False
    except CityBrainError as exc:  # InvalidTransition: somebody acted first, or the alert cleared
        return [alerts_panel.tf("alerts.msg.refused", lang, reason=str(exc))], False
    if action == "case":
        incident = alert["case_incident_id"]
        return [
            alerts_panel.tf("alerts.msg.case", lang, id=alert_id, incident=incident),
            # The new case opens straight in the dispatcher's desk (一键调度), like the incident card's link.
            html.A(t("alerts.msg.open_dispatch", lang), href=f"/dispatch?incident={incident}", className="cb-alert-case-link"),
        ], True
    if action == "dismiss":
        return [alerts_panel.tf("alerts.msg.dismissed", lang, id=alert_id, note=alert.get("act_note") or "")], True
    return [alerts_panel.tf("alerts.msg.acknowledged", lang, id=alert_id)], True


def read_view(engine, state: dict, lang: str) -> dict:
    """The panel's parts for the overview's state (its scope and variant): list, count, map data, focus points."""
    scope = model.scope_of(engine, (state or {}).get("scope"))
    wall = (state or {}).get("variant") == "wall"
    rows = alerts_panel.read_alerts(engine, alerts_panel.visible_scope(engine, scope))
    return {
        "list": alerts_panel.alerts_list(rows, lang, wall=wall, actions=alerts_panel.may_act()),
        "count": alerts_panel.count_text(rows),
        "layer": alert_layer.alert_features(alerts_panel.wall_rows(rows) if wall else rows),
        "points": alert_layer.focus_points(rows),
    }


def _clicked() -> bool:
    """Whether the trigger was a real click (a button drawn anew fires with n_clicks 0 or None)."""
    return bool(ctx.triggered) and bool(ctx.triggered[0]["value"])


def register(app, deps) -> None:
    engine, settings = deps.engine, deps.settings
    # Anyone who may see the overview sees its alerts; acting on one is checked per click (DISPATCH).
    access.allow_area("alerts", access.VIEW)

    @app.callback(
        Output(ids.ALERTS_LIST, "children"),
        Output(ids.ALERTS_COUNT, "children"),
        Output(ids.ALERTS_LAYER, "data"),
        Output(ids.ALERTS_POINTS, "data"),
        Input(ids.ALERTS_REFRESH, "data"),
        Input(ids.OVERVIEW_STATE, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def redraw(_refresh, state, config):
        """An alert changed (the poller saw /alerts/head move, or an action ran here) or the scope changed."""
        parts = read_view(engine, state, (config or {}).get("lang", settings.lang))
        return parts["list"], parts["count"], parts["layer"], parts["points"]

    @app.callback(
        Output(ids.ALERTS_MESSAGE, "children"),
        Output(ids.ALERTS_MESSAGE, "className"),
        Output(ids.ALERTS_PENDING, "data"),
        Output(ids.ALERTS_PROMPT, "hidden"),
        Output(ids.ALERTS_PROMPT_LABEL, "children"),
        Output(ids.ALERTS_REASON, "value"),
        Output(ids.ALERTS_REFRESH, "data", allow_duplicate=True),
        Input({"type": ids.ALERTS_ACK, "index": ALL}, "n_clicks"),
        Input({"type": ids.ALERTS_DISMISS, "index": ALL}, "n_clicks"),
        Input({"type": ids.ALERTS_CASE, "index": ALL}, "n_clicks"),
        Input(ids.ALERTS_PROMPT_OK, "n_clicks"),
        Input(ids.ALERTS_PROMPT_CANCEL, "n_clicks"),
        State(ids.ALERTS_REASON, "value"),
        State(ids.ALERTS_PENDING, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def buttons(_acks, _dismisses, _cases, _ok, _cancel, reason, pending, config):
        """确认 and 立案 act at once; 忽略 asks for a reason first, and its OK acts."""
        if not _clicked():
            return (no_update,) * 7
        lang = (config or {}).get("lang", settings.lang)
        if not alerts_panel.may_act():
            return t("alerts.msg.not_allowed", lang), "cb-message cb-message-refused", None, True, "", "", no_update
        # The signed-in user's jurisdiction goes down with the action: data/ checks the alert's place.
        try:
            return on_click(engine, ctx.triggered_id, reason, pending, lang, access.acting())
        except ValidationError:  # an alert id that is not one: nothing happens
            return t("auth.bad_request", lang), "cb-message cb-message-refused", None, True, "", "", no_update

    app.clientside_callback(
        ClientsideFunction("citybrain", "alertFocus"),
        Output(ids.ALERTS_FOCUSED, "data"),
        Input({"type": ids.ALERTS_FOCUS, "index": ALL}, "n_clicks"),
        State(ids.ALERTS_POINTS, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "alertsPoll"),
        Output(ids.ALERTS_POLLED, "data"),
        Input(ids.ALERTS_POLL, "n_intervals"),
        State(ids.ALERTS_WATCH, "data"),
        prevent_initial_call=True,
    )


def on_click(engine, trigger, reason: str | None, pending: dict | None, lang: str, actor: str | Actor) -> tuple:
    """What one click does: (message, message class, pending, prompt hidden, prompt label, reason, refresh)."""
    keep = no_update
    kind = trigger.get("type") if isinstance(trigger, dict) else trigger
    if kind == ids.ALERTS_PROMPT_CANCEL:
        return "", "cb-message", None, True, "", "", keep
    if kind == ids.ALERTS_DISMISS:
        alert_id = parse_id(trigger["index"], "alert id")
        label = alerts_panel.tf("alerts.prompt.dismiss", lang, id=alert_id)
        return "", "cb-message", {"id": alert_id}, False, label, "", keep
    if kind == ids.ALERTS_PROMPT_OK:
        if not pending:
            return "", "cb-message", None, True, "", "", keep
        message, done = act(engine, parse_id(pending.get("id"), "alert id"), "dismiss", actor, lang, note=reason)
        if not done:  # the prompt stays open with what was typed, the message says why
            return message, "cb-message cb-message-refused", keep, False, keep, keep, {"at": time.time()}
        return message, "cb-message cb-message-ok", None, True, "", "", {"at": time.time()}
    if kind in ACTIONS:
        message, done = act(engine, parse_id(trigger["index"], "alert id"), ACTIONS[kind], actor, lang)
        css = "cb-message cb-message-ok" if done else "cb-message cb-message-refused"
        # Redrawn either way: a refusal (somebody acted first) shows the alert as it now stands.
        return message, css, keep, keep, keep, keep, {"at": time.time()}
    return (keep,) * 7
