"""What the leaders' review reads: the incidents as numpy columns, category and department names, a hard case's row."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import and_, false, or_, select, true, union_all
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import MERGED
from data.metrics.review_periods import Period
from data.metrics.scope import SCOPE_COLUMNS, Scope
from data.schema.rollups import ROLLUP_TIMES
from data.times import epoch_seconds

__all__ = ["HARD_CASES", "Columns", "columns_from_rows", "hard_case", "read_columns", "read_names", "select_columns"]

INC = schema.incidents
HARD_CASES = 10

TIME_COLUMNS = ROLLUP_TIMES
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


def read_columns(conn: Connection, scope: Scope | None, period: Period) -> Columns:
    """Incidents (not merged) reported before the period's end and not closed or rejected before the previous period began."""
    # Seconds computed by the database: parsing a million timestamps into Python datetimes would cost more than the query.
    cols = select_columns()
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
    return columns_from_rows(conn.execute(stmt).all())


def select_columns() -> list:
    """What columns_from_rows() converts: ids, times as seconds since 1970, flags and the state."""
    return [
        *(INC.c[c] for c in ID_COLUMNS),
        *(epoch_seconds(INC.c[c]).label(c) for c in TIME_COLUMNS),
        INC.c.ack_late,
        INC.c.satisfaction,
        INC.c.reopen_count,
        INC.c.escalation_level,
        INC.c.state,
    ]


def columns_from_rows(rows: list) -> Columns:
    """Rows of select_columns() as Columns."""
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


def read_names(conn: Connection) -> dict[str, dict[int, dict]]:
    """Codes and names of every category (with its sector) and department, by id."""
    c, d = schema.categories, schema.departments
    cats = {r.id: dict(r._mapping) for r in conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh, c.c.sector))}
    deps = {r.id: dict(r._mapping) for r in conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh))}
    return {"categories": cats, "departments": deps}


def hard_case(cols: Columns, i: int, now: float, cats: dict) -> dict:
    """Row `i` of `cols` as a hard case of the review (days open up to `now`, or until it ended)."""
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
