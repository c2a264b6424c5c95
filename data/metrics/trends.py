"""The leaders' review (reads only): received vs closed, backlog, the three rates, times, rankings, heat calendar, hard cases.

Every figure is defined in docs/metrics.md. One call, ``review(conn, scope, now, tz, ...)``, reads the
incidents that overlap the period (and the equally long period before it) once and derives every
figure from those rows, so each figure of the page agrees with every other.

Periods and buckets are wall-clock spans in the city's time zone: a day runs from local midnight to
local midnight, a week from Monday, a month from the 1st. Instants are compared half-open:
``start <= t < end``. Merged duplicates (一件事一次办) are left out of every figure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import and_, false, or_, select, true, union_all
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.incidents.lifecycle import DISPATCHED, MERGED, SECTORS
from data.metrics.kpis import SATISFIED_MIN, SCOPE_COLUMNS, Scope, normalise_scope, normalise_tz
from data.times import epoch_seconds, to_utc

__all__ = [
    "GRANULARITIES",
    "PERIOD_DAYS",
    "LeagueThresholds",
    "Period",
    "bucket_starts",
    "period_window",
    "review",
]

INC = schema.incidents
PERIOD_DAYS = (7, 30, 90, 365)
GRANULARITIES = ("day", "week", "month")
HARD_CASES = 10
RISING = 10
# The unit level compared side by side under each scope level: the city compares districts, and so on.
CHILD_LEVEL = {schema.CITY: schema.DISTRICT, schema.DISTRICT: schema.STREET, schema.STREET: schema.COMMUNITY}
CHILD_LEVEL[schema.COMMUNITY] = schema.GRID
CHILD_LEVEL[schema.GRID] = schema.GRID


@dataclass(frozen=True)
class Period:
    """The span reviewed, [start, end), and the equally long span before it, [previous_start, start), in UTC."""

    start: datetime
    end: datetime
    previous_start: datetime
    tz: str


@dataclass(frozen=True)
class LeagueThresholds:
    """When a department earns the red list (红榜) or a yellow card (黄牌). Shares are of the department's
    own volume, so a big department is not carded just for being big; `min_volume` keeps a department
    with a handful of cases off both lists."""

    min_volume: int = 5
    red_min_on_time: float = 0.95
    red_max_nobody_came: float = 0.02
    red_max_no_effect: float = 0.02
    yellow_below_on_time: float = 0.80
    yellow_nobody_came: float = 0.10
    yellow_no_effect: float = 0.10

    def __post_init__(self) -> None:
        for key, value in self.__dict__.items():
            if key != "min_volume" and not 0 <= value <= 1:
                raise ValidationError(f"threshold {key} must be a share between 0 and 1; got {value!r}")
        if self.min_volume < 0:
            raise ValidationError("min_volume must not be negative")


# --- periods and buckets ---------------------------------------------------------------------


def _local_midnight(d: date, zone: ZoneInfo) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(UTC)


def period_window(now: datetime, tz: Any, days: int | None = 30, first: date | None = None, last: date | None = None) -> Period:
    """The last `days` local days up to `now` (today included), or the custom local dates first..last inclusive."""
    tz = normalise_tz(tz)
    zone = ZoneInfo(tz)
    now = to_utc(now, "now")
    today = now.astimezone(zone).date()
    if first is not None or last is not None:
        if first is None or last is None or first > last:
            raise ValidationError("a custom period needs a first and a last date, the first not after the last")
        start = _local_midnight(first, zone)
        end = min(_local_midnight(last + timedelta(days=1), zone), now)
        if end <= start:
            raise ValidationError("a custom period must start before now")
        length = (last - first).days + 1
        previous_start = _local_midnight(first - timedelta(days=length), zone)
        return Period(start, end, previous_start, tz)
    if days not in PERIOD_DAYS:
        raise ValidationError(f"period must be one of {', '.join(map(str, PERIOD_DAYS))} days or a custom range")
    first_day = today - timedelta(days=days - 1)
    return Period(_local_midnight(first_day, zone), now, _local_midnight(first_day - timedelta(days=days), zone), tz)


def bucket_starts(period: Period, granularity: str) -> list[datetime]:
    """UTC instants at which each bucket begins; the first is clipped to the period's start."""
    if granularity not in GRANULARITIES:
        raise ValidationError(f"granularity must be one of {', '.join(GRANULARITIES)}")
    zone = ZoneInfo(period.tz)
    d = period.start.astimezone(zone).date()
    if granularity == "week":
        d -= timedelta(days=d.weekday())
    elif granularity == "month":
        d = d.replace(day=1)
    starts = []
    while _local_midnight(d, zone) < period.end:
        starts.append(max(_local_midnight(d, zone), period.start))
        if granularity == "day":
            d += timedelta(days=1)
        elif granularity == "week":
            d += timedelta(days=7)
        else:
            d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return starts


