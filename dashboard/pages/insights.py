"""The overview's side panel: KPI cards, department board, 24-hour trend and breakdown, read from data/metrics.py."""

from __future__ import annotations

from datetime import datetime, timedelta

from dash import dcc, html

from dashboard import ids
from dashboard.cache import cache
from dashboard.components import board, charts, kpis
from dashboard.i18n import name, t
from data import metrics, store
from layers.scope import Scope

WALL_BOARD_ROWS = 10  # the wall shows the worst ten; the desk scrolls through every department
LEVEL_KEYS = {1: "level.district", 2: "level.street", 3: "level.community", 4: "level.grid"}


def metrics_scope(scope: Scope):
    """data.metrics' scope: None for the city, (level, unit id) for a unit."""
    return None if scope.is_city else (scope.level, scope.id)


@cache.memoize(timeout=600)
def _figures(db_key: str, head: int, minute: datetime, scope_key, tz: str) -> dict:
    from flask import current_app

    engine = current_app.extensions["citybrain"].engine
    now = datetime.now(minute.tzinfo)
    with store.reading(engine) as conn:
        return {
            "kpis": metrics.overview_kpis(conn, scope_key, now, tz),
            "board": metrics.department_board(conn, scope_key, now, tz),
            "trend": metrics.trend_24h(conn, scope_key, now, tz),
            "breakdown": metrics.breakdown(conn, scope_key, now, tz),
        }


def figures(engine, scope: Scope, snap, tz: str) -> dict:
    """The metrics of a scope at the store's head (shared by every screen until the head or the minute moves)."""
    minute = snap.now.replace(second=0) + timedelta(minutes=1)
    return _figures(engine.url.render_as_string(hide_password=True), snap.head, minute, metrics_scope(scope), tz)


def scope_title(scope: Scope, lang: str) -> str:
    if scope.is_city:
        return t("crumb.city", lang)
    return f"{t(LEVEL_KEYS.get(scope.level, 'level.grid'), lang)} · {name({'name_en': scope.name_en, 'name_zh': scope.name_zh}, lang)}"


def read(engine, scope: Scope, snap, lang: str, tz: str, wall: bool, scale: float = 1.0) -> dict:
    """Every part of the panel for a scope, as component children and figures."""
    found = figures(engine, scope, snap, tz)
    return {
        "kpis": kpis.kpi_cards(found["kpis"], lang),
        "board": board.department_board(found["board"], lang, limit=WALL_BOARD_ROWS if wall else None),
        "trend": charts.trend_figure(found["trend"], lang, wall, scale),
        "breakdown": charts.breakdown_figure(found["breakdown"], lang, wall, scale),
        "title": scope_title(scope, lang),
    }


def _graph(graph_id: str, figure, wall: bool) -> dcc.Graph:
    return dcc.Graph(
        id=graph_id,
        figure=figure,
        config={"displayModeBar": False, "staticPlot": wall, "responsive": True},
        className="cb-chart",
        style={"height": "100%", "width": "100%"},
    )


def insights_panel(engine, scope: Scope, snap, lang: str, tz: str, wall: bool) -> html.Aside:
    """The side panel for a first paint, filled with the figures of `scope`."""
    parts = read(engine, scope, snap, lang, tz, wall)
    return html.Aside(
        className="cb-side",
        children=[
            html.H2(parts["title"], id=ids.OVERVIEW_SCOPE_TITLE, className="cb-scope-title"),
            html.Div(parts["kpis"], id=ids.OVERVIEW_KPIS, className="cb-kpis"),
            html.Section(parts["board"], id=ids.OVERVIEW_BOARD, className="cb-board-panel"),
            html.Section(
                [html.H2(t("trend.title", lang), className="cb-panel-title"), _graph(ids.OVERVIEW_TREND, parts["trend"], wall)],
                className="cb-chart-panel cb-trend",
            ),
            html.Section(
                [
                    html.H2(t("breakdown.title", lang), className="cb-panel-title"),
                    _graph(ids.OVERVIEW_BREAKDOWN, parts["breakdown"], wall),
                ],
                className="cb-chart-panel cb-breakdown",
            ),
        ],
    )
