"""The naive overview the benchmark compares against: every grid's GeoJSON in the Dash layout, SVG, one-second polling.

What the issue warns against, built on purpose: the whole simplified grid FeatureCollection goes
through the layout and, once a second, back through a dcc.Interval callback with every feature
restyled from fresh open-backlog counts (a rebuild, not a restyle); dash-leaflet draws it with
Leaflet's default SVG renderer (no preferCanvas). Each feature's style carries the class
`naive-h<feed head>`, so the benchmark can tell from the DOM which store state the map shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dash
import dash_leaflet as dl
from dash import Input, Output, dcc, html
from dash_extensions.javascript import Namespace

from data import schema, store
from data.geo import units as geo
from data.metrics.kpis import overview_kpis
from layers import boundaries, choropleth

TIMEZONE = "Asia/Shanghai"
KPIS = ("open_backlog", "new_today", "closed_today", "overdue", "near_due")
# Installed in the page's <head>: the style function dash-leaflet calls for every feature.
STYLE_SCRIPT = "<script>window.naive = {style: function (feature) { return feature.properties.style; }};</script>"
INDEX = """<!DOCTYPE html>
<html>
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        STYLE_SCRIPT
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>
""".replace("STYLE_SCRIPT", STYLE_SCRIPT)


def styled_grids(conn, grids: dict) -> tuple[dict, int]:
    """(the grid FeatureCollection with each feature's style from the open backlog now, feed head)."""
    head = store.feed_head(conn)
    values = choropleth.unit_values(conn, schema.GRID, "open", datetime.now(UTC))
    breaks = choropleth.nice_breaks(values.values())
    colours = choropleth.colours_for("open", breaks)
    features = []
    for feature in grids["features"]:
        style = {
            "fillColor": choropleth.colour_of(values.get(feature["id"]), breaks, colours),
            "fillOpacity": 0.7,
            "color": "#555",
            "weight": 0.5,
            "className": f"naive-h{head}",
        }
        features.append({**feature, "properties": {**feature["properties"], "style": style}})
    return {"type": "FeatureCollection", "features": features}, head


def kpi_cards(conn) -> list:
    """The KPI figures as plain text; the open backlog card has the id the benchmark reads."""
    kpis = overview_kpis(conn, None, datetime.now(UTC), TIMEZONE)
    return [
        html.Div(f"{name}: {kpis[name]['value']}", id="naive-kpi-open" if name == "open_backlog" else f"naive-kpi-{name}")
        for name in KPIS
    ]


def create_naive_app(engine, zoom: float = 10, refresh_ms: int = 1000) -> dash.Dash:
    """The naive overview on `engine`, centred on the city at `zoom`: a Dash app whose Flask server can be served like the real one."""
    with store.reading(engine) as conn:
        grids = geo.simplified_geojson(conn, schema.GRID)
        west, south, east, north = boundaries.extent(conn, schema.DISTRICT)
    app = dash.Dash(__name__, title="naive overview", assets_folder="naive-assets-none", index_string=INDEX)

    def layout():
        with store.reading(engine) as conn:
            data, _ = styled_grids(conn, grids)
            cards = kpi_cards(conn)
        return html.Div(
            [
                html.Div(cards, id="naive-kpis"),
                dl.Map(
                    dl.GeoJSON(id="naive-grids", data=data, style=Namespace("naive")("style")),
                    id="naive-map",
                    center=[(south + north) / 2, (west + east) / 2],
                    zoom=zoom,  # not `bounds`: dash-leaflet 1.1's moveend handler then throws on every move
                    attributionControl=False,
                    style={"width": "100%", "height": "80vh"},
                ),
                dcc.Interval(id="naive-tick", interval=refresh_ms),
            ]
        )

    app.layout = layout

    @app.callback(Output("naive-grids", "data"), Output("naive-kpis", "children"), Input("naive-tick", "n_intervals"))
    def refresh(_ticks):
        with store.reading(engine) as conn:
            data, _ = styled_grids(conn, grids)
            return data, kpi_cards(conn)

    return app
