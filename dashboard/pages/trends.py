"""The leaders' review (`/trends`, 趋势研判): period, scope and granularity controls over charts and tables.

The URL carries the choice: `?period=7|30|90|365|custom&from=YYYY-MM-DD&to=YYYY-MM-DD&scope=district:12&gran=day|week|month`,
so a link, an export and the meeting brief all show the same review.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from dash import dcc, html
from flask import current_app, has_app_context
from sqlalchemy import select

from dashboard import jurisdiction
from dashboard.cache import cache
from dashboard.components import trends_charts, trends_map, trends_tables
from dashboard.components.header import brand, nav
from dashboard.i18n import name, t
from data import schema, store
from data.errors import ValidationError
from data.metrics import trends
from data.metrics.review_periods import GRANULARITIES, PERIOD_DAYS
from data.metrics.review_rules import CHILD_LEVEL
from data.parse import id_or_none, parse_id, shown
from data.times import utc_now
from layers import boundaries, rate_choropleth

# Component ids (kebab-case `trends-<thing>`).
PERIOD = "trends-period"
DATES = "trends-dates"
SCOPE = "trends-scope"
GRAN = "trends-gran"
RATE = "trends-rate"
CONTENT = "trends-content"
LANG = "trends-lang"
BRIEF_LINK = "trends-brief-link"
SCOPE_LEVELS = (schema.DISTRICT, schema.STREET, schema.COMMUNITY)
MAX_SCOPE_OPTIONS = 2000  # communities beyond this are reached through ?scope= (or the overview's map)


@dataclass(frozen=True)
class Choice:
    """What the user chose: period (days or None for custom, with first/last dates), scope and granularity."""

    days: int | None = 30
    first: date | None = None
    last: date | None = None
    scope: tuple[int, int] | None = None
    granularity: str = "day"

    def query(self, lang: str | None = None) -> str:
        """The query string that asks for this choice."""
        q = {"period": self.days or "custom", "gran": self.granularity}
        if self.days is None:
            q.update({"from": self.first.isoformat(), "to": self.last.isoformat()})
        if self.scope:
            q["scope"] = scope_value(self.scope)
        if lang:
            q["lang"] = lang
        return urlencode(q)


def _date(value) -> date | None:
    try:
        return date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        raise ValidationError(f"dates are written YYYY-MM-DD; got {value!r}") from None


def parse_scope(value) -> tuple[int, int] | None:
    """'district:12' -> (DISTRICT, 12); '' or 'city' -> None."""
    text = str(value or "").strip().lower()
    if text in ("", "city"):
        return None
    level, _, unit = text.partition(":")
    if level not in schema.LEVELS or schema.LEVELS[level] == schema.CITY:
        raise ValidationError(f"scope is written level:id, such as district:12; got {shown(value)}")
    return schema.LEVELS[level], parse_id(unit, "the scope's unit id")


def scope_value(scope: tuple[int, int] | None) -> str:
    """The picker's value of a scope: 'city' or 'district:12' (the inverse of parse_scope)."""
    return "city" if scope is None else f"{schema.LEVEL_NAMES[scope[0]]}:{scope[1]}"


def parse_choice(query: dict) -> Choice:
    """The Choice a query string (or the controls) asks for; ValidationError for nonsense."""
    period = str(query.get("period") or "30")
    gran = str(query.get("gran") or "day")
    if gran not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    scope = parse_scope(query.get("scope"))
    if period == "custom":
        first, last = _date(query.get("from")), _date(query.get("to"))
        if first is None or last is None or first > last:
            raise ValidationError("a custom period needs from and to dates, from not after to")
        return Choice(None, first, last, scope, gran)
    days = id_or_none(period, "period")
    if days not in PERIOD_DAYS:
        raise ValidationError(f"period must be one of {', '.join(map(str, PERIOD_DAYS))} or custom")
    return Choice(days, None, None, scope, gran)


@cache.memoize(timeout=600)
def _cached_review(db_key: str, head: int, minute: datetime, choice: Choice, tz: str) -> dict:
    # Computed as of the real now, not the minute in the key: an incident reported earlier in this
    # minute must count. The minute only bounds how long a window edge may lag; the head catches writes.
    engine = current_app.extensions["citybrain"].engine
    return _review(engine, choice, utc_now(), tz)


def _review(engine, choice: Choice, now: datetime, tz: str) -> dict:
    with store.reading(engine) as conn:
        return trends.review(conn, choice.scope, now, tz, choice.days, choice.granularity, choice.first, choice.last)


