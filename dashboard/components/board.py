"""The department response board (网格吹哨、部门报到): worst first, red and yellow marks, 吹哨不到 and 人到无效."""

from __future__ import annotations

from dash import html

from dashboard.components.kpis import format_value
from dashboard.i18n import duration, name, t

COLUMNS = (
    "board.department",
    "board.open",
    "board.overdue",
    "board.median_ack",
    "board.median_handle",
    "board.on_time_rate",
    "board.not_reported",
    "board.no_effect",
)
MARK_KEY = {"red": "board.red_flag", "yellow": "board.yellow_flag"}


def _minutes(seconds, lang: str) -> str:
    return "—" if seconds is None else duration(seconds / 60, lang)


def department_board(rows: list[dict], lang: str, limit: int | None = None) -> list:
    """The board's children: a title and a table of metrics.department_board rows (already worst first)."""
    shown = rows[:limit] if limit else rows
    if not shown:
        return [html.H2(t("board.title", lang), className="cb-panel-title"), html.P(t("board.empty", lang), className="cb-empty")]
    head = html.Thead(html.Tr([html.Th(t(key, lang)) for key in COLUMNS]))
    body = html.Tbody(
        [
            html.Tr(
                className=f"cb-board-row cb-flag-{row['flag']}",
                **{"data-department": row["code"]},
                children=[
                    html.Td(
                        [
                            html.Span(
                                t(MARK_KEY[row["flag"]], lang) if row["flag"] in MARK_KEY else "",
                                className=f"cb-mark cb-mark-{row['flag']}",
                            ),
                            html.Span(name(row, lang), className="cb-board-name"),
                        ]
                    ),
                    html.Td(f"{row['open']:,}", className="cb-num"),
                    html.Td(f"{row['overdue']:,}", className="cb-num cb-board-overdue"),
                    html.Td(_minutes(row["median_ack_s"], lang), className="cb-num"),
                    html.Td(_minutes(row["median_handle_s"], lang), className="cb-num"),
                    html.Td(format_value(row["on_time_rate"], "rate", lang), className="cb-num"),
                    html.Td(f"{row['no_show']:,}", className="cb-num cb-board-no-show"),
                    html.Td(f"{row['no_effect']:,}", className="cb-num cb-board-no-effect"),
                ],
            )
            for row in shown
        ]
    )
    return [html.H2(t("board.title", lang), className="cb-panel-title"), html.Table([head, body], className="cb-board")]
