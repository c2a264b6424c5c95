"""Early-warning detection (预测预警): surges, new hotspots, chronic places and deadlines about to be missed.

One pass reads what it needs in a few narrow queries (the last six weeks of reports as five numeric
columns, the grids once per units version, the open incidents whose clock runs, the departments'
recent pace) and tests every unit and category at once with numpy/scipy:

- Surge: per unit (grid, community, street) x category, the count in the last 6 h and 24 h against
  the unit's own seasonal baseline: its count over the past weeks (shrunk towards the level's mean)
  times the share of the category's city-wide volume that fell in the same weekday-and-hour window
  of those weeks. Poisson upper tail, Bonferroni over every unit, category and window of a level.
- Hotspot: a prospective space-time scan (Kulldorff) over cylinders of a grid and its nearest
  neighbours and the last 1, 3 and 7 days, per category and for all categories: expected = the
  cylinder's own past four weeks (shrunk towards an average zone) x the category's recent-to-past
  ratio in the rest of the city, so a place that was always busy is not "new" and city-wide weather
  is not local; Poisson tail, Bonferroni, then the best non-overlapping clusters.
- Chronic: the same category at the same spot (reports within 100 m of one another) on several
  different days within four weeks, closed or not, far beyond what the spot's share of its grid's
  volume explains.
- Deadline: open incidents whose running clock (data/incidents/clock.py) will likely expire before the
  assignee department finishes, from the department's recent durations (conditional on the time
  already spent) stretched by its current queue against its usual one (Little's law).

Sensitivity per category (data/warnings/alerts.py) divides the thresholds. Findings go to
data.warnings.record_findings, which deduplicates per condition.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix, csr_matrix
from scipy.spatial import cKDTree
from scipy.special import betainc, pdtrc
from sqlalchemy import Engine, and_, case, func, select, text, true
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.clock import active_due_expression, overdue_expression
from data.incidents.lifecycle import ACKNOWLEDGED, DISPATCHED, MERGED, REJECTED
from data.times import epoch_seconds, to_utc, utc_now

log = logging.getLogger(__name__)

INC, U, C, D = schema.incidents, schema.units, schema.categories, schema.departments
HOUR, DAY, WEEK = 3600.0, 86400.0, 7 * 86400.0

# --- tuning (thresholds are divided by a category's sensitivity) -----------------------------------

ALPHA = 0.01  # family-wise error rate of each test family (Bonferroni)
SURGE_WINDOWS_H = (6, 24)
BASELINE_WEEKS = 4
SURGE_MIN_COUNT = 3
SURGE_MIN_COUNT_CITY = 10
SURGE_CV = 0.3  # day-to-day swing of a category's level, beyond Poisson noise (negative binomial)
SURGE_PRIOR_UNITS = 1.0  # shrink each unit's history towards its level's mean by one unit's worth
SURGE_COOLDOWN = 12 * HOUR
HOTSPOT_DAYS = (1, 3, 7)
HOTSPOT_NEIGHBOURS = 6
HOTSPOT_MIN_COUNT = 5
HOTSPOT_MIN_RATIO = 3.0
HOTSPOT_PRIOR_ZONES = 1.0
HOTSPOT_COOLDOWN = 3 * DAY
CHRONIC_DAYS = 28
CHRONIC_RADIUS_M = 50.0  # "the same place": reports within 50 m of one of them, so within ~100 m of each other
CHRONIC_MIN_COUNT = 4
CHRONIC_PRIOR = 20.0
CHRONIC_MIN_DAYS = 3
CHRONIC_LOG10_P = 7.0  # at sensitivity 1: the spot's count has p < 1e-7 given its area's volume
CHRONIC_COOLDOWN = 14 * DAY
DEADLINE_PACE_SAMPLE = 20_000  # the department pace comes from the latest acknowledged incidents
DEADLINE_MIN_LEFT = 10 * 60.0  # less time than this is no longer "time to act": the overdue alarm takes over
DEADLINE_HORIZON = 8 * HOUR
DEADLINE_MIN_SAMPLES = 20
DEADLINE_MIN_QUEUE = 5.0
DEADLINE_COOLDOWN = 6 * HOUR
MAX_SCORE = 30.0
# Keep an alert that is already live while its evidence is at least this share of the raising threshold,
# so a condition hovering at the threshold does not flap between raised and cleared.
HYSTERESIS = 0.5

LEVEL_COLUMNS = {schema.GRID: "grid", schema.COMMUNITY: "community", schema.STREET: "street"}
PARTS_OF_DAY = [(0, "night", "凌晨"), (6, "morning", "上午"), (12, "afternoon", "下午"), (18, "evening", "晚间")]
WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
WEEKDAYS_ZH = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
ALL_KINDS = ("surge", "hotspot", "chronic", "deadline")
PASS_LOCK = 727003  # PostgreSQL advisory lock: one pass writes at a time


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
    arr = _fetch(
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
    x, y = _metres(lon, lat, lat.mean() if len(lat) else 0.0)
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


def _metres(lon: np.ndarray, lat: np.ndarray, lat0: float) -> tuple[np.ndarray, np.ndarray]:
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


def _fetch(conn: Connection, stmt, width: int) -> np.ndarray:
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
    arr = _fetch(conn, _reports_query(columns, since, until), 5)
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


# --- helpers ----------------------------------------------------------------------------------------


def _log10_p(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """-log10 of the Poisson upper tail P(X >= observed | expected)."""
    p = pdtrc(observed - 1, np.maximum(expected, 1e-12))
    return -np.log10(np.maximum(p, 1e-300))


def _log10_p_nb(observed: np.ndarray, expected: np.ndarray, cv: float) -> np.ndarray:
    """-log10 of the negative binomial upper tail P(X >= observed) with mean `expected` and variance
    expected + (cv * expected)^2: Poisson noise plus day-to-day swings of the level (weather, events)."""
    size = 1.0 / cv**2
    p = betainc(np.maximum(observed, 1e-9), size, np.maximum(expected, 1e-12) / (size + np.maximum(expected, 1e-12)))
    return -np.log10(np.maximum(p, 1e-300))


def _p_text(log10_p: float) -> str:
    p = 10 ** (-log10_p)
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _expected_text(value: float) -> str:
    """An expected count as people read it: 4.1, 0.35, 0.004."""
    return f"{value:.1f}" if value >= 1 else f"{value:.2g}"


def _local_when(now: float, tz: ZoneInfo) -> tuple[str, str]:
    local = datetime.fromtimestamp(now, tz)
    part = [p for p in PARTS_OF_DAY if local.hour >= p[0]][-1]
    return f"{WEEKDAYS_EN[local.weekday()]} {part[1]}", f"{WEEKDAYS_ZH[local.weekday()]}{part[2]}"


def _threshold(base: float, sensitivity: np.ndarray) -> np.ndarray:
    return base / np.where(sensitivity > 0, sensitivity, np.inf)


# --- surges ----------------------------------------------------------------------------------------


def detect_surges(ctx: Context) -> list[dict]:
    """Units x categories far above their own seasonal baseline in the last 6 h or 24 h."""
    r, g = ctx.reports, ctx.grids
    n_cat = len(ctx.cat_ids)
    weeks = int(min(BASELINE_WEEKS, (ctx.now - max(SURGE_WINDOWS_H) * HOUR - ctx.history_start) // WEEK))
    if weeks < 1 or n_cat == 0 or len(r.t) == 0:
        return []
    units_of = {
        schema.GRID: (r.grid, len(g.ids), g.ids),
        schema.COMMUNITY: (g.community[r.grid], len(g.communities), g.communities),
        schema.STREET: (g.street[r.grid], len(g.streets), g.streets),
    }
    if g.city_id is not None:
        units_of[schema.CITY] = (np.zeros(len(r.grid), dtype=np.int64), 1, np.array([g.city_id]))
    age = ctx.now - r.t
    rows = []
    for window_h in SURGE_WINDOWS_H:
        w = window_h * HOUR
        recent = age <= w
        baseline = (age > w) & (age <= w + weeks * WEEK)
        phase = np.mod(age, WEEK)
        seasonal = baseline & (phase > 0) & (phase <= w)
        city_base = np.bincount(r.cat[baseline], minlength=n_cat).astype(float)
        city_season = np.bincount(r.cat[seasonal], minlength=n_cat).astype(float)
        # The window's share of a week's volume, shrunk towards the flat w / WEEK by one pseudo-report
        # so that a category never seen at this hour is not "impossible" now.
        share = (city_season + 1.0) / ((city_base + WEEK / w) * weeks)
        city_observed = np.bincount(r.cat[recent], minlength=n_cat).astype(float)
        city_expected = city_season / weeks
        for level, (unit, n_units, unit_ids) in units_of.items():
            ok = unit >= 0
            key = unit * n_cat + r.cat
            observed = np.bincount(key[recent & ok], minlength=n_units * n_cat).reshape(n_units, n_cat)
            history = np.bincount(key[baseline & ok], minlength=n_units * n_cat).reshape(n_units, n_cat).astype(float)
            if n_units > 1:
                # Shrink towards the level's mean so a unit with no history is not "infinitely" surprised.
                history += SURGE_PRIOR_UNITS * history.sum(axis=0) / n_units
            tests = n_units * int((ctx.sensitivity > 0).sum()) * len(SURGE_WINDOWS_H)
            least = (SURGE_MIN_COUNT_CITY if level == schema.CITY else SURGE_MIN_COUNT) / np.maximum(ctx.sensitivity, 1e-9)
            u_idx, c_idx = np.nonzero(observed >= least[None, :])
            if len(u_idx) == 0:
                continue
            o = observed[u_idx, c_idx].astype(float)
            lam = history[u_idx, c_idx] * share[c_idx]
            if level != schema.CITY:
                # When the whole city is busier with this category (rain, a holiday), expect that here too:
                # the rest of the city's observed / expected, never below 1. The city itself is tested above.
                rest = (city_observed[c_idx] - o) / np.maximum(city_expected[c_idx] - lam, 1e-9)
                lam = lam * np.clip(rest, 1.0, None)
            score = _log10_p_nb(o, lam, SURGE_CV) - math.log10(tests) - (-math.log10(ALPHA))  # -log10(p * m / alpha)
            rows.append(
                pd.DataFrame(
                    {
                        "level": level,
                        "unit_index": u_idx,
                        "unit_id": unit_ids[u_idx],
                        "cat": c_idx,
                        "window_h": window_h,
                        "observed": o,
                        "expected": lam,
                        "strength": score,  # > 0: significant at ALPHA after Bonferroni
                        "log10_p_adj": score + 2.0,
                    }
                )
            )
    if not rows:
        return []
    df = pd.concat(rows, ignore_index=True)
    sens = ctx.sensitivity[df["cat"].to_numpy()]
    df["key"] = [
        f"surge:{schema.LEVEL_NAMES[lv]}:{int(u)}:{int(ctx.cat_ids[c])}"
        for lv, u, c in zip(df.level, df.unit_id, df.cat, strict=True)
    ]
    live = df["key"].isin(ctx.live_keys).to_numpy()
    # Significance: -log10(p * m) >= 2 / sensitivity (p*m <= 0.01 at sensitivity 1); half that for a live alert.
    need = _threshold(-math.log10(ALPHA), sens) * np.where(live, HYSTERESIS, 1.0)
    # A unit must at least double its expectation; the whole city rise by half (its counts are large and steady).
    ratio_need = 1.0 + np.where(df["level"].to_numpy() == schema.CITY, 0.5, 1.0) / np.maximum(sens, 1e-9)
    df = df[(df["log10_p_adj"].to_numpy() >= need) & (df["observed"] >= ratio_need * df["expected"])]
    if df.empty:
        return []
    # The strongest window per unit and category.
    df = df.sort_values("log10_p_adj", ascending=False).drop_duplicates(["level", "unit_id", "cat"])
    df = _drop_explained_parents(df, ctx.grids)
    when_en, when_zh = _local_when(ctx.now, ctx.tz)
    # Where to look on the map: the middle of the surge's own reports.
    last = age <= max(SURGE_WINDOWS_H) * HOUR
    near = {"grid": r.grid[last], "cat": r.cat[last], "age": age[last], "lon": r.lon[last], "lat": r.lat[last]}
    near_unit = {
        schema.GRID: near["grid"],
        schema.COMMUNITY: g.community[near["grid"]],
        schema.STREET: g.street[near["grid"]],
        schema.CITY: np.zeros(len(near["grid"]), dtype=np.int64),
    }
    out = []
    for row in df.itertuples(index=False):
        mine = (near_unit[row.level] == row.unit_index) & (near["cat"] == row.cat) & (near["age"] <= row.window_h * HOUR)
        mine &= near["lon"] > -900
        lon = float(near["lon"][mine].mean()) if mine.any() else None
        lat = float(near["lat"][mine].mean()) if mine.any() else None
        out.append(
            {
                "kind": "surge",
                "condition_key": row.key,
                "score": float(min(MAX_SCORE, row.log10_p_adj)),
                "observed": float(row.observed),
                "expected": float(f"{row.expected:.3g}"),
                "unit_id": int(row.unit_id),
                "category_id": int(ctx.cat_ids[row.cat]),
                "lon": lon,
                "lat": lat,
                "cooldown": SURGE_COOLDOWN,
                "details": {
                    "level": schema.LEVEL_NAMES[row.level],
                    "window_h": int(row.window_h),
                    "log10_p_adj": round(float(row.log10_p_adj), 2),
                    "when_en": when_en,
                    "when_zh": when_zh,
                },
                "_text": ("surge", row.window_h, when_en, when_zh, row.log10_p_adj),
            }
        )
    return out


def _drop_explained_parents(df: pd.DataFrame, grids: Grids) -> pd.DataFrame:
    """Drop a community, street or city surge that flagged units below it already explain (60% of its excess)."""
    df = df.copy()
    df["excess"] = df["observed"] - df["expected"]
    grid_rows = df[df.level == schema.GRID]
    parent_community = grids.communities[np.maximum(grids.community[grid_rows.unit_index.to_numpy()], 0)]
    parent_street = grids.streets[np.maximum(grids.street[grid_rows.unit_index.to_numpy()], 0)]
    community_rows = df[df.level == schema.COMMUNITY]
    # A community's street: through any grid of it.
    street_of_community = pd.Series(
        grids.streets[np.maximum(grids.street, 0)], index=grids.communities[np.maximum(grids.community, 0)]
    )
    street_of_community = street_of_community[~street_of_community.index.duplicated()]
    explained_c = pd.Series(
        grid_rows.excess.to_numpy(), index=pd.MultiIndex.from_arrays([parent_community, grid_rows.cat.to_numpy()])
    )
    explained_c = explained_c.groupby(level=[0, 1]).sum()
    below_s = pd.concat(
        [
            pd.Series(grid_rows.excess.to_numpy(), index=pd.MultiIndex.from_arrays([parent_street, grid_rows.cat.to_numpy()])),
            pd.Series(
                community_rows.excess.to_numpy(),
                index=pd.MultiIndex.from_arrays(
                    [
                        street_of_community.reindex(community_rows.unit_id.to_numpy()).fillna(-1).astype(np.int64).to_numpy(),
                        community_rows.cat.to_numpy(),
                    ]
                ),
            ),
        ]
    )
    explained_s = below_s.groupby(level=[0, 1]).sum()

    def explained(rows: pd.DataFrame, table: pd.Series) -> np.ndarray:
        if rows.empty or table.empty:
            return np.zeros(len(rows))
        idx = pd.MultiIndex.from_arrays([rows.unit_id.to_numpy(), rows.cat.to_numpy()])
        return table.reindex(idx).fillna(0.0).to_numpy()

    drop = np.zeros(len(df), dtype=bool)
    is_c = (df.level == schema.COMMUNITY).to_numpy()
    is_s = (df.level == schema.STREET).to_numpy()
    drop[is_c] = explained(df[is_c], explained_c) >= 0.6 * df[is_c].excess.to_numpy()
    drop[is_s] = explained(df[is_s], explained_s) >= 0.6 * df[is_s].excess.to_numpy()
    # The whole city: explained by the surges of any one level below it (the levels nest).
    is_city = (df.level == schema.CITY).to_numpy()
    if is_city.any():
        below = df[~is_city & ~drop].groupby(["cat", "level"]).excess.sum().groupby(level=0).max()
        city_rows = df[is_city]
        drop[is_city] = below.reindex(city_rows.cat.to_numpy()).fillna(0.0).to_numpy() >= 0.6 * city_rows.excess.to_numpy()
    return df[~drop]


# --- hotspots ----------------------------------------------------------------------------------------


def detect_hotspots(ctx: Context, known: list[dict], surges: list[dict] = ()) -> list[dict]:
    """New space-time clusters: a grid and its nearest neighbours, busier lately than their own past explains.

    Scanned per category and for all categories together (a place getting busy with everything);
    a cluster of all categories is filed under its most reported category. `known` are recent
    hotspot alerts (condition_key, grids): a cluster overlapping one with the same category token
    keeps its key, so a cluster drifting by a grid stays the same alert. A cluster that is mostly
    one grid already flagged by a grid-level surge in `surges` is that surge, not a new hotspot.
    """
    r, g = ctx.reports, ctx.grids
    n_cat, n_grid = len(ctx.cat_ids), len(g.ids)
    if n_cat == 0 or n_grid == 0 or ctx.now - ctx.history_start < 2 * max(HOTSPOT_DAYS) * DAY:
        return []
    study = ctx.now - min(BASELINE_WEEKS * WEEK, ctx.now - ctx.history_start)
    enabled = ctx.sensitivity > 0
    # Column n_cat is "all categories" (the enabled ones), at sensitivity 1.
    sens = np.append(ctx.sensitivity, 1.0 if enabled.any() else 0.0)
    pooled_rows = enabled[r.cat]

    def matrix(mask: np.ndarray):
        """Sparse (grids x categories+1) counts of the masked reports; the last column all enabled categories."""
        both = mask & pooled_rows
        rows = np.concatenate([r.grid[mask], r.grid[both]])
        cols = np.concatenate([r.cat[mask], np.full(int(both.sum()), n_cat)])
        return coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_grid, n_cat + 1)).tocsr()

    def at(m, rows, cols) -> np.ndarray:
        return np.asarray(m[rows, cols]).ravel()

    total = matrix(r.t >= study)
    city_total = np.asarray(total.sum(axis=0)).ravel()
    nb = g.neighbours
    zone_total = (g.adjacency @ total).tocsr()  # each grid with its neighbours: (grids, categories + 1)
    tests = n_grid * int((sens > 0).sum()) * len(HOTSPOT_DAYS)
    cands, recent_by_days = [], {}
    min_count = HOTSPOT_MIN_COUNT / np.maximum(sens, 1e-9)
    for days in HOTSPOT_DAYS:
        counts = matrix(r.t >= ctx.now - days * DAY)
        recent_by_days[days] = counts
        zone_recent = (g.adjacency @ counts).tocoo()
        big = zone_recent.data >= min_count[zone_recent.col]
        zi, ci, o = zone_recent.row[big], zone_recent.col[big], zone_recent.data[big]
        if len(zi) == 0:
            continue
        city_recent = np.asarray(counts.sum(axis=0)).ravel()
        # Expected: the cylinder's own past (the study period before the window; one average zone's
        # worth added, so "none before" is not "impossible now") times how the category's recent volume
        # compares with its past in the rest of the city (its trend, weather included). Leaving the zone
        # out keeps a cluster of a rare category from raising its own expectation.
        zone_past = at(zone_total, zi, ci) - o
        city_past = city_total[ci] - city_recent[ci]
        rest_past = city_past - zone_past
        flat = days * DAY / max(ctx.now - study - days * DAY, DAY)
        trend = np.where(rest_past >= 30, (city_recent[ci] - o) / np.maximum(rest_past, 1), flat)
        prior = HOTSPOT_PRIOR_ZONES * nb.shape[1] * city_past / n_grid
        mu = (zone_past + prior) * np.maximum(trend, 0.0)
        log10_p_adj = _log10_p(o, mu) - math.log10(tests)
        cands.append(
            pd.DataFrame({"centre": zi, "cat": ci, "days": days, "observed": o, "expected": mu, "log10_p_adj": log10_p_adj})
        )
    if not cands:
        return []
    df = pd.concat(cands, ignore_index=True)
    token = np.where(df.cat.to_numpy() == n_cat, "all", ctx.cat_ids[np.minimum(df.cat.to_numpy(), n_cat - 1)].astype(str))
    known_by_token: dict[str, list[tuple[str, set[int]]]] = {}
    for k in known:
        known_by_token.setdefault(k["condition_key"].split(":")[2], []).append((k["condition_key"], set(k["grids"])))
    live_tokens = {k["condition_key"].split(":")[2] for k in known if k["condition_key"] in ctx.live_keys}
    relax = np.where(np.isin(token, list(live_tokens)), HYSTERESIS, 1.0)
    s = sens[df.cat.to_numpy()]
    ok = (df.log10_p_adj.to_numpy() >= _threshold(-math.log10(ALPHA), s) * relax) & (
        df.observed.to_numpy() >= (1.0 + (HOTSPOT_MIN_RATIO - 1.0) / np.maximum(s, 1e-9) * relax) * df.expected.to_numpy()
    )
    df = df.assign(token=token)[ok].sort_values("log10_p_adj", ascending=False).head(5000)
    # Clusters of one category first: a cluster of all categories overlapping one of them says less.
    # A cluster continuing a live alert first (an alert should not hop between "all categories" and one
    # category from pass to pass), then clusters of one category (they say more), strongest first.
    live_grids = {
        token: set().union(*(grids_ for key_, grids_ in entries if key_ in ctx.live_keys))
        for token, entries in known_by_token.items()
    }
    continues = [
        bool(live_grids.get(t, set()) & {int(x) for x in g.ids[nb[c]]}) for t, c in zip(df.token, df.centre, strict=True)
    ]
    df = df.assign(pooled=df.cat.to_numpy() == n_cat, continues=continues)
    df = df.sort_values(["continues", "pooled", "log10_p_adj"], ascending=[False, True, False])
    out, used, single, pooled_taken = [], {}, set(), set()
    surged = {(f["unit_id"], str(f["category_id"])) for f in surges if f["details"]["level"] == "grid"}
    surged |= {(grid, "all") for grid, _ in surged}
    for row in df.itertuples(index=False):
        members = nb[row.centre]
        taken = used.setdefault(row.cat, set())
        overlaps_other = any(int(m) in (single if row.pooled else pooled_taken) for m in members)
        if any(int(m) in taken for m in members) or overlaps_other:
            continue
        taken.update(int(m) for m in members)
        (pooled_taken if row.pooled else single).update(int(m) for m in members)
        per_grid = at(recent_by_days[row.days], members, np.full(len(members), row.cat))
        top_grid = int(g.ids[members[int(np.argmax(per_grid))]])
        if per_grid.max() >= 0.6 * per_grid.sum() and (top_grid, "all" if row.pooled else row.token) in surged:
            continue
        grid_ids = [int(x) for x in g.ids[members]]
        condition = f"hotspot:{int(g.ids[row.centre])}:{row.token}"
        for key_, known_grids in known_by_token.get(row.token, []):
            if known_grids & set(grid_ids):
                condition = key_
                break
        if any(f["condition_key"] == condition for f in out):
            continue
        recent = np.asarray(recent_by_days[row.days][members, :n_cat].sum(axis=0)).ravel()
        top = int(np.argmax(recent)) if row.cat == n_cat else int(row.cat)
        share = float(recent[top] / max(recent.sum(), 1))
        out.append(
            {
                "kind": "hotspot",
                "condition_key": condition,
                "score": float(min(MAX_SCORE, row.log10_p_adj + 2.0)),
                "observed": float(row.observed),
                "expected": float(f"{row.expected:.3g}"),
                "unit_id": int(g.ids[row.centre]),
                "category_id": int(ctx.cat_ids[top]),
                "lon": float(g.lon[members].mean()),
                "lat": float(g.lat[members].mean()),
                "cooldown": HOTSPOT_COOLDOWN,
                "details": {
                    "days": int(row.days),
                    "grids": grid_ids,
                    "all_categories": bool(row.cat == n_cat),
                    "top_category_share": round(share, 2),
                    "log10_p_adj": round(float(row.log10_p_adj + 2.0), 2),
                },
                "_text": ("hotspot", int(row.days), len(grid_ids), row.log10_p_adj + 2.0, row.cat == n_cat, share),
            }
        )
    return out


# --- chronic places --------------------------------------------------------------------------------


def detect_chronic(ctx: Context) -> list[dict]:
    """Spots (reports within 100 m of one) where the same category was reported on several days within four weeks."""
    r, g = ctx.reports, ctx.grids
    n_cat = len(ctx.cat_ids)
    since = ctx.now - CHRONIC_DAYS * DAY
    sel = (r.t >= since) & (r.lon > -900) & (r.lat > -900)
    if n_cat == 0 or not sel.any():
        return []
    lon, lat, cat, grid, t = r.lon[sel], r.lat[sel], r.cat[sel], r.grid[sel], r.t[sel]
    x, y = _metres(lon, lat, float(np.mean(g.lat)) if len(g.lat) else 0.0)
    offset = datetime.fromtimestamp(ctx.now, ctx.tz).utcoffset().total_seconds()
    day = np.floor((t + offset) / DAY).astype(np.int64)
    # Expected reports of a category at one spot over the period: the grid's volume (all categories,
    # so the chronic spot itself barely raises it) times the category's city-wide share, spread over the grid.
    in_base = r.t >= ctx.now - BASELINE_WEEKS * WEEK
    grid_volume = np.bincount(r.grid[in_base], minlength=len(g.ids)).astype(float)
    span = min(BASELINE_WEEKS * WEEK, ctx.now - ctx.history_start)
    grid_volume = (grid_volume + grid_volume.mean()) * (CHRONIC_DAYS * DAY / max(span, DAY))
    # The category's share where the grid is (its community's mix, shrunk towards the city's by
    # CHRONIC_PRIOR reports): street vending is common downtown, rare in the hills.
    city_share = np.bincount(r.cat[in_base], minlength=n_cat) / max(int(in_base.sum()), 1)
    community = np.maximum(g.community[r.grid[in_base]], 0)
    n_comm = max(len(g.communities), 1)
    mix = np.bincount(community * n_cat + r.cat[in_base], minlength=n_comm * n_cat).reshape(n_comm, n_cat)
    mix_total = mix.sum(axis=1)
    # The circle may reach past a small grid into its neighbours: expect the grid's density over the whole circle.
    spot_share = math.pi * CHRONIC_RADIUS_M**2 / g.area
    # Categories far apart on one axis, so one tree finds same-category neighbours only.
    tree = cKDTree(np.column_stack([x - x.min() + cat * 1e8, y]))
    pairs = tree.query_pairs(CHRONIC_RADIUS_M, output_type="ndarray")
    near = np.bincount(pairs.ravel(), minlength=len(x)) + 1  # reports within the radius, itself included
    sens = ctx.sensitivity[cat]
    least = np.maximum(2, np.ceil(CHRONIC_MIN_COUNT / np.maximum(sens, 1e-9)))
    seeds = np.nonzero(near >= least)[0]
    found, used = [], np.zeros(len(x), dtype=bool)
    # Densest spots first; a report belongs to one spot.
    for seed in seeds[np.argsort(-near[seeds], kind="stable")]:
        if used[seed]:
            continue
        members = np.array([m for m in tree.query_ball_point(tree.data[seed], CHRONIC_RADIUS_M) if not used[m]])
        days = len(np.unique(day[members]))
        if len(members) < least[seed] or days < max(2, math.ceil(CHRONIC_MIN_DAYS / max(float(sens[seed]), 1e-9))):
            continue
        used[members] = True
        gi = int(np.bincount(grid[members]).argmax())  # the grid most of the spot's reports are in
        ci = int(cat[seed])
        # The community's mix without the spot's own reports, or a chronic spot would explain itself.
        comm, own = max(int(g.community[gi]), 0), len(members)
        share = (max(mix[comm, ci] - own, 0) + CHRONIC_PRIOR * city_share[ci]) / (max(mix_total[comm] - own, 0) + CHRONIC_PRIOR)
        lam = float(grid_volume[gi] * share * spot_share[gi])
        found.append(
            {
                "grid": gi,
                "cat": ci,
                "count": len(members),
                "days": days,
                "expected": lam,
                "log10_p": float(_log10_p(np.array([float(len(members))]), np.array([lam]))[0]),
                "lon": float(lon[members].mean()),
                "lat": float(lat[members].mean()),
            }
        )
    out: dict[str, dict] = {}
    for f in sorted(found, key=lambda f: -f["log10_p"]):
        sens = float(ctx.sensitivity[f["cat"]])
        key = f"chronic:{int(g.ids[f['grid']])}:{int(ctx.cat_ids[f['cat']])}"
        need = CHRONIC_LOG10_P / sens * (HYSTERESIS if key in ctx.live_keys else 1.0)
        if f["log10_p"] < need or key in out:
            continue
        out[key] = {
            "kind": "chronic",
            "condition_key": key,
            "score": float(min(MAX_SCORE, max(1.0, f["log10_p"] / 2))),
            "observed": float(f["count"]),
            "expected": float(f"{f['expected']:.3g}"),
            "unit_id": int(g.ids[f["grid"]]),
            "category_id": int(ctx.cat_ids[f["cat"]]),
            "lon": f["lon"],
            "lat": f["lat"],
            "cooldown": CHRONIC_COOLDOWN,
            "details": {
                "days": f["days"],
                "period_days": CHRONIC_DAYS,
                "radius_m": CHRONIC_RADIUS_M,
                "log10_p": round(f["log10_p"], 2),
            },
            "_text": ("chronic", f["days"]),
        }
    return list(out.values())


# --- deadlines --------------------------------------------------------------------------------------


def _running_clocks(conn: Connection, now: datetime) -> np.ndarray:
    """Open incidents whose clock runs (data/incidents/clock.py), one row of numbers each, the last saying whether it is overdue."""
    due = active_due_expression()
    stmt = select(
        INC.c.id,
        INC.c.category_id,
        INC.c.priority,
        case((INC.c.state == ACKNOWLEDGED, 1), else_=0),
        func.coalesce(INC.c.assignee_department_id, -1),
        epoch_seconds(INC.c.dispatched_at),
        func.coalesce(epoch_seconds(INC.c.acknowledged_at), -1.0),
        epoch_seconds(due),
        func.coalesce(INC.c.grid_id, -1),
        func.coalesce(INC.c.lon, -999.0),
        func.coalesce(INC.c.lat, -999.0),
        case((overdue_expression(now), 1), else_=0),
    ).where(
        INC.c.is_open == true(),
        INC.c.state.in_((DISPATCHED, ACKNOWLEDGED)),
        due.is_not(None),
        INC.c.dispatched_at.is_not(None),
    )
    return _fetch(conn, stmt, 12)


_PACE_CACHE: dict[str, tuple[float, np.ndarray]] = {}
PACE_TTL = 300.0  # a department's pace is re-read at most every five minutes


def clear_caches() -> None:
    """Forget the grids, reports and pace kept between passes (a fresh process; tests and benchmarks)."""
    _GRID_CACHE.clear()
    _REPORT_CACHE.clear()
    _PACE_CACHE.clear()


def _recent_pace_cached(conn: Connection, now: float) -> np.ndarray:
    key = store_key(conn)
    cached = _PACE_CACHE.get(key)
    if cached is not None and 0 <= now - cached[0] < PACE_TTL:
        return cached[1]
    pace = _recent_pace(conn)
    _PACE_CACHE[key] = (now, pace)
    return pace


def _recent_pace(conn: Connection) -> np.ndarray:
    """The most recently touched acknowledged incidents: department, dispatched, acknowledged, resolved (-1: not
    yet), updated (epoch seconds). Every incident touched after the oldest one's update is in it."""
    stmt = (
        select(
            func.coalesce(INC.c.assignee_department_id, -1),
            epoch_seconds(INC.c.dispatched_at),
            epoch_seconds(INC.c.acknowledged_at),
            func.coalesce(epoch_seconds(INC.c.resolved_at), -1.0),
            epoch_seconds(INC.c.updated_at),
        )
        .where(INC.c.acknowledged_at.is_not(None), INC.c.dispatched_at.is_not(None))
        .order_by(INC.c.updated_at.desc())
        .limit(DEADLINE_PACE_SAMPLE)
    )
    return _fetch(conn, stmt, 5)