def read_review(engine, choice: Choice, tz: str, now: datetime | None = None) -> dict:
    """The review for a choice, cached per (store, change-feed head, minute) when inside the app."""
    if now is not None or not has_app_context() or "citybrain" not in current_app.extensions:
        return _review(engine, choice, now or utc_now(), tz)
    with store.reading(engine) as conn:
        head = store.feed_head(conn)
    minute = utc_now().replace(second=0, microsecond=0)
    return _cached_review(engine.url.render_as_string(hide_password=True), head, minute, choice, tz)


def scope_options(engine, lang: str) -> list[dict]:
    """The picker's choices: the city, then districts, streets and communities, each under its parent."""
    u = schema.units
    with store.reading(engine) as conn:
        mine = jurisdiction.jurisdiction_scope(conn)  # a user's unit: only it and what lies inside
        rows = [
            dict(r._mapping)
            for r in conn.execute(
                select(u.c.id, u.c.level, u.c.name_en, u.c.name_zh)
                .where(u.c.level.in_(SCOPE_LEVELS), *([] if mine is None else [mine.unit_filter(u)]))
                .order_by(u.c.level, u.c.code)
                .limit(MAX_SCOPE_OPTIONS)
            )
        ]
    options = [{"label": t("level.city", lang), "value": "city"}] if mine is None else []
    for r in rows:
        level = schema.LEVEL_NAMES[r["level"]]
        options.append({"label": f"{t(f'level.{level}', lang)} · {name(r, lang)}", "value": f"{level}:{r['id']}"})
    return options


def header(lang: str) -> html.Header:
    return html.Header(
        className="cb-top",
        children=[
            brand(t("trends.title", lang), lang),
            nav("/trends", lang),
        ],
    )


def controls(engine, choice: Choice, lang: str, today: date) -> html.Div:
    period = str(choice.days or "custom")
    first = choice.first or today - timedelta(days=29)
    last = choice.last or today
    return html.Div(
        className="cb-trends-controls",
        children=[
            html.Label(t("trends.period", lang), htmlFor=PERIOD),
            dcc.RadioItems(
                id=PERIOD,
                options=[{"label": t(f"trends.period.{p}", lang), "value": str(p)} for p in (*PERIOD_DAYS, "custom")],
                value=period,
                inline=True,
                className="cb-radio",
            ),
            dcc.DatePickerRange(id=DATES, start_date=first, end_date=last, display_format="YYYY-MM-DD", max_date_allowed=today),
            html.Label(t("trends.scope", lang), htmlFor=SCOPE),
            dcc.Dropdown(
                id=SCOPE,
                options=scope_options(engine, lang),
                value=scope_value(choice.scope),
                clearable=False,
                className="cb-trends-scope",
            ),
            html.Label(t("trends.granularity", lang), htmlFor=GRAN),
            dcc.RadioItems(
                id=GRAN,
                options=[{"label": t(f"trends.gran.{g}", lang), "value": g} for g in GRANULARITIES],
                value=choice.granularity,
                inline=True,
                className="cb-radio",
            ),
            html.Label(t("trends.rate", lang), htmlFor=RATE),
            dcc.Dropdown(
                id=RATE,
                options=[{"label": t(f"trends.col.{k}", lang), "value": k} for k in trends_tables.RATE_KEYS],
                value="on_time_rate",
                clearable=False,
                className="cb-trends-dropdown",
            ),
            html.A(t("trends.brief", lang), id=BRIEF_LINK, href=f"/trends/brief?{choice.query(lang)}", target="_blank"),
        ],
    )


def _headline(review: dict, lang: str) -> html.Div:
    now_f, before = review["totals"], review["previous"]
    cards = []
    for key in ("received", "closed", "backlog", *trends_tables.RATE_KEYS, "median_ack_s", "median_handle_s"):
        value, prev = now_f[key], before[key]
        shown = trends_tables._display(key, value, lang) if key not in trends_tables.TIME_KEYS else _minutes(value)
        was = trends_tables._display(key, prev, lang) if key not in trends_tables.TIME_KEYS else _minutes(prev)
        cards.append(
            html.Div(
                className="cb-kpi",
                id=f"trends-kpi-{key}",
                children=[
                    html.Div(t(f"trends.col.{key}", lang), className="cb-kpi-label"),
                    html.Div(shown, className="cb-kpi-value"),
                    html.Div(f"{t('trends.vs_previous', lang)}: {was}", className="cb-kpi-delta"),
                ],
            )
        )
    return html.Div(cards, className="cb-trends-kpis")


def _minutes(seconds) -> str:
    return "—" if seconds is None else f"{seconds / 60:.0f} min"


