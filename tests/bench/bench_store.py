"""Benchmark of the store on SQLite and PostgreSQL: demo build, boundary import, incident import, grid lookups, overview metrics at 1M.

Run: .venv/bin/python tests/bench/bench_store.py [--quick] [--runs N] [--only NAME ...]
Prints a table (median of the runs, with the machine's core count) and writes
tests/bench/results/store.json. PostgreSQL runs in a schema of its own, dropped afterwards, and is
skipped with a note when the server (CITYBRAIN_TEST_PG_URL) cannot be reached.

"cold" is the first call on a fresh engine (a new connection: SQLite's page cache empty); the
operating system's file cache and PostgreSQL's shared buffers are not dropped, which needs root.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import tempfile
import time
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import numpy as np
import shapely
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import schema, store
from data.geo import crs
from data.geo.importer import import_boundaries
from data.geo.locate import GridLocator
from data.incidents.file_import import import_incident_file
from data.incidents.file_reading import ColumnMapping
from data.incidents.transitions import apply_action
from data.metrics import working_set as kpi_set
from data.metrics.board import department_board
from data.metrics.kpis import overview_kpis
from tests.bench._util import (
    bulk_load,
    generate_history,
    load_grids,
    make_catalogue,
    median_time,
    pg_schema_engine,
    utc_now_whole,
)
from tests.factories import make_grids

TZ = "Asia/Shanghai"
RESULTS = ROOT / "tests" / "bench" / "results" / "store.json"
FULL = {
    "runs": 3,
    "demo": {"grids": 5000, "days": 90, "per_day": 1500},
    "boundaries": 2000,
    "import_rows": 100_000,
    "lookup_grids": (5000, 62_000),
    "lookup_points": 500_000,
    "metrics_incidents": 1_000_000,
    "metrics_per_day": 3000,
}
QUICK = {
    "runs": 1,
    "demo": {"grids": 1000, "days": 7, "per_day": 300},
    "boundaries": 500,
    "import_rows": 20_000,
    "lookup_grids": (5000, 20_000),
    "lookup_points": 100_000,
    "metrics_incidents": 200_000,
    "metrics_per_day": 3000,
}
PARTS = ("demo", "boundaries", "import", "lookup", "metrics")


@contextmanager
def sqlite_engine(tmp: Path, name: str):
    path = tmp / f"{name}.db"
    engine = store.make_engine(f"sqlite:///{path}")
    try:
        yield engine
    finally:
        engine.dispose()
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


@contextmanager
def fresh_store(db: str, tmp: Path, name: str):
    """A migrated, empty store on `db` ('sqlite' or 'postgresql'); None when PostgreSQL is unreachable."""
    context = sqlite_engine(tmp, name) if db == "sqlite" else pg_schema_engine()
    with context as engine:
        if engine is not None:
            store.migrate(engine)
        yield engine


# --- the parts ---------------------------------------------------------------------------------------


def bench_demo(db: str, tmp: Path, cfg: dict) -> dict:
    from data.demo.city import build_demo

    timings = []
    for run in range(cfg["runs"]):
        with fresh_store(db, tmp, f"demo{run}") as engine:
            if engine is None:
                return {}
            start = time.perf_counter()
            report = build_demo(engine, seed=7, **cfg["demo"])
            timings.append(time.perf_counter() - start)
    return {"seconds": float(np.median(timings)), "incidents": report.incidents, "events": report.events, **cfg["demo"]}


def boundary_file(path: Path, n: int) -> Path:
    """n round-ish 24-vertex polygons (communities) on a lattice around Chongqing, as GeoJSON."""
    cols = int(np.ceil(np.sqrt(n)))
    features = []
    for i in range(n):
        cx, cy = 106.3 + (i % cols) * 0.01, 29.3 + (i // cols) * 0.01
        angles = np.linspace(0, 2 * np.pi, 24, endpoint=False)
        ring = [[round(cx + 0.0045 * np.cos(a), 7), round(cy + 0.0045 * np.sin(a), 7)] for a in angles]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": f"BC{i:05d}", "name": f"Community {i}", "name_zh": f"社区{i}"},
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            }
        )
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def bench_boundaries(db: str, tmp: Path, cfg: dict) -> dict:
    path = boundary_file(tmp / "boundaries.geojson", cfg["boundaries"])
    timings = []
    for run in range(cfg["runs"]):
        with fresh_store(db, tmp, f"bounds{run}") as engine:
            if engine is None:
                return {}
            start = time.perf_counter()
            report = import_boundaries(engine, path, "community", code_field="code", name_field="name", name_zh_field="name_zh")
            timings.append(time.perf_counter() - start)
            assert report.inserted == cfg["boundaries"], report.summary_lines()
    return {"polygons": cfg["boundaries"], "seconds": float(np.median(timings))}


def incident_csv(path: Path, lattice, rows: int, seed: int = 3) -> Path:
    """A realistic export: GCJ-02 points, naive local times, category names to map, 4% bad rows, 2% outside the city."""
    rng = np.random.default_rng(seed)
    (x0, y0), span_x, span_y = lattice.origin, lattice.cols * lattice.cell, lattice.rows * lattice.cell
    lon = rng.uniform(x0 - 0.02 * span_x, x0 + span_x, rows)
    lat = rng.uniform(y0, y0 + span_y, rows)
    glon, glat = crs.wgs84_to_gcj02(lon, lat)
    start = utc_now_whole() - timedelta(days=30)
    seconds = np.sort(rng.integers(0, 29 * 86400, rows))
    categories = [f"bc{i}" for i in range(40)] + ["飞碟"]  # one unknown name: about 2.4% of rows
    pick = rng.integers(0, len(categories), rows)
    texts = ["路边垃圾堆积", "积水", "噪音扰民, 夜间施工", ""]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["编号", "上报时间", "经度", "纬度", "类别", "描述", "优先级"])
        for i in range(rows):
            local = start + timedelta(seconds=int(seconds[i]), hours=8)
            writer.writerow(
                [
                    "" if i % 97 == 0 else f"12345-{i:07d}",
                    local.strftime("%Y-%m-%d %H:%M:%S"),
                    f"{glon[i]:.6f}",
                    f"{glat[i]:.6f}",
                    categories[pick[i]],
                    texts[i % 4],
                    "" if i % 3 else str(1 + i % 3),
                ]
            )
    return path


def bench_import(db: str, tmp: Path, cfg: dict) -> dict:
    with fresh_store(db, tmp, "import") as engine:
        if engine is None:
            return {}
        with engine.begin() as conn:
            make_catalogue(conn)
            lattice = make_grids(conn, 100, 50, origin=(106.3, 29.3), cell=0.005, districts=9)
        path = incident_csv(tmp / "incidents.csv", lattice, cfg["import_rows"])
        with engine.connect() as conn:
            locator = GridLocator.from_conn(conn)
        rates, report = [], None
        for run in range(cfg["runs"]):
            # A new channel name per run, so each run stores every row anew.
            report = import_incident_file(
                engine,
                path,
                ColumnMapping(),
                source=f"bench{run}",
                tz=TZ,
                crs="gcj02",
                locator=locator,
                rejects_path=tmp / "rejects.csv",
            )
            rates.append(report.rows_per_s)
        again_start = time.perf_counter()
        again = import_incident_file(
            engine, path, ColumnMapping(), source="bench0", tz=TZ, crs="gcj02", locator=locator, rejects_path=tmp / "rejects.csv"
        )
        again_s = time.perf_counter() - again_start
    assert again.imported == 0
    return {
        "rows": report.read,
        "imported": report.imported,
        "unlocated": report.unlocated,
        "rejected": report.rejected,
        "rows_per_s": float(np.median(rates)),
        "reimport_rows_per_s": report.read / again_s,
    }


def bench_lookup(db: str, tmp: Path, cfg: dict) -> dict:
    out = {}
    for grids in cfg["lookup_grids"]:
        with fresh_store(db, tmp, f"lookup{grids}") as engine:
            if engine is None:
                return {}
            cols = int(round((grids * 2) ** 0.5))
            with engine.begin() as conn:
                lattice = make_grids(conn, cols, -(-grids // cols), origin=(106.0, 29.0), cell=0.002, districts=9)
            build_s, locator = median_time(lambda engine=engine: _locator(engine), cfg["runs"])
        rng = np.random.default_rng(5)
        n = cfg["lookup_points"]
        (x0, y0), w, h = lattice.origin, lattice.cols * lattice.cell, lattice.rows * lattice.cell
        lons, lats = rng.uniform(x0 - 0.05 * w, x0 + w, n), rng.uniform(y0, y0 + h, n)
        vector_s, _ = median_time(lambda loc=locator, x=lons, y=lats: loc.grid_index(x, y), cfg["runs"])
        many_s, _ = median_time(lambda loc=locator, x=lons, y=lats: loc.locate_many(x, y), cfg["runs"])
        out[str(len(locator))] = {
            "build_s": build_s,
            "grid_index_per_s": n / vector_s,
            "locate_many_per_s": n / many_s,
        }
    return out


def _locator(engine) -> GridLocator:
    with engine.connect() as conn:
        return GridLocator.from_conn(conn)


def bench_metrics(db: str, tmp: Path, cfg: dict) -> dict:
    n, per_day = cfg["metrics_incidents"], cfg["metrics_per_day"]
    with fresh_store(db, tmp, "metrics") as engine:
        if engine is None:
            return {}
        now = utc_now_whole()
        with engine.begin() as conn:
            catalogue = make_catalogue(conn)
            lattice = make_grids(conn, 100, 50, origin=(106.3, 29.3), cell=0.005, districts=9)
            grids = load_grids(conn)
        start = time.perf_counter()
        incidents, events = generate_history(n, grids, catalogue, now, days=max(1, n // per_day), seed=1)
        bulk_load(engine, incidents, events)
        load_s = time.perf_counter() - start
        open_now = int(incidents.is_open.sum())
        del incidents, events
        district = ("district", lattice.district_ids[0])
        out = {"incidents": n, "per_day": per_day, "open": open_now, "generate_and_load_s": load_s}
        for label, fn in (("overview_kpis", overview_kpis), ("department_board", department_board)):
            for scope_label, scope in (("city", None), ("district", district)):
                engine.dispose()  # cold: a new connection, with an empty SQLite page cache
                cold_s, _ = median_time(lambda fn=fn, scope=scope: _read(engine, fn, scope, now), 1)
                warm_s, _ = median_time(lambda fn=fn, scope=scope: _read(engine, fn, scope, now), max(5, cfg["runs"] * 3))
                out[f"{label}_{scope_label}_cold_ms"] = cold_s * 1000
                out[f"{label}_{scope_label}_warm_ms"] = warm_s * 1000
        for scope_label in ("city", "district"):
            out[f"both_{scope_label}_warm_ms"] = (
                out[f"overview_kpis_{scope_label}_warm_ms"] + out[f"department_board_{scope_label}_warm_ms"]
            )
        out.update(_bench_working_set(engine, district, now, cfg))
    return out


def _bench_working_set(engine, district, now, cfg) -> dict:
    """The screens' KPI read (data/metrics/working_set.py): loading the set, a read at the feed's head, and a read
    after one change (the set re-reads that incident first)."""
    out = {}
    load_s, working = median_time(lambda: _ws_read(engine, kpi_set.WorkingSet(), None, now), cfg["runs"])
    out["ws_load_ms"] = load_s * 1000
    working = kpi_set.WorkingSet()
    _ws_read(engine, working, None, now)
    for scope_label, scope in (("city", None), ("district", district)):
        warm_s, _ = median_time(lambda scope=scope: _ws_read(engine, working, scope, now), max(5, cfg["runs"] * 3))
        out[f"ws_{scope_label}_warm_ms"] = warm_s * 1000
        board_s, _ = median_time(lambda scope=scope: _ws_board(engine, working, scope, now), max(5, cfg["runs"] * 3))
        out[f"ws_board_{scope_label}_warm_ms"] = board_s * 1000
    with store.reading(engine) as conn:
        open_ids = (
            conn.execute(select(schema.incidents.c.id).where(schema.incidents.c.state == "acknowledged").limit(60))
            .scalars()
            .all()
        )
    after_change = []
    for incident_id in open_ids[: max(5, cfg["runs"] * 3)]:
        with engine.begin() as conn:  # the change itself is not timed
            apply_action(conn, incident_id, "note", actor="bench", note="bench")
        start = time.perf_counter()
        _ws_read(engine, working, None, now)
        after_change.append(time.perf_counter() - start)
    out["ws_after_change_ms"] = float(np.median(after_change)) * 1000
    return out


def _ws_board(engine, working, scope, now):
    with store.reading(engine) as conn:
        return working.board(conn, scope, now, TZ)


def _ws_read(engine, working, scope, now):
    with store.reading(engine) as conn:
        return working.kpis(conn, scope, now, TZ)


def _read(engine, fn, scope, now):
    with store.reading(engine) as conn:
        return fn(conn, scope, now, TZ)


BENCHES = {
    "demo": bench_demo,
    "boundaries": bench_boundaries,
    "import": bench_import,
    "lookup": bench_lookup,
    "metrics": bench_metrics,
}


# --- the table ------------------------------------------------------------------------------------


def _rows(results: dict, cfg: dict) -> list[tuple[str, dict[str, str]]]:
    """(label, {db: text}) lines of the table."""
    lines = []

    def add(label, part, fmt):
        cells = {db: fmt(results[db][part]) for db in results["databases"] if results[db].get(part)}
        if cells:
            lines.append((label, cells))

    d = cfg["demo"]
    add(
        f"demo build: {d['grids']:,} grids, {d['days']} d x {d['per_day']:,}/d",
        "demo",
        lambda r: f"{r['seconds']:.1f} s ({r['incidents']:,} inc.)",
    )
    add(f"boundary import: {cfg['boundaries']:,} polygons", "boundaries", lambda r: f"{r['seconds']:.2f} s")
    add(f"incident import: {cfg['import_rows']:,}-row CSV", "import", lambda r: f"{r['rows_per_s']:,.0f} rows/s")
    add("  re-import of the same file", "import", lambda r: f"{r['reimport_rows_per_s']:,.0f} rows/s")
    for grids in cfg["lookup_grids"]:
        for key, name in (("grid_index_per_s", "vectorised"), ("locate_many_per_s", "locate_many")):
            add(f"grid lookups, ~{grids:,} grids, {name}", "lookup", lambda r, grids=grids, key=key: _lookup_cell(r, grids, key))
    m = f"{cfg['metrics_incidents'] / 1e6:g}M incidents"
    add(f"history of {m} ({cfg['metrics_per_day']:,}/d) built in", "metrics", lambda r: f"{r['generate_and_load_s']:.0f} s")
    for fn in ("overview_kpis", "department_board"):
        for scope in ("city", "district"):
            add(
                f"{fn} @{m}, {scope}, cold / warm",
                "metrics",
                lambda r, fn=fn, scope=scope: f"{r[f'{fn}_{scope}_cold_ms']:.0f} / {r[f'{fn}_{scope}_warm_ms']:.0f} ms",
            )
    for scope in ("city", "district"):
        add(f"kpis + board @{m}, {scope}, warm", "metrics", lambda r, scope=scope: f"{r[f'both_{scope}_warm_ms']:.0f} ms")
    add(
        f"screens' KPIs (working set) @{m}, city / district",
        "metrics",
        lambda r: f"{r['ws_city_warm_ms']:.1f} / {r['ws_district_warm_ms']:.1f} ms",
    )
    add("  same, city, right after a change (one note)", "metrics", lambda r: f"{r['ws_after_change_ms']:.1f} ms")
    add(
        f"screens' department board (working set) @{m}, city / district",
        "metrics",
        lambda r: f"{r['ws_board_city_warm_ms']:.1f} / {r['ws_board_district_warm_ms']:.1f} ms",
    )
    add("  loading the working set (once per process)", "metrics", lambda r: f"{r['ws_load_ms']:.0f} ms")
    return lines


def _lookup_cell(r: dict, grids: int, key: str) -> str:
    closest = min(r, key=lambda g: abs(int(g) - grids))
    return f"{r[closest][key] / 1e6:.2f} M/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run, smaller sizes (a few minutes)")
    parser.add_argument("--runs", type=int, help="runs per measurement (default 3, quick 1)")
    parser.add_argument("--only", nargs="+", choices=PARTS, help="run only these parts")
    parser.add_argument("--db", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    args = parser.parse_args()
    cfg = dict(QUICK if args.quick else FULL)
    if args.runs:
        cfg["runs"] = args.runs
    random.seed(0)
    load_at_start = os.getloadavg()[0]
    results: dict = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "quick": args.quick,
        "config": cfg,
        "databases": [],
    }
    if args.only and RESULTS.exists():
        # A partial run updates the parts it measured and keeps the others from the last run of the same size.
        previous = json.loads(RESULTS.read_text())
        if previous.get("quick") == args.quick and previous.get("config", {}).get("runs") == cfg["runs"]:
            results = previous
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for db in args.db:
            measured = results.setdefault(db, {})
            for part in args.only or PARTS:
                print(f"{db}: {part} ...", flush=True)
                value = BENCHES[part](db, tmp, cfg)
                if not value:
                    break  # PostgreSQL unreachable: the note was printed once
                measured[part] = value
            if measured and db not in results["databases"]:
                results["databases"].append(db)
    # Other work on the machine slows every figure: keep the load with the results.
    results["load_average"] = [load_at_start, os.getloadavg()[0]]
    shapely_version = shapely.__version__
    print()
    print(
        f"CityBrain store benchmark: median of {cfg['runs']} run(s), {results['cores']} cores "
        f"(load average {results['load_average'][0]:.1f} at the start, {results['load_average'][1]:.1f} at the end), "
        f"Python {results['python']}, shapely {shapely_version}{', --quick' if args.quick else ''}"
    )
    dbs = results["databases"]
    print(f"{'':58}" + "".join(f"{db:>24}" for db in dbs))
    for label, cells in _rows(results, cfg):
        print(f"{label:58}" + "".join(f"{cells.get(db, '-'):>24}" for db in dbs))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nwritten to {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
