"""Plotly figures of /trends: volumes and backlog, the rates, times, sectors, rising categories, units and the heat calendar."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from dashboard.components.charts import SECTOR_COLOURS, _layout
from dashboard.i18n import name, t

RATE_COLOURS = {
    "response_rate": "#1f77b4",
    "resolution_rate": "#2ca02c",
    "satisfaction_rate": "#ff7f0e",
    "on_time_rate": "#9467bd",
}


def _x(review: dict) -> list[str]:
    zone = ZoneInfo(review["period"]["tz"])
    return [f"{b['start'].astimezone(zone):%Y-%m-%d}" for b in review["series"]]


def volume_figure(review: dict, lang: str) -> go.Figure:
    """Received against closed per bucket (bars) and the open backlog at each bucket's end (line)."""
    s, x = review["series"], _x(review)
    return go.Figure(
        [
            go.Bar(x=x, y=[b["received"] for b in s], name=t("trends.col.received", lang), marker_color="#fd8d3c"),
            go.Bar(x=x, y=[b["closed"] for b in s], name=t("trends.col.closed", lang), marker_color="#31a354"),
            go.Scatter(x=x, y=[b["backlog"] for b in s], name=t("trends.col.backlog", lang), mode="lines+markers", yaxis="y2"),
        ],
        layout=_layout(False, barmode="group", yaxis2={"overlaying": "y", "side": "right", "rangemode": "tozero"}),
    )


def rates_figure(review: dict, lang: str) -> go.Figure:
    """The three rates and the on-time rate per bucket, in percent."""
    s, x = review["series"], _x(review)
    traces = [
        go.Scatter(
            x=x,
            y=[None if b[k] is None else round(b[k] * 100, 1) for b in s],
            name=t(f"trends.col.{k}", lang),
            mode="lines+markers",
            line={"color": colour},
        )
        for k, colour in RATE_COLOURS.items()
    ]
    return go.Figure(traces, layout=_layout(False, yaxis={"range": [0, 105], "ticksuffix": "%"}))


def times_figure(review: dict, lang: str) -> go.Figure:
    """Median and p90 acknowledge and handling times per bucket, in hours."""
    s, x = review["series"], _x(review)
    keys = ("median_ack_s", "p90_ack_s", "median_handle_s", "p90_handle_s")
    traces = [
        go.Scatter(
            x=x,
            y=[None if b[k] is None else round(b[k] / 3600, 2) for b in s],
            name=t(f"trends.col.{k}", lang),
            mode="lines+markers",
            line={"dash": "dot" if k.startswith("p90") else "solid"},
        )
        for k in keys
    ]
    return go.Figure(traces, layout=_layout(False, yaxis={"ticksuffix": " h", "rangemode": "tozero"}))


def sectors_figure(review: dict, lang: str) -> go.Figure:
    """Received per bucket, stacked by sector (四板块)."""
    zone = ZoneInfo(review["period"]["tz"])
    traces = []
    for sector, colour in SECTOR_COLOURS.items():
        rows = [r for r in review["sectors"] if r["sector"] == sector]
        traces.append(
            go.Bar(
                x=[f"{r['start'].astimezone(zone):%Y-%m-%d}" for r in rows],
                y=[r["received"] for r in rows],
                name=t(f"sector.{sector}", lang),
                marker_color=colour,
            )
        )
    return go.Figure(traces, layout=_layout(False, barmode="stack"))


def rising_figure(review: dict, lang: str) -> go.Figure:
    """The categories rising fastest against the previous period (change in received)."""
    rows = list(reversed(review["rising"]))
    return go.Figure(
        go.Bar(
            y=[name(r, lang) for r in rows],
            x=[r["change"] for r in rows],
            orientation="h",
            text=[f"+{r['change']} ({r['previous']}→{r['received']})" for r in rows],
            marker_color="#e6550d",
        ),
        layout=_layout(False),
    )


def units_figure(review: dict, lang: str, rate: str = "on_time_rate") -> go.Figure:
    """Units one level below the scope ranked by the chosen rate, with their received counts."""
    rows = sorted(review["units"], key=lambda u: (u[rate] is None, u[rate] or 0))
    return go.Figure(
        go.Bar(
            y=[name(u, lang) for u in rows],
            x=[None if u[rate] is None else round(u[rate] * 100, 1) for u in rows],
            orientation="h",
            text=[f"{u['received']}" for u in rows],
            marker_color="#3182bd",
        ),
        layout=_layout(False, xaxis={"range": [0, 105], "ticksuffix": "%"}),
    )


def heat_figure(review: dict, lang: str) -> go.Figure:
    """When incidents arrive: local weekday × hour."""
    return go.Figure(
        go.Heatmap(
            z=review["heat"],
            x=[f"{h:02d}" for h in range(24)],
            y=[t(f"trends.weekday.{d}", lang) for d in range(7)],
            colorscale="YlOrRd",
        ),
        layout=_layout(False, yaxis={"autorange": "reversed"}),
    )


CHARTS = {
    "volume": volume_figure,
    "rates": rates_figure,
    "times": times_figure,
    "sectors": sectors_figure,
    "rising": rising_figure,
    "units": units_figure,
    "heat": heat_figure,
}
