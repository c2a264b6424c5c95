"""KPI cards: a value and its change against the same time yesterday, coloured by whether the change is good."""

from __future__ import annotations

from dash import html

from dashboard import ids
from dashboard.i18n import duration, t

# (card key, metrics.overview_kpis key, kind, which way is good)
CARDS = (
    ("open", "open_backlog", "count", "down"),
    ("new_today", "new_today", "count", None),
    ("closed_today", "closed_today", "count", "up"),
    ("overdue", "overdue", "count", "down"),
    ("near_due", "near_due", "count", "down"),
    ("on_time_rate", "on_time_rate", "rate", "up"),
    ("median_ack", "median_ack_s", "seconds", "down"),
    ("median_handle", "median_handle_s", "seconds", "down"),
    ("satisfaction", "satisfaction_rate", "rate", "up"),
    ("unlocated", "unlocated_open", "count", "down"),
)


def format_value(value, kind: str, lang: str) -> str:
    """A KPI value as people read it: 1,234 / 92.5% / 42 min; '—' when there is nothing to measure."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "seconds":
        return duration(value / 60, lang)
    return f"{int(value):,}"


def format_delta(delta, kind: str, lang: str) -> str:
    """The change against yesterday: '▲ 12', '▼ 1.5 pt', '▲ 8 min'; '' when unknown; '=' when none."""
    if delta is None:
        return ""
    if abs(delta) < 1e-9:
        return "= " + t("kpi.no_change", lang)
    arrow = "▲" if delta > 0 else "▼"
    size = abs(delta)
    if kind == "rate":
        text = f"{size * 100:.1f} pt"
    elif kind == "seconds":
        text = duration(size / 60, lang)
    else:
        text = f"{int(size):,}"
    return f"{arrow} {text} {t('kpi.vs_yesterday', lang)}"


def tone(delta, good: str | None) -> str:
    """'good', 'bad' or 'neutral' for a change, given which way is good for this KPI."""
    if delta is None or abs(delta) < 1e-9 or good is None:
        return "neutral"
    return "good" if (delta > 0) == (good == "up") else "bad"


def kpi_cards(kpis: dict, lang: str) -> list:
    """One card per KPI in CARDS order; `kpis` is metrics.overview_kpis' {key: {value, yesterday, delta}}."""
    cards = []
    for key, source, kind, good in CARDS:
        figure = kpis.get(source) or {}
        value, delta = figure.get("value"), figure.get("delta")
        cards.append(
            html.Div(
                id={"type": ids.OVERVIEW_KPI, "index": key},
                className=f"cb-kpi cb-kpi-{key} cb-tone-{tone(delta, good)}",
                **{"data-value": "" if value is None else repr(value)},
                children=[
                    html.Div(t(f"kpi.{key}", lang), className="cb-kpi-label"),
                    html.Div(format_value(value, kind, lang), className="cb-kpi-value"),
                    html.Div(format_delta(delta, kind, lang), className="cb-kpi-delta"),
                ],
            )
        )
    return cards
