"""The early-warning page (`/warnings`, 预测预警): every alert (any status, filtered by kind and status) and the
sensitivity per category (dash-ag-grid, each change audited through data.warnings.sensitivity).

`?kind=surge&status=open` preset the filters; the list follows /alerts/head like the overview's panel.
"""

from __future__ import annotations

import secrets
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
from dash import dcc, html

from dashboard import access, ids, jurisdiction
from dashboard.components import alerts_panel
from dashboard.components.alerts_panel import category_text, kind_label, numbers_text, place_text, reason_text
from dashboard.components.header import brand, nav
from dashboard.i18n import name, t
from data import store
from layers import alerts as alert_layer

SHOWN = 500
STATUSES = ("open", "acknowledged", "dismissed", "cased", "cleared")
SENSITIVITY_CHOICES = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
REFRESH = "warnings-refresh"  # {head}: bumped by the poller when an alert changed
WATCH = "warnings-watch"
POLL = "warnings-poll"
POLLED = "warnings-polled"


def chosen_filters(query: dict) -> dict:
    """The filters the URL asks for (unknown values dropped: all)."""
    kind, status = query.get("kind") or None, query.get("status") or None
    return {"kind": kind if kind in alert_layer.KINDS else None, "status": status if status in STATUSES else None}


def read_list(engine, chosen: dict) -> list[dict]:
    """The alerts the filters choose, within the user's jurisdiction."""
    with store.reading(engine) as conn:
        scope = jurisdiction.clamp_scope(conn, None)
    return alerts_panel.read_alerts(
        engine,
        scope,
        statuses=(chosen["status"],) if chosen.get("status") else None,
        kinds=(chosen["kind"],) if chosen.get("kind") else None,
        limit=SHOWN,
    )


def read_settings(engine) -> list[dict]:
    from data.warnings import sensitivity

    with store.reading(engine) as conn:
        return sensitivity.get_settings(conn)


def _when(moment, tz: str) -> str:
    moment = alerts_panel._utc(moment)
    return "—" if moment is None else f"{moment.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M}"


def alerts_table(rows: list[dict], lang: str, tz: str) -> html.Table | html.P:
    """Every alert that matches, ranked, with who handled it and the case it became."""
    if not rows:
        return html.P(t("warnings.empty", lang), className="cb-alerts-empty")
    columns = ("rank", "kind", "place", "category", "reason", "numbers", "score", "status", "first_seen", "last_seen")
    head = html.Thead(html.Tr([html.Th(t(f"warnings.col.{c}", lang)) for c in (*columns, "acted", "case")]))
    body = []
    for rank, r in enumerate(rows, start=1):
        acted = " · ".join(x for x in (r.get("acted_by"), r.get("act_note")) if x) or "—"
        case = r.get("case_incident_id")
        body.append(
            html.Tr(
                [
                    html.Td(str(rank)),
                    html.Td(kind_label(r.get("kind"), lang), style={"color": alert_layer.KIND_COLOUR.get(r.get("kind"))}),
                    html.Td(place_text(r, lang)),
                    html.Td(category_text(r, lang) or "—"),
                    html.Td(reason_text(r, lang)),
                    html.Td(numbers_text(r, lang) or "—"),
                    html.Td(f"{float(r['score']):.1f}"),
                    html.Td(t(f"alerts.status.{r['status']}", lang)),
                    html.Td(_when(r.get("first_seen_at"), tz)),
                    html.Td(_when(r.get("last_seen_at"), tz)),
                    html.Td(acted),
                    html.Td(html.A(f"#{case}", href=f"/dispatch?incident={case}") if case else "—"),
                ],
                className=f"cb-alert-row cb-alert-is-{r['status']}",
                **{"data-alert": str(r["id"])},
            )
        )
    return html.Table([head, html.Tbody(body)], className="cb-warnings-table")


def settings_rows(settings_list: list[dict], lang: str, tz: str) -> list[dict]:
    """The settings table's rows: one per active category."""
    return [
        {
            "category_id": s["category_id"],
            "category": name(s, lang),
            "sector": t(f"sector.{s['sector']}", lang) if s.get("sector") else "—",
            "sensitivity": float(s["sensitivity"]),
            "enabled": bool(s["enabled"]),
            "updated_by": s.get("updated_by") or "",
            "updated_at": _when(s.get("updated_at"), tz) if s.get("updated_at") else "",
        }
        for s in settings_list
    ]


