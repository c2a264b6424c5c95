"""Plotly figures of the overview: the 24-hour trend and the breakdown by sector and category (values printed, no hovering needed).

Titles are HTML headings around the figures (so they follow the page's type scale).
"""

from __future__ import annotations

import plotly.graph_objects as go
from dash import html

from dashboard.i18n import name, t

SECTOR_COLOURS = {"party": "#d62728", "economy": "#ff7f0e", "livelihood": "#2ca02c", "safety": "#1f77b4"}
TOP_CATEGORIES = 8
# The wall's larger type fits fewer rows; every bar there keeps its label (none skipped by Plotly).
TOP_CATEGORIES_WALL = 6


def font_size(wall: bool, scale: float = 1.0) -> int:
    """Chart text size: the wall's follows the screen height (1.0 at 1080 px), like its CSS does."""
    return round((16 if wall else 12) * (scale if wall else 1.0))


def _layout(wall: bool, scale: float = 1.0, **extra) -> dict:
    ink = "#e8eef5" if wall else "#1b2733"
    grid = "rgba(200,215,230,0.15)" if wall else "rgba(20,40,60,0.12)"
    size = font_size(wall, scale)
    layout = {
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": ink, "size": size},
        "margin": {"l": 8, "r": 8, "t": round(size * 2.2), "b": 8},
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        "xaxis": {"gridcolor": grid, "automargin": True},
        "yaxis": {"gridcolor": grid, "automargin": True},
        "autosize": True,
    }
    layout.update(extra)
    return layout


def trend_figure(trend: list[dict], lang: str, wall: bool = False, scale: float = 1.0) -> go.Figure:
    """New and closed incidents per hour over the last 24 hours (metrics.trend_24h), in city time."""
    hours = [f"{row['start']:%H:00}" for row in trend]
    figure = go.Figure(
        [
            go.Bar(x=hours, y=[r["received"] for r in trend], name=t("trend.new", lang), marker_color="#fd8d3c"),
            go.Scatter(
                x=hours,
                y=[r["closed"] for r in trend],
                name=t("trend.closed", lang),
                mode="lines+markers",
                line={"color": "#41b6c4", "width": 4 if wall else 2},
            ),
        ]
    )
    figure.update_layout(**_layout(wall, scale))
    figure.update_xaxes(nticks=8)
    return figure


def breakdown_figure(data: dict, lang: str, wall: bool = False, scale: float = 1.0) -> go.Figure:
    """Open incidents of the busiest categories, one colour per sector (四板块)."""
    categories = [c for c in data.get("by_category", []) if c["open"]][: TOP_CATEGORIES_WALL if wall else TOP_CATEGORIES]
    categories.reverse()  # horizontal bars read top-down, busiest first
    bars = []
    for sector, colour in SECTOR_COLOURS.items():
        rows = [c for c in categories if c["sector"] == sector]
        bars.append(
            go.Bar(
                y=[name(c, lang) for c in rows],
                x=[c["open"] for c in rows],
                orientation="h",
                name=t(f"sector.{sector}", lang),
                marker_color=colour,
                text=[f"{c['open']:,}" for c in rows],
                textposition="auto",
                showlegend=False,  # sector_totals() names the colours, with every sector's total
            )
        )
    labels = [name(c, lang) for c in categories]
    figure = go.Figure(bars)
    figure.update_layout(
        **_layout(
            wall,
            scale,
            barmode="stack",
            yaxis={
                "categoryorder": "array",
                "categoryarray": labels,
                # Explicit ticks: Plotly would otherwise drop every other label when space is short.
                "tickmode": "array",
                "tickvals": labels,
                "automargin": True,
            },
        )
    )
    # No legend above (the sector chips name the colours), so no room kept for one; on the wall the bars
    # print their values, and the height an axis would take goes to the categories' names.
    figure.update_layout(margin_t=round(font_size(wall, scale) * 0.5))
    figure.update_xaxes(visible=not wall)
    return figure


def sector_totals(data: dict, lang: str) -> list:
    """One chip per sector (四板块), in its bar colour, with its open and new-today counts: the breakdown's key."""
    rows = {row["sector"]: row for row in data.get("by_sector", [])}
    chips = []
    for sector, colour in SECTOR_COLOURS.items():
        row = rows.get(sector, {"open": 0, "new_today": 0})
        chips.append(
            html.Span(
                [
                    html.Span(className="cb-swatch", style={"background": colour}),
                    html.Span(t(f"sector.{sector}", lang), className="cb-sector-name"),
                    html.Strong(f"{row['open']:,}", className="cb-sector-open"),
                    html.Span(f"+{row['new_today']:,}", className="cb-sector-new", title=t("kpi.new_today", lang)),
                ],
                className=f"cb-sector cb-sector-{sector}",
            )
        )
    return chips