# --- reading: the incidents as columns ---------------------------------------------------------------

TIME_COLUMNS = (
    "reported_at",
    "dispatched_at",
    "acknowledged_at",
    "resolved_at",
    "closed_at",
    "rejected_at",
    "ack_due_at",
    "handle_due_at",
)
ID_COLUMNS = ("id", "category_id", "district_id", "street_id", "community_id", "grid_id", "assignee_department_id")


@dataclass
class Columns:
    """The incidents read, one numpy array per column: times as seconds since 1970 (NaN for never),
    ids as int64 (-1 for none), ack_late as 1/0 (NaN when unknown). Vectorised sums over these keep a
    review one pass per figure, whatever the number of buckets, units or departments."""

    data: dict[str, np.ndarray]
    state: np.ndarray

    def __getitem__(self, key: str) -> np.ndarray:
        return self.data[key]

    def __len__(self) -> int:
        return len(self.state)

    def take(self, mask: np.ndarray) -> Columns:
        return Columns({k: v[mask] for k, v in self.data.items()}, self.state[mask])


def _read(conn: Connection, scope: Scope | None, period: Period) -> Columns:
    """Incidents (not merged) reported before the period's end and not closed or rejected before the previous period began."""
    # Seconds computed by the database: parsing a million timestamps into Python datetimes would cost more than the query.
    cols = _select_columns()
    scoped = [INC.c.state != MERGED]
    if scope is not None:
        scoped.append(INC.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    older = INC.c.reported_at < period.previous_start
    # Three disjoint parts, each read through an index rather than one scan of all history: reported
    # in the two periods; reported earlier and still open; reported earlier and ended (closed or
    # rejected, which touches updated_at) since the previous period began.
    branches = (
        and_(INC.c.reported_at >= period.previous_start, INC.c.reported_at < period.end),
        and_(INC.c.is_open == true(), older),
        and_(
            INC.c.updated_at >= period.previous_start,
            INC.c.is_open == false(),
            older,
            or_(INC.c.closed_at >= period.previous_start, INC.c.rejected_at >= period.previous_start),
        ),
    )
    stmt = union_all(*(select(*cols).where(branch, *scoped) for branch in branches))
    return _columns(conn.execute(stmt).all())


def _select_columns() -> list:
    """What _columns() converts: ids, times as seconds since 1970, flags and the state."""
    return [
        *(INC.c[c] for c in ID_COLUMNS),
        *(epoch_seconds(INC.c[c]).label(c) for c in TIME_COLUMNS),
        INC.c.ack_late,
        INC.c.satisfaction,
        INC.c.reopen_count,
        INC.c.escalation_level,
        INC.c.state,
    ]


def _columns(rows: list) -> Columns:
    """Rows of _select_columns() as Columns."""
    names = [*ID_COLUMNS, *TIME_COLUMNS, "ack_late", "satisfaction", "reopen_count", "escalation_level", "state"]
    raw = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    by_name = dict(zip(names, raw, strict=True))
    data: dict[str, np.ndarray] = {}
    for c in ID_COLUMNS:
        values = np.array(by_name[c], dtype=float)  # None -> NaN, then -1 for "none"
        data[c] = np.where(np.isnan(values), -1, values).astype(np.int64)
    for c in TIME_COLUMNS:
        data[c] = np.array(by_name[c], dtype=float)  # None -> NaN
    data["ack_late"] = np.array(by_name["ack_late"], dtype=float)
    data["satisfaction"] = np.array(by_name["satisfaction"], dtype=float)
    data["reopen_count"] = np.array(by_name["reopen_count"], dtype=np.int64)
    data["escalation_level"] = np.array(by_name["escalation_level"], dtype=np.int64)
    data["ended_at"] = np.fmin(data["closed_at"], data["rejected_at"])  # fmin ignores NaN
    return Columns(data, np.array(by_name["state"], dtype=object))


# --- figures, per group ---------------------------------------------------------------------------------


def _ratio(part, whole) -> float | None:
    return float(part) / float(whole) if whole else None


class Grouping:
    """How rows fall into groups for one instant column: a label 0..n-1 per row, or -1 for none.

    For a time series the label is the bucket the instant falls in; for units or departments it is
    the row's unit or department, when the instant falls in the period."""

    def __init__(self, edges: np.ndarray, end: float, row_group: np.ndarray | None = None, n: int | None = None):
        self.edges, self.end, self.row_group = edges, end, row_group
        self.n = n if n is not None else len(edges)

    def labels(self, t: np.ndarray) -> np.ndarray:
        inside = (t >= self.edges[0]) & (t < self.end)  # NaN compares false: never happened
        if self.row_group is None:
            idx = np.searchsorted(self.edges, np.where(inside, t, self.edges[0]), side="right") - 1
            return np.where(inside, idx, -1)
        return np.where(inside, self.row_group, -1)

    def backlog_at(self, cols: Columns, now: float) -> np.ndarray:
        """Open incidents at the end of each group's span (or now): reported before, not yet closed or rejected."""
        if self.row_group is None:
            ends = np.minimum(np.append(self.edges[1:], self.end), now)
            reported = np.sort(cols["reported_at"])
            ended = np.sort(cols["ended_at"][~np.isnan(cols["ended_at"])])
            # An incident ends after it is reported, so "reported before t" minus "ended before t" is open at t.
            return np.searchsorted(reported, ends, side="left") - np.searchsorted(ended, ends, side="left")
        at = min(self.end, now)
        open_then = (cols["reported_at"] < at) & ~(cols["ended_at"] < at) & (self.row_group >= 0)
        return np.bincount(self.row_group[open_then], minlength=self.n)


def _count(labels: np.ndarray, n: int, where: np.ndarray | None = None) -> np.ndarray:
    keep = labels >= 0 if where is None else (labels >= 0) & where
    return np.bincount(labels[keep], minlength=n)


def _quantiles(labels: np.ndarray, values: np.ndarray, n: int) -> tuple[list, list]:
    """Per group: the median and p90 (linear interpolation, as PostgreSQL's percentile_cont)."""
    keep = (labels >= 0) & ~np.isnan(values)
    labels, values = labels[keep], values[keep]
    order = np.lexsort((values, labels))
    labels, values = labels[order], values[order]
    bounds = np.searchsorted(labels, np.arange(n + 1))
    med, p90 = [None] * n, [None] * n
    for g in range(n):
        chunk = values[bounds[g] : bounds[g + 1]]
        if len(chunk):
            med[g], p90[g] = (float(x) for x in np.quantile(chunk, [0.5, 0.9]))
    return med, p90


def _figures(cols: Columns, grouping: Grouping, now: float) -> list[dict]:
    """Every per-span figure of docs/metrics.md for each group (see Grouping)."""
    n = grouping.n
    received = _count(grouping.labels(cols["reported_at"]), n)
    closed_l = grouping.labels(cols["closed_at"])
    closed = _count(closed_l, n)
    first_time = _count(closed_l, n, cols["reopen_count"] == 0)
    rated_mask = ~np.isnan(cols["satisfaction"])
    rated = _count(closed_l, n, rated_mask)
    satisfied = _count(closed_l, n, rated_mask & (cols["satisfaction"] >= SATISFIED_MIN))
    ack_l = grouping.labels(cols["acknowledged_at"])
    acknowledged = _count(ack_l, n)
    ack_on_time = _count(ack_l, n, cols["ack_late"] == 0)
    ack_late = _count(ack_l, n, cols["ack_late"] == 1)
    # Still waiting for someone to come, their acknowledge deadline passed within the span (before now).
    waiting = (cols.state == DISPATCHED) & np.isnan(cols["acknowledged_at"]) & (cols["ack_due_at"] < now)
    waiting_late = _count(grouping.labels(cols["ack_due_at"]), n, waiting)
    res_l = grouping.labels(cols["resolved_at"])
    timed_mask = ~np.isnan(cols["handle_due_at"])
    resolved = _count(res_l, n)
    resolved_timed = _count(res_l, n, timed_mask)
    on_time = _count(res_l, n, timed_mask & (cols["resolved_at"] <= cols["handle_due_at"]))
    no_effect = _count(res_l, n, cols["reopen_count"] > 0)
    med_ack, p90_ack = _quantiles(ack_l, cols["acknowledged_at"] - cols["dispatched_at"], n)
    med_handle, p90_handle = _quantiles(res_l, cols["resolved_at"] - cols["dispatched_at"], n)
    backlog = grouping.backlog_at(cols, now)
    out = []
    for g in range(n):
        due = int(acknowledged[g] + waiting_late[g])
        out.append(
            {
                "received": int(received[g]),
                "closed": int(closed[g]),
                "backlog": int(backlog[g]),
                "response_rate": _ratio(ack_on_time[g], due),
                "resolution_rate": _ratio(first_time[g], closed[g]),
                "satisfaction_rate": _ratio(satisfied[g], rated[g]),
                "on_time_rate": _ratio(on_time[g], resolved_timed[g]),
                "median_ack_s": med_ack[g],
                "p90_ack_s": p90_ack[g],
                "median_handle_s": med_handle[g],
                "p90_handle_s": p90_handle[g],
                # the counts the rates are made of, for the league table and the exports
                "due_for_ack": due,
                "ack_on_time": int(ack_on_time[g]),
                "nobody_came": int(ack_late[g] + waiting_late[g]),
                "rated": int(rated[g]),
                "satisfied": int(satisfied[g]),
                "first_time": int(first_time[g]),
                "resolved": int(resolved[g]),
                "resolved_timed": int(resolved_timed[g]),
                "on_time": int(on_time[g]),
                "no_effect": int(no_effect[g]),
            }
        )
    return out


def _span(start: datetime, end: datetime) -> Grouping:
    return Grouping(np.array([start.timestamp()]), end.timestamp())


def _by_key(keys: np.ndarray, start: datetime, end: datetime) -> tuple[list[int], Grouping]:
    """Group rows by an id column (unit or department) over [start, end): (the ids, in label order; the grouping)."""
    unique = np.unique(keys[keys >= 0])
    row_group = np.where(keys >= 0, np.searchsorted(unique, keys), -1).astype(np.int64)
    return [int(k) for k in unique], Grouping(np.array([start.timestamp()]), end.timestamp(), row_group, len(unique))


# --- the review ----------------------------------------------------------------------------------


def review(
    conn: Connection,
    scope: Any,
    now: datetime,
    tz: Any,
    days: int | None = 30,
    granularity: str = "day",
    first: date | None = None,
    last: date | None = None,
    thresholds: LeagueThresholds | None = None,
    use_rollups: bool = True,
) -> dict:
    """Every figure of /trends for a scope and period, as plain data (see docs/metrics.md).

    {"period": {start, end, previous_start, tz, granularity}, "totals": figures, "previous": figures,
     "series": [{start, **figures}], "sectors": [{start, sector, received}], "categories": [...],
     "rising": [...], "units": [...], "league": [...], "heat": 7×24 counts, "hard_cases": {...}}.
    With `use_rollups` (the default) a city, district or street is answered from the roll-up when it
    has been built in this time zone: the same figures, medians and p90s within 4.5%.
    """
    scope = normalise_scope(scope)
    now = to_utc(now, "now")
    period = period_window(now, tz, days, first, last)
    starts = bucket_starts(period, granularity)
    thresholds = thresholds or LeagueThresholds()
    if use_rollups:
        # The roll-up (data/metrics/rollups.py) answers a city, district or street in milliseconds once built.
        from data.metrics import trends_rollup

        answer = trends_rollup.review(conn, scope, now, period, starts, granularity, thresholds)
        if answer is not None:
            return answer
    cols = _read(conn, scope, period)
    t_now = now.timestamp()
    series_grouping = Grouping(np.array([s.timestamp() for s in starts]), period.end.timestamp())
    series = [{"start": s, **f} for s, f in zip(starts, _figures(cols, series_grouping, t_now), strict=True)]
    names = _names(conn)
    categories = _categories(cols, period, names["categories"])
    return {
        "period": {
            "start": period.start,
            "end": period.end,
            "previous_start": period.previous_start,
            "tz": period.tz,
            "granularity": granularity,
        },
        "totals": _figures(cols, _span(period.start, period.end), t_now)[0],
        "previous": _figures(cols, _span(period.previous_start, period.start), t_now)[0],
        "series": series,
        "sectors": _sectors(cols, starts, series_grouping, names["categories"]),
        "categories": categories,
        "rising": _rising(categories),
        "units": _units(conn, cols, scope, period, t_now),
        "league": _league(cols, period, t_now, names["departments"], thresholds),
        "heat": _heat(cols, period),
        "hard_cases": _hard_cases(cols, period, t_now, names["categories"]),
    }


def _names(conn: Connection) -> dict[str, dict[int, dict]]:
    c, d = schema.categories, schema.departments
    cats = {r.id: dict(r._mapping) for r in conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh, c.c.sector))}
    deps = {r.id: dict(r._mapping) for r in conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh))}
    return {"categories": cats, "departments": deps}


