"""Benchmark: report_incidents rows/s for a 10,000-row batch against a 5,000-grid locator, SQLite and PostgreSQL.

Run: .venv/bin/python tests/bench/bench_report_incidents.py [--rows 10000] [--grids 5000] [--runs 3]
Prints a table (median of the runs, with the machine's core count) and writes
tests/bench/results/report_incidents.json.
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
from datetime import timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import store
from data.incidents.intake import report_incidents
from tests.factories import T0, make_grids, make_world

PG_URL = os.environ.get("CITYBRAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def _rows(world, lattice, n: int, run: int) -> list[dict]:
    rng = np.random.default_rng(run)
    (x0, y0), span_x, span_y = lattice.origin, lattice.cols * lattice.cell, lattice.rows * lattice.cell
    # About 2% of points fall outside every grid, as real feeds do.
    lons = rng.uniform(x0 - 0.02 * span_x, x0 + span_x, n)
    lats = rng.uniform(y0, y0 + span_y, n)
    codes = list(world.categories)
    return [
        {
            "source": "bench",
            "external_id": f"r{run}-{i}",
            "category_code": codes[i % len(codes)],
            "priority": 1 + i % 3,
            "description": "bench incident",
            "lon": float(lons[i]),
            "lat": float(lats[i]),
            "reported_at": T0 + timedelta(seconds=i),
        }
        for i in range(n)
    ]


def bench(engine, rows: int, grids: int, runs: int) -> dict:
    store.migrate(engine)
    with engine.begin() as conn:
        world = make_world(conn)
        cols = int(round((grids * 2) ** 0.5))
        lattice = make_grids(conn, cols, grids // cols, origin=(107.0, 30.0), cell=0.005, districts=9)
    with engine.connect() as conn:
        t = time.perf_counter()
        locator = lattice.locator(conn)
        build = time.perf_counter() - t
    timings, cpu = [], []
    for run in range(runs):
        batch = _rows(world, lattice, rows, run)
        t, c = time.perf_counter(), time.process_time()
        with engine.begin() as conn:
            results = report_incidents(conn, batch, actor="bench", locator=locator, now=T0 + timedelta(days=1))
        timings.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        assert sum(r.created for r in results) == rows
    median = statistics.median(timings)
    # CPU seconds of this process: on a busy shared machine a steadier figure than wall time
    # (for SQLite it is all the work; PostgreSQL's server time is not in it).
    return {
        "grids": len(locator),
        "rows": rows,
        "runs": runs,
        "median_s": median,
        "rows_per_s": rows / median,
        "best_s": min(timings),
        "median_cpu_s": statistics.median(cpu),
        "locator_build_s": build,
        "load_average": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--grids", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        engine = store.make_engine(f"sqlite:///{tmp}/bench.db")
        results["sqlite"] = bench(engine, args.rows, args.grids, args.runs)
        engine.dispose()
    schema_name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    except Exception as exc:  # noqa: BLE001 - a benchmark without a server still reports SQLite
        print(f"PostgreSQL skipped: {exc.__class__.__name__}: {exc}".splitlines()[0])
    else:
        engine = store.make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema_name}"})
        try:
            results["postgresql"] = bench(engine, args.rows, args.grids, args.runs)
        finally:
            engine.dispose()
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
    admin.dispose()

    print(f"report_incidents, {args.rows} rows per batch, median of {args.runs} runs, {results['cores']} cores")
    print(f"{'database':<12}{'grids':>7}{'median s':>10}{'rows/s':>10}{'best s':>8}{'cpu s':>8}{'locator s':>11}{'load':>6}")
    for name in ("sqlite", "postgresql"):
        if name in results:
            r = results[name]
            print(
                f"{name:<12}{r['grids']:>7}{r['median_s']:>10.3f}{r['rows_per_s']:>10.0f}{r['best_s']:>8.3f}"
                f"{r['median_cpu_s']:>8.3f}{r['locator_build_s']:>11.3f}{r['load_average']:>6.1f}"
            )
    out = ROOT / "tests" / "bench" / "results" / "report_incidents.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