def _downloads(which: str, choice: Choice, lang: str) -> html.Span:
    q = choice.query(lang)
    return html.Span(
        className="cb-trends-downloads",
        children=[
            html.A("CSV", href=f"/trends/export/{which}.csv?{q}", id=f"trends-csv-{which}", download=f"{which}.csv"),
            " · ",
            html.A("Excel", href=f"/trends/export/{which}.xlsx?{q}", id=f"trends-xlsx-{which}", download=f"{which}.xlsx"),
        ],
    )


def _graph_config(key: str) -> dict:
    """Plotly's own PNG export (the modebar's camera), named after the chart, at twice the screen's resolution:
    it runs in the browser, so it needs no server-side renderer and works offline."""
    return {"displaylogo": False, "toImageButtonOptions": {"format": "png", "filename": f"trends-{key}", "scale": 2}}


def _chart(key: str, review: dict, lang: str, rate: str) -> html.Section:
    figure = trends_charts.units_figure(review, lang, rate) if key == "units" else trends_charts.CHARTS[key](review, lang)
    return html.Section(
        className="cb-chart-panel cb-trends-chart",
        children=[
            html.H3(t(f"trends.chart.{key}", lang)),
            dcc.Graph(id=f"trends-chart-{key}", figure=figure, config=_graph_config(key), style={"height": "300px"}),
        ],
    )


def _unit_links(review: dict, choice: Choice, lang: str) -> list[str]:
    """Drill down: each unit one level below opens the same review scoped to it (from the table or the map)."""
    return [f"/trends?{replace(choice, scope=(u['level'], u['unit_id'])).query(lang)}" for u in review["units"]]


def _rate_map(engine, review: dict, choice: Choice, lang: str, rate: str) -> html.Section:
    """The choropleth of the chosen rate over the units one level below the scope (geometry by cached URL)."""
    level = CHILD_LEVEL[choice.scope[0] if choice.scope else schema.CITY]
    u = schema.units
    with store.reading(engine) as conn:
        version = boundaries.units_version(conn)
        bbox = None
        if choice.scope:
            row = conn.execute(select(u.c.minx, u.c.miny, u.c.maxx, u.c.maxy).where(u.c.id == choice.scope[1])).first()
            bbox = tuple(row) if row is not None and None not in tuple(row) else None
        frame = bbox or boundaries.extent(conn, schema.DISTRICT)
    url = rate_choropleth.units_url(level, version, bbox)
    return trends_map.rate_map(review["units"], rate, lang, url, frame, _unit_links(review, choice, lang))


def _table(which: str, review: dict, choice: Choice, lang: str, limit: int | None = None) -> html.Section:
    links = None
    if which == "units":
        links = _unit_links(review, choice, lang)
    return html.Section(
        className="cb-board-panel cb-trends-table-panel",
        children=[
            html.H3([t(f"trends.table.{which}", lang), " ", _downloads(which, choice, lang)]),
            trends_tables.html_table(review, which, lang, table_id=f"trends-table-{which}", limit=limit, links=links),
        ],
    )


def content(engine, choice: Choice, lang: str, tz: str, rate: str = "on_time_rate", now: datetime | None = None):
    """Everything below the controls for a choice: headline figures, charts, tables (or the one-line error)."""
    try:
        review = read_review(engine, choice, tz, now)
    except ValidationError as error:
        return html.Div(t("trends.bad_input", lang).format(error=error), className="cb-error")
    return [
        _headline(review, lang),
        html.Div(
            className="cb-trends-grid",
            children=[
                *(_chart(key, review, lang, rate) for key in trends_charts.CHARTS),
                _rate_map(engine, review, choice, lang, rate),
            ],
        ),
        _table("league", review, choice, lang),
        _table("units", review, choice, lang),
        _table("series", review, choice, lang),
        _table("categories", review, choice, lang),
        html.H2(t("trends.hard_cases", lang)),
        html.Div(
            className="cb-trends-grid",
            children=[_table(w, review, choice, lang) for w in ("longest_open", "most_reopened", "escalated")],
        ),
    ]


def layout(deps, query: dict, lang: str) -> html.Div:
    settings, engine = deps.settings, deps.engine
    try:
        choice = jurisdiction.clamp_choice(engine, parse_choice(query))
        problem = None
    except ValidationError as error:
        choice, problem = Choice(), str(error)
    today = utc_now().astimezone(ZoneInfo(settings.timezone)).date()
    body = content(engine, choice, lang, settings.timezone)
    return html.Div(
        className="cb-trends",
        children=[
            header(lang),
            dcc.Store(id=LANG, data=lang),
            controls(engine, choice, lang, today),
            html.Div(problem or "", className="cb-error" if problem else None),
            dcc.Loading(html.Div(body, id=CONTENT, className="cb-trends-content")),
        ],
    )