def _sectors(cols: Columns, starts: list[datetime], grouping: Grouping, cats: dict) -> list[dict]:
    """Incidents received per bucket and sector (四板块), every sector in every bucket."""
    labels = grouping.labels(cols["reported_at"])
    sector_of = np.zeros(max(cats, default=0) + 1, dtype=np.int64)
    for cid, c in cats.items():
        sector_of[cid] = SECTORS.index(c["sector"])
    sector = sector_of[cols["category_id"]]
    keep = labels >= 0
    counts = np.bincount(labels[keep] * len(SECTORS) + sector[keep], minlength=len(starts) * len(SECTORS))
    return [
        {"start": starts[i], "sector": s, "received": int(counts[i * len(SECTORS) + j])}
        for i in range(len(starts))
        for j, s in enumerate(SECTORS)
    ]


def _category_counts(cols: Columns, start: datetime, end: datetime) -> dict[int, int]:
    t = cols["reported_at"]
    inside = (t >= start.timestamp()) & (t < end.timestamp())
    ids, counts = np.unique(cols["category_id"][inside], return_counts=True)
    return {int(i): int(n) for i, n in zip(ids, counts, strict=True)}


def _categories(cols: Columns, period: Period, cats: dict) -> list[dict]:
    """Received per category in the period and the one before, busiest first."""
    return _category_table(
        _category_counts(cols, period.start, period.end), _category_counts(cols, period.previous_start, period.start), cats
    )


