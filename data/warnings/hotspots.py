"""Hotspots: new space-time clusters, a grid and its nearest neighbours busier lately than their own past explains.

A prospective space-time scan (Kulldorff) over cylinders of a grid and its nearest neighbours and
the last 1, 3 and 7 days, per category and for all categories: expected = the cylinder's own past
four weeks (shrunk towards an average zone) x the category's recent-to-past ratio in the rest of
the city, so a place that was always busy is not "new" and city-wide weather is not local;
Poisson tail, Bonferroni, then the best non-overlapping clusters.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix

from data.warnings.context import ALPHA, BASELINE_WEEKS, DAY, HYSTERESIS, MAX_SCORE, WEEK, Context
from data.warnings.stats import log10_p, threshold

HOTSPOT_DAYS = (1, 3, 7)
HOTSPOT_MIN_COUNT = 5
HOTSPOT_MIN_RATIO = 3.0
HOTSPOT_PRIOR_ZONES = 1.0
HOTSPOT_COOLDOWN = 3 * DAY


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
        log10_p_adj = log10_p(o, mu) - math.log10(tests)
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
    ok = (df.log10_p_adj.to_numpy() >= threshold(-math.log10(ALPHA), s) * relax) & (
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
