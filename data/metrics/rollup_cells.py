"""A cell of the leaders' review roll-up (one local day, unit and department): its counts and sparse histograms, quantiles, its stored row.

The histogram bins of acknowledge and handling times grow by BIN_RATIO, so a median or p90 read from
them lies within 4.5% of the exact value (see docs/metrics.md). The cube's maintenance is data/metrics/rollups.py's.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.schema.rollups import ROLLUP_COUNTS

__all__ = [
    "BIN_RATIO",
    "COUNTS",
    "Cell",
    "Key",
    "cell_from_row",
    "cube_row",
    "day_number",
    "duration_bin",
    "merge",
    "pairs",
    "quantile",
    "read_cells",
]

CUBE = schema.trend_rollup

COUNTS = ROLLUP_COUNTS
BIN_RATIO = 2 ** (1 / 16)  # histogram bins of durations grow by 4.4%
_LOG_RATIO = math.log(BIN_RATIO)


@dataclass
class Cell:
    """The sums of one (day, unit, department) cell; histograms and categories are sparse {key: count}."""

    counts: np.ndarray = field(default_factory=lambda: np.zeros(len(COUNTS), dtype=np.int64))
    ack: dict[int, int] = field(default_factory=dict)
    handle: dict[int, int] = field(default_factory=dict)
    hours: np.ndarray = field(default_factory=lambda: np.zeros(24, dtype=np.int64))
    categories: dict[int, int] = field(default_factory=dict)

    def add(self, other: Cell, sign: int = 1) -> None:
        self.counts += sign * other.counts
        self.hours += sign * other.hours
        for mine, theirs in ((self.ack, other.ack), (self.handle, other.handle), (self.categories, other.categories)):
            for k, n in theirs.items():
                total = mine.get(k, 0) + sign * n
                if total:
                    mine[k] = total
                else:
                    mine.pop(k, None)

    def is_empty(self) -> bool:
        return not (self.counts.any() or self.hours.any() or self.ack or self.handle or self.categories)


Key = tuple[int, int, int]  # (local day number, unit id or 0, department id or 0)


def duration_bin(seconds: np.ndarray) -> np.ndarray:
    """Bin 0 holds [0, 1) s (and anything negative); bin k >= 1 holds [BIN_RATIO^(k-1), BIN_RATIO^k) s."""
    safe = np.where(seconds >= 1, seconds, 1.0)
    return np.where(seconds >= 1, np.floor(np.log(safe) / _LOG_RATIO).astype(np.int64) + 1, 0)


def _bin_bounds(k: int) -> tuple[float, float]:
    return (0.0, 1.0) if k == 0 else (BIN_RATIO ** (k - 1), BIN_RATIO**k)


def pairs(sparse) -> np.ndarray:
    """A sparse {key: count} (or an array of (key, count) rows, as read) as an array of (key, count) rows."""
    if isinstance(sparse, np.ndarray):
        return sparse
    return np.array(list(sparse.items()), dtype=np.int64).reshape(-1, 2)


def merge(sparses: list) -> tuple[np.ndarray, np.ndarray]:
    """(keys, counts) of the sum of several sparse counts, keys ascending, zero counts dropped."""
    parts = [pairs(x) for x in sparses]
    parts = [p for p in parts if len(p)]
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    stacked = np.concatenate(parts)
    sums = np.bincount(stacked[:, 0], weights=stacked[:, 1]).astype(np.int64)
    keys = np.flatnonzero(sums)
    return keys, sums[keys]


def quantile(hist, q: float) -> float | None:
    """percentile_cont(q) estimated from a histogram ({bin: count}, or merge()'s (bins, counts)): each order
    statistic placed inside its bin (evenly on a log scale), then interpolated linearly as PostgreSQL does."""
    bins, counts = merge([hist]) if isinstance(hist, dict) else hist
    n = int(counts.sum())
    if n <= 0:
        return None
    before = np.concatenate(([0], np.cumsum(counts)))

    def order_stat(rank: int) -> float:
        i = int(np.searchsorted(before, rank, side="right")) - 1
        lo, hi = _bin_bounds(int(bins[i]))
        within = (rank - before[i] + 0.5) / counts[i]
        return lo + (hi - lo) * within if bins[i] == 0 else lo * (hi / lo) ** within

    position = (n - 1) * q
    low = int(math.floor(position))
    a = order_stat(low)
    if low + 1 >= n or position == low:
        return float(a)
    return float(a + (order_stat(low + 1) - a) * (position - low))


# --- the cell as stored in trend_rollup ------------------------------------------------------------


def _pack(d: dict[int, int]) -> bytes | None:
    if not d:
        return None
    return np.array(sorted(d.items()), dtype="<i4").tobytes()


def _unpack(blob: bytes | None) -> dict[int, int]:
    if not blob:
        return {}
    pairs = np.frombuffer(blob, dtype="<i4").reshape(-1, 2)
    return dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist(), strict=True))


def cube_row(key: Key, cell: Cell) -> dict:
    """The trend_rollup row holding `cell` at `key`."""
    day, unit, dep = key
    row = {"day": day, "unit_id": unit, "department_id": dep}
    row.update({name: int(v) for name, v in zip(COUNTS, cell.counts, strict=True)})
    row.update(
        ack_hist=_pack(cell.ack),
        handle_hist=_pack(cell.handle),
        hours=cell.hours.astype("<i4").tobytes() if cell.hours.any() else None,
        categories=_pack(cell.categories),
    )
    return row


def cell_from_row(row) -> Cell:
    """The cell a trend_rollup row holds."""
    m = row._mapping
    cell = Cell(
        counts=np.array([m[name] for name in COUNTS], dtype=np.int64),
        ack=_unpack(m["ack_hist"]),
        handle=_unpack(m["handle_hist"]),
        categories=_unpack(m["categories"]),
    )
    if m["hours"]:
        cell.hours = np.frombuffer(m["hours"], dtype="<i4").astype(np.int64)
    return cell


def read_cells(conn: Connection, where: Iterable, raw: bool = False) -> dict[Key, Cell]:
    """Stored cells matching `where` (SQLAlchemy conditions on trend_rollup). `raw` leaves histograms and
    categories as arrays of (key, count) rows, for reading only: no dict per cell."""
    rows = conn.execute(select(CUBE).where(*where))
    if not raw:
        return {(r.day, r.unit_id, r.department_id): cell_from_row(r) for r in rows}
    out = {}
    for r in rows:
        m = r._mapping
        cell = Cell(
            counts=np.array([m[name] for name in COUNTS], dtype=np.int64),
            ack=_raw_pairs(m["ack_hist"]),
            handle=_raw_pairs(m["handle_hist"]),
            categories=_raw_pairs(m["categories"]),
        )
        if m["hours"]:
            cell.hours = np.frombuffer(m["hours"], dtype="<i4").astype(np.int64)
        out[(r.day, r.unit_id, r.department_id)] = cell
    return out


def _raw_pairs(blob: bytes | None) -> np.ndarray:
    if not blob:
        return np.zeros((0, 2), dtype=np.int64)
    return np.frombuffer(blob, dtype="<i4").reshape(-1, 2).astype(np.int64)


def day_number(d) -> int:
    """Days since 1970-01-01 of a date."""
    return (d - datetime(1970, 1, 1, tzinfo=UTC).date()).days
