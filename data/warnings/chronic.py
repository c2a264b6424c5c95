"""Chronic places: the same category at the same spot on several different days within four weeks.

Reports within 100 m of one another, closed or not, far beyond what the spot's share of its
grid's volume (and its community's mix of categories) explains.
"""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np
from scipy.spatial import cKDTree

from data.warnings.context import BASELINE_WEEKS, DAY, HYSTERESIS, MAX_SCORE, WEEK, Context, metres
from data.warnings.stats import log10_p

CHRONIC_DAYS = 28
CHRONIC_RADIUS_M = 50.0  # "the same place": reports within 50 m of one of them, so within ~100 m of each other
CHRONIC_MIN_COUNT = 4
CHRONIC_PRIOR = 20.0
CHRONIC_MIN_DAYS = 3
CHRONIC_LOG10_P = 7.0  # at sensitivity 1: the spot's count has p < 1e-7 given its area's volume
CHRONIC_COOLDOWN = 14 * DAY


def detect_chronic(ctx: Context) -> list[dict]:
    """Spots (reports within 100 m of one) where the same category was reported on several days within four weeks."""
    r, g = ctx.reports, ctx.grids
    n_cat = len(ctx.cat_ids)
    since = ctx.now - CHRONIC_DAYS * DAY
    sel = (r.t >= since) & (r.lon > -900) & (r.lat > -900)
    if n_cat == 0 or not sel.any():
        return []
    lon, lat, cat, grid, t = r.lon[sel], r.lat[sel], r.cat[sel], r.grid[sel], r.t[sel]
    x, y = metres(lon, lat, float(np.mean(g.lat)) if len(g.lat) else 0.0)
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
                "log10_p": float(log10_p(np.array([float(len(members))]), np.array([lam]))[0]),
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
