"""The tables of /trends as (columns, rows) from data.trends.review(): one source for the page, CSV, Excel and the brief."""

from __future__ import annotations

from dash import html

from dashboard.i18n import name, t

RATE_KEYS = ("response_rate", "resolution_rate", "satisfaction_rate", "on_time_rate")
TIME_KEYS = ("median_ack_s", "p90_ack_s", "median_handle_s", "p90_handle_s")
FIGURE_KEYS = ("received", "closed", "backlog", *RATE_KEYS, *TIME_KEYS)
TABLES = ("series", "units", "categories", "rising", "league", "heat", "longest_open", "most_reopened", "escalated")
CASE_KEYS = ("id", "category", "state", "reported_at", "open_days", "reopen_count", "escalation_level")


def _value(key: str, value):
    """A cell as exported: rates as fractions to 4 places, times in minutes to 1 place, instants in ISO."""
    if value is None:
        return None
    if key in RATE_KEYS or key.endswith("_share"):
        return round(value, 4)
    if key in TIME_KEYS:
        return round(value / 60, 1)
    if hasattr(value, "isoformat"):
        return value.isoformat(timespec="minutes")
    return value


def column_label(key: str, lang: str) -> str:
    return t(f"trends.col.{key}", lang)


def table(review: dict, which: str, lang: str) -> tuple[list[str], list[list]]:
    """(column keys, rows of values) of one table of the review; ValueError for an unknown table."""
    if which == "series":
        keys = ["start", *FIGURE_KEYS]
        tz = review["period"]["tz"]
        rows = [[_value(k, b[k].astimezone(_zone(tz)) if k == "start" else b[k]) for k in keys] for b in review["series"]]
        return keys, rows
    if which == "units":
        keys = ["code", "name", *FIGURE_KEYS]
        return keys, [[u["code"], name(u, lang), *(_value(k, u[k]) for k in FIGURE_KEYS)] for u in review["units"]]
    if which in ("categories", "rising"):
        keys = ["code", "name", "sector", "received", "previous", "change"]
        return keys, [[c["code"], name(c, lang), c["sector"], c["received"], c["previous"], c["change"]] for c in review[which]]
    if which == "league":
        keys = [
            "rank",
            "name",
            "volume",
            "response_rate",
            "on_time_rate",
            "resolution_rate",
            "satisfaction_rate",
            "median_ack_s",
            "median_handle_s",
            "nobody_came",
            "nobody_came_share",
            "no_effect",
            "no_effect_share",
            "card",
        ]
        rows = [[name(d, lang) if k == "name" else _value(k, d[k]) for k in keys] for d in review["league"]]
        return keys, rows
    if which == "heat":
        keys = ["weekday", *(f"{h:02d}" for h in range(24))]
        return keys, [[t(f"trends.weekday.{d}", lang), *review["heat"][d]] for d in range(7)]
    if which in ("longest_open", "most_reopened", "escalated"):
        tz = review["period"]["tz"]
        rows = [
            [_value(k, c[k].astimezone(_zone(tz)) if k == "reported_at" else c[k]) for k in CASE_KEYS]
            for c in review["hard_cases"][which]
        ]
        return list(CASE_KEYS), rows
    raise ValueError(f"unknown table {which!r}; use one of {', '.join(TABLES)}")


def _zone(tz: str):
    from zoneinfo import ZoneInfo

    return ZoneInfo(tz)


def _display(key: str, value, lang: str) -> str:
    if value is None:
        return "—"
    if key in RATE_KEYS or key.endswith("_share"):
        return f"{value * 100:.1f}%"
    if key == "card":
        return t(f"trends.card.{value}", lang)
    return str(value)


def html_table(
    review: dict, which: str, lang: str, table_id: str | None = None, limit: int | None = None, links: list[str] | None = None
) -> html.Table:
    """The table as HTML: rates as percentages, cards as words, times in minutes; `links[i]` makes row i's name a link."""
    keys, rows = table(review, which, lang)
    body = []
    for i, row in enumerate(rows[:limit]):
        cells = [
            html.Td(
                html.A(_display(k, v, lang), href=links[i]) if links and k == "name" and i < len(links) else _display(k, v, lang)
            )
            for k, v in zip(keys, row, strict=True)
        ]
        card = dict(zip(keys, row, strict=True)).get("card")
        body.append(html.Tr(cells, className=f"cb-card-{card}" if card else None))
    kwargs = {"id": table_id} if table_id else {}
    return html.Table(
        [html.Thead(html.Tr([html.Th(column_label(k, lang)) for k in keys])), html.Tbody(body)],
        className="cb-board cb-trends-table",
        **kwargs,
    )