def _category_table(now_c: dict[int, int], before: dict[int, int], cats: dict) -> list[dict]:
    """Rows of category, received now and before, change: busiest first (categories with any count)."""
    out = []
    for cid in sorted(set(now_c) | set(before)):
        row = {k: v for k, v in cats[cid].items() if k != "id"}
        row.update(category_id=cid, received=now_c.get(cid, 0), previous=before.get(cid, 0))
        row["change"] = row["received"] - row["previous"]
        out.append(row)
    return sorted(out, key=lambda r: (-r["received"], r["code"]))


def _rising(categories: list[dict]) -> list[dict]:
    """The categories whose received count rose most against the previous period (rises only)."""
    rising = [r for r in categories if r["change"] > 0]
    return sorted(rising, key=lambda r: (-r["change"], -r["received"], r["code"]))[:RISING]


def _units(conn: Connection, cols: Columns, scope: Scope | None, period: Period, now: float) -> list[dict]:
    """The figures of each unit one level below the scope (districts for the city, streets for a district...)."""
    level = CHILD_LEVEL[scope.level if scope else schema.CITY]
    u = schema.units
    stmt = select(u.c.id, u.c.code, u.c.name_en, u.c.name_zh).where(u.c.level == level)
    if scope is not None and scope.level == schema.GRID:
        stmt = stmt.where(u.c.id == scope.unit_id)
    elif scope is not None:
        stmt = stmt.where(u.c[SCOPE_COLUMNS[scope.level]] == scope.unit_id)
    units = {r.id: dict(r._mapping) for r in conn.execute(stmt)}
    keys = cols[SCOPE_COLUMNS[level]]
    ids, grouping = _by_key(np.where(np.isin(keys, list(units)), keys, -1), period.start, period.end)
    figures = dict(zip(ids, _figures(cols, grouping, now), strict=True))
    empty = _figures(cols.take(np.zeros(len(cols), bool)), _span(period.start, period.end), now)[0]
    out = [{"unit_id": uid, "level": level, **units[uid], **figures.get(uid, empty)} for uid in units]
    for row in out:
        row.pop("id", None)
    return sorted(out, key=lambda r: (-r["received"], r["code"]))


