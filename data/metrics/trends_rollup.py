"""The leaders' review answered from the roll-up (data/metrics/rollups.py): the figures of data/metrics/trends.py's review in milliseconds.

Counts, rates, backlog, rankings and the heat calendar equal the direct computation from raw incidents;
medians and p90s come from histograms, within 4.5%. Two things depend on `now` rather than on the
stored rows, and are settled on read: an acknowledge deadline still ahead today is not yet "nobody
came" (subtracted here), and events after the roll-up's last applied event are added in memory.
The backlog at an instant t is everything received before t minus everything ended before t.
The roll-up answers only when no incident was reported or closed after `now` (a review of the past
as it stood then needs the raw rows), and for the city, a district or a street.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Integer, and_, func, or_, select, true, type_coerce
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import DISPATCHED, MERGED, SECTORS
from data.metrics import rollups
from data.metrics.review_periods import Period
from data.metrics.review_rows import HARD_CASES, columns_from_rows, hard_case, read_names, select_columns
from data.metrics.review_rules import (
    CHILD_LEVEL,
    LeagueThresholds,
    category_table,
    league_table,
    ratio,
    rising_categories,
)
from data.metrics.rollup_cells import COUNTS, Cell, Key, day_number, merge, quantile, read_cells
from data.metrics.scope import SCOPE_COLUMNS, Scope
from data.times import from_db

INC = schema.incidents
CUBE = schema.trend_rollup
ROLLED_LEVELS = (schema.DISTRICT, schema.STREET)
_C = {name: i for i, name in enumerate(COUNTS)}


def review(
    conn: Connection,
    scope: Scope | None,
    now: datetime,
    period: Period,
    starts: list[datetime],
    granularity: str,
    thresholds: LeagueThresholds,
) -> dict | None:
    """trends.review's answer from the roll-up, or None when the roll-up cannot give it."""
    if scope is not None and scope.level not in ROLLED_LEVELS:
        return None
    for _ in range(3):
        state = rollups.read_state(conn)
        if state is None or state.tz != period.tz or _recorded_after(conn, now):
            return None
        answer = _answer(conn, state, scope, now, period, starts, granularity, thresholds)
        # Under PostgreSQL's READ COMMITTED each statement sees the latest commit: a refresh committed
        # meanwhile would have its changes counted twice or not at all. It always moves the state.
        if rollups.read_state(conn) == state:
            return answer
    return None


def _answer(
    conn: Connection,
    state: rollups.State,
    scope: Scope | None,
    now: datetime,
    period: Period,
    starts: list[datetime],
    granularity: str,
    thresholds: LeagueThresholds,
) -> dict:
    zone = ZoneInfo(period.tz)

    def day(instant: datetime) -> int:
        return day_number(instant.astimezone(zone).date())

    today = day(now)
    # Every boundary is a local midnight, or now; with nothing recorded after now, "before now" is "up to today".
    end_day = today + 1 if period.end >= now else day(period.end)
    d_prev, d_start = day(period.previous_start), day(period.start)
    unit = 0 if scope is None else scope.unit_id
    children = _child_units(conn, scope)
    pend = rollups.pending(conn, state)
    _subtract_not_yet_due(conn, scope, now, zone, pend, today)

    here, below = CellSet(frozenset({unit})), CellSet(frozenset(children))
    by_dept = CellSet(frozenset({unit}), by_department=True)
    scope_cells = _cells(conn, pend, here, d_prev, end_day)
    child_cells = _cells(conn, pend, below, d_start, end_day)
    dept_cells = _cells(conn, pend, by_dept, d_start, end_day)
    scope_base = _net_before(conn, pend, here, d_prev)
    child_base = _net_before(conn, pend, below, d_start)
    dept_base = _net_before(conn, pend, by_dept, d_start)

    by_day = {k[0]: c for k, c in scope_cells.items()}

    def span(first: int, last: int) -> list[Cell]:
        return [c for d in range(first, last) for c in by_day.get(d, ())]

    def backlog_before(d: int) -> int:
        base = scope_base.get((unit, 0), 0)
        return base + sum(_net(c) for k, cs in by_day.items() if k < d for c in cs)

    bucket_days = [day(s) for s in starts] + [end_day]
    series = [
        {"start": s, **_figures(span(bucket_days[i], bucket_days[i + 1]), backlog_before(bucket_days[i + 1]))}
        for i, s in enumerate(starts)
    ]
    names = read_names(conn)
    cats = names["categories"]
    now_c = _sum_categories(span(d_start, end_day))
    categories = category_table(now_c, _sum_categories(span(d_prev, d_start)), cats)
    return {
        "period": {
            "start": period.start,
            "end": period.end,
            "previous_start": period.previous_start,
            "tz": period.tz,
            "granularity": granularity,
        },
        "totals": _figures(span(d_start, end_day), backlog_before(end_day)),
        "previous": _figures(span(d_prev, d_start), backlog_before(d_start)),
        "series": series,
        "sectors": _sectors(starts, bucket_days, by_day, cats),
        "categories": categories,
        "rising": rising_categories(categories),
        "units": _units(children, child_cells, child_base),
        "league": _league(dept_cells, dept_base, names["departments"], thresholds),
        "heat": _heat(range(d_start, end_day), by_day),
        "hard_cases": _hard_cases(conn, scope, period, now.timestamp(), cats),
    }


