"""The overview's header: title, breadcrumb of the scope, controls, live indicator, clock and 'data as of'."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import access, auth, ids
from dashboard.i18n import name, t
from dashboard.login_html import CSRF_FIELD
from layers import choropleth, heat

LEVEL_KEYS = {1: "level.district", 2: "level.street", 3: "level.community", 4: "level.grid"}


def breadcrumb(chain: list[dict] | tuple[dict, ...], lang: str) -> list:
    """'Whole city › District › Street …': every step but the last is a button back up to it."""
    steps = [{"id": 0, "label": t("crumb.city", lang)}] + [
        {"id": c["id"], "label": name(c, lang), "level": t(LEVEL_KEYS.get(c["level"], "level.grid"), lang)} for c in chain
    ]
    children: list = []
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if position:
            children.append(html.Span("›", className="cb-crumb-sep"))
        title = f"{step.get('level', '')} {step['label']}".strip()
        if last:
            children.append(html.Span(step["label"], className="cb-crumb cb-crumb-current", title=title))
        else:
            children.append(
                html.Button(
                    step["label"],
                    id={"type": ids.OVERVIEW_CRUMB, "index": step["id"]},
                    className="cb-crumb",
                    n_clicks=0,
                    title=title,
                )
            )
    return children


def as_of_text(moment: datetime, tz: str, lang: str) -> str:
    """'Data as of 2025-03-03 16:00:05' in the city's time zone."""
    local = moment.astimezone(ZoneInfo(tz))
    return f"{t('as_of', lang)} {local:%Y-%m-%d %H:%M:%S}"


def controls(state: dict, lang: str) -> html.Div:
    """Metric, heat window and language: clicks, nothing that needs hovering."""
    return html.Div(
        className="cb-controls",
        children=[
            html.Label(t("metric.label", lang), className="cb-control-label"),
            dcc.RadioItems(
                id=ids.OVERVIEW_METRIC,
                options=[{"label": t(f"metric.{m}", lang), "value": m} for m in choropleth.METRICS],
                value=state["metric"],
                inline=True,
                className="cb-radio",
            ),
            html.Label(t("heat.label", lang), className="cb-control-label"),
            dcc.RadioItems(
                id=ids.OVERVIEW_HEAT_WINDOW,
                options=[{"label": t("heat.off", lang), "value": "off"}]
                + [{"label": t(f"heat.{w}", lang), "value": w} for w in heat.WINDOWS],
                value=state["heat"],
                inline=True,
                className="cb-radio",
            ),
            html.Button(t("lang.switch", lang), id=ids.OVERVIEW_LANG_SWITCH, n_clicks=0, className="cb-lang"),
        ],
    )


NAV_PAGES = (
    ("/", "nav.overview"),
    ("/wall", "nav.wall"),
    ("/dispatch", "nav.dispatch"),
    ("/inbox", "nav.inbox"),
    ("/trends", "nav.trends"),
    ("/admin", "nav.admin"),  # shown to administrators only (access.may_open)
    ("/warnings", "nav.warnings"),
)


def nav(current: str, lang: str) -> html.Nav:
    """Links between the screens the signed-in user may open, the current one marked, and who is signed in."""
    who = access.current()
    links = [
        html.A(t(key, lang), href=path, className="cb-nav-link cb-nav-current" if path == current else "cb-nav-link")
        for path, key in NAV_PAGES
        if access.may_open(path)
    ]
    if who.is_authenticated:
        links.append(
            html.Span(
                [
                    html.Span(f"{who.display_name} · {t(f'auth.role.{who.role}', lang)}", className="cb-nav-user", id="nav-user"),
                    signout_button(lang),
                ],
                className="cb-nav-account",
            )
        )
    return html.Nav(className="cb-nav", children=links)


def signout_button(lang: str) -> html.Form:
    """Sign out as a POST with the session's CSRF token (a plain form, so it works before any script has run)."""
    return html.Form(
        action="/logout",
        method="post",
        className="cb-nav-signout-form",
        children=[
            dcc.Input(type="hidden", name=CSRF_FIELD, value=auth.csrf_token()),
            html.Button(t("auth.signout", lang), type="submit", className="cb-nav-link cb-nav-signout", id="nav-signout"),
        ],
    )


def brand(page_title: str, lang: str) -> html.Div:
    """The product's name and the page's, top left on every screen."""
    return html.Div(
        className="cb-brand",
        children=[html.Span(t("app.title", lang), className="cb-app-name"), html.Span(page_title, className="cb-page-name")],
    )


def header(state: dict, chain, lang: str, tz: str, as_of: datetime, wall: bool) -> html.Header:
    """The header of either variant (the wall shows the metric in the legend instead of the controls)."""
    title = t("wall.title" if wall else "overview.title", lang)
    return html.Header(
        className="cb-top",
        children=[
            brand(title, lang),
            html.Nav(breadcrumb(chain, lang), id=ids.OVERVIEW_BREADCRUMB, className="cb-breadcrumb"),
            # Nobody navigates a wall display: it gets no links.
            *([] if wall else [nav("/", lang)]),
            controls(state, lang),
            html.Div(
                className="cb-status",
                children=[
                    html.Span(t("live.connecting", lang), id=ids.OVERVIEW_LIVE_STATUS, className="cb-live cb-live-connecting"),
                    html.Span("", id=ids.OVERVIEW_CLOCK, className="cb-clock"),
                    html.Span(as_of_text(as_of, tz, lang), id=ids.OVERVIEW_AS_OF, className="cb-as-of"),
                ],
            ),
        ],
    )
