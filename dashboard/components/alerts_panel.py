"""The early-warning panel (预测预警) of the overview and the wall: the ranked alert list, its buttons and its map layer.

The wall gets the first few alerts in large type and no buttons; the desk gets the whole list
with acknowledge (确认), dismiss with a reason (忽略) and open a case (立案) on each alert.
Reads go through data.warnings (the engine's store); the callbacks live in callbacks/alerts.py.
"""

from __future__ import annotations

import secrets
from collections import Counter
from datetime import UTC, datetime

import dash_leaflet as dl
from dash import dcc, html
from dash_extensions.javascript import Namespace

from dashboard import access, ids, jurisdiction
from dashboard.i18n import name, t
from data import store
from layers import alerts as alert_layer
from layers.scope import Scope

ns = Namespace("citybrain")

SHOWN_STATUSES = ("open", "acknowledged")  # what the overview lists: still live conditions
WALL_ROWS = 2  # the wall shows two, large, side by side: four squeezed the department board off a 1080p wall
DESK_ROWS = 50
READ_LIMIT = 100
POLL_MS = 4000  # how often the browser asks /alerts/head whether any alert changed
LEVEL_KEYS = {1: "level.district", 2: "level.street", 3: "level.community", 4: "level.grid"}


def tf(key: str, lang: str, **values) -> str:
    return t(key, lang).format(**values)


# --- reading -------------------------------------------------------------------------------------


def read_alerts(engine, scope_key=None, statuses=SHOWN_STATUSES, kinds=None, limit: int = READ_LIMIT) -> list[dict]:
    """Alerts of a scope (None = city, else (level, unit id)), ranked by score (data.warnings.alerts.list_alerts)."""
    from data.warnings import alerts as warnings

    with store.reading(engine) as conn:
        return warnings.list_alerts(conn, scope=scope_key, statuses=statuses, kinds=kinds, limit=limit)


def visible_scope(engine, scope: Scope):
    """The alerts scope for the screen's scope, clamped to the user's jurisdiction: (level, unit id) or None (city).

    A screen scoped inside the jurisdiction keeps its scope; one scoped outside it (or the whole
    city, for a street's user) shows the jurisdiction instead (dashboard/jurisdiction.py).
    """
    wanted = None if scope.is_city else (scope.level, scope.id)
    with store.reading(engine) as conn:
        return jurisdiction.clamp_scope(conn, wanted)


def may_act() -> bool:
    """Whether this user may acknowledge, dismiss or open a case (the dispatchers' permission)."""
    return access.can(access.DISPATCH)


def read_head(engine) -> int:
    from data.warnings import alerts as warnings

    with store.reading(engine) as conn:
        return int(warnings.alerts_head(conn))


# --- words ---------------------------------------------------------------------------------------


def _prefixed(row: dict, prefix: str) -> dict:
    """{name_en, name_zh} of the alert's unit or category (list_alerts flattens them as unit_name_en, ...)."""
    return {"name_en": row.get(f"{prefix}_name_en"), "name_zh": row.get(f"{prefix}_name_zh")}


def place_text(row: dict, lang: str) -> str:
    """'Street · Jiefangbei' for a unit; '#123' for an incident-only alert (a deadline at risk); '—' otherwise."""
    names = _prefixed(row, "unit")
    if names["name_en"] or names["name_zh"]:
        level = row.get("unit_level")
        label = name(names, lang)
        return f"{t(LEVEL_KEYS[level], lang)} · {label}" if level in LEVEL_KEYS else label
    if row.get("incident_id"):
        return f"{t('card.title', lang)} #{row['incident_id']}"
    return "—"


def category_text(row: dict, lang: str) -> str:
    names = _prefixed(row, "category")
    return name(names, lang) if (names["name_en"] or names["name_zh"]) else ""


def reason_text(row: dict, lang: str) -> str:
    primary, fallback = ("reason_zh", "reason_en") if lang == "zh" else ("reason_en", "reason_zh")
    return row.get(primary) or row.get(fallback) or ""


def number(value) -> str:
    """Counts as integers, rates and expectations with one decimal ('3.2', '14'); a tiny expectation as '<0.1'
    (a surge where next to nothing was expected must not read "8 seen, 0 expected")."""
    if value is None:
        return "—"
    value = float(value)
    if 0 < value < 0.05:
        return "<0.1"
    return f"{value:.0f}" if value.is_integer() else f"{value:.1f}"


def numbers_text(row: dict, lang: str) -> str:
    """'14 seen, 3.2 expected'; for a deadline at risk '73% likely to miss · 3.5 h left' (the engine stores the
    chance of missing as observed and the hours left as expected); empty when the alert carries no numbers."""
    if row.get("observed") is None and row.get("expected") is None:
        return ""
    if row.get("kind") == "deadline" and row.get("observed") is not None and row.get("expected") is not None:
        return tf(
            "alerts.deadline_numbers", lang, chance=f"{float(row['observed']) * 100:.0f}", hours=f"{float(row['expected']):.1f}"
        )
    return tf("alerts.observed_expected", lang, observed=number(row.get("observed")), expected=number(row.get("expected")))


