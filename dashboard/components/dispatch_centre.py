"""The dispatch desk's inbox of departments' answers (网格吹哨、部门报到): a header badge and the list it opens.

Built from data.incidents.notify.centre_inbox / centre_unread: "City management returned #123 Exposed
garbage: not ours", newest first, unread ones marked; a click opens the incident in the panel.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dash import html

from dashboard import ids
from dashboard.components.dispatch_queue import tf
from dashboard.i18n import t

LIST_LIMIT = 30


def badge_children(unread: dict, lang: str) -> list:
    """The badge's text and count (the count hidden when nothing is unread)."""
    total = unread.get("total", 0)
    count = html.Span(
        str(total), className="cb-centre-count", hidden=not total, title=tf("dispatch.centre.unread", lang, count=total)
    )
    return [html.Span(t("dispatch.centre", lang)), count]


def badge_class(unread: dict) -> str:
    returned = unread.get("return", 0)
    return "cb-centre-badge" + (" cb-centre-unread" if unread.get("total") else "") + (" cb-centre-returned" if returned else "")


def _who(row: dict, lang: str) -> str:
    zh = lang == "zh"
    for prefix in ("department", "worker"):
        named = row.get(f"{prefix}_zh" if zh else f"{prefix}_en") or row.get(f"{prefix}_en" if zh else f"{prefix}_zh")
        if named:
            return named
    return row["actor"]


def list_children(rows: list[dict], lang: str, tz: str) -> list:
    """One line per answer: when, who did what to which incident, and the reason or note given."""
    if not rows:
        return [html.P(t("dispatch.centre.empty", lang), className="cb-muted")]
    zone = ZoneInfo(tz)
    items = []
    for row in rows:
        category = row.get("category_zh" if lang == "zh" else "category_en") or ""
        line = tf(f"dispatch.centre.{row['action']}", lang, who=_who(row, lang), id=row["incident_id"], category=category)
        at: datetime = row["created_at"]
        items.append(
            html.Li(
                html.Button(
                    [
                        html.Span(f"{at.astimezone(zone):%m-%d %H:%M}", className="cb-centre-at"),
                        html.Span(line, className="cb-centre-line"),
                        html.Span(row["note"], className="cb-centre-note") if row.get("note") else None,
                    ],
                    # One incident may have several answers listed: the id must stay unique on the page.
                    id={"type": ids.DISPATCH_CENTRE_ITEM, "index": f"{row['id']}:{row['incident_id']}"},
                    n_clicks=0,
                    className="cb-centre-open",
                ),
                className=f"cb-centre-item cb-centre-{row['action']}" + ("" if row.get("read_at") else " cb-centre-new"),
            )
        )
    return [html.Ul(items, className="cb-centre-items")]


def centre_section(lang: str, children: list | None = None) -> html.Section:
    """The (initially hidden) list with its "mark all read" button; callbacks keep it current."""
    return html.Section(
        id=ids.DISPATCH_CENTRE,
        className="cb-centre",
        hidden=True,
        children=[
            html.Div(
                className="cb-centre-head",
                children=[
                    html.H3(t("dispatch.centre.title", lang), className="cb-panel-sub"),
                    html.Button(
                        t("dispatch.centre.read_all", lang), id=ids.DISPATCH_CENTRE_READ, n_clicks=0, className="cb-send"
                    ),
                ],
            ),
            html.Div(children or [], id=ids.DISPATCH_CENTRE_LIST),
        ],
    )
