"""The one-screen overview (一屏统揽): the desk page `/` and the wall page `/wall`, built from the same parts."""

from __future__ import annotations

from dash import dcc, html
from flask import current_app

from dashboard import ids
from dashboard.components import alerts_panel, grid_map, header, incident_card
from dashboard.i18n import t
from dashboard.pages import overview_model as model
from dashboard.pages.insights import insights_panel
from data.parse import id_or_none
from layers import choropleth, heat

VARIANTS = ("desk", "wall")
POLL_MS = 3000  # the polling fallback's period (only polls while server push is silent)


def initial_state(query: dict, variant: str) -> dict:
    """What the user chose, from the URL (?scope=&metric=&heat=), with defaults for the rest."""
    scope = query.get("scope", "")
    metric = query.get("metric", choropleth.DEFAULT_METRIC)
    window = query.get("heat", heat.DEFAULT_WINDOW)
    return {
        "scope": id_or_none(scope, "scope"),  # what is not a unit id shows the user's own area
        "metric": metric if metric in choropleth.METRICS else choropleth.DEFAULT_METRIC,
        "heat": window if window in heat.WINDOWS or window == "off" else heat.DEFAULT_WINDOW,
        "variant": variant,
    }


def layout(deps, variant: str, query: dict, lang: str, bounds=None) -> html.Div:
    """The whole page for a first paint: map view, KPIs and board are computed here, not in a second round trip."""
    settings, engine = deps.settings, deps.engine
    build = current_app.config.get("CITYBRAIN_BUILD", "")
    wall = variant == "wall"
    state = initial_state(query, variant)
    snap = model.snapshot(engine)
    scope = model.scope_of(engine, state["scope"])
    state["scope"] = scope.id
    frame = bounds or scope.bbox or model.city_extent(engine)
    zoom = model.estimate_zoom(frame, *((1100, 950) if wall else (1000, 800)))
    view = model.map_view(engine, snap, zoom, _leaflet_bounds(frame), scope, state["metric"], lang, variant, state["heat"])
    alerts = alerts_panel.read_alerts(engine, alerts_panel.visible_scope(engine, scope))
    return html.Div(
        id=ids.OVERVIEW_ROOT,
        className=f"cb-overview cb-{variant}",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            header.header(state, scope.chain, lang, settings.timezone, snap.now, wall),
            html.Main(
                className="cb-body",
                children=[
                    html.Section(
                        className="cb-map-panel",
                        children=[
                            grid_map.grid_map(
                                view,
                                bounds=frame,
                                tile_url=settings.tile_url,
                                tile_attribution=settings.tile_attribution,
                                wall=wall,
                                extra_layers=[alerts_panel.map_layer(alerts_panel.wall_rows(alerts) if wall else alerts)],
                            ),
                            html.Div(
                                grid_map.legend(state["metric"], view["hideout"]["breaks"], lang),
                                id=ids.OVERVIEW_LEGEND,
                                className="cb-legend",
                            ),
                            incident_card.card_shell(lang),
                        ],
                    ),
                    insights_panel(
                        engine,
                        scope,
                        snap,
                        lang,
                        settings.timezone,
                        wall,
                        alerts=alerts_panel.panel(alerts, alerts_panel.read_head(engine), lang, wall, alerts_panel.may_act()),
                    ),
                ],
            ),
            *_plumbing(state, view, snap, lang, settings.timezone, build),
        ],
    )


def _leaflet_bounds(bbox):
    return None if bbox is None else [[bbox[1], bbox[0]], [bbox[3], bbox[2]]]


def _plumbing(state: dict, view: dict, snap, lang: str, tz: str, build: str) -> list:
    """Stores and timers: invisible, but what keeps the page live (citybrain.js opens the event stream)."""
    words = {key: t(f"live.{key}", lang) for key in ("live", "connecting", "polling", "stale", "since")}
    return [
        dcc.Store(id=ids.OVERVIEW_STATE, data=state),
        dcc.Store(id=ids.OVERVIEW_VIEW, data={"level": view["level"], "bbox": view["bbox"], "key": view["hideout"]["key"]}),
        dcc.Store(id=ids.OVERVIEW_VALUES),
        dcc.Store(id=ids.OVERVIEW_APPLIED),
        dcc.Store(id=ids.OVERVIEW_HEAT, data=view["heat"]),
        dcc.Store(id=ids.OVERVIEW_HEAT_DRAWN),
        dcc.Store(id=ids.OVERVIEW_SCREEN),
        dcc.Store(id=ids.OVERVIEW_PAINTED),
        dcc.Store(id=ids.OVERVIEW_KPIS_AT),
        dcc.Store(id=ids.OVERVIEW_UNITS_WATCH),
        dcc.Store(id=ids.OVERVIEW_MARKERS_WATCH),
        dcc.Store(id=ids.OVERVIEW_LIVE, data={"status": "connecting", "head": snap.head}),
        dcc.Store(
            id=ids.OVERVIEW_STREAM, data={"url": "/live/events", "head": snap.head, "build": build, "units": snap.units_version}
        ),
        dcc.Store(id=ids.OVERVIEW_UNITS_VERSION, data=snap.units_version),
        dcc.Store(id=ids.OVERVIEW_REFRESH, data={"head": snap.head}),
        dcc.Store(id=ids.OVERVIEW_CLOCK_CONFIG, data={"tz": tz, "lang": lang, "words": words}),
        dcc.Interval(id=ids.OVERVIEW_POLL, interval=POLL_MS),
        dcc.Interval(id=ids.OVERVIEW_TICK, interval=1000),
    ]
