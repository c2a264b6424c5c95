"""Benchmark: boundary import of ~5,000 community polygons and generation of ~60,000 grid cells, SQLite and PostgreSQL.

Run: .venv/bin/python tests/bench/bench_geo.py [--polygons 5000] [--cells 60000] [--runs 3]
The communities are a Voronoi tessellation (about 70 vertices each) of a 60 km square near
Wuhan in CGCS2000 / 3-degree Gauss-Kruger CM 114E (EPSG:4547), written as a GeoPackage and
imported under 10 districts (parents found by largest overlap). Each run uses a fresh store.
Prints a table (median of the runs, with the machine's core count) and writes
tests/bench/results/geo.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import store
from data.geo.importer import import_boundaries

PG_URL = os.environ.get("CITYBRAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
EXTENT = shapely.box(470_000, 3_360_000, 530_000, 3_420_000)  # metres in EPSG:4547, around Wuhan


def tessellation(n: int, seed: int, vertex_spacing_m: float | None = None) -> np.ndarray:
    """n Voronoi polygons tiling EXTENT, optionally with extra vertices along their edges."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = EXTENT.bounds
    points = shapely.multipoints(np.column_stack([rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)]))
    cells = shapely.get_parts(shapely.voronoi_polygons(points, extend_to=EXTENT))
    cells = shapely.intersection(cells, EXTENT)
    if vertex_spacing_m:
        cells = shapely.segmentize(cells, vertex_spacing_m)
    return cells


def write_inputs(folder: Path, polygons: int) -> tuple[Path, Path]:
    districts = gpd.GeoDataFrame(
        {"code": [f"D{i:02d}" for i in range(10)], "name": [f"District {i}" for i in range(10)]},
        geometry=tessellation(10, 1, 200),
        crs=4547,
    )
    communities = tessellation(polygons, 2, 50)
    communities = gpd.GeoDataFrame(
        {
            "code": [f"C{i:05d}" for i in range(len(communities))],
            "name": [f"Community {i}" for i in range(len(communities))],
            "name_zh": [f"第{i}社区" for i in range(len(communities))],
        },
        geometry=communities,
        crs=4547,
    )
    d_path, c_path = folder / "districts.gpkg", folder / "communities.gpkg"
    districts.to_file(d_path, driver="GPKG")
    communities.to_file(c_path, driver="GPKG")
    return d_path, c_path


@contextmanager
def fresh_store(kind: str, folder: Path):
    if kind == "sqlite":
        engine = store.make_engine(f"sqlite:///{folder / f'bench-{uuid.uuid4().hex[:8]}.db'}")
        store.migrate(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    engine = store.make_engine(PG_URL, connect_args={"options": f"-csearch_path={name}"})
    try:
        store.migrate(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def pg_available() -> bool:
    try:
        engine = store.make_engine(PG_URL, pool_size=1, max_overflow=0, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception as exc:  # noqa: BLE001 - any failure to reach the server means "skip PostgreSQL"
        print(f"PostgreSQL skipped ({PG_URL}): {str(exc).splitlines()[0]}")
        return False


def bench(kind: str, folder: Path, d_path: Path, c_path: Path, cells: int, runs: int) -> dict:
    # Cell size for ~`cells` squares over the whole 60 km square.
    size = round(float(np.sqrt(EXTENT.area / cells)))
    timings = {"import": [], "reimport": [], "grid_square": [], "grid_hex": []}
    last = {}
    for _ in range(runs):
        with fresh_store(kind, folder) as engine:
            import_boundaries(engine, d_path, "district", code_field="code", name_field="name")
            for key, call in (
                (
                    "import",
                    lambda e=engine: import_boundaries(
                        e, c_path, "community", code_field="code", name_field="name", name_zh_field="name_zh"
                    ),
                ),
                (
                    "reimport",
                    lambda e=engine: import_boundaries(
                        e, c_path, "community", code_field="code", name_field="name", name_zh_field="name_zh"
                    ),
                ),
                ("grid_square", lambda e=engine: import_boundaries(e, None, "district", generate_grid="square", cell_size=size)),
                # Same cell area as the squares: a hexagon's flat-to-flat width is sqrt(2/sqrt(3)) times the side.
                (
                    "grid_hex",
                    lambda e=engine: import_boundaries(e, None, "district", generate_grid="hex", cell_size=size * 1.0746),
                ),
            ):
                start = time.perf_counter()
                last[key] = call()
                timings[key].append(time.perf_counter() - start)
    return {
        "database": kind,
        "polygons": last["import"].features,
        "parents_by_overlap": last["import"].parent_by_overlap,
        "import_s": statistics.median(timings["import"]),
        "reimport_s": statistics.median(timings["reimport"]),
        "cell_size_m": size,
        "square_cells": last["grid_square"].grid_cells,
        "grid_square_s": statistics.median(timings["grid_square"]),
        "hex_cells": last["grid_hex"].grid_cells,
        "grid_hex_s": statistics.median(timings["grid_hex"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polygons", type=int, default=5000)
    parser.add_argument("--cells", type=int, default=60000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        d_path, c_path = write_inputs(folder, args.polygons)
        kinds = ["sqlite"] + (["postgres"] if pg_available() else [])
        for kind in kinds:
            results.append(bench(kind, folder, d_path, c_path, args.cells, args.runs))
    cores = os.cpu_count()
    print(f"boundary import and grid generation, median of {args.runs} runs, {cores} cores")
    print(
        f"{'database':<10}{'polygons':>9}{'import s':>10}{'re-import s':>12}{'squares':>9}{'square s':>10}{'hexes':>8}{'hex s':>8}"
    )
    for r in results:
        print(
            f"{r['database']:<10}{r['polygons']:>9}{r['import_s']:>10.2f}{r['reimport_s']:>12.2f}"
            f"{r['square_cells']:>9}{r['grid_square_s']:>10.2f}{r['hex_cells']:>8}{r['grid_hex_s']:>8.2f}"
        )
    out = ROOT / "tests" / "bench" / "results" / "geo.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cores": cores, "runs": args.runs, "results": results}, indent=2), encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