def _league(cols: Columns, period: Period, now: float, deps: dict, t: LeagueThresholds) -> list[dict]:
    """The department league table: each department's figures over the period, ranked, with red list and yellow cards."""
    ids, grouping = _by_key(cols["assignee_department_id"], period.start, period.end)
    out = []
    for dep_id, f in zip(ids, _figures(cols, grouping, now), strict=True):
        volume = f["due_for_ack"] + f["resolved"]
        if not volume:
            continue
        row = {
            "department_id": dep_id,
            **{k: deps[dep_id][k] for k in ("code", "name_en", "name_zh")},
            **f,
            "volume": volume,
            "nobody_came_share": _ratio(f["nobody_came"], f["due_for_ack"]),
            "no_effect_share": _ratio(f["no_effect"], f["resolved"]),
        }
        row["card"] = _card(row, t)
        out.append(row)
    out.sort(key=_rank_key)
    for rank, row in enumerate(out, 1):
        row["rank"] = rank
    return out


def _card(row: dict, t: LeagueThresholds) -> str | None:
    """'yellow' (黄牌预警), 'red' (红榜) or None; a yellow card outweighs any red-list merit."""
    if row["volume"] < t.min_volume:
        return None
    on_time, nobody, no_effect = row["on_time_rate"], row["nobody_came_share"] or 0.0, row["no_effect_share"] or 0.0
    if (
        (on_time is not None and on_time < t.yellow_below_on_time)
        or nobody >= t.yellow_nobody_came
        or no_effect >= t.yellow_no_effect
    ):
        return "yellow"
    if (
        on_time is not None
        and on_time >= t.red_min_on_time
        and nobody <= t.red_max_nobody_came
        and no_effect <= t.red_max_no_effect
    ):
        return "red"
    return None


