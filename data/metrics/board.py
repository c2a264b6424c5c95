"""The department board of the overview (reads only): how each department answers the whistle (吹哨报到) over the last 7 days."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.clock import overdue_expression
from data.incidents.lifecycle import DISPATCHED
from data.metrics.scope import normalise_args
from data.metrics.sql_parts import (
    AT_NOW,
    NOW,
    SINCE,
    between,
    count_where,
    duration_seconds,
    group_key,
    median_where,
    prebuilt,
    ratio,
    register_median,
    scope_clause,
    scope_key,
    scope_params,
    ts_param,
)

__all__ = [
    "BOARD_DAYS",
    "EMPTY_FIGURES",
    "FLAG_RANK",
    "BoardThresholds",
    "board_from_figures",
    "board_no_effect",
    "department_board",
]

INC, EV = schema.incidents, schema.incident_events

BOARD_DAYS = 7


@dataclass(frozen=True)
class BoardThresholds:
    """When a department's row turns red (alarm) or yellow (warning) on the board; hashable for memoising.

    Every threshold is a share 0..1 of the department's own volume in the board's window, so a big
    department is not flagged just for being big (absolute counts turned every department red at
    city scale). 吹哨不到 is a share of the acknowledgements that fell due; 人到无效 a share of the
    resolutions. Rows with fewer than `min_volume` cases are never flagged. Any one red condition
    makes the row red; otherwise any yellow one makes it yellow.
    """

    red_on_time: float = 0.80
    yellow_on_time: float = 0.90
    red_overdue_share: float = 0.20
    yellow_overdue_share: float = 0.10
    red_no_show_share: float = 0.20
    yellow_no_show_share: float = 0.10
    red_no_effect_share: float = 0.15
    yellow_no_effect_share: float = 0.08
    min_volume: int = 5


FLAG_RANK = {"red": 0, "yellow": 1, "none": 2}
EMPTY_FIGURES = {
    "open": 0,
    "overdue": 0,
    "waiting_late": 0,
    "acknowledged": 0,
    "ack_late": 0,
    "resolved": 0,
    "on_time": 0,
    "no_effect": 0,
    "median_ack_s": None,
    "median_handle_s": None,
}


def department_board(
    conn: Connection, scope: Any, now: datetime, tz: Any, thresholds: BoardThresholds = BoardThresholds()
) -> list[dict]:
    """One row per department, worst first: how it answers the whistle (吹哨报到) over the last 7 days.

    Each row: department_id, code, name_en, name_zh; open and overdue (now, assigned to it);
    overdue_share; acknowledged and resolved (count in the window); median_ack_s and median_handle_s
    (dispatched -> acknowledged / resolved, seconds); on_time_rate (resolutions within the handling
    limit); no_show (吹哨不到: acknowledgements in the window that came late, plus incidents waiting
    for its acknowledgement past the limit now); no_effect (人到无效: its resolutions rejected at
    verification in the window); flag 'red' / 'yellow' / 'none' from `thresholds`.
    """
    scope, now, tz = normalise_args(scope, now, tz)
    since = now - timedelta(days=BOARD_DAYS)
    figures: dict[int, dict] = {}
    key = scope_key(conn, scope)
    params = {**AT_NOW.params(now), SINCE: since, **scope_params(scope)}

    def row_for(department_id) -> dict:
        return figures.setdefault(int(department_id), dict(EMPTY_FIGURES))

    # Unassigned incidents form a group of their own, skipped here rather than filtered in SQL: a
    # "department IS NOT NULL" term would tempt SQLite into the (department, is_open) index too.
    for r in conn.execute(prebuilt(("board_open", *key), lambda: _board_open_statement(*key)), params):
        if r.department_id is None:
            continue
        row_for(r.department_id).update(open=r.open, overdue=r.overdue, waiting_late=r.waiting_late)

    for r in _board_cycle(conn, key, params):
        if r["department_id"] is None:
            continue
        row_for(r["department_id"]).update({k: v for k, v in r.items() if k != "department_id"})

    for department_id, n in board_no_effect(conn, scope, now).items():
        row_for(department_id)["no_effect"] = n
    return board_from_figures(conn, figures, thresholds)


def board_no_effect(conn: Connection, scope: Any, now: datetime) -> dict[int, int]:
    """人到无效 per department over the board's window, from the verify_fail events (an index range)."""
    scope, now, _tz = normalise_args(scope, now, "UTC")
    key = scope_key(conn, scope)
    params = {**AT_NOW.params(now), SINCE: now - timedelta(days=BOARD_DAYS), **scope_params(scope)}
    stmt = prebuilt(("board_no_effect", *key), lambda: _board_no_effect_statement(*key))
    return {int(r.department_id): int(r.n) for r in conn.execute(stmt, params)}


def board_from_figures(conn: Connection, figures: dict[int, dict], thresholds: BoardThresholds) -> list[dict]:
    """The board's rows, worst first, from figures per department (EMPTY_FIGURES' keys; shared with
    data/metrics/working_set.py's in-memory reading)."""
    d = schema.departments
    board = [
        _board_row(dep, figures.get(dep.id, EMPTY_FIGURES), thresholds)
        for dep in conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh, d.c.active))
        if dep.active or dep.id in figures
    ]
    board.sort(key=_worst_first)
    return board