def _conditional(durations: np.ndarray, elapsed: np.ndarray, left: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """From sorted `durations`: P(T > elapsed + left | T > elapsed) and the median of T - elapsed given T > elapsed."""
    n = len(durations)
    done = np.searchsorted(durations, elapsed, side="right")
    alive = n - done
    late = n - np.searchsorted(durations, elapsed + left, side="right")
    p = np.where(alive > 0, late / np.maximum(alive, 1), 1.0)
    mid = np.clip(done + alive // 2, 0, n - 1)
    return p, np.where(alive > 0, durations[mid] - elapsed, np.nan)


def detect_deadlines(conn: Connection, ctx: Context) -> list[dict]:
    """Open incidents with a running clock that their department will likely not finish in time."""
    now_dt = datetime.fromtimestamp(ctx.now, UTC)
    arr = _running_clocks(conn, now_dt)
    if len(arr) == 0:
        return []
    pace = _recent_pace_cached(conn, ctx.now)
    # Every incident with the department counts in its queue, overdue ones too.
    queue = pd.Series(1, index=arr[:, 4].astype(np.int64)).groupby(level=0).sum()
    arr = arr[arr[:, 11] == 0]
    dept = arr[:, 4].astype(np.int64)
    acked = arr[:, 3] > 0
    start = np.where(acked, arr[:, 6], arr[:, 5])  # the active clock's work began at dispatch / acknowledge
    due_t = arr[:, 7]
    left = due_t - ctx.now
    elapsed = np.maximum(ctx.now - start, 0.0)
    ack_d = pace[:, 2] - pace[:, 1]
    handle_d = np.where(pace[:, 3] > 0, pace[:, 3] - pace[:, 2], np.nan)
    pace_dept = pace[:, 0].astype(np.int64)
    resolved_at = np.where(pace[:, 3] > 0, pace[:, 3], np.nan)
    # The sample holds every incident touched since its oldest update: resolutions since then are complete.
    sample_start = float(pace[:, 4].min()) if len(pace) else ctx.now - DAY
    span = max(ctx.now - sample_start, HOUR)
    cat_index = np.clip(np.searchsorted(ctx.cat_ids, arr[:, 1].astype(np.int64)), 0, max(len(ctx.cat_ids) - 1, 0))
    sens = ctx.sensitivity[cat_index] if len(ctx.cat_ids) else np.zeros(len(arr))
    p_breach = np.zeros(len(arr))
    median_left = np.full(len(arr), np.nan)
    load = np.ones(len(arr))
    pooled_a = np.sort(ack_d[ack_d >= 0])
    pooled_h = np.sort(handle_d[np.isfinite(handle_d) & (handle_d >= 0)])
    for d in np.unique(dept):
        mine = dept == d
        sel = pace_dept == d
        a = np.sort(ack_d[sel & (ack_d >= 0)])
        h = np.sort(handle_d[sel & np.isfinite(handle_d) & (handle_d >= 0)])
        a = a if len(a) >= DEADLINE_MIN_SAMPLES else pooled_a
        h = h if len(h) >= DEADLINE_MIN_SAMPLES else pooled_h
        # Its usual queue by Little's law (throughput x mean time with it); a longer one now slows everything.
        throughput = (sel & (resolved_at >= sample_start)).sum() / span
        usual = throughput * ((a.mean() if len(a) else 0.0) + (h.mean() if len(h) else 0.0))
        # A handful of open cases is nobody's overload, whatever a quiet history says.
        factor = float(np.clip(queue.get(d, 0) / max(usual, DEADLINE_MIN_QUEUE), 1.0, 3.0))
        load[mine] = factor
        for is_ack, durations in ((False, a), (True, h)):
            rows = mine & (acked == is_ack)
            if rows.any() and len(durations):
                p_breach[rows], median_left[rows] = _conditional(durations * factor, elapsed[rows], left[rows])
    # At sensitivity 1 an incident is flagged from an even chance of missing its limit; 2 -> 29%, 0.5 -> 75%.
    need = 1.0 - np.power(0.5, 1.0 / np.maximum(sens, 1e-9))
    keys = [f"deadline:{int(i)}:{'handle' if a else 'ack'}:{int(t)}" for i, a, t in zip(arr[:, 0], acked, due_t, strict=True)]
    live = np.fromiter((k in ctx.live_keys for k in keys), dtype=bool, count=len(keys))
    hit = (sens > 0) & (left >= DEADLINE_MIN_LEFT) & (left <= DEADLINE_HORIZON) & (p_breach >= need * np.where(live, 0.8, 1.0))
    out = []
    priority_weight = {1: 1.5, 2: 1.2, 3: 1.0}
    for j in np.nonzero(hit)[0]:
        hours_left = left[j] / HOUR
        score = 10.0 * p_breach[j] * priority_weight.get(int(arr[j, 2]), 1.0) * (1.0 + 1.0 / (1.0 + hours_left))
        out.append(
            {
                "kind": "deadline",
                "condition_key": keys[j],
                "score": float(min(MAX_SCORE, score)),
                "observed": float(round(p_breach[j], 3)),
                "expected": float(round(hours_left, 2)),
                "unit_id": int(arr[j, 8]) if arr[j, 8] > 0 else None,
                "category_id": int(arr[j, 1]),
                "incident_id": int(arr[j, 0]),
                "lon": float(arr[j, 9]) if arr[j, 9] > -900 else None,
                "lat": float(arr[j, 10]) if arr[j, 10] > -900 else None,
                "cooldown": DEADLINE_COOLDOWN,
                "details": {
                    "clock": "handle" if acked[j] else "ack",
                    "department_id": int(dept[j]) if dept[j] > 0 else None,
                    "queue": int(queue.get(dept[j], 0)),
                    "load": round(float(load[j]), 2),
                    "p_breach": round(float(p_breach[j]), 3),
                    "hours_left": round(float(hours_left), 2),
                    "median_left_h": None if np.isnan(median_left[j]) else round(float(median_left[j] / HOUR), 2),
                    "due_at": datetime.fromtimestamp(due_t[j], UTC).isoformat(),
                },
                "_text": ("deadline",),
            }
        )
    return out


# --- words ------------------------------------------------------------------------------------------


def _fill_reasons(conn: Connection, findings: list[dict]) -> None:
    """Write each finding's reason in English and Chinese, naming its unit, category and department."""
    unit_ids = {f["unit_id"] for f in findings if f.get("unit_id") is not None}
    names = {}
    ids = sorted(unit_ids)
    for start in range(0, len(ids), 500):
        for row in conn.execute(select(U.c.id, U.c.name_en, U.c.name_zh).where(U.c.id.in_(ids[start : start + 500]))):
            names[row.id] = (row.name_en, row.name_zh)
    cats = {row.id: (row.name_en, row.name_zh) for row in conn.execute(select(C.c.id, C.c.name_en, C.c.name_zh))}
    depts = {row.id: (row.name_en, row.name_zh) for row in conn.execute(select(D.c.id, D.c.name_en, D.c.name_zh))}
    for f in findings:
        text_ = f.pop("_text")
        unit_en, unit_zh = names.get(f.get("unit_id"), ("an unlocated place", "未定位地点"))
        cat_en, cat_zh = cats.get(f.get("category_id"), ("matter", "事项"))
        o, e = f["observed"], f["expected"]
        if text_[0] == "surge":
            _, window_h, when_en, when_zh, log10_p = text_
            f["reason_en"] = (
                f"{o:g} {cat_en.lower()} reports in {unit_en} in the last {window_h} h; "
                f"{_expected_text(e)} expected for a {when_en} ({_p_text(log10_p)})"
            )
            f["reason_zh"] = (
                f"{unit_zh}近{window_h}小时{cat_zh}上报{o:g}件，按历史同期（{when_zh}）预期{_expected_text(e)}件（{_p_text(log10_p)}）"
            )
        elif text_[0] == "hotspot":
            _, days, n_grids, log10_p, pooled, share = text_
            what_en = f"reports ({share:.0%} {cat_en.lower()})" if pooled else f"{cat_en.lower()} reports"
            what_zh = f"各类事件（{cat_zh}占{share:.0%}）" if pooled else cat_zh
            f["reason_en"] = (
                f"New cluster: {o:g} {what_en} around {unit_en} ({n_grids} grids) in the last "
                f"{days} d; {_expected_text(e)} expected from their own past ({_p_text(log10_p)})"
            )
            f["reason_zh"] = (
                f"新聚集：{unit_zh}及周边{n_grids}个网格近{days}天上报{what_zh}{o:g}件，按其历史预期{_expected_text(e)}件（{_p_text(log10_p)}）"
            )
        elif text_[0] == "chronic":
            days = text_[1]
            f["reason_en"] = (
                f"Recurring: {o:g} {cat_en.lower()} reports at the same spot in {unit_en} on {days} different days "
                f"in {CHRONIC_DAYS} days (closed or not); {_expected_text(e)} expected"
            )
            f["reason_zh"] = (
                f"反复出现：{unit_zh}同一地点{CHRONIC_DAYS}天内有{days}天上报{cat_zh}，共{o:g}件（含已结案），预期{_expected_text(e)}件"
            )
        else:
            d = f["details"]
            dept_en, dept_zh = depts.get(d["department_id"], ("the assignee", "承办单位"))
            clock_en, clock_zh = ("handle", "办结") if d["clock"] == "handle" else ("acknowledge", "签收")
            pace_en = (
                f"half its cases take {d['median_left_h']:.1f} h more" if d["median_left_h"] is not None else "few finish in time"
            )
            pace_zh = (
                f"按其近期进度预计还需{d['median_left_h']:.1f}小时" if d["median_left_h"] is not None else "近期很少按时完成"
            )
            f["reason_en"] = (
                f"Incident #{f['incident_id']} ({cat_en.lower()}) must be {clock_en}d within {d['hours_left']:.1f} h; "
                f"{dept_en} has {d['queue']} open ({d['load']:.1f}x its usual load) and {pace_en}: "
                f"{d['p_breach'] * 100:.0f}% likely to miss the limit"
            )
            f["reason_zh"] = (
                f"事件#{f['incident_id']}（{cat_zh}）须在{d['hours_left']:.1f}小时内{clock_zh}；{dept_zh}在办{d['queue']}件"
                f"（平时的{d['load']:.1f}倍），{pace_zh}：超期可能性{d['p_breach'] * 100:.0f}%"
            )


# --- the pass ----------------------------------------------------------------------------------------


def _categories(conn: Connection) -> tuple[np.ndarray, np.ndarray]:
    from data.warnings.alerts import sensitivity_map

    ids = np.array(conn.execute(select(C.c.id).where(C.c.active.is_(True)).order_by(C.c.id)).scalars().all(), dtype=np.int64)
    settings = sensitivity_map(conn)
    sens = np.array([settings.get(int(i), (1.0, True))[0] if settings.get(int(i), (1.0, True))[1] else 0.0 for i in ids])
    return ids, sens


def _known_alerts(conn: Connection, now: datetime) -> tuple[set[str], list[dict]]:
    """(condition keys of live alerts, recent hotspot alerts with their grids)."""
    import json

    al = schema.alerts
    live = set(conn.execute(select(al.c.condition_key).where(al.c.status.in_(("open", "acknowledged")))).scalars())
    rows = conn.execute(
        select(al.c.condition_key, al.c.details).where(
            al.c.kind == "hotspot",
            and_(al.c.last_seen_at >= now - timedelta(seconds=HOTSPOT_COOLDOWN)),
        )
    )
    hotspots = []
    for row in rows:
        try:
            grids = json.loads(row.details or "{}").get("grids", [])
        except ValueError:
            grids = []
        hotspots.append({"condition_key": row.condition_key, "grids": grids})
    return live, hotspots


def detect(conn: Connection, now: datetime, tz: str = "Asia/Shanghai", kinds=ALL_KINDS) -> tuple[list[dict], dict[str, float]]:
    """(findings, timings): every detector over the store as it is at `now` (reports after `now` are ignored)."""
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        timings[name] = round(time.perf_counter() - clock, 4)
        clock = time.perf_counter()

    now = to_utc(now, "now")
    cat_ids, sens = _categories(conn)
    live, known_hotspots = _known_alerts(conn, now)
    grids = load_grids(conn)
    first = conn.execute(select(func.min(INC.c.reported_at))).scalar()
    history_start = to_utc(first.replace(tzinfo=first.tzinfo or UTC), "first").timestamp() if first else now.timestamp()
    lap("load_grids")
    span = max(BASELINE_WEEKS * WEEK + max(SURGE_WINDOWS_H) * HOUR, CHRONIC_DAYS * DAY)
    needs_reports = any(k in kinds for k in ("surge", "hotspot", "chronic"))
    since = now - timedelta(seconds=span) if needs_reports else now
    reports = load_reports(conn, grids, cat_ids, since, now)
    lap("load_reports")
    ctx = Context(now.timestamp(), ZoneInfo(tz), cat_ids, sens, grids, reports, history_start, live)
    findings: list[dict] = []
    if "surge" in kinds:
        findings += detect_surges(ctx)
        lap("surge")
    if "hotspot" in kinds:
        findings += detect_hotspots(ctx, known_hotspots, [f for f in findings if f["kind"] == "surge"])
        lap("hotspot")
    if "chronic" in kinds:
        findings += detect_chronic(ctx)
        lap("chronic")
    if "deadline" in kinds:
        findings += detect_deadlines(conn, ctx)
        lap("deadline")
    _fill_reasons(conn, findings)
    lap("reasons")
    timings["reports_read"] = len(reports.t)
    return findings, timings


def run_detection(engine: Engine, now: datetime | None = None, kinds=None, tz: str = "Asia/Shanghai") -> dict:
    """One pass: detect on a read snapshot, then record in one write transaction. Returns counts and timings."""
    from data import store
    from data.warnings.alerts import record_findings

    started = time.perf_counter()
    now = to_utc(now, "now") if now is not None else utc_now()
    kinds = tuple(ALL_KINDS if kinds is None else kinds)
    unknown = set(kinds) - set(ALL_KINDS)
    if unknown:
        from data.errors import ValidationError

        raise ValidationError(f"unknown kind(s) {', '.join(sorted(unknown))}; use {', '.join(ALL_KINDS)}")
    with store.reading(engine) as conn:
        findings, timings = detect(conn, now, tz, kinds)
    write_started = time.perf_counter()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"), {"k": PASS_LOCK})
        counts = record_findings(conn, findings, kinds, now)
        store.set_meta(conn, "warnings.last_pass_at", now.isoformat())
    timings["write"] = round(time.perf_counter() - write_started, 4)
    timings["total"] = round(time.perf_counter() - started, 4)
    found: dict[str, int] = {k: 0 for k in ALL_KINDS}
    for f in findings:
        found[f["kind"]] += 1
    return {
        "now": now.isoformat(),
        "kinds": {k: {"found": found[k], **counts[k]} for k in kinds},
        "timings": timings,
    }


def summary_line(summary: dict) -> str:
    """One line for logs and the command line."""
    parts = [
        f"{k}: {v['found']} found, {v['raised']} new, {v['updated']} updated, {v['cleared']} cleared"
        for k, v in summary["kinds"].items()
    ]
    return "; ".join(parts) + f" ({summary['timings']['total']:.2f} s)"


__all__ = ["ALL_KINDS", "detect", "load_grids", "run_detection", "summary_line"]
