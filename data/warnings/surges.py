"""Surges: units x categories far above their own seasonal baseline in the last 6 h or 24 h.

Per unit (grid, community, street, and the whole city) x category, the count in the last 6 h and
24 h against the unit's own seasonal baseline: its count over the past weeks (shrunk towards the
level's mean) times the share of the category's city-wide volume that fell in the same
weekday-and-hour window of those weeks. Negative binomial upper tail, Bonferroni over every unit,
category and window of a level; a parent whose surge flagged units below it explain is dropped.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from data import schema
from data.warnings.context import ALPHA, BASELINE_WEEKS, HOUR, HYSTERESIS, MAX_SCORE, WEEK, Context, Grids
from data.warnings.stats import local_when, log10_p_nb, threshold

SURGE_WINDOWS_H = (6, 24)
SURGE_MIN_COUNT = 3
SURGE_MIN_COUNT_CITY = 10
SURGE_CV = 0.3  # day-to-day swing of a category's level, beyond Poisson noise (negative binomial)
SURGE_PRIOR_UNITS = 1.0  # shrink each unit's history towards its level's mean by one unit's worth
SURGE_COOLDOWN = 12 * HOUR
LEVEL_COLUMNS = {schema.GRID: "grid", schema.COMMUNITY: "community", schema.STREET: "street"}


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
            score = log10_p_nb(o, lam, SURGE_CV) - math.log10(tests) - (-math.log10(ALPHA))  # -log10(p * m / alpha)
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
    need = threshold(-math.log10(ALPHA), sens) * np.where(live, HYSTERESIS, 1.0)
    # A unit must at least double its expectation; the whole city rise by half (its counts are large and steady).
    ratio_need = 1.0 + np.where(df["level"].to_numpy() == schema.CITY, 0.5, 1.0) / np.maximum(sens, 1e-9)
    df = df[(df["log10_p_adj"].to_numpy() >= need) & (df["observed"] >= ratio_need * df["expected"])]
    if df.empty:
        return []
    # The strongest window per unit and category.
    df = df.sort_values("log10_p_adj", ascending=False).drop_duplicates(["level", "unit_id", "cat"])
    df = _drop_explained_parents(df, ctx.grids)
    when_en, when_zh = local_when(ctx.now, ctx.tz)
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
