"""The overview's side panel: KPI cards, department board, 24-hour trend and breakdown, read from data/metrics/.

Each of the four reads is cached on its own per (store, feed head, minute, scope), shared by
every screen, and the four run side by side on their own connections, so a refresh costs the
slowest read, not the sum. The first paint carries the KPI cards only; the board and the
charts come with the refresh the page asks for once its map has drawn.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from dash import dcc, html
from flask import copy_current_request_context, current_app, has_request_context

from dashboard import ids
from dashboard.cache import cache
from dashboard.components import board, charts, kpis
from dashboard.i18n import name, t
from dashboard.pages.overview_model import single_flight
from data import store
from data.metrics import working_set as kpi_set
from data.metrics.overview_charts import breakdown, trend_24h
from layers.scope import Scope

WALL_BOARD_ROWS = 10  # the wall shows the worst ten; the desk scrolls through every department
LEVEL_KEYS = {1: "level.district", 2: "level.street", 3: "level.community", 4: "level.grid"}
READS = {
    # The KPIs and the board from the in-memory working set (data/metrics/working_set.py): the same figures as
    # data/metrics/kpis.py's and board.py's statements, a few ms instead of a scan per change at a million incidents.
    "kpis": kpi_set.overview_kpis,
    "board": kpi_set.department_board,
    "trend": trend_24h,
    "breakdown": breakdown,
}
_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="citybrain-metrics")


def metrics_scope(scope: Scope):
    """data.metrics' scope: None for the city, (level, unit id) for a unit."""
    return None if scope.is_city else (scope.level, scope.id)


@cache.memoize(timeout=600)
def _read(what: str, db_key: str, head: int, minute: datetime, scope_key, tz: str):
    engine = current_app.extensions["citybrain"].engine
    with store.reading(engine) as conn:
        return READS[what](conn, scope_key, datetime.now(minute.tzinfo), tz)


def _cached(what: str, key: tuple):
    return single_flight((what, *key), lambda: _read(what, *key))


def figures(engine, scope: Scope, snap, tz: str, parts=tuple(READS)) -> dict:
    """The metrics of a scope at the store's head: {part: result} for each of `parts`, read in parallel."""
    minute = snap.now.replace(second=0) + timedelta(minutes=1)
    key = (engine.url.render_as_string(hide_password=True), snap.head, minute, metrics_scope(scope), tz)
    if len(parts) == 1 or not has_request_context():
        return {part: _cached(part, key) for part in parts}
    # Each worker needs the app (for the engine and the cache): hand it the current request's context.
    futures = {part: _pool.submit(copy_current_request_context(_cached), part, key) for part in parts}
    return {part: future.result() for part, future in futures.items()}


def scope_title(scope: Scope, lang: str) -> str:
    if scope.is_city:
        return t("crumb.city", lang)
    return f"{t(LEVEL_KEYS.get(scope.level, 'level.grid'), lang)} · {name({'name_en': scope.name_en, 'name_zh': scope.name_zh}, lang)}"


def read(engine, scope: Scope, snap, lang: str, tz: str, wall: bool, scale: float = 1.0, parts=tuple(READS)) -> dict:
    """The panel's `parts` (all by default) for a scope, as component children and figures, with its title."""
    found = figures(engine, scope, snap, tz, parts=tuple(parts))
    out = {"title": scope_title(scope, lang)}
    if "kpis" in found:
        out["kpis"] = kpis.kpi_cards(found["kpis"], lang)
    if "board" in found:
        out["board"] = board.department_board(found["board"], lang, limit=WALL_BOARD_ROWS if wall else None)
    if "trend" in found:
        out["trend"] = charts.trend_figure(found["trend"], lang, wall, scale)
    if "breakdown" in found:
        out["breakdown"] = charts.breakdown_figure(found["breakdown"], lang, wall, scale)
        out["sectors"] = charts.sector_totals(found["breakdown"], lang)
    return out


def graph(graph_id: str, figure, wall: bool) -> dcc.Graph:
    """A chart as shown on the overview (no mode bar; static on the wall, where nobody hovers)."""
    return dcc.Graph(
        id=graph_id,
        figure=figure,
        config={"displayModeBar": False, "staticPlot": wall, "responsive": True},
        className="cb-chart",
        style={"height": "100%", "width": "100%"},
    )


def insights_panel(engine, scope: Scope, snap, lang: str, tz: str, wall: bool, alerts=None) -> html.Aside:
    """The side panel for a first paint: the KPI cards filled in, the board and the charts to follow.

    The board is the slowest read and plotly.js is megabytes of script to compile: waiting for
    either would hold the map back. They arrive with the refresh the page asks for once its map
    has drawn (citybrain.js sets overview-painted). `alerts` is the early-warning panel, under the KPIs.
    """
    found = figures(engine, scope, snap, tz, parts=("kpis",))
    return html.Aside(
        className="cb-side",
        children=[
            html.H2(scope_title(scope, lang), id=ids.OVERVIEW_SCOPE_TITLE, className="cb-scope-title"),
            html.Div(kpis.kpi_cards(found["kpis"], lang), id=ids.OVERVIEW_KPIS, className="cb-kpis"),
            *([alerts] if alerts is not None else []),
            html.Section(
                [html.H2(t("board.title", lang), className="cb-panel-title")], id=ids.OVERVIEW_BOARD, className="cb-board-panel"
            ),
            html.Section(
                [
                    html.H2(t("trend.title", lang), className="cb-panel-title"),
                    html.Div(id=ids.OVERVIEW_TREND_SLOT, className="cb-chart-slot"),
                ],
                className="cb-chart-panel cb-trend",
            ),
            html.Section(
                [
                    html.H2(t("breakdown.title", lang), className="cb-panel-title"),
                    html.Div(id=ids.OVERVIEW_SECTORS, className="cb-sectors"),
                    html.Div(id=ids.OVERVIEW_BREAKDOWN_SLOT, className="cb-chart-slot"),
                ],
                className="cb-chart-panel cb-breakdown",
            ),
        ],
    )