# --- reading cells ------------------------------------------------------------------------------------


def _recorded_after(conn: Connection, now: datetime) -> bool:
    # One max() per query: SQLite reads a bare max(column) off the index end, anything more scans the table.
    for column in (INC.c.reported_at, INC.c.closed_at):
        latest = from_db(conn.execute(select(func.max(column))).scalar())
        if latest is not None and latest > now:
            return True
    return False


@dataclass(frozen=True)
class CellSet:
    """Which cells a read wants: these units, with all departments together (0) or each department (not 0)."""

    units: frozenset[int]
    by_department: bool = False

    def where(self) -> list:
        dept = CUBE.c.department_id != 0 if self.by_department else CUBE.c.department_id == 0
        return [CUBE.c.unit_id.in_(sorted(self.units)), dept]

    def holds(self, key: Key) -> bool:
        return key[1] in self.units and (key[2] != 0) == self.by_department


def _cells(conn: Connection, pend: dict[Key, Cell], which: CellSet, first: int, end: int) -> dict[Key, list[Cell]]:
    """The stored cells (read raw) and the pending changes for the same keys, side by side."""
    cells = {k: [c] for k, c in read_cells(conn, [*which.where(), CUBE.c.day >= first, CUBE.c.day < end], raw=True).items()}
    for key, change in pend.items():
        if first <= key[0] < end and which.holds(key):
            cells.setdefault(key, []).append(change)
    return cells


def _net(cell: Cell) -> int:
    return int(cell.counts[_C["received"]] - cell.counts[_C["ended"]])


def _net_before(conn: Connection, pend: dict[Key, Cell], which: CellSet, before: int) -> dict[tuple[int, int], int]:
    """Received minus ended on every day before `before`, per (unit, department): the backlog then."""
    stmt = (
        select(CUBE.c.unit_id, CUBE.c.department_id, func.sum(CUBE.c.received) - func.sum(CUBE.c.ended))
        .where(*which.where(), CUBE.c.day < before)
        .group_by(CUBE.c.unit_id, CUBE.c.department_id)
    )
    out = {(u, d): int(n or 0) for u, d, n in conn.execute(stmt)}
    for key, change in pend.items():
        if key[0] < before and which.holds(key):
            out[key[1:]] = out.get(key[1:], 0) + _net(change)
    return out


