"""Known early-warning cases put into a store (surges, new hotspots, chronic places), with their ground truth and scoring.

Tests, the benchmark and `python app.py inject-warnings` use it: each case is written as ordinary
reports through data.incidents.intake.report_incidents (chronic ones also walked to closed through
apply_action, since a chronic place is one that keeps coming back however often it is closed), and
returned as an InjectedCase so the alerts a detection pass raises can be scored (recall, precision).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import shapely
from sqlalchemy import Engine, select

from data import schema
from data.errors import ValidationError
from data.geo.locate import GridLocator
from data.incidents.intake import report_incidents
from data.incidents.transitions import apply_action
from data.times import to_utc, utc_now
from data.warnings.context import load_grids

U, C = schema.units, schema.categories
ACTOR = "demo:inject"

SURGE_REPORTS = 8  # within the last 3 hours, in one grid
HOTSPOT_REPORTS = 20  # within the last 3 days, over a grid and its nearest neighbours
CHRONIC_REPORTS = 6  # at one spot, on different days of the last 24
CHRONIC_MATCH_M = 150.0
MIN_APART_M = 3000.0  # cases far enough apart that their alerts cannot be confused


@dataclass
class InjectedCase:
    """One injected case: what, where (grids; for matching also their community and street) and how many."""

    kind: str
    category_id: int
    grid_ids: list[int]
    units: set[int] = field(default_factory=set)  # the grids and every unit above them, up to the city
    lon: float = 0.0
    lat: float = 0.0
    reports: int = 0
    incident_ids: list[int] = field(default_factory=list)

    def matches(self, alert: dict) -> bool:
        """Whether `alert` (a row of data.warnings.alerts.list_alerts) points at this case."""
        details = alert.get("details") or "{}"
        details = json.loads(details) if isinstance(details, str) else details
        pooled = bool(details.get("all_categories"))
        if alert["category_id"] != self.category_id and not pooled:
            return False
        if alert["kind"] == "hotspot":
            return bool(set(details.get("grids", [])) & set(self.grid_ids))
        if alert["kind"] == "chronic":
            # The spot's reports may fall either side of a grid boundary: its point is what counts.
            return alert["unit_id"] in self.grid_ids or self._metres_to(alert) <= CHRONIC_MATCH_M
        if alert["kind"] == "surge":
            return alert["unit_id"] in self.units
        return False

    def _metres_to(self, alert: dict) -> float:
        if alert.get("lon") is None or alert.get("lat") is None:
            return float("inf")
        kx = 111_320.0 * np.cos(np.radians(self.lat))
        return float(np.hypot((alert["lon"] - self.lon) * kx, (alert["lat"] - self.lat) * 110_574.0))


def _points_in(geom, n: int, rng: np.random.Generator) -> np.ndarray:
    """n random points inside a polygon (rejection sampling in its bounding box)."""
    minx, miny, maxx, maxy = geom.bounds
    out: list[tuple[float, float]] = []
    while len(out) < n:
        xs = rng.uniform(minx, maxx, 64)
        ys = rng.uniform(miny, maxy, 64)
        inside = shapely.contains_xy(geom, xs, ys)
        out.extend(zip(xs[inside], ys[inside], strict=True))
    return np.array(out[:n])


def _pick_places(lon: np.ndarray, lat: np.ndarray, n: int, rng: np.random.Generator, taken: list[int]) -> list[int]:
    """n grid indexes at least MIN_APART_M from each other and from `taken`."""
    kx = 111_320.0 * np.cos(np.radians(lat.mean() if len(lat) else 0.0))
    chosen: list[int] = []
    for candidate in rng.permutation(len(lon)):
        if len(chosen) == n:
            break
        others = taken + chosen
        if others:
            d = np.hypot((lon[others] - lon[candidate]) * kx, (lat[others] - lat[candidate]) * 110_574.0)
            if d.min() < MIN_APART_M:
                continue
        chosen.append(int(candidate))
    if len(chosen) < n:
        raise ValidationError(f"the city is too small for {n} more injected cases {MIN_APART_M / 1000:g} km apart")
    return chosen


def inject_warnings(
    engine: Engine,
    now: datetime | None = None,
    *,
    surges: int = 3,
    hotspots: int = 3,
    chronic: int = 3,
    seed: int = 11,
    close_chronic: bool = True,
) -> list[InjectedCase]:
    """Write the cases as reports up to `now` and return their ground truth."""
    now = to_utc(now, "now") if now is not None else utc_now()
    rng = np.random.default_rng(seed)
    with engine.begin() as conn:
        grids = load_grids(conn)
        if len(grids.ids) == 0:
            raise ValidationError("the store has no grids: build the demo first (python app.py demo)")
        categories = conn.execute(select(C.c.id, C.c.department_id).where(C.c.active.is_(True)).order_by(C.c.id)).all()
        if not categories:
            raise ValidationError("the store has no active categories")
        taken: list[int] = []
        places = {}
        for kind, n in (("surge", surges), ("hotspot", hotspots), ("chronic", chronic)):
            places[kind] = _pick_places(grids.lon, grids.lat, n, rng, taken)
            taken += places[kind]
        needed = sorted({int(grids.ids[j]) for k in places for i in places[k] for j in grids.neighbours[i]})
        geoms, ancestors = {}, {}
        city = conn.execute(select(U.c.id).where(U.c.level == schema.CITY)).scalars().all()
        for row in conn.execute(
            select(U.c.id, U.c.geom, U.c.community_id, U.c.street_id, U.c.district_id).where(U.c.id.in_(needed))
        ):
            geoms[row.id] = shapely.from_wkb(row.geom) if row.geom is not None else None
            # A surge seen at any level above the grid (up to the whole city) is still this case.
            ancestors[row.id] = {row.id, row.community_id, row.street_id, row.district_id, *city} - {None}
        locator = GridLocator.from_conn(conn)
        cases: list[InjectedCase] = []
        serial = 0
        for kind in ("surge", "hotspot", "chronic"):
            for index in places[kind]:
                category_id, department_id = categories[int(rng.integers(len(categories)))]
                members = [int(grids.ids[j]) for j in (grids.neighbours[index] if kind == "hotspot" else [index])]
                rows, times = [], []
                if kind == "surge":
                    points = _points_in(geoms[members[0]], SURGE_REPORTS, rng)
                    times = [now - timedelta(seconds=float(s)) for s in rng.uniform(60, 3 * 3600, SURGE_REPORTS)]
                elif kind == "hotspot":
                    where = rng.integers(len(members), size=HOTSPOT_REPORTS)
                    points = np.array([_points_in(geoms[members[w]], 1, rng)[0] for w in where])
                    times = [now - timedelta(seconds=float(s)) for s in rng.uniform(60, 3 * 86400, HOTSPOT_REPORTS)]
                else:
                    spot = _points_in(geoms[members[0]], 1, rng)[0]
                    jitter = rng.normal(0.0, 0.00012, (CHRONIC_REPORTS, 2))  # about 13 m
                    points = spot + jitter
                    days = np.sort(rng.choice(np.arange(1, 25), CHRONIC_REPORTS, replace=False))[::-1]
                    times = [now - timedelta(days=int(d), hours=float(rng.uniform(0, 10))) for d in days]
                for (lon, lat), at in zip(points, times, strict=True):
                    serial += 1
                    rows.append(
                        {
                            "source": "12345" if serial % 2 else "patrol",
                            "external_id": f"inject-{seed}-{kind}-{serial}",
                            "category_id": int(category_id),
                            "priority": 3,
                            "description": f"injected {kind} case (early-warning test)",
                            "lon": float(lon),
                            "lat": float(lat),
                            "reported_at": at,
                        }
                    )
                results = report_incidents(conn, rows, actor=ACTOR, locator=locator, now=now)
                ids = [r.incident_id for r in results]
                if kind == "chronic" and close_chronic:
                    for incident_id, at in zip(ids, times, strict=True):
                        _walk_to_closed(conn, incident_id, int(department_id), at, now)
                units = set().union(*(ancestors.get(m, {m}) for m in members))
                centre = points.mean(axis=0)
                cases.append(
                    InjectedCase(kind, int(category_id), members, units, float(centre[0]), float(centre[1]), len(rows), ids)
                )
    return cases


def _walk_to_closed(conn, incident_id: int, department_id: int, reported_at: datetime, now: datetime) -> None:
    """Register, dispatch, acknowledge, resolve and close an incident in the hours after its report (never after now)."""
    step = timedelta(minutes=30)
    at = reported_at
    for action, extra in (
        ("register", {}),
        ("dispatch", {"department_id": department_id}),
        ("acknowledge", {}),
        ("resolve", {"note": "cleaned up"}),
        ("verify_pass", {}),
    ):
        at = min(at + step, now)
        apply_action(conn, incident_id, action, actor=ACTOR, at=at, **extra)


def score_alerts(alerts: list[dict], cases: list[InjectedCase]) -> dict:
    """Recall per kind (a case found by an alert of its own kind), and precision over `alerts` of the pattern kinds.

    An alert counts as true when it points at any injected case (a surge seen as a hotspot is
    still a real injected anomaly). Deadline alerts are not scored here.
    """
    pattern = [a for a in alerts if a["kind"] in ("surge", "hotspot", "chronic")]
    out: dict = {"kinds": {}}
    for kind in ("surge", "hotspot", "chronic"):
        mine = [c for c in cases if c.kind == kind]
        found = sum(1 for c in mine if any(a["kind"] == kind and c.matches(a) for a in pattern))
        found_any = sum(1 for c in mine if any(c.matches(a) for a in pattern))
        out["kinds"][kind] = {
            "cases": len(mine),
            "found": found,
            "found_by_any_kind": found_any,
            "recall": found / len(mine) if mine else None,
        }
    true_alerts = [a for a in pattern if any(c.matches(a) for c in cases)]
    out["alerts"] = len(pattern)
    out["true_alerts"] = len(true_alerts)
    out["precision"] = len(true_alerts) / len(pattern) if pattern else None
    out["false_alerts"] = [a for a in pattern if a not in true_alerts]
    return out


__all__ = ["InjectedCase", "inject_warnings", "score_alerts"]