def _board_open_statement(dialect: str, level: int | None):
    """Per department: its open incidents now, how many overdue, how many still waiting for it past the limit."""
    dept = group_key(dialect, INC.c.assignee_department_id)
    return (
        select(
            dept.label("department_id"),
            func.count().label("open"),
            count_where(overdue_expression(AT_NOW)).label("overdue"),
            count_where(and_(INC.c.state == DISPATCHED, overdue_expression(AT_NOW))).label("waiting_late"),
        )
        .where(INC.c.is_open == true(), scope_clause(dialect, level))
        .group_by(dept)
    )


def _board_no_effect_statement(dialect: str, level: int | None):
    """人到无效 per department: the verify_fail event names the department whose resolution failed (the
    incident's assignee is cleared for redispatch, so only the event knows)."""
    vf_dept = EV.c.data["department_id"].as_integer()
    stmt = (
        select(vf_dept.label("department_id"), func.count().label("n"))
        .where(EV.c.action == "verify_fail", between(EV.c.at, ts_param(SINCE), ts_param(NOW)), vf_dept.is_not(None))
        .group_by(vf_dept)
    )
    if level is not None:
        stmt = stmt.join_from(EV, INC, EV.c.incident_id == INC.c.id).where(scope_clause(dialect, level))
    return stmt


BOARD_COUNTS = ("acknowledged", "ack_late", "resolved", "on_time")
BOARD_MEDIANS = ("median_ack_s", "median_handle_s")


def _board_cycle(conn: Connection, key: tuple[str, int | None], params: dict) -> list[dict]:
    """Per department: acknowledgements and resolutions in the window, how many late, and median times."""
    stmt = prebuilt(("board_cycle", *key), lambda: _board_cycle_statement(*key))
    register_median(conn)
    out = []
    for r in conn.execute(stmt, params):
        entry = {"department_id": r.department_id, **{k: int(getattr(r, k)) for k in BOARD_COUNTS}}
        entry.update({k: None if getattr(r, k) is None else float(getattr(r, k)) for k in BOARD_MEDIANS})
        out.append(entry)
    return out


def _board_cycle_statement(dialect: str, level: int | None):
    since, now = ts_param(SINCE), ts_param(NOW)
    dept = INC.c.assignee_department_id
    ack, res = INC.c.acknowledged_at, INC.c.resolved_at
    ack_in, res_in = between(ack, since, now), between(res, since, now)
    ack_s, handle_s = duration_seconds(ack, INC.c.dispatched_at), duration_seconds(res, INC.c.dispatched_at)
    counts = {
        "acknowledged": count_where(ack_in),
        "ack_late": count_where(and_(ack_in, INC.c.ack_late == true())),
        "resolved": count_where(res_in),
        "on_time": count_where(and_(res_in, res <= INC.c.handle_due_at)),
    }
    # Whatever was acknowledged or resolved in the window had its latest event there too.
    where = and_(INC.c.updated_at >= since, or_(ack >= since, res >= since), scope_clause(dialect, level))
    medians = {"median_ack_s": median_where(dialect, ack_s, ack_in), "median_handle_s": median_where(dialect, handle_s, res_in)}
    key = group_key(dialect, dept)
    return select(key.label("department_id"), *(c.label(k) for k, c in {**counts, **medians}.items())).where(where).group_by(key)


def _board_row(dep, f: dict, t: BoardThresholds) -> dict:
    overdue_share = ratio(f["overdue"], f["open"])
    on_time_rate = ratio(f["on_time"], f["resolved"])
    no_show = f["ack_late"] + f["waiting_late"]
    # Acknowledgements that fell due in the window: those made, plus those still missing past their limit.
    no_show_share = ratio(no_show, f["acknowledged"] + f["waiting_late"])
    no_effect_share = ratio(f["no_effect"], f["resolved"])
    volume = max(f["open"], f["acknowledged"] + f["waiting_late"], f["resolved"])

    def beyond(share_and_limits: tuple) -> tuple[bool, bool]:
        share, red_limit, yellow_limit, worse_when_low = share_and_limits
        if share is None:
            return False, False
        if worse_when_low:
            return share < red_limit, share < yellow_limit
        return share >= red_limit, share >= yellow_limit

    checks = [
        beyond(c)
        for c in (
            (on_time_rate, t.red_on_time, t.yellow_on_time, True),
            (overdue_share, t.red_overdue_share, t.yellow_overdue_share, False),
            (no_show_share, t.red_no_show_share, t.yellow_no_show_share, False),
            (no_effect_share, t.red_no_effect_share, t.yellow_no_effect_share, False),
        )
    ]
    flaggable = volume >= t.min_volume
    red = flaggable and any(r for r, _ in checks)
    yellow = flaggable and any(y for _, y in checks)
    return {
        "department_id": dep.id,
        "code": dep.code,
        "name_en": dep.name_en,
        "name_zh": dep.name_zh,
        "open": f["open"],
        "overdue": f["overdue"],
        "overdue_share": overdue_share,
        "acknowledged": f["acknowledged"],
        "resolved": f["resolved"],
        "median_ack_s": f["median_ack_s"],
        "median_handle_s": f["median_handle_s"],
        "on_time_rate": on_time_rate,
        "no_show": no_show,
        "no_show_share": no_show_share,
        "no_effect": f["no_effect"],
        "no_effect_share": no_effect_share,
        "flag": "red" if red else "yellow" if yellow else "none",
    }


def _worst_first(row: dict) -> tuple:
    return (
        FLAG_RANK[row["flag"]],
        -(row["overdue_share"] or 0.0),
        -row["no_show"],
        -row["no_effect"],
        row["on_time_rate"] if row["on_time_rate"] is not None else 1.0,
        -row["overdue"],
        row["code"],
    )
