"""What every detector is given: the Context of a pass (time, categories' sensitivity, grids, reports), read and cached.

A pass reads what it needs in a few narrow queries: the grids once per units version (with their
ancestors, centroids and nearest neighbours) and the last six weeks of reports as five numeric
columns, the settled part of them kept between passes. The tuning the detectors share lives here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import MERGED, REJECTED
from data.times import epoch_seconds

INC, U, C, D = schema.incidents, schema.units, schema.categories, schema.departments
HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0

# --- tuning shared by the detectors (thresholds are divided by a category's sensitivity) -----------

ALPHA = 0.01  # family-wise error rate of each test family (Bonferroni)
BASELINE_WEEKS = 4
HOTSPOT_NEIGHBOURS = 6  # a hotspot's scan cylinder: a grid and this many nearest neighbours
MAX_SCORE = 30.0
# Keep an alert that is already live while its evidence is at least this share of the raising threshold,
# so a condition hovering at the threshold does not flap between raised and cleared.
HYSTERESIS = 0.5


# --- reading -------------------------------------------------------------------------------------


@dataclass
class Grids:
    """The city's grids as arrays (sorted by id), with ancestors, centroids and nearest neighbours."""

    ids: np.ndarray
    community: np.ndarray  # index into communities, -1 when none
    street: np.ndarray
    communities: np.ndarray  # community unit ids
    streets: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    area: np.ndarray
    neighbours: np.ndarray  # (n, k+1) grid indexes, itself first
    city_id: int | None = None  # the root unit: city-wide surges are placed on it
    _adjacency: Any = field(default=None, repr=False)

    def index(self, grid_ids: np.ndarray) -> np.ndarray:
        """Index of each grid id (-1 for ids that are not grids)."""
        pos = np.searchsorted(self.ids, grid_ids)
        if len(self.ids) == 0:
            return np.full(len(grid_ids), -1)
        pos = np.clip(pos, 0, len(self.ids) - 1)
        return np.where(self.ids[pos] == grid_ids, pos, -1)

    @property
    def adjacency(self):
        """Sparse (grids x grids) matrix: row i sums grid i and its nearest neighbours (a scan cylinder's base)."""
        if self._adjacency is None:
            n, k = self.neighbours.shape
            rows = np.repeat(np.arange(n), k)
            self._adjacency = csr_matrix((np.ones(n * k), (rows, self.neighbours.ravel())), shape=(n, n))
        return self._adjacency


# One entry per store: the server's thread reuses grids, the reports history and the departments' pace.
_GRID_CACHE: dict[tuple, Grids] = {}


def store_key(conn: Connection) -> str:
    """Which store this is: the URL, and on PostgreSQL the schema (tests keep stores in schemas of one database)."""
    key = conn.engine.url.render_as_string(hide_password=True)
    if conn.dialect.name == "postgresql":
        key += "#" + str(conn.execute(text("SELECT current_schema()")).scalar())
    return key


def load_grids(conn: Connection) -> Grids:
    """The grids, read once per units version (count, highest id, the import's stamp) and cached in the process."""
    from data.store import get_meta

    version = conn.execute(select(func.count(), func.max(U.c.id)).where(U.c.level == schema.GRID)).one()
    key = (store_key(conn), *map(str, version), get_meta(conn, "units_version", ""))
    cached = _GRID_CACHE.get(key)
    if cached is not None:
        return cached
    arr = fetch(
        conn,
        select(
            U.c.id,
            func.coalesce(U.c.community_id, -1),
            func.coalesce(U.c.street_id, -1),
            func.coalesce(U.c.centroid_lon, 0.0),
            func.coalesce(U.c.centroid_lat, 0.0),
            func.coalesce(U.c.area_m2, 0.0),
        )
        .where(U.c.level == schema.GRID)
        .order_by(U.c.id),
        6,
    )
    ids = arr[:, 0].astype(np.int64)
    community_ids, community = np.unique(arr[:, 1].astype(np.int64), return_inverse=True)
    street_ids, street = np.unique(arr[:, 2].astype(np.int64), return_inverse=True)
    community = np.where(community_ids[community] < 0, -1, community)
    street = np.where(street_ids[street] < 0, -1, street)
    lon, lat = arr[:, 3], arr[:, 4]
    x, y = metres(lon, lat, lat.mean() if len(lat) else 0.0)
    k = min(HOTSPOT_NEIGHBOURS + 1, len(ids))
    if k > 0:
        _, neighbours = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=k)
        neighbours = neighbours.reshape(len(ids), k)
    else:
        neighbours = np.zeros((0, 1), dtype=np.int64)
    area = arr[:, 5]
    area = np.where(area > 0, area, np.median(area[area > 0]) if (area > 0).any() else 1e5)
    city_id = conn.execute(select(func.min(U.c.id)).where(U.c.level == schema.CITY)).scalar()
    grids = Grids(ids, community, street, community_ids, street_ids, lon, lat, area, neighbours.astype(np.int64), city_id)
    for old in [k_ for k_ in _GRID_CACHE if k_[0] == key[0]]:
        del _GRID_CACHE[old]
    _GRID_CACHE[key] = grids
    return grids


