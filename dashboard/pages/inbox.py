"""The inbox page (`/inbox`, 一键智达): a chosen department's notifications, newest first, unread ones marked; read-only.

`?department=<code>` picks the department; the list follows the change feed (callbacks/inbox.py).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from dash import dcc, html

from dashboard import jurisdiction
from dashboard.components.header import brand, nav
from dashboard.i18n import name, t
from data import store
from data.incidents import notify, queue
from data.incidents.api_store import department_ids

ROOT = "inbox-root"
DEPARTMENT = "inbox-department"
LIST = "inbox-list"
STREAM = "inbox-stream"  # {url, head}: where the clientside follower opens its EventSource
REFRESH = "inbox-refresh"  # {head}: bumped by the follower when the feed moved
FOLLOWING = "inbox-following"  # written by the follower once it opened the feed
LIVE_STATUS = "inbox-live-status"
LANG = "inbox-lang"
SHOWN = 100


def departments(engine) -> list[dict]:
    """The active departments a reader may pick (the desk's own list): id, code and names."""
    with store.reading(engine) as conn:
        choices = queue.filter_choices(conn)["departments"]
    own = jurisdiction.department()  # a department user reads its own inbox only
    return choices if own is None else [d for d in choices if d["id"] == own]


def read_inbox(engine, department_code: str | None) -> list[dict] | None:
    """The department's latest notifications (None when the code names no department)."""
    if not department_code:
        return None
    with store.reading(engine) as conn:
        department_id = department_ids(conn).get(department_code)
        own = jurisdiction.department()
        if department_id is None or (own is not None and department_id != own):
            return None
        rows = notify.inbox(conn, department_id=department_id, limit=SHOWN)
        if jurisdiction.unit() is not None:  # only incidents inside the reader's jurisdiction
            rows = [r for r in rows if jurisdiction.incident_visible(conn, r["incident_id"])]
        return rows


def inbox_list(rows: list[dict] | None, lang: str, tz: str) -> html.Div:
    """The list itself: one line per notification, unread ones marked and counted."""
    if rows is None:
        return html.Div(t("inbox.choose", lang), className="cb-inbox-empty")
    if not rows:
        return html.Div(t("inbox.empty", lang), className="cb-inbox-empty")
    zone = ZoneInfo(tz)
    unread = sum(r["read_at"] is None for r in rows)
    items = [
        html.Li(
            className="cb-inbox-item cb-inbox-unread" if r["read_at"] is None else "cb-inbox-item",
            children=[
                html.Span("●" if r["read_at"] is None else "", className="cb-inbox-mark", title=t("inbox.unread", lang)),
                html.Span(f"{r['created_at'].astimezone(zone):%Y-%m-%d %H:%M}", className="cb-inbox-time"),
                html.Span(t(f"inbox.{r['kind']}", lang), className="cb-inbox-kind"),
                html.A(f"#{r['incident_id']}", href=f"/dispatch?incident={r['incident_id']}", className="cb-inbox-incident"),
            ],
        )
        for r in rows
    ]
    return html.Div(
        [
            html.Div(t("inbox.unread_count", lang).format(count=unread), className="cb-inbox-count"),
            html.Ul(items, className="cb-inbox-items"),
        ]
    )


def layout(deps, query: dict, lang: str) -> html.Div:
    """The page for a first paint, the chosen department's list filled in."""
    engine, settings = deps.engine, deps.settings
    choices = departments(engine)
    chosen = query.get("department") or None
    if chosen not in {d["code"] for d in choices}:
        chosen = None
    if chosen is None and jurisdiction.department() is not None and choices:
        chosen = choices[0]["code"]  # a department user lands on its own inbox
    with store.reading(engine) as conn:
        head = store.feed_head(conn)
    return html.Div(
        id=ROOT,
        className="cb-inbox",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            html.Header(
                className="cb-top",
                children=[
                    brand(t("inbox.title", lang), lang),
                    nav("/inbox", lang),
                    html.Div(
                        className="cb-status",
                        children=[html.Span(t("live.connecting", lang), id=LIVE_STATUS, className="cb-live cb-live-connecting")],
                    ),
                ],
            ),
            html.Main(
                className="cb-inbox-body",
                children=[
                    html.Label(t("inbox.department", lang), htmlFor=DEPARTMENT),
                    dcc.Dropdown(
                        id=DEPARTMENT,
                        options=[{"label": name(d, lang), "value": d["code"]} for d in choices],
                        value=chosen,
                        clearable=False,
                    ),
                    html.Div(inbox_list(read_inbox(engine, chosen), lang, settings.timezone), id=LIST, role="status"),
                ],
            ),
            dcc.Store(
                id=STREAM,
                data={
                    "url": "/live/events",
                    "head": head,
                    "words": {k: t(f"live.{k}", lang) for k in ("live", "connecting", "stale")},
                },
            ),
            dcc.Store(id=REFRESH, data={"head": head}),
            dcc.Store(id=FOLLOWING),
            dcc.Store(id=LANG, data=lang),
        ],
    )
