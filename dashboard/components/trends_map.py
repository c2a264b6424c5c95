"""The leaders' review map: the units one level below the scope coloured by the chosen rate, a legend, click to drill in.

Geometry arrives by URL from the cached /geo/units route; only rates, tooltips and links travel in the
layer's `hideout` (layers/rate_choropleth.py). A click on a unit opens the review scoped to it: the same
link, and so the same URL, as the unit's name in the areas table.
"""

from __future__ import annotations

import dash_leaflet as dl
from dash import html
from dash_extensions.javascript import Namespace

from dashboard.i18n import name, t
from layers import rate_choropleth

ns = Namespace("citybrain")
MAP = "trends-map"
UNITS = "trends-map-units"
LEGEND = "trends-map-legend"


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def rate_map(units: list[dict], rate: str, lang: str, units_url: str, bounds, links: list[str]) -> html.Section:
    """The map panel for review["units"]; `links[i]` is where a click on units[i] leads."""
    link_of = {u["unit_id"]: links[i] for i, u in enumerate(units)}
    rate_name = t(f"trends.col.{rate}", lang)
    received = t("trends.col.received", lang)

    def label(u: dict) -> str:
        return f"{name(u, lang)} · {rate_name} {_percent(u[rate])} · {received} {u['received']}"

    hideout = rate_choropleth.hideout(units, rate, label, lambda u: link_of[u["unit_id"]])
    frame = {"center": [29.56, 106.55], "zoom": 9}
    if bounds:
        # The centre too: dash-leaflet compares against it when tracking the viewport.
        frame = {
            "bounds": [[bounds[1], bounds[0]], [bounds[3], bounds[2]]],
            "center": [(bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2],
        }
    legend = html.Div(
        id=LEGEND,
        className="cb-legend cb-trends-legend",
        children=[html.Div(rate_name, className="cb-legend-title")]
        + [
            html.Div(
                className="cb-legend-row",
                children=[html.Span(className="cb-swatch", style={"background": colour}), html.Span(text)],
            )
            for text, colour in rate_choropleth.legend_entries(t("trends.map.no_data", lang))
        ],
    )
    return html.Section(
        className="cb-chart-panel cb-trends-chart cb-trends-map-panel",
        children=[
            html.H3(t("trends.map.title", lang).format(rate=rate_name)),
            html.Div(
                className="cb-trends-map-wrap",
                children=[
                    dl.Map(
                        id=MAP,
                        children=[
                            dl.GeoJSON(
                                id=UNITS,
                                url=units_url,
                                hideout=hideout,
                                style=ns(rate_choropleth.STYLE_FUNCTION),
                                onEachFeature=ns(rate_choropleth.EACH_FUNCTION),
                                filter=ns(rate_choropleth.FILTER_FUNCTION),
                            )
                        ],
                        style={"height": "300px"},
                        attributionControl=False,
                        **frame,
                    ),
                    legend,
                ],
            ),
            html.P(t("trends.map.hint", lang), className="cb-trends-map-hint"),
        ],
    )
