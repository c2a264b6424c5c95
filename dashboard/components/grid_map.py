"""The grid map widget: dash-leaflet on canvas, the choropleth, open-incident markers and the legend.

Geometry is never a prop here: the units layer gets a URL (/geo/units/...) and a `hideout`
of values; the markers layer gets a URL too. Styles come from window.citybrain functions.
"""

from __future__ import annotations

import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace

from dashboard import ids
from dashboard.i18n import t
from layers import choropleth, markers

ns = Namespace("citybrain")


def grid_map(
    view: dict, *, bounds, tile_url: str = "", tile_attribution: str = "", wall: bool = False, extra_layers=()
) -> dl.MapContainer:
    """The map for a first view (see pages.overview_model.map_view); callbacks change URLs and values later.

    `extra_layers` are drawn above the incidents (the early-warning rings)."""
    layers = []
    if tile_url:
        layers.append(dl.TileLayer(url=tile_url, attribution=tile_attribution or None, maxZoom=19))
    layers.append(
        dl.GeoJSON(
            id=ids.OVERVIEW_UNITS,
            url=view["units_url"],
            hideout=view["hideout"],
            style=ns(choropleth.STYLE_FUNCTION),
            onEachFeature=ns(choropleth.EACH_FUNCTION),
            bubblingMouseEvents=False,
        )
    )
    layers.append(
        dl.GeoJSON(
            id=ids.OVERVIEW_MARKERS,
            url=view["markers_url"],
            hideout=markers_hideout(view["markers_url"]),
            cluster=True,
            zoomToBoundsOnClick=True,
            superClusterOptions={"radius": 60, "maxZoom": 17},
            pointToLayer=ns(markers.POINT_FUNCTION),
            clusterToLayer=ns(markers.CLUSTER_FUNCTION),
            bubblingMouseEvents=False,
        )
    )
    layers.extend(extra_layers)
    # Bounds frame the first view; the centre is also given because viewport tracking compares against it.
    if bounds:
        frame = {
            "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
            "center": [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        }
    else:
        frame = {"center": [29.56, 106.55], "zoom": 10}
    return dl.MapContainer(
        id=ids.OVERVIEW_MAP,
        children=layers,
        **frame,
        preferCanvas=True,  # thousands of polygons: one canvas, not thousands of SVG nodes
        zoomSnap=0.5,  # half steps let a framed district or the city fill the screen
        minZoom=7,
        maxZoom=18,
        attributionControl=bool(tile_url),
        trackViewport=True,
        zoomControl=not wall,
        className="cb-map-canvas",
        style={"width": "100%", "height": "100%"},
    )


def markers_hideout(url: str | None) -> dict:
    """The markers layer's hideout: its URL as the key citybrain.js checks the drawn layer against."""
    return {"key": url}


def legend(metric: str, breaks: list[int], lang: str) -> list:
    """The legend's children: the metric's name, then a swatch and range per colour class."""
    colours = choropleth.colours_for(metric, breaks)
    rows = [
        html.Div([html.Span(className="cb-swatch", style={"background": colour}), html.Span(label)], className="cb-legend-row")
        for label, colour in choropleth.legend_entries(breaks, colours)
    ]
    return [html.Div(t(f"metric.{metric}", lang), className="cb-legend-title"), *rows]