def _rank_key(row: dict) -> tuple:
    """Best first: on-time rate, then response rate, then fewest no-shows and no-effects by share."""

    def rate(value: float | None) -> float:
        return -(value if value is not None else -1.0)

    return (
        rate(row["on_time_rate"]),
        rate(row["response_rate"]),
        row["nobody_came_share"] or 0.0,
        row["no_effect_share"] or 0.0,
        row["code"],
    )


def _heat(cols: Columns, period: Period) -> list[list[int]]:
    """Incidents received in the period by local weekday (Monday first) and hour: 7 lists of 24 counts."""
    t = cols["reported_at"]
    t = t[(t >= period.start.timestamp()) & (t < period.end.timestamp())]
    grid = np.zeros((7, 24), dtype=np.int64)
    if len(t):
        # Local wall-clock time through pandas, so daylight-saving zones place each hour right.
        local = pd.to_datetime(t, unit="s", utc=True).tz_convert(period.tz)
        np.add.at(grid, (local.day_of_week.to_numpy(), local.hour.to_numpy()), 1)
    return grid.tolist()


def _case(cols: Columns, i: int, now: float, cats: dict) -> dict:
    ended = cols["ended_at"][i]
    cat = cats[int(cols["category_id"][i])]
    return {
        "id": int(cols["id"][i]),
        "category": cat["code"],
        "name_en": cat["name_en"],
        "name_zh": cat["name_zh"],
        "state": cols.state[i],
        "reported_at": datetime.fromtimestamp(cols["reported_at"][i], UTC),
        "open_days": round(((now if np.isnan(ended) else ended) - cols["reported_at"][i]) / 86400, 1),
        "reopen_count": int(cols["reopen_count"][i]),
        "escalation_level": int(cols["escalation_level"][i]),
    }


def _hard_cases(cols: Columns, period: Period, now: float, cats: dict) -> dict[str, list[dict]]:
    """Hard cases: the longest open now, the most reopened and the escalated among those live in the period."""
    ended, reported, ids = cols["ended_at"], cols["reported_at"], cols["id"]
    live = (reported < period.end.timestamp()) & ~(ended < period.start.timestamp())

    def top(mask: np.ndarray, *keys: np.ndarray) -> list[dict]:
        rows = np.flatnonzero(mask)
        order = np.lexsort(tuple(k[rows] for k in reversed(keys)))  # first key sorts first
        return [_case(cols, i, now, cats) for i in rows[order][:HARD_CASES]]

    return {
        "longest_open": top(np.isnan(ended), reported, ids),
        "most_reopened": top(live & (cols["reopen_count"] > 0), -cols["reopen_count"], reported, ids),
        "escalated": top(live & (cols["escalation_level"] > 0), -cols["escalation_level"], reported, ids),
    }