def _subtract_not_yet_due(conn: Connection, scope: Scope | None, now: datetime, zone: ZoneInfo, pend: dict, today: int) -> None:
    """The roll-up counts a dispatch still waiting for acknowledgement on its deadline's day; a deadline later
    today has not passed yet, so it is not "nobody came" yet: take it out (into the pending cells)."""
    tomorrow = datetime.combine(now.astimezone(zone).date() + timedelta(days=1), datetime.min.time(), zone)
    stmt = select(*rollups._incident_columns()).where(
        INC.c.is_open.is_(True),
        INC.c.state == DISPATCHED,
        INC.c.acknowledged_at.is_(None),
        INC.c.ack_due_at >= now,
        INC.c.ack_due_at < tomorrow,
    )
    if scope is not None:
        stmt = stmt.where(INC.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    rows = rollups._arrays(conn.execute(stmt).all())
    for key, cell in rollups.contributions(rows, str(zone)).items():
        if key[0] == today and cell.counts[_C["waiting"]]:
            only = Cell()
            only.counts[_C["waiting"]] = cell.counts[_C["waiting"]]
            pend.setdefault(key, Cell()).add(only, -1)


def _child_units(conn: Connection, scope: Scope | None) -> dict[int, dict]:
    level = CHILD_LEVEL[scope.level if scope else schema.CITY]
    u = schema.units
    stmt = select(u.c.id, u.c.code, u.c.name_en, u.c.name_zh).where(u.c.level == level)
    if scope is not None:
        stmt = stmt.where(u.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    return {r.id: {"level": level, **dict(r._mapping)} for r in conn.execute(stmt)}


# --- figures --------------------------------------------------------------------------------------------


def _figures(cells: list[Cell], backlog: int) -> dict:
    """trends._figures (data/metrics/trends.py) for the sum of `cells`, the backlog given."""
    total = np.sum([cell.counts for cell in cells], axis=0) if cells else np.zeros(len(COUNTS), dtype=np.int64)
    ack = merge([cell.ack for cell in cells])
    handle = merge([cell.handle for cell in cells])
    c = {name: int(total[i]) for i, name in enumerate(COUNTS)}
    due = c["acknowledged"] + c["waiting"]
    return {
        "received": c["received"],
        "closed": c["closed"],
        "backlog": int(backlog),
        "response_rate": ratio(c["ack_on_time"], due),
        "resolution_rate": ratio(c["first_time"], c["closed"]),
        "satisfaction_rate": ratio(c["satisfied"], c["rated"]),
        "on_time_rate": ratio(c["on_time"], c["resolved_timed"]),
        "median_ack_s": quantile(ack, 0.5),
        "p90_ack_s": quantile(ack, 0.9),
        "median_handle_s": quantile(handle, 0.5),
        "p90_handle_s": quantile(handle, 0.9),
        "due_for_ack": due,
        "ack_on_time": c["ack_on_time"],
        "nobody_came": c["ack_late"] + c["waiting"],
        "rated": c["rated"],
        "satisfied": c["satisfied"],
        "first_time": c["first_time"],
        "resolved": c["resolved"],
        "resolved_timed": c["resolved_timed"],
        "on_time": c["on_time"],
        "no_effect": c["no_effect"],
    }


def _grouped(cells: dict[Key, list[Cell]], index: int) -> dict[int, list[Cell]]:
    out: dict[int, list[Cell]] = {}
    for key, cs in cells.items():
        out.setdefault(key[index], []).extend(cs)
    return out


def _units(children: dict[int, dict], cells: dict[Key, Cell], base: dict) -> list[dict]:
    grouped = _grouped(cells, 1)
    out = []
    for uid, unit in children.items():
        mine = grouped.get(uid, [])
        backlog = base.get((uid, 0), 0) + sum(_net(c) for c in mine)
        row = {"unit_id": uid, "level": unit["level"], **{k: unit[k] for k in ("code", "name_en", "name_zh")}}
        out.append({**row, **_figures(mine, backlog)})
    return sorted(out, key=lambda r: (-r["received"], r["code"]))


def _league(cells: dict[Key, Cell], base: dict, deps: dict, t: LeagueThresholds) -> list[dict]:
    grouped = _grouped(cells, 2)
    base_by_dep = {dep: n for (_, dep), n in base.items()}
    figures = (
        (dep_id, _figures(grouped[dep_id], base_by_dep.get(dep_id, 0) + sum(_net(c) for c in grouped[dep_id])))
        for dep_id in sorted(grouped)
    )
    return league_table(figures, deps, t)


def _sum_categories(cells: list[Cell]) -> dict[int, int]:
    keys, counts = merge([cell.categories for cell in cells])
    return dict(zip(keys.tolist(), counts.tolist(), strict=True))


def _sectors(starts: list[datetime], bucket_days: list[int], by_day: dict[int, list[Cell]], cats: dict) -> list[dict]:
    out = []
    for i, s in enumerate(starts):
        per = dict.fromkeys(SECTORS, 0)
        in_bucket = [c for d in range(bucket_days[i], bucket_days[i + 1]) for c in by_day.get(d, ())]
        for cid, n in _sum_categories(in_bucket).items():
            per[cats[cid]["sector"]] += n
        out += [{"start": s, "sector": sector, "received": per[sector]} for sector in SECTORS]
    return out


def _heat(days: range, by_day: dict[int, list[Cell]]) -> list[list[int]]:
    grid = np.zeros((7, 24), dtype=np.int64)
    for d in days:
        for cell in by_day.get(d, ()):
            grid[(d + 3) % 7] += cell.hours  # 1970-01-01 was a Thursday (Monday = 0)
    return grid.tolist()


# --- hard cases: a few rows through small indexes -------------------------------------------------------


def _hard_cases(conn: Connection, scope: Scope | None, period: Period, now: float, cats: dict) -> dict[str, list[dict]]:
    """trends._hard_cases (data/metrics/trends.py): the top rows picked by the database, then ordered by the same keys."""
    base = [INC.c.state != MERGED, INC.c.reported_at < period.end]
    if scope is not None:
        base.append(INC.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    live = and_(
        or_(INC.c.closed_at.is_(None), INC.c.closed_at >= period.start),
        or_(INC.c.rejected_at.is_(None), INC.c.rejected_at >= period.start),
    )

    # Open now: the lifecycle keeps is_open exactly for incidents neither closed, rejected nor merged. On
    # SQLite "+ 0" keeps the planner off the closed_at index (it would sort every open incident) and on
    # ix_incidents_open_reported, which yields them oldest first.
    def unindexed(column):
        return type_coerce(column, Integer) + 0 if conn.dialect.name == "sqlite" else column

    open_now = and_(INC.c.is_open == true(), unindexed(INC.c.closed_at).is_(None), unindexed(INC.c.rejected_at).is_(None))
    # Each order is that of a small partial index (data/schema/casework.py: ix_incidents_open_reported, _reopened,
    # _escalated), so the database stops at the tenth match.
    picks = {
        "longest_open": (open_now, [INC.c.reported_at, INC.c.id]),
        "most_reopened": (and_(live, INC.c.reopen_count > 0), [INC.c.reopen_count.desc(), INC.c.reported_at, INC.c.id]),
        "escalated": (and_(live, INC.c.escalation_level > 0), [INC.c.escalation_level.desc(), INC.c.reported_at, INC.c.id]),
    }
    out = {}
    for name, (cond, order) in picks.items():
        stmt = select(INC.c.id).where(*base, cond).order_by(*order).limit(HARD_CASES)
        ids = [r[0] for r in conn.execute(stmt)]
        cols = columns_from_rows(conn.execute(select(*select_columns()).where(INC.c.id.in_(ids))).all()) if ids else None
        if cols is None:
            out[name] = []
            continue
        keys = {
            "longest_open": (cols["reported_at"], cols["id"]),
            "most_reopened": (-cols["reopen_count"], cols["reported_at"], cols["id"]),
            "escalated": (-cols["escalation_level"], cols["reported_at"], cols["id"]),
        }[name]
        order_idx = np.lexsort(tuple(reversed(keys)))
        out[name] = [hard_case(cols, int(i), now, cats) for i in order_idx]
    return out