def settings_grid(rows: list[dict], lang: str, editable: bool = True) -> dag.AgGrid:
    """Sensitivity (a choice from 0.25 to 4) and on/off per category, edited in place (by administrators)."""
    columns = [
        {"field": "category", "headerName": t("warnings.col.category", lang), "flex": 2},
        {"field": "sector", "headerName": t("warnings.col.sector", lang), "flex": 2},
        {
            "field": "sensitivity",
            "headerName": t("warnings.col.sensitivity", lang),
            "editable": editable,
            "cellEditor": "agSelectCellEditor",
            "cellEditorParams": {"values": list(SENSITIVITY_CHOICES)},
            "flex": 1,
        },
        {
            "field": "enabled",
            "headerName": t("warnings.col.enabled", lang),
            "editable": editable,
            "cellDataType": "boolean",
            "flex": 1,
        },
        {"field": "updated_by", "headerName": t("warnings.col.updated_by", lang), "flex": 1},
        {"field": "updated_at", "headerName": t("warnings.col.updated", lang), "flex": 1},
    ]
    return dag.AgGrid(
        id=ids.WARNINGS_SETTINGS,
        rowData=rows,
        columnDefs=columns,
        defaultColDef={"resizable": True, "suppressHeaderMenuButton": True},
        getRowId="params.data.category_id",
        dashGridOptions={"singleClickEdit": True, "stopEditingWhenCellsLoseFocus": True, "animateRows": False},
        className="cb-warnings-settings",
        style={"width": "100%"},
    )


def _filters(chosen: dict, lang: str) -> html.Div:
    def picker(component_id, label_key, options, value):
        return html.Div(
            className="cb-filter",
            children=[
                html.Label(t(label_key, lang), htmlFor=component_id, className="cb-control-label"),
                dcc.Dropdown(id=component_id, options=options, value=value, placeholder=t("warnings.filter.all", lang)),
            ],
        )

    return html.Div(
        className="cb-warnings-filters",
        children=[
            picker(
                ids.WARNINGS_KIND,
                "warnings.filter.kind",
                [{"label": kind_label(k, lang), "value": k} for k in alert_layer.KINDS],
                chosen["kind"],
            ),
            picker(
                ids.WARNINGS_STATUS,
                "warnings.filter.status",
                [{"label": t(f"alerts.status.{s}", lang), "value": s} for s in STATUSES],
                chosen["status"],
            ),
        ],
    )


def header(lang: str) -> html.Header:
    return html.Header(
        className="cb-top",
        children=[
            brand(t("warnings.title", lang), lang),
            nav("/warnings", lang),
            html.Div(
                className="cb-status",
                children=[html.Button(t("lang.switch", lang), id=ids.WARNINGS_LANG_SWITCH, n_clicks=0, className="cb-lang")],
            ),
        ],
    )


def layout(deps, query: dict, lang: str) -> html.Div:
    """The whole page for a first paint: the filtered list and the settings table filled in."""
    engine, settings = deps.engine, deps.settings
    chosen = chosen_filters(query)
    rows = read_list(engine, chosen)
    head = alerts_panel.read_head(engine)
    return html.Div(
        id=ids.WARNINGS_ROOT,
        className="cb-warnings",
        lang="zh-CN" if lang == "zh" else "en",
        children=[
            header(lang),
            html.Main(
                className="cb-warnings-body",
                children=[
                    html.Section(
                        className="cb-warnings-section",
                        children=[
                            html.H2(t("warnings.alerts", lang)),
                            _filters(chosen, lang),
                            html.Div(alerts_table(rows, lang, settings.timezone), id=ids.WARNINGS_TABLE),
                        ],
                    ),
                    html.Section(
                        className="cb-warnings-section",
                        children=[
                            html.H2(t("warnings.settings", lang)),
                            html.P(t("warnings.settings.help", lang), className="cb-warnings-help"),
                            html.Div(id=ids.WARNINGS_MESSAGE, className="cb-message", role="status", **{"aria-live": "polite"}),
                            settings_grid(
                                settings_rows(read_settings(engine), lang, settings.timezone), lang, access.can(access.ADMIN)
                            ),
                        ],
                    ),
                ],
            ),
            dcc.Store(id=ids.WARNINGS_CONFIG, data={"lang": lang}),
            dcc.Store(
                id=WATCH,
                data={
                    "url": "/alerts/head",
                    "head": head,
                    "page": secrets.token_hex(4),
                    "target": REFRESH,
                    "root": ids.WARNINGS_ROOT,
                },
            ),
            dcc.Store(id=REFRESH, data={"head": head}),
            dcc.Store(id=POLLED),
            dcc.Interval(id=POLL, interval=alerts_panel.POLL_MS),
        ],
    )
