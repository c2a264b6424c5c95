"""Overview callbacks (desk and wall): choices, map view, live values, side panel, incident card, live plumbing.

Thin: each unpacks its inputs, calls pages.overview_model / pages.insights / layers, returns.
The clientside ones (window.citybrain in dashboard/assets/citybrain.js) restyle the map in
place, draw the heat layer, follow the server-sent events and run the clock.
"""

from __future__ import annotations

from dash import ALL, ClientsideFunction, Input, Output, State, ctx, no_update

from dashboard import ids
from dashboard.components import grid_map, header
from dashboard.components.incident_card import incident_card
from dashboard.i18n import LANGS
from dashboard.pages import insights
from dashboard.pages import overview_model as model
from data.parse import id_or_none
from layers import choropleth


def register(app, deps) -> None:
    engine, settings = deps.engine, deps.settings

    @app.callback(
        Output(ids.OVERVIEW_STATE, "data"),
        Output(ids.OVERVIEW_MAP, "viewport"),
        Input(ids.OVERVIEW_METRIC, "value"),
        Input(ids.OVERVIEW_HEAT_WINDOW, "value"),
        Input(ids.OVERVIEW_UNITS, "clickData"),
        Input({"type": ids.OVERVIEW_CRUMB, "index": ALL}, "n_clicks"),
        State(ids.OVERVIEW_STATE, "data"),
        prevent_initial_call=True,
    )
    def choose(metric, heat_window, click, _crumbs, state):
        """A click on a metric, a heat window, a unit (drill in) or a breadcrumb step (back up)."""
        state = dict(state or {})
        trigger = ctx.triggered_id
        viewport = no_update
        if trigger == ids.OVERVIEW_METRIC and metric in choropleth.METRICS:
            state["metric"] = metric
        elif trigger == ids.OVERVIEW_HEAT_WINDOW:
            state["heat"] = heat_window
        elif trigger == ids.OVERVIEW_UNITS and click and click.get("properties"):
            state["scope"] = id_or_none(click["properties"].get("id"), "unit id")
            if click.get("bounds"):
                viewport = _fly_to(click["bounds"])
        elif isinstance(trigger, dict) and trigger.get("type") == ids.OVERVIEW_CRUMB:
            if not ctx.triggered[0]["value"]:  # a breadcrumb drawn anew, not clicked
                return no_update, no_update
            scope = model.scope_of(engine, trigger["index"] or None)
            state["scope"] = scope.id
            frame = scope.bbox or model.city_extent(engine)
            if frame:
                viewport = _fly_to([[frame[1], frame[0]], [frame[3], frame[2]]])
        else:
            return no_update, no_update
        return state, viewport

    @app.callback(
        Output(ids.OVERVIEW_UNITS, "url"),
        Output(ids.OVERVIEW_UNITS, "hideout"),
        Output(ids.OVERVIEW_LEGEND, "children"),
        Output(ids.OVERVIEW_MARKERS, "url"),
        Output(ids.OVERVIEW_MARKERS, "hideout"),
        Output(ids.OVERVIEW_HEAT, "data"),
        Output(ids.OVERVIEW_VIEW, "data"),
        Input(ids.OVERVIEW_MAP, "zoom"),
        Input(ids.OVERVIEW_MAP, "bounds"),
        Input(ids.OVERVIEW_STATE, "data"),
        Input(ids.OVERVIEW_UNITS_VERSION, "data"),  # boundaries re-imported: the geometry URL names the new version
        State(ids.OVERVIEW_UNITS, "url"),
        State(ids.OVERVIEW_MARKERS, "url"),
        State(ids.OVERVIEW_HEAT, "data"),
        State(ids.OVERVIEW_VIEW, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def view(zoom, bounds, state, _units_version, units_url, markers_url, heat_spec, current, config):
        """The map moved, the choices or the units changed: new geometry URL and hideout only when the view really changed."""
        lang = (config or {}).get("lang", settings.lang)
        snap = model.snapshot(engine)
        scope = model.scope_of(engine, state.get("scope"))
        new = model.map_view(
            engine, snap, zoom, bounds, scope, state["metric"], lang, state["variant"], state["heat"], previous=current
        )
        upcoming = new["next"] or {}
        if upcoming and upcoming["level"] != (current or {}).get("next_level"):
            model.warm_values(engine, snap, upcoming["level"], state["metric"])  # the next level's values, while idle
        rebuilt = (
            new["units_url"] != units_url
            or new["hideout"]["key"] != (current or {}).get("key")
            or ctx.triggered_id == ids.OVERVIEW_STATE
        )
        markers_moved = new["markers_url"] != markers_url
        return (
            new["units_url"] if new["units_url"] != units_url else no_update,
            new["hideout"] if rebuilt else no_update,
            grid_map.legend(state["metric"], new["hideout"]["breaks"], lang) if rebuilt else no_update,
            new["markers_url"] if markers_moved else no_update,
            grid_map.markers_hideout(new["markers_url"]) if markers_moved else no_update,
            new["heat"] if new["heat"] != heat_spec else no_update,
            {
                "level": new["level"],
                "bbox": new["bbox"],
                "key": new["hideout"]["key"],
                "zoom": zoom,
                "bounds": bounds,
                "markers_bbox": new["markers_bbox"],
                # The next finer level over this area: citybrain.prefetch fetches it while the page is
                # idle, and the next view reuses this bbox, so a zoom-in that changes level finds its
                # geometry in the browser's cache.
                "next_level": upcoming.get("level"),
                "next_bbox": upcoming.get("bbox"),
                "prefetch": upcoming.get("url"),
            },
        )

    @app.callback(
        Output(ids.OVERVIEW_VALUES, "data"),
        Output(ids.OVERVIEW_MARKERS, "url", allow_duplicate=True),
        Output(ids.OVERVIEW_MARKERS, "hideout", allow_duplicate=True),
        Output(ids.OVERVIEW_HEAT, "data", allow_duplicate=True),
        Output(ids.OVERVIEW_LEGEND, "children", allow_duplicate=True),
        Input(ids.OVERVIEW_REFRESH, "data"),
        State(ids.OVERVIEW_VIEW, "data"),
        State(ids.OVERVIEW_STATE, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def live_values(_refresh, current, state, config):
        """The feed moved: new values for the drawn units (restyled in place), fresh markers and heat."""
        lang = (config or {}).get("lang", settings.lang)
        snap = model.snapshot(engine)
        scope = model.scope_of(engine, state.get("scope"))
        level, bbox = current["level"], tuple(current["bbox"]) if current.get("bbox") else None
        values = model.live_values(engine, snap, level, state["metric"], bbox, scope)
        zoom, bounds = current.get("zoom"), current.get("bounds")
        markers = model.markers_url_for(zoom, bounds, scope, snap.head, keep=current.get("markers_bbox"))
        return (
            values,
            markers if markers is not None else no_update,
            grid_map.markers_hideout(markers) if markers is not None else no_update,
            model.heat_spec(state["heat"], zoom, scope, snap.head),
            grid_map.legend(state["metric"], values["breaks"], lang),
        )

    # The side panel is two callbacks, one after the other, so the KPI cards (one quick read) paint
    # as soon as they are ready: the department board (a week of answers, the slowest read) and the
    # charts are read once the cards are done, instead of competing with them for the CPU.
    @app.callback(
        Output(ids.OVERVIEW_KPIS, "children"),
        Output(ids.OVERVIEW_SCOPE_TITLE, "children"),
        Output(ids.OVERVIEW_AS_OF, "children"),
        Output(ids.OVERVIEW_BREADCRUMB, "children"),
        Output(ids.OVERVIEW_KPIS_AT, "data"),
        Input(ids.OVERVIEW_REFRESH, "data"),
        Input(ids.OVERVIEW_STATE, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def side_kpis(_refresh, state, config):
        """The KPI cards for the scope, as of now, with the scope's title and breadcrumb."""
        lang = (config or {}).get("lang", settings.lang)
        snap = model.snapshot(engine)
        scope = model.scope_of(engine, state.get("scope"))
        parts = insights.read(engine, scope, snap, lang, settings.timezone, state.get("variant") == "wall", parts=("kpis",))
        return (
            parts["kpis"],
            parts["title"],
            header.as_of_text(snap.now, settings.timezone, lang),
            header.breadcrumb(scope.chain, lang),
            {"head": snap.head, "scope": scope.id},
        )

    # The board and charts are the panel's slower reads (a few hundred ms of CPU at a million incidents,
    # seconds before the board came from the working set); read on every change of a busy feed they
    # would still be running when the next change's KPI cards are read, and slow them. So they follow
    # the cards (overview-kpis-at) through citybrain.boardDue: once the feed has been quiet for a moment,
    # at the latest every BOARD_MAX_WAIT_MS while it never is, and at once for a new scope; it sets
    # overview-painted, which also brings them the first time the map has drawn.
    @app.callback(
        Output(ids.OVERVIEW_BOARD, "children"),
        Output(ids.OVERVIEW_TREND_SLOT, "children"),
        Output(ids.OVERVIEW_BREAKDOWN_SLOT, "children"),
        Output(ids.OVERVIEW_SECTORS, "children"),
        Input(ids.OVERVIEW_SCREEN, "data"),
        Input(ids.OVERVIEW_PAINTED, "data"),
        State(ids.OVERVIEW_STATE, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def side_board_and_charts(screen, _painted, state, config):
        """Department board, 24-hour trend and breakdown for the scope, as of now."""
        lang = (config or {}).get("lang", settings.lang)
        snap = model.snapshot(engine)
        scope = model.scope_of(engine, state.get("scope"))
        wall = state.get("variant") == "wall"
        scale = (screen or {}).get("scale", 1.0)
        parts = insights.read(engine, scope, snap, lang, settings.timezone, wall, scale, parts=("board", "trend", "breakdown"))
        return (
            parts["board"],
            insights.graph(ids.OVERVIEW_TREND, parts["trend"], wall),
            insights.graph(ids.OVERVIEW_BREAKDOWN, parts["breakdown"], wall),
            parts["sectors"],
        )

    @app.callback(
        Output(ids.SHELL_LANG, "data"),
        Output(ids.SHELL_CARRY, "data"),
        Input(ids.OVERVIEW_LANG_SWITCH, "n_clicks"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        State(ids.OVERVIEW_STATE, "data"),
        State(ids.OVERVIEW_MAP, "bounds"),
        prevent_initial_call=True,
    )
    def switch_language(n_clicks, config, state, bounds):
        """The other language; the page is drawn again in it, keeping the scope, choices and map view."""
        if not n_clicks:
            return no_update, no_update
        current = (config or {}).get("lang", settings.lang)
        other = LANGS[(LANGS.index(current) + 1) % len(LANGS)] if current in LANGS else LANGS[0]
        return other, {"state": state, "bounds": bounds, "lang": other}

    @app.callback(
        Output(ids.OVERVIEW_CARD_BODY, "children"),
        Output(ids.OVERVIEW_CARD, "hidden"),
        Input(ids.OVERVIEW_MARKERS, "clickData"),
        Input(ids.OVERVIEW_CARD_CLOSE, "n_clicks"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
        prevent_initial_call=True,
    )
    def card(click, _close, config):
        """A click on an incident marker opens its card; the card's close button hides it."""
        if ctx.triggered_id == ids.OVERVIEW_CARD_CLOSE:
            return no_update, True
        props = (click or {}).get("properties") or {}
        if props.get("cluster") or "id" not in props:
            return no_update, no_update
        lang = (config or {}).get("lang", settings.lang)
        incident_id = id_or_none(props["id"], "incident id")
        if incident_id is None:  # not an id this server drew
            return no_update, no_update
        return incident_card(engine, incident_id, lang, settings.timezone), False

    _register_clientside(app)


def _fly_to(bounds) -> dict:
    return {"bounds": bounds, "transition": "flyToBounds", "options": {"duration": 0.5, "padding": [20, 20]}}


def _register_clientside(app) -> None:
    app.clientside_callback(
        ClientsideFunction("citybrain", "applyValues"),
        Output(ids.OVERVIEW_APPLIED, "data"),
        Input(ids.OVERVIEW_VALUES, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "watchUnits"),
        Output(ids.OVERVIEW_UNITS_WATCH, "data"),
        Input(ids.OVERVIEW_UNITS, "url"),
        Input(ids.OVERVIEW_UNITS, "hideout"),
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "boardDue"),
        Output(ids.OVERVIEW_PAINTED, "data", allow_duplicate=True),
        Input(ids.OVERVIEW_KPIS_AT, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "prefetch"),
        Output(ids.OVERVIEW_UNITS_WATCH, "data", allow_duplicate=True),
        Input(ids.OVERVIEW_VIEW, "data"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "watchMarkers"),
        Output(ids.OVERVIEW_MARKERS_WATCH, "data"),
        Input(ids.OVERVIEW_MARKERS, "url"),
        Input(ids.OVERVIEW_MARKERS, "hideout"),
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "screen"),
        Output(ids.OVERVIEW_SCREEN, "data"),
        Input(ids.OVERVIEW_STATE, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "heat"),
        Output(ids.OVERVIEW_HEAT_DRAWN, "data"),
        Input(ids.OVERVIEW_HEAT, "data"),
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "openStream"),
        Output(ids.OVERVIEW_LIVE, "data", allow_duplicate=True),
        Input(ids.OVERVIEW_STREAM, "data"),
        prevent_initial_call="initial_duplicate",
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "poll"),
        Output(ids.OVERVIEW_LIVE, "data", allow_duplicate=True),
        Input(ids.OVERVIEW_POLL, "n_intervals"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        ClientsideFunction("citybrain", "tick"),
        Output(ids.OVERVIEW_CLOCK, "children"),
        Output(ids.OVERVIEW_LIVE_STATUS, "children"),
        Output(ids.OVERVIEW_LIVE_STATUS, "className"),
        Input(ids.OVERVIEW_TICK, "n_intervals"),
        Input(ids.OVERVIEW_LIVE, "data"),
        State(ids.OVERVIEW_CLOCK_CONFIG, "data"),
    )
