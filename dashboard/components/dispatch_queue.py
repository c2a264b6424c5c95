"""The dispatch queue widget: an AG Grid of incidents waiting for a dispatcher, its filters, KPI strip and row diffs.

Rows carry the deadline as epoch milliseconds; the "time left" column is computed in the browser
(window.dashAgGridFunctions.citybrainTimeLeft in assets/dispatch.js), so the table counts down
without a round trip, and a live change sends only the rows that changed (`row_changes`).
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import dash_ag_grid as dag
from dash import dcc, html

from dashboard import ids
from dashboard.i18n import t
from data.incidents.queue import QUEUE_LIMIT, QUEUE_STATES

KPI_KEYS = ("waiting", "reported", "returned", "reopened", "overdue", "near_due")


def tf(key: str, lang: str, **values) -> str:
    """t() with its {placeholders} filled in."""
    return t(key, lang).format(**values)


def _name(row: dict, prefix: str, lang: str) -> str:
    primary, fallback = (f"{prefix}_zh", f"{prefix}_en") if lang == "zh" else (f"{prefix}_en", f"{prefix}_zh")
    return row.get(primary) or row.get(fallback) or ""


def table_rows(rows: list[dict], lang: str, tz: str) -> list[dict]:
    """data.incidents.queue.queue rows as the table shows them (names and labels in `lang`, times in the city's zone)."""
    zone = ZoneInfo(tz)
    out = []
    for r in rows:
        marks = []
        if r["reopen_count"]:
            marks.append(tf("dispatch.badge.reopened", lang, n=r["reopen_count"]))
        if r["escalation_level"]:
            marks.append(tf("dispatch.badge.escalated", lang, n=r["escalation_level"]))
        area = " · ".join(x for x in (_name(r, "district", lang), _name(r, "grid", lang)) if x) or t("dispatch.unlocated", lang)
        out.append(
            {
                "rid": str(r["id"]),
                "id": r["id"],
                "version": r["version"],
                "priority": r["priority"],
                "priority_label": t(f"priority.{r['priority']}", lang),
                "state": r["state"],
                "state_label": t(f"state.{r['state']}", lang),
                "category": _name(r, "category", lang),
                "area": area,
                "assignee": _name(r, "department", lang),
                "reported": f"{datetime.fromisoformat(r['reported_at']).astimezone(zone):%m-%d %H:%M}",
                "description": r["description"],
                "deadline_ms": r["deadline_ms"],
                "due_status": r["due_status"],
                "late": r["late"],
                "marks": " ".join(marks),
            }
        )
    return out


def stamp(row: dict) -> str:
    """What makes a row look different: its version and its clock's colour."""
    return f"{row['version']}:{row['due_status'] or ''}:{int(bool(row['late']))}:{row['priority_label']}"


def stamps(rows: list[dict]) -> dict[str, str]:
    return {row["rid"]: stamp(row) for row in rows}


def row_changes(old: dict[str, str] | None, rows: list[dict]) -> tuple[dict, dict[str, str]]:
    """(AG Grid rowTransaction, new stamps): the rows to add, update and remove to go from `old` to `rows`."""
    old = old or {}
    new = stamps(rows)
    add = [r for r in rows if r["rid"] not in old]
    update = [r for r in rows if r["rid"] in old and old[r["rid"]] != new[r["rid"]]]
    remove = [{"rid": rid} for rid in old if rid not in new]
    return {"add": add, "update": update, "remove": remove}, new


def delta(touched: list[int], rows: list[dict]) -> dict:
    """DISPATCH_DELTA: the incidents a change touched and, of those, the rows now in the queue with their stamps.
    The browser (dispatchApplyDelta) adds, updates or removes each against what its table holds."""
    return {"ids": [str(i) for i in touched], "rows": [{**row, "stamp": stamp(row)} for row in rows]}


def column_defs(lang: str) -> list[dict]:
    time_left_rules = {
        "cb-due-overdue": "params.data.due_status === 'overdue' || params.data.late",
        "cb-due-near_due": "params.data.due_status === 'near_due'",
    }
    return [
        # Pinned with the checkboxes: moving through a wide row never scrolls the case number out of sight.
        {"field": "id", "headerName": t("dispatch.col.id", lang), "width": 92, "pinned": "left"},
        {
            "field": "priority",
            "headerName": t("dispatch.col.priority", lang),
            "width": 112,
            "sort": "asc",
            "sortIndex": 0,
            "valueFormatter": {"function": "params.data.priority_label"},
            "cellClassRules": {"cb-priority-urgent": "params.data.priority === 1"},
        },
        {
            "colId": "time_left",
            "headerName": t("dispatch.col.time_left", lang),
            "width": 132,
            # The plain field, not a valueGetter: sorting 5,000 rows calls it ~100,000 times.
            "field": "deadline_ms",
            "valueFormatter": {"function": "citybrainTimeLeft(params)"},
            "sort": "asc",
            "sortIndex": 1,
            "cellClassRules": time_left_rules,
        },
        {"field": "state_label", "colId": "state", "headerName": t("dispatch.col.state", lang), "width": 110},
        {"field": "category", "headerName": t("dispatch.col.category", lang), "width": 130},
        {"field": "area", "headerName": t("dispatch.col.area", lang), "flex": 1, "minWidth": 150},
        {"field": "assignee", "headerName": t("dispatch.col.assignee", lang), "width": 120},
        {"field": "reported", "headerName": t("dispatch.col.reported", lang), "width": 112},
        {"field": "marks", "headerName": t("dispatch.col.flags", lang), "width": 130},
        {"field": "description", "headerName": t("dispatch.col.description", lang), "flex": 2, "minWidth": 180},
    ]


def queue_grid(rows: list[dict], lang: str) -> dag.AgGrid:
    """The queue table: sorted by urgency, keyboard-navigable, with checkboxes for batch dispatch."""
    return dag.AgGrid(
        id=ids.DISPATCH_GRID,
        rowData=rows,
        columnDefs=column_defs(lang),
        defaultColDef={"sortable": True, "resizable": True, "suppressHeaderMenuButton": True},
        getRowId="params.data.rid",
        dashGridOptions={
            "rowSelection": {"mode": "multiRow", "checkboxes": True, "headerCheckbox": True, "enableClickSelection": False},
            "selectionColumnDef": {"pinned": "left"},
            "animateRows": False,
            # A live change re-sorts only the rows it adds or updates, not the whole queue.
            "deltaSort": True,
            "rowHeight": 34,
            "headerHeight": 36,
            "suppressCellFocus": False,
            "localeText": {"noRowsToShow": "—"},
        },
        # Arrow keys move the focus through the queue; the panel follows the focused row.
        eventListeners={"cellFocused": ["citybrainQueueFocus(params, setEventData)"]},
        className="cb-queue-grid",
        style={"height": "100%", "width": "100%"},
    )


def _options(items, lang, label=lambda item, lang: "") -> list[dict]:
    return [{"label": label(item, lang), "value": item["id"]} for item in items]


def filters(choices: dict, lang: str, chosen: dict) -> html.Div:
    """Area, category, priority and state pickers (empty means all)."""

    def area_label(a, lang):
        name = a["name_zh"] if lang == "zh" else a["name_en"]
        return name if a["level"] == 1 else f"· {name}"

    def category_label(c, lang):
        return c["name_zh"] if lang == "zh" else c["name_en"]

    def picker(component_id, label_key, options, value):
        return html.Div(
            className="cb-filter",
            children=[
                html.Label(t(label_key, lang), htmlFor=component_id, className="cb-control-label"),
                dcc.Dropdown(
                    id=component_id, options=options, value=value, placeholder=t("dispatch.filter.all", lang), clearable=True
                ),
            ],
        )

    states = [
        {"label": t(f"dispatch.state.{s}" if s in ("awaiting", "overdue") else f"state.{s}", lang), "value": s}
        for s in QUEUE_STATES
    ]
    priorities = [{"label": t(f"priority.{p}", lang), "value": p} for p in (1, 2, 3)]
    return html.Div(
        className="cb-dispatch-filters",
        children=[
            picker(
                ids.DISPATCH_FILTER_AREA, "dispatch.filter.area", _options(choices["areas"], lang, area_label), chosen.get("area")
            ),
            picker(
                ids.DISPATCH_FILTER_CATEGORY,
                "dispatch.filter.category",
                _options(choices["categories"], lang, category_label),
                chosen.get("category"),
            ),
            picker(ids.DISPATCH_FILTER_PRIORITY, "dispatch.filter.priority", priorities, chosen.get("priority")),
            picker(ids.DISPATCH_FILTER_STATE, "dispatch.filter.state", states, chosen.get("state")),
        ],
    )


# The queue view (state filter) each headline card opens; near due has none (it is a time, not a state).
KPI_VIEWS = {"waiting": "awaiting", "reported": "reported", "returned": "returned", "reopened": "reopened", "overdue": "overdue"}


def kpi_strip(counts: dict, lang: str) -> list:
    """The desk's headline counts (queue_counts), each with its raw value in data-value for tests and screen readers;
    a card with a view is a button that opens it (sets the state filter)."""

    def card(key: str):
        children = [
            html.Div(f"{counts.get(key, 0):,}", className="cb-dkpi-value"),
            html.Div(t(f"dispatch.kpi.{key}", lang), className="cb-dkpi-label"),
        ]
        common = {"id": {"type": ids.DISPATCH_KPI, "index": key}, "children": children, "data-value": str(counts.get(key, 0))}
        if key not in KPI_VIEWS:
            return html.Div(className=f"cb-dkpi cb-dkpi-{key}", **common)
        return html.Button(
            className=f"cb-dkpi cb-dkpi-{key} cb-dkpi-view", title=t(f"dispatch.view.{key}", lang), n_clicks=0, **common
        )

    return [card(key) for key in KPI_KEYS]


def count_text(shown: int, lang: str) -> str:
    """'123 in the queue', saying so when the table holds only the first QUEUE_LIMIT."""
    text = tf("dispatch.count", lang, n=f"{shown:,}")
    if shown >= QUEUE_LIMIT:
        text += " · " + tf("dispatch.count_capped", lang, n=f"{QUEUE_LIMIT:,}")
    return text
