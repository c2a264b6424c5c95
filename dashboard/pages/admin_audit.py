"""The /admin page's two log tabs: the admin change log and the sign-in log, each over a range of days with a CSV download.

callbacks/admin_audit.py refreshes a tab's table and download link when its range or filter changes;
the links point at dashboard/audit_exports.py (administrators only), which writes every row of the range.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
from dash import dcc, html

from dashboard import audit_text  # noqa: F401  (registers the tabs' strings with i18n)
from dashboard.audit_exports import admin_log_rows, signin_rows
from dashboard.i18n import t
from data import store
from data.accounts import signins
from data.accounts.admin.audit import ENTITIES
from data.times import utc_now

LOG_TABS = ("audit", "signins")
SHOWN_ROWS = 500  # the table shows the newest of the range; the CSV holds all of it
DEFAULT_DAYS = 30
EXPORT_PATHS = {"audit": "/admin/export/admin-log.csv", "signins": "/admin/export/signins.csv"}
FILTER_ARGS = {"audit": "entity", "signins": "outcome"}


def admin_grid(component_id: str, data: list[dict], columns: list[dict], **options) -> dag.AgGrid:
    """A table of the administration page (every tab's, the logs' too): sortable, filterable, fitted to its width;
    `options` add to its grid options. An empty one shows a dash, not AG Grid's English "No Rows To Show"."""
    return dag.AgGrid(
        id=component_id,
        rowData=data,
        columnDefs=columns,
        defaultColDef={"sortable": True, "resizable": True, "filter": True, "minWidth": 80},
        dashGridOptions={
            "animateRows": False,
            "rowHeight": 32,
            "headerHeight": 34,
            "tooltipShowDelay": 300,
            "localeText": {"noRowsToShow": "—"},
            **options,
        },
        columnSize="responsiveSizeToFit",
        className="cb-admin-grid",
        style={"height": "24em", "width": "100%"},
    )


def since_id(tab: str) -> str:
    return f"admin-{tab}-since"


def until_id(tab: str) -> str:
    return f"admin-{tab}-until"


def filter_id(tab: str) -> str:
    return f"admin-{tab}-filter"


def csv_id(tab: str) -> str:
    return f"admin-{tab}-csv"


def grid_id(tab: str) -> str:
    return f"admin-{tab}-grid"


def default_range(tz: str) -> tuple[str, str]:
    """The last DEFAULT_DAYS days up to today, in the city's days."""
    today = utc_now().astimezone(ZoneInfo(tz)).date()
    return (today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(), today.isoformat()


def _day(text) -> date | None:
    try:
        return date.fromisoformat(text) if isinstance(text, str) and text else None
    except ValueError:
        return None


def rows(engine, tab: str, lang: str, tz: str, since: str | None, until: str | None, chosen: str | None) -> list[dict]:
    """The newest SHOWN_ROWS rows of a log tab for the range (days as YYYY-MM-DD; a bad one is left open)."""
    first, last = _day(since), _day(until)
    with store.reading(engine) as conn:
        if tab == "audit":
            found = admin_log_rows(conn, first, last, tz, entity=chosen or None, limit=SHOWN_ROWS)
            return [
                {
                    **e,
                    "at": _shown(e["at"]),
                    "entity": t(f"admin.entity.{e['entity']}", lang),
                    "action": _action(e["action"], lang),
                    "note": e["note"] or "",
                }
                for e in found
            ]
        found = signin_rows(conn, first, last, tz, outcome=chosen or None, limit=SHOWN_ROWS)
        return [
            {
                "at": _shown(e["at"]),
                "outcome": t(f"signin.outcome.{e['outcome']}", lang),
                "username": e["username"],
                "account": e["account"] or "",
                "address": e["address"],
                "user_agent": e["user_agent"],
            }
            for e in found
        ]


def _action(code: str, lang: str) -> str:
    """An admin log action in the page's language; a code without a text shows as itself."""
    key = f"admin.action.{code}"
    text = t(key, lang)
    return code if text == key else text


def _shown(at: str) -> str:
    """'2026-12-08T10:11:36+08:00' (city time, as the CSV keeps it) as the tables show times: '2026-12-08 10:11:36'."""
    return at[:19].replace("T", " ")


def csv_href(tab: str, since: str | None, until: str | None, chosen: str | None) -> str:
    """The download link of a log tab for its range and filter."""
    query = {"since": _day(since), "until": _day(until), FILTER_ARGS[tab]: chosen or None}
    return f"{EXPORT_PATHS[tab]}?{urlencode({k: str(v) for k, v in query.items() if v})}"


def _columns(tab: str, lang: str) -> list[dict]:
    def col(field: str, key: str, **extra) -> dict:
        return {"field": field, "headerName": t(key, lang), **extra}

    if tab == "audit":
        return [
            col("at", "admin.f.at", width=190),
            col("actor", "admin.f.actor", width=130),
            col("entity", "admin.f.entity", width=120),
            col("entity_key", "admin.f.entity_key", width=150),
            col("action", "admin.f.action", width=130),
            col("before", "admin.f.before", flex=2, tooltipField="before"),
            col("after", "admin.f.after", flex=2, tooltipField="after"),
            col("note", "admin.f.note"),
        ]
    return [
        col("at", "admin.f.at", width=190),
        col("outcome", "signin.f.outcome", width=150),
        col("username", "signin.f.username", width=150),
        col("account", "signin.f.account", width=120),
        col("address", "signin.f.address", width=130),
        col("user_agent", "signin.f.user_agent", flex=2, tooltipField="user_agent"),
    ]


def _filter_options(tab: str, lang: str) -> list[dict]:
    everything = [{"label": t("admin.f.all", lang), "value": ""}]
    if tab == "audit":
        return everything + [{"label": t(f"admin.entity.{e}", lang), "value": e} for e in ENTITIES]
    return everything + [{"label": t(f"signin.outcome.{o}", lang), "value": o} for o in signins.OUTCOMES]


def _labelled(text: str, control) -> html.Label:
    return html.Label([html.Span(text, className="cb-admin-label"), control], className="cb-admin-field")


def tab_body(engine, tab: str, lang: str, tz: str) -> html.Div:
    """A log tab: the range (from, to), a filter, the download link and the table."""
    since, until = default_range(tz)
    filter_label = "admin.f.entity" if tab == "audit" else "signin.f.outcome"
    return html.Div(
        [
            html.Div(
                [
                    _labelled(t("audit.f.since", lang), dcc.Input(id=since_id(tab), type="date", value=since, debounce=True)),
                    _labelled(t("audit.f.until", lang), dcc.Input(id=until_id(tab), type="date", value=until, debounce=True)),
                    _labelled(
                        t(filter_label, lang),
                        dcc.Dropdown(id=filter_id(tab), options=_filter_options(tab, lang), value="", clearable=False),
                    ),
                    html.A(
                        t("audit.csv", lang),
                        id=csv_id(tab),
                        href=csv_href(tab, since, until, ""),
                        className="cb-admin-csv",
                        download="",
                    ),
                ],
                className="cb-admin-form cb-admin-range",
            ),
            admin_grid(grid_id(tab), rows(engine, tab, lang, tz, since, until, ""), _columns(tab, lang)),
            html.P(t("audit.help", lang).format(rows=SHOWN_ROWS), className="cb-admin-help"),
        ],
        className="cb-admin-tab",
    )
