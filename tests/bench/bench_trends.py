"""Benchmark of the leaders' review (data/trends.review, all of /trends' figures) on a large generated history.

Run: .venv/bin/python tests/bench/bench_trends.py [--incidents 1000000] [--days 90] [--runs 3] [--db sqlite|postgres]
Generates the incidents in bulk (tests/bench/_util.py: numpy + executemany/COPY), then times
review() for each period and scope: the median of `--runs` calls on a warm connection. Prints a
table with the machine's core count and writes tests/bench/results/trends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import store, trends  # noqa: E402
from tests.bench._util import (  # noqa: E402
    bulk_load,
    generate_history,
    load_grids,
    make_catalogue,
    median_time,
    pg_schema_engine,
    utc_now_whole,
)
from tests.factories import make_grids  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results"
TZ = "Asia/Shanghai"


def build(engine, n: int, days: int):
    """A 100 × 50 grid city in nine districts with `n` incidents over `days` days; returns (now, a district id, load s)."""
    store.migrate(engine)
    now = utc_now_whole()
    with engine.begin() as conn:
        catalogue = make_catalogue(conn)
        lattice = make_grids(conn, 100, 50, origin=(106.3, 29.3), cell=0.005, districts=9)
        grids = load_grids(conn)
    start = time.perf_counter()
    incidents, events = generate_history(n, grids, catalogue, now, days=days, seed=1)
    bulk_load(engine, incidents, events)
    return now, lattice.district_ids[0], time.perf_counter() - start


def bench(engine, n: int, days: int, runs: int) -> dict:
    now, district, load_s = build(engine, n, days)
    out = {"incidents": n, "days": days, "generate_and_load_s": round(load_s, 1), "timings_ms": {}}
    for period in (7, 30, 90):
        for label, scope in (("city", None), ("district", ("district", district))):
            for gran in ("day", "week"):

                def call(period=period, scope=scope, gran=gran):
                    with store.reading(engine) as conn:
                        return trends.review(conn, scope, now, TZ, days=period, granularity=gran)

                seconds, review = median_time(call, runs)
                key = f"{period}d {label} {gran}"
                out["timings_ms"][key] = round(seconds * 1000)
                print(f"  {key:<22} {seconds * 1000:>9,.0f} ms   received {review['totals']['received']:,}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(
        f"review() of /trends: {args.incidents:,} incidents over {args.days} days, {args.db}, "
        f"median of {args.runs} runs, {os.cpu_count()} cores"
    )
    if args.db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = store.make_engine(f"sqlite:///{tmp}/trends.db")
            result = bench(engine, args.incidents, args.days, args.runs)
            engine.dispose()
    else:
        with pg_schema_engine() as engine:
            if engine is None:
                return
            result = bench(engine, args.incidents, args.days, args.runs)
    result.update({"db": args.db, "runs": args.runs, "cores": os.cpu_count()})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"trends-{args.db}.json").write_text(json.dumps(result, indent=2))
    print(f"\n{'case':<22} {'server time':>12}")
    for key, ms in result["timings_ms"].items():
        print(f"{key:<22} {ms:>9,} ms")
    print(f"generate + load: {result['generate_and_load_s']} s")


if __name__ == "__main__":
    main()
