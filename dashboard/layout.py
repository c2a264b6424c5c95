"""The page shell: header, and the overview placeholder until the overview issue lands."""

from __future__ import annotations

from dash import html

from data import store


def build_layout(deps):
    """The layout as a function so every page load reads fresh counts."""

    def layout():
        with store.reading(deps.engine) as conn:
            counts = store.counts(conn)
        return html.Div(
            className="cb-shell",
            children=[
                html.Header([html.H1("CityBrain Command · 城市大脑指挥中心")], className="cb-header"),
                html.Div(
                    id="overview-counts",
                    className="cb-counts",
                    children=[
                        html.Div([html.Span("Grids 网格"), html.Strong(f"{counts['grids']:,}")]),
                        html.Div([html.Span("Incidents 事件"), html.Strong(f"{counts['incidents']:,}")]),
                        html.Div([html.Span("Open backlog 待办"), html.Strong(f"{counts['open_incidents']:,}")]),
                    ],
                ),
            ],
        )

    return layout