def metres(lon: np.ndarray, lat: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
    """Equirectangular projection to metres (plenty for 100 m distances within one city)."""
    return lon * 111_320.0 * math.cos(math.radians(lat0)), lat * 110_574.0


@dataclass
class Reports:
    """Reports of the study period as arrays: grid index, category index, epoch seconds, lon, lat."""

    grid: np.ndarray
    cat: np.ndarray
    t: np.ndarray
    lon: np.ndarray
    lat: np.ndarray


def fetch(conn: Connection, stmt, width: int) -> np.ndarray:
    """A numeric query's rows as a float array; read from the driver's cursor (no Row objects: 3x faster)."""
    result = conn.execute(stmt)
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if not rows:
        return np.zeros((0, width))
    return np.array(rows, dtype=float)


def _reports_query(columns, since: datetime, until: datetime):
    return select(*columns).where(
        INC.c.reported_at >= since,
        INC.c.reported_at < until,
        INC.c.grid_id.is_not(None),
        INC.c.state.not_in((MERGED, REJECTED)),
    )


def _read_reports(conn: Connection, grids: Grids, cat_ids: np.ndarray, since: datetime, until: datetime) -> Reports:
    """Located reports in [since, until), merged duplicates and rejected reports left out (one covering index)."""
    columns = (
        INC.c.grid_id,
        INC.c.category_id,
        epoch_seconds(INC.c.reported_at),
        func.coalesce(INC.c.lon, -999.0),
        func.coalesce(INC.c.lat, -999.0),
    )
    arr = fetch(conn, _reports_query(columns, since, until), 5)
    g = grids.index(arr[:, 0].astype(np.int64))
    cat = arr[:, 1].astype(np.int64)
    if len(cat_ids) == 0:
        keep = np.zeros(len(arr), bool)
        c = np.zeros(len(arr), np.int64)
    else:
        c = np.clip(np.searchsorted(cat_ids, cat), 0, len(cat_ids) - 1)
        keep = (g >= 0) & (cat_ids[c] == cat)
    return Reports(g[keep], c[keep], arr[keep, 2], arr[keep, 3], arr[keep, 4])


def _count_reports(conn: Connection, since: datetime, until: datetime) -> int:
    return int(conn.execute(_reports_query((func.count(),), since, until)).scalar_one())


@dataclass
class _CachedReports:
    key: tuple
    since: datetime
    until: datetime
    count: int  # rows in [since, until) when read: a later count that differs means the history changed
    reports: Reports


_REPORT_CACHE: dict[str, _CachedReports] = {}
# Reports older than this are kept between passes; younger ones are read again every pass.
SETTLED = timedelta(hours=2)


def _concat(a: Reports, b: Reports) -> Reports:
    return Reports(*(np.concatenate([getattr(a, f), getattr(b, f)]) for f in ("grid", "cat", "t", "lon", "lat")))


def _since(r: Reports, mask: np.ndarray) -> Reports:
    return Reports(r.grid[mask], r.cat[mask], r.t[mask], r.lon[mask], r.lat[mask])


def load_reports(conn: Connection, grids: Grids, cat_ids: np.ndarray, since: datetime, until: datetime) -> Reports:
    """Located reports in [since, until), merged and rejected ones left out; the settled part cached between passes.

    A pass reads only what arrived since the cached part, after checking with one index-only count
    that the cached range still holds as many reports (a back-dated import, a merge or a rejection
    there changes it, and everything is read again).
    """
    store = store_key(conn)
    key = (store, id(grids), tuple(int(c) for c in cat_ids))
    cached = _REPORT_CACHE.get(store)
    if (
        cached is not None
        and cached.key == key
        and cached.since <= since
        and since <= cached.until <= until
        and _count_reports(conn, cached.since, cached.until) == cached.count
    ):
        head = _since(cached.reports, cached.reports.t >= since.timestamp())
        tail = _read_reports(conn, grids, cat_ids, cached.until, until)
        reports = _concat(head, tail)
    else:
        reports = _read_reports(conn, grids, cat_ids, since, until)
    settled = max(until - SETTLED, since)
    old = reports.t < settled.timestamp()
    if cached is None or cached.key != key or cached.until != settled:
        _REPORT_CACHE[store] = _CachedReports(key, since, settled, _count_reports(conn, since, settled), _since(reports, old))
    return reports


@dataclass
class Context:
    """What every detector needs: the time, categories with their sensitivity, grids and reports."""

    now: float
    tz: ZoneInfo
    cat_ids: np.ndarray
    sensitivity: np.ndarray  # per category index; 0 = disabled
    grids: Grids
    reports: Reports
    history_start: float  # the earliest report in the store (epoch seconds)
    live_keys: set[str]


def clear_caches() -> None:
    """Forget the grids and reports kept between passes."""
    _GRID_CACHE.clear()
    _REPORT_CACHE.clear()