def _utc(moment) -> datetime | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def age_text(since, now: datetime, lang: str) -> str:
    """'just now', '12 min ago', '3 h ago', '2 d ago' since the alert was first seen."""
    since = _utc(since)
    if since is None:
        return ""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 1:
        return t("alerts.just_now", lang)
    if minutes < 60:
        amount = tf("alerts.minutes", lang, n=minutes)
    elif minutes < 48 * 60:
        amount = tf("alerts.hours", lang, n=minutes // 60)
    else:
        amount = tf("alerts.days", lang, n=minutes // (24 * 60))
    return tf("alerts.ago", lang, age=amount)


def kind_label(kind: str | None, lang: str) -> str:
    return f"{alert_layer.KIND_SYMBOL.get(kind, '!')} {t(f'alerts.kind.{kind}', lang)}"


# --- the list ------------------------------------------------------------------------------------


def _buttons(row: dict, lang: str) -> html.Div:
    alert_id = int(row["id"])
    buttons = []
    if row.get("status") == "open":
        buttons.append(
            html.Button(
                t("alerts.ack", lang), id={"type": ids.ALERTS_ACK, "index": alert_id}, n_clicks=0, className="cb-alert-btn"
            )
        )
    buttons += [
        html.Button(
            t("alerts.dismiss", lang), id={"type": ids.ALERTS_DISMISS, "index": alert_id}, n_clicks=0, className="cb-alert-btn"
        ),
        html.Button(
            t("alerts.case", lang),
            id={"type": ids.ALERTS_CASE, "index": alert_id},
            n_clicks=0,
            className="cb-alert-btn cb-alert-btn-primary",
        ),
    ]
    if row.get("incident_id"):  # a deadline at risk is about an incident already in the loop: open it on the desk
        buttons.append(
            html.A(
                tf("alerts.open_incident", lang, id=row["incident_id"]),
                href=f"/dispatch?incident={row['incident_id']}",
                className="cb-alert-incident-link",
            )
        )
    return html.Div(buttons, className="cb-alert-actions")


def alert_item(row: dict, rank: int, lang: str, now: datetime, wall: bool, actions: bool = True) -> html.Li:
    """One alert: rank and kind, place and category, the reason in words, the numbers, its age; buttons on the desk
    (for users who may act)."""
    kind, status = row.get("kind"), row.get("status")
    head_parts = [
        html.Span(str(rank), className="cb-alert-rank", style={"background": alert_layer.KIND_COLOUR.get(kind)}),
        html.Span(kind_label(kind, lang), className="cb-alert-kind"),
        html.Span(place_text(row, lang), className="cb-alert-place"),
    ]
    if status != "open":
        head_parts.append(html.Span(t(f"alerts.status.{status}", lang), className=f"cb-alert-status cb-alert-status-{status}"))
    # On the desk the head is a button: a click flies the map to the alert (when it has a place on the map).
    if not wall and alert_layer.on_map(row):
        head = html.Button(
            head_parts,
            id={"type": ids.ALERTS_FOCUS, "index": int(row["id"])},
            n_clicks=0,
            className="cb-alert-head cb-alert-focus",
            title=t("alerts.show", lang),
        )
    else:
        head = html.Div(head_parts, className="cb-alert-head")
    facts = html.Div(
        [
            html.Span(numbers_text(row, lang), className="cb-alert-numbers"),
            html.Span(category_text(row, lang), className="cb-alert-category"),
            html.Span(age_text(row.get("first_seen_at"), now, lang), className="cb-alert-age"),
        ],
        className="cb-alert-facts",
    )
    children = [head, html.P(reason_text(row, lang), className="cb-alert-reason"), facts]
    if actions and not wall:
        children.append(_buttons(row, lang))
    return html.Li(
        children,
        className=f"cb-alert cb-alert-{kind} cb-alert-is-{status}",
        style={"borderLeftColor": alert_layer.KIND_COLOUR.get(kind, alert_layer.FALLBACK_COLOUR)},
        **{"data-alert": str(row["id"])},
    )


def alerts_list(rows: list[dict], lang: str, now: datetime | None = None, wall: bool = False, actions: bool = True) -> list:
    """The list's children: the ranked alerts (the wall's first WALL_ROWS), and how many more there are."""
    now = now or datetime.now(UTC)
    if not rows:
        return [html.P(t("alerts.empty", lang), className="cb-alerts-empty")]
    if wall:
        rows = wall_order(rows)
    shown = rows[: WALL_ROWS if wall else DESK_ROWS]
    children: list = [
        html.Ol(
            [alert_item(row, rank, lang, now, wall, actions) for rank, row in enumerate(shown, start=1)],
            className="cb-alerts-list",
        )
    ]
    rest = rows[len(shown) :]
    if rest and wall:
        kinds = Counter(row.get("kind") for row in rest)
        parts = ", ".join(f"{n} × {t(f'alerts.kind.{kind}', lang)}" for kind, n in kinds.most_common())
        children.append(html.P(tf("alerts.more_kinds", lang, count=len(rest), kinds=parts), className="cb-alerts-more"))
    elif rest:
        children.append(html.P(tf("alerts.more", lang, count=len(rest)), className="cb-alerts-more"))
    return children


def wall_order(rows: list[dict]) -> list[dict]:
    """The wall's order: alerts about places (surges, hotspots, recurring problems) before single
    incidents' deadlines, each kept in rank order: a wall full of deadlines would hide a surge."""
    return sorted(rows, key=lambda row: row.get("kind") == "deadline")


def wall_rows(rows: list[dict]) -> list[dict]:
    """The alerts the wall shows (and rings on its map)."""
    return wall_order(rows)[:WALL_ROWS]


def count_text(rows: list[dict]) -> str:
    return str(len(rows)) if len(rows) < READ_LIMIT else f"{READ_LIMIT}+"


# --- the panel and the map layer -----------------------------------------------------------------


def _prompt(lang: str) -> html.Div:
    """The dismiss prompt: hidden until 忽略 is clicked; a reason is required."""
    return html.Div(
        id=ids.ALERTS_PROMPT,
        className="cb-prompt cb-alerts-prompt",
        hidden=True,
        children=[
            html.Label("", id=ids.ALERTS_PROMPT_LABEL, htmlFor=ids.ALERTS_REASON, className="cb-prompt-label"),
            dcc.Textarea(id=ids.ALERTS_REASON, value="", className="cb-reason-input", rows=2),
            html.Div(
                className="cb-prompt-buttons",
                children=[
                    html.Button(
                        t("alerts.prompt.ok", lang),
                        id=ids.ALERTS_PROMPT_OK,
                        n_clicks=0,
                        className="cb-alert-btn cb-alert-btn-primary",
                    ),
                    html.Button(
                        t("alerts.prompt.cancel", lang), id=ids.ALERTS_PROMPT_CANCEL, n_clicks=0, className="cb-alert-btn"
                    ),
                ],
            ),
        ],
    )


def panel(rows: list[dict], head: int, lang: str, wall: bool, actions: bool = True, now: datetime | None = None) -> html.Section:
    """The panel for a first paint (filled in), with the stores and the timer that keep it live."""
    title = html.H2(
        [
            t("alerts.title", lang),
            html.Span(count_text(rows), id=ids.ALERTS_COUNT, className="cb-alerts-count"),
            # Shown by warnings.js while /alerts/head cannot be reached: the list may be out of date.
            html.Span(t("alerts.stale", lang), id=ids.ALERTS_STALE, className="cb-alerts-stale", hidden=True),
        ],
        className="cb-panel-title cb-alerts-title",
    )
    desk_only = (
        []
        if wall
        else [
            html.Div(id=ids.ALERTS_MESSAGE, className="cb-message", role="status", **{"aria-live": "polite"}),
            _prompt(lang),
        ]
    )
    return html.Section(
        id=ids.ALERTS_PANEL,
        className="cb-alerts-panel",
        children=[
            title,
            *desk_only,
            html.Div(alerts_list(rows, lang, now, wall, actions), id=ids.ALERTS_LIST, className="cb-alerts-body"),
            # A new token per render: the poller starts over from this page's head after a language switch.
            dcc.Store(
                id=ids.ALERTS_WATCH,
                data={
                    "url": "/alerts/head",
                    "head": head,
                    "page": secrets.token_hex(4),
                    "target": ids.ALERTS_REFRESH,
                    "root": ids.ALERTS_PANEL,
                },
            ),
            dcc.Store(id=ids.ALERTS_REFRESH, data={"head": head}),
            dcc.Store(id=ids.ALERTS_POINTS, data=alert_layer.focus_points(rows)),
            dcc.Store(id=ids.ALERTS_PENDING),
            dcc.Store(id=ids.ALERTS_FOCUSED),
            dcc.Store(id=ids.ALERTS_POLLED),
            dcc.Interval(id=ids.ALERTS_POLL, interval=POLL_MS),
        ],
    )


def map_layer(rows: list[dict]) -> dl.GeoJSON:
    """The alerts on the map: a numbered, pulsing ring per alert (window.citybrain.alertPoint)."""
    return dl.GeoJSON(
        id=ids.ALERTS_LAYER,
        data=alert_layer.alert_features(rows),
        pointToLayer=ns(alert_layer.POINT_FUNCTION),
        bubblingMouseEvents=False,
    )
