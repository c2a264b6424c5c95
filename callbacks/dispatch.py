"""Dispatch desk callbacks: pick an incident, keep queue and panel live, and run every loop action from one click.

Thin: each unpacks its inputs, calls data.incidents.dispatch (every write one audited transition, each
dispatch notified; the buttons through callbacks/dispatch_actions.py), and turns typed errors into a
message. The clientside ones (dispatch.js)
follow the change feed and count the undo down.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update
from sqlalchemy import select

from callbacks.dispatch_actions import Outcome
from dashboard import access, desk_rules, ids, jurisdiction
from dashboard.components import dispatch_centre, dispatch_queue
from dashboard.components.dispatch_panel import NEEDS_REASON, TAKES_NOTE
from dashboard.components.dispatch_queue import tf
from dashboard.i18n import LANGS, t
from dashboard.pages.dispatch import chosen_filters, read_centre, read_counts, read_panel, read_queue
from data import schema, store
from data.errors import ValidationError
from data.incidents import notify, queue
from data.parse import parse_float, parse_id, parse_ids, parse_int, parse_optional_id
from data.times import utc_now

PROMPTED = NEEDS_REASON | TAKES_NOTE
TOUCHED_MAX = 500  # more incidents touched at once than this: read the whole queue instead
MAX_VERSION = 2**31 - 1  # incidents.version is INTEGER


def _departments(engine) -> list[dict]:
    with store.reading(engine) as conn:
        return queue.filter_choices(conn)["departments"]


def _touched(bump) -> list[int] | None:
    """The incidents a change touched, as the page was told (None: unknown, read the whole queue)."""
    raw = (bump or {}).get("ids")
    if not isinstance(raw, list) or len(raw) > TOUCHED_MAX:
        return None
    try:
        return parse_ids(raw, "incident id")
    except ValidationError:
        return None  # not ids this server sent: read the whole queue


def _centre_touched(engine, touched: list[int]) -> bool:
    """Whether any of these incidents has an answer in the centre's inbox (a new one, or one whose case
    moved on): only then can the badge or the list differ (each answer is an event of its incident)."""
    if not touched:
        return False
    answers = schema.centre_notifications
    with store.reading(engine) as conn:
        return conn.execute(select(answers.c.id).where(answers.c.incident_id.in_(touched)).limit(1)).first() is not None


def _seen(click) -> dict | None:
    """DISPATCH_CLICK parsed: {id, version (None without a case shown), at (aware UTC)}; None when the page sent none."""
    if not isinstance(click, dict) or click.get("at") is None:
        return None
    at = datetime.fromtimestamp(parse_float(click.get("at"), "click time", minimum=0, maximum=4e12) / 1000, UTC)
    if click.get("id") is None:
        return {"id": None, "version": None, "at": at}
    return {
        "id": parse_id(click.get("id"), "incident id"),
        "version": parse_int(click.get("version"), "version", minimum=1, maximum=MAX_VERSION),
        "at": at,
    }


def _clicked() -> bool:
    """Whether the trigger was a real click (a button drawn anew fires with n_clicks 0 or None)."""
    return bool(ctx.triggered) and bool(ctx.triggered[0]["value"])


def register(app, deps) -> None:
    engine, settings = deps.engine, deps.settings

    @app.callback(
        Output(ids.DISPATCH_SELECTED, "data"),
        Input(ids.DISPATCH_GRID, "cellClicked"),
        Input(ids.DISPATCH_GRID, "eventData"),
        Input({"type": ids.DISPATCH_CENTRE_ITEM, "index": ALL}, "n_clicks"),
        State(ids.DISPATCH_SELECTED, "data"),
        prevent_initial_call=True,
    )
    def select_incident(clicked, focused, _centre_items, selected):
        """A click on a row, the keyboard focus moving onto one, or a click on a department's answer opens it in the panel."""
        trigger = ctx.triggered_id
        if isinstance(trigger, dict) and trigger.get("type") == ids.DISPATCH_CENTRE_ITEM:
            if not _clicked():
                return no_update
            raw = str(trigger.get("index")).rpartition(":")[2]
        elif ctx.triggered_prop_ids and any(p.endswith(".cellClicked") for p in ctx.triggered_prop_ids):
            raw = (clicked or {}).get("rowId")
        else:
            raw = ((focused or {}).get("data") or {}).get("id")
        try:
            incident_id = parse_optional_id(raw, "incident id")
        except ValidationError:
            incident_id = None
        if incident_id is None:
            return no_update
        return no_update if (selected or {}).get("id") == incident_id else {"id": incident_id}

    @app.callback(
        Output(ids.DISPATCH_PANEL, "children"),
        Output(ids.DISPATCH_CURRENT, "data"),
        Input(ids.DISPATCH_SELECTED, "data"),
        Input(ids.DISPATCH_PANEL_REFRESH, "data"),
        Input(ids.DISPATCH_ACTED, "data"),
        State(ids.DISPATCH_CURRENT, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def show_panel(selected, _refresh, _acted, current, config):
        """The panel of the chosen incident, drawn again when it changes (here or on any other screen)."""
        incident_id = (selected or {}).get("id")
        if ctx.triggered_id == ids.DISPATCH_PANEL_REFRESH:
            if not incident_id or not current or current.get("id") != incident_id:
                return no_update, no_update
            with store.reading(engine) as conn:
                version = conn.execute(select(schema.incidents.c.version).where(schema.incidents.c.id == incident_id)).scalar()
            if version == current.get("version"):
                return no_update, no_update
        lang = (config or {}).get("lang", settings.lang)
        return read_panel(engine, incident_id, lang, settings, _departments(engine))

    @app.callback(
        Output(ids.DISPATCH_GRID, "rowData"),
        Output(ids.DISPATCH_STAMPS, "data"),
        Output(ids.DISPATCH_COUNT, "children"),
        Output(ids.DISPATCH_DELTA, "data"),
        Output(ids.DISPATCH_WHOLE, "data"),
        Input(ids.DISPATCH_REFRESH, "data"),
        Input(ids.DISPATCH_ACTED, "data"),
        Input(ids.DISPATCH_FILTER_AREA, "value"),
        Input(ids.DISPATCH_FILTER_CATEGORY, "value"),
        Input(ids.DISPATCH_FILTER_PRIORITY, "value"),
        Input(ids.DISPATCH_FILTER_STATE, "value"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def refresh_queue(refresh, acted, area, category, priority, state, config):
        """The queue as of now: after a change only the rows of the incidents it touched (applied in the
        browser); when those are unknown, a turn of refresh_whole; the whole table after a new filter.
        The table's stamps never travel up with these requests (5,000 rows: ~150 KB each time)."""
        lang = (config or {}).get("lang", settings.lang)
        chosen = chosen_filters({"area": area, "category": category, "priority": priority, "state": state})
        live = ctx.triggered_id in (ids.DISPATCH_REFRESH, ids.DISPATCH_ACTED)
        if live:
            touched = _touched(refresh if ctx.triggered_id == ids.DISPATCH_REFRESH else acted)
            if touched is None:
                return no_update, no_update, no_update, no_update, {"at": time.time()}
            if not touched:
                return (no_update,) * 5
            rows, _ = read_queue(engine, chosen, utc_now(), incident_ids=touched, with_counts=False)
            delta = dispatch_queue.delta(touched, dispatch_queue.table_rows(rows, lang, settings.timezone))
            return no_update, no_update, no_update, delta, no_update
        rows, _ = read_queue(engine, chosen, utc_now(), with_counts=False)
        table = dispatch_queue.table_rows(rows, lang, settings.timezone)
        # No rows to apply in the delta: it only has the headline counts follow.
        return table, dispatch_queue.stamps(table), dispatch_queue.count_text(len(table), lang), {"at": time.time()}, no_update

    @app.callback(
        Output(ids.DISPATCH_FILTER_STATE, "value"),
        Input({"type": ids.DISPATCH_KPI, "index": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def open_view(_clicks):
        """A headline card opens its view of the queue: it sets the state filter (the queue follows the filter)."""
        clicked = ctx.triggered_id
        if not isinstance(clicked, dict) or not (ctx.triggered and ctx.triggered[0].get("value")):
            return no_update  # a redrawn strip (its cards come back with no clicks), not a click
        return dispatch_queue.KPI_VIEWS.get(clicked.get("index"), no_update)

    @app.callback(
        Output(ids.DISPATCH_GRID, "rowTransaction"),
        Output(ids.DISPATCH_STAMPS, "data", allow_duplicate=True),
        Output(ids.DISPATCH_COUNT, "children", allow_duplicate=True),
        Input(ids.DISPATCH_WHOLE, "data"),
        State(ids.DISPATCH_FILTER_AREA, "value"),
        State(ids.DISPATCH_FILTER_CATEGORY, "value"),
        State(ids.DISPATCH_FILTER_PRIORITY, "value"),
        State(ids.DISPATCH_FILTER_STATE, "value"),
        State(ids.DISPATCH_STAMPS, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def refresh_whole(_whole, area, category, priority, state, old_stamps, config):
        """The whole queue read again, sending only the rows that differ from what the table holds (its stamps):
        after a change whose incidents are unknown (a reset, a long burst, ids withheld) and once a minute."""
        lang = (config or {}).get("lang", settings.lang)
        chosen = chosen_filters({"area": area, "category": category, "priority": priority, "state": state})
        rows, _ = read_queue(engine, chosen, utc_now(), with_counts=False)
        table = dispatch_queue.table_rows(rows, lang, settings.timezone)
        changes, stamps = dispatch_queue.row_changes(old_stamps, table)
        # async False: applied at once, not batched for AG Grid's 50 ms async-transaction wait.
        transaction = {**changes, "async": False} if any(changes.values()) else no_update
        return transaction, stamps, dispatch_queue.count_text(len(table), lang)

    @app.callback(
        Output(ids.DISPATCH_KPIS, "children"),
        Input(ids.DISPATCH_DELTA, "data"),
        Input(ids.DISPATCH_WHOLE, "data"),
        State(ids.DISPATCH_FILTER_AREA, "value"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def refresh_kpis(_delta, _whole, area, config):
        """The headline counts, once the rows are read: they count every open incident (shared by every desk
        through the cache), so they follow the rows instead of holding up the request that moves them."""
        lang = (config or {}).get("lang", settings.lang)
        counts = read_counts(engine, chosen_filters({"area": area}), utc_now())
        return dispatch_queue.kpi_strip(counts, lang)

    app.clientside_callback(
        ClientsideFunction("citybrain", "dispatchApplyDelta"),
        Output(ids.DISPATCH_GRID, "rowTransaction", allow_duplicate=True),
        Output(ids.DISPATCH_STAMPS, "data", allow_duplicate=True),
        Output(ids.DISPATCH_COUNT, "children", allow_duplicate=True),
        Input(ids.DISPATCH_DELTA, "data"),
        State(ids.DISPATCH_STAMPS, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(ids.DISPATCH_PROMPT, "hidden"),
        Output(ids.DISPATCH_PROMPT_LABEL, "children"),
        Output(f"{ids.DISPATCH_EXTEND_HOURS}-row", "hidden"),
        Input(ids.DISPATCH_PENDING, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
    )
    def show_prompt(pending, config):
        """The reason prompt of the action waiting for one (hidden when none is)."""
        action = (pending or {}).get("action")
        if not action:
            return True, "", True
        lang = (config or {}).get("lang", settings.lang)
        key = "dispatch.prompt.reason" if action in NEEDS_REASON else "dispatch.prompt.note"
        label = f"#{pending['id']} · " + tf(key, lang, action=t(f"action.{action}", lang))
        return False, label, action != "extend"

    @app.callback(
        Output(ids.DISPATCH_MESSAGE, "children"),
        Output(ids.DISPATCH_MESSAGE, "className"),
        Output(ids.DISPATCH_PENDING, "data"),
        Output(ids.DISPATCH_ACTED, "data"),
        Output(ids.DISPATCH_UNDO_STATE, "data"),
        Output(ids.DISPATCH_REASON, "value"),
        Output(ids.DISPATCH_SELECTED, "data", allow_duplicate=True),
        Input({"type": ids.DISPATCH_TO, "index": ALL}, "n_clicks"),
        Input({"type": ids.DISPATCH_OTHER_GO, "index": ALL}, "n_clicks"),
        Input({"type": ids.DISPATCH_ACTION, "index": ALL}, "n_clicks"),
        Input({"type": ids.DISPATCH_MERGE, "index": ALL}, "n_clicks"),
        Input(ids.DISPATCH_PROMPT_OK, "n_clicks"),
        Input(ids.DISPATCH_PROMPT_CANCEL, "n_clicks"),
        Input(ids.DISPATCH_UNDO, "n_clicks"),
        Input(ids.DISPATCH_BATCH, "n_clicks"),
        Input({"type": ids.DISPATCH_RATE, "index": ALL}, "n_clicks"),
        State({"type": ids.DISPATCH_OTHER, "index": ALL}, "value"),
        State(ids.DISPATCH_REASON, "value"),
        State(ids.DISPATCH_EXTEND_HOURS, "value"),
        State(ids.DISPATCH_PENDING, "data"),
        State(ids.DISPATCH_CURRENT, "data"),
        State(ids.DISPATCH_UNDO_STATE, "data"),
        State(ids.DISPATCH_GRID, "selectedRows"),
        State(ids.DISPATCH_CLICK, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def act(
        _to,
        _other_go,
        _actions,
        _merges,
        _ok,
        _cancel,
        _undo,
        _batch,
        _rates,
        others,
        reason,
        hours,
        pending,
        current,
        undo_state,
        selected_rows,
        click,
        config,
    ):
        """Every button of the desk: one call into data.incidents.dispatch, then a message and a redraw of this page.

        The case acted on is the one shown when the button was clicked, at the version shown then (`click`, noted by
        dispatch.js at the click itself), never the panel as it may stand by the time the request is sent."""
        if not _clicked():
            return (no_update,) * 7
        config = config or {}
        # The audit log's actor is the signed-in user, never a name the page sent; the data layer checks
        # its jurisdiction, department and role on every incident the action changes.
        lang, actor = config.get("lang", settings.lang), access.acting()
        trigger = ctx.triggered_id
        kind = trigger.get("type") if isinstance(trigger, dict) else trigger
        try:
            seen = _seen(click)
        except ValidationError:
            return Outcome(lang).refused(t("auth.bad_request", lang))
        out = Outcome(lang, seen["at"] if seen else None)
        refused = desk_rules.refusal(engine, kind, trigger, current, pending, selected_rows, undo_state)
        if refused:  # checked here on the server, whatever buttons the page showed
            return out.refused(t(refused, lang))

        if kind == ids.DISPATCH_PROMPT_CANCEL:
            return None, "cb-message", None, no_update, no_update, "", no_update
        if kind == ids.DISPATCH_BATCH:
            return out.batch(engine, selected_rows, actor)
        if kind == ids.DISPATCH_UNDO:
            return out.undo(engine, undo_state, actor)
        if not current:
            return (no_update,) * 7
        if not seen or seen["id"] is None:  # no case was shown when the button was clicked
            return out.refused(t("dispatch.msg.look_again", lang))
        # The case and version shown at the click: the panel may have moved on before the request left.
        current = {"id": seen["id"], "version": seen["version"]}
        try:  # everything below came from the page: each id and number parsed strictly, or nothing happens
            return _act_on_current(out, kind, trigger, current, pending, reason, hours, others, actor, lang)
        except ValidationError:
            return out.refused(t("auth.bad_request", lang))

    def _act_on_current(out, kind, trigger, current, pending, reason, hours, others, actor, lang):
        """One button acting on the incident in the panel."""
        incident_id = parse_id(current.get("id"), "incident id")
        version = parse_int(current.get("version"), "version", minimum=1, maximum=MAX_VERSION)
        current = {"id": incident_id, "version": version}
        if kind == ids.DISPATCH_ACTION and trigger["index"] in PROMPTED:
            return None, "cb-message", {"action": trigger["index"], "id": incident_id}, no_update, no_update, no_update, no_update
        if kind == ids.DISPATCH_PROMPT_OK:
            return out.confirm(engine, pending, current, reason, hours, actor)
        if kind == ids.DISPATCH_ACTION:
            return out.run(engine, incident_id, trigger["index"], actor, version)
        if kind == ids.DISPATCH_RATE:
            return out.rate(engine, incident_id, parse_int(trigger["index"], "score", minimum=1, maximum=5), actor, version)
        if kind == ids.DISPATCH_MERGE:
            return out.merge(engine, incident_id, parse_id(trigger["index"], "incident id"), actor, version)
        if kind == ids.DISPATCH_TO:
            who, _, raw = str(trigger["index"]).partition(":")
            target = {"worker_id" if who == "worker" else "department_id": parse_id(raw, f"{who} id")}
            return out.send(engine, incident_id, version, target, actor)
        if kind == ids.DISPATCH_OTHER_GO:
            chosen = next((v for v in others or [] if v), None)
            if chosen is None:
                return out.refused(t("dispatch.other", lang) + "?")
            return out.send(engine, incident_id, version, {"department_id": parse_id(chosen, "department id")}, actor)
        return (no_update,) * 7

    @app.callback(
        Output(ids.DISPATCH_CENTRE_BADGE, "children"),
        Output(ids.DISPATCH_CENTRE_BADGE, "className"),
        Output(ids.DISPATCH_CENTRE_LIST, "children"),
        Input(ids.DISPATCH_REFRESH, "data"),
        Input(ids.DISPATCH_ACTED, "data"),
        Input(ids.DISPATCH_CENTRE_SEEN, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def refresh_centre(refresh, acted, _seen, config):
        """The badge and list of departments' answers (部门报到), current after any change on any screen or API."""
        trigger = ctx.triggered_id
        touched = _touched(refresh if trigger == ids.DISPATCH_REFRESH else acted) if trigger != ids.DISPATCH_CENTRE_SEEN else None
        if touched is not None and not _centre_touched(engine, touched):
            return no_update, no_update, no_update
        lang = (config or {}).get("lang", settings.lang)
        unread, children = read_centre(engine, lang, settings)
        return dispatch_centre.badge_children(unread, lang), dispatch_centre.badge_class(unread), children

    @app.callback(
        Output(ids.DISPATCH_CENTRE, "hidden"),
        Input(ids.DISPATCH_CENTRE_BADGE, "n_clicks"),
        State(ids.DISPATCH_CENTRE, "hidden"),
        prevent_initial_call=True,
    )
    def toggle_centre(n_clicks, hidden):
        """The badge opens and closes the list."""
        return no_update if not n_clicks else not hidden

    @app.callback(
        Output(ids.DISPATCH_CENTRE_SEEN, "data"),
        Input(ids.DISPATCH_CENTRE_READ, "n_clicks"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def mark_centre_read(n_clicks, config):
        """'Mark all read': the answers stay in the list, the badge's count goes to zero."""
        if not n_clicks or not access.can(access.DISPATCH):
            return no_update
        with engine.begin() as conn:
            # Only the answers this user can see: a district's dispatcher does not clear another district's.
            changed = notify.mark_centre_read(conn, actor=access.actor(), scope=jurisdiction.scope_tuple())
        return {"at": time.time(), "changed": changed}

    @app.callback(
        Output(ids.SHELL_LANG, "data", allow_duplicate=True),
        Input(ids.DISPATCH_LANG_SWITCH, "n_clicks"),
        State(ids.DISPATCH_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def switch_language(n_clicks, config):
        """The other language; the shell draws the desk again in it."""
        if not n_clicks:
            return no_update
        current = (config or {}).get("lang", settings.lang)
        return LANGS[(LANGS.index(current) + 1) % len(LANGS)] if current in LANGS else LANGS[0]

    # A change reaches the panel only when it may concern the incident shown (no request otherwise).
    app.clientside_callback(
        ClientsideFunction("citybrain", "dispatchPanelRefresh"),
        Output(ids.DISPATCH_PANEL_REFRESH, "data"),
        Input(ids.DISPATCH_REFRESH, "data"),
        State(ids.DISPATCH_SELECTED, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "dispatchFollow"),
        Output(ids.DISPATCH_FOLLOWING, "data"),
        Input(ids.DISPATCH_STREAM, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "dispatchUndoTick"),
        Output(ids.DISPATCH_UNDO_BAR, "hidden"),
        Output(ids.DISPATCH_UNDO, "children"),
        Input(ids.DISPATCH_TICK, "n_intervals"),
        Input(ids.DISPATCH_UNDO_STATE, "data"),
        State(ids.DISPATCH_CONFIG, "data"),
    )
