"""Benchmark of the leaders' review (data/trends.review, all of /trends' figures) on a large generated history.

Run: .venv/bin/python tests/bench/bench_trends.py [--incidents 1000000] [--days 90] [--runs 3] [--db sqlite|postgres]
Generates the incidents in bulk (tests/bench/_util.py: numpy + executemany/COPY), builds the roll-up
(data/metrics/rollups.py), then times, for each period and scope, review() straight from the incidents (the
"before": one run, `--direct-runs`), review() from the roll-up and the whole /trends content (review +
charts + tables) from the roll-up: medians of `--runs` calls on a warm connection. Finally times an
incremental refresh after a few hundred acknowledgements. `--keep` keeps the SQLite store in
tests/bench/results/trends-N-DAYS.db and reuses it (its `now` is stored with it). Prints a table with the machine's core
count and writes tests/bench/results/trends-<db>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import inspect, select

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from dashboard.pages import trends as page
from data import schema, store
from data.incidents.transitions import apply_action
from data.metrics import rollups, trends
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


def build_or_reuse(engine, n: int, days: int):
    """build(), or the store a --keep run left (its `now` and district are in the meta table)."""
    with engine.connect() as conn:
        kept = store.get_meta(conn, "bench_trends_now") if "meta" in inspect(conn).get_table_names() else None
        if kept:
            return datetime.fromisoformat(kept), int(store.get_meta(conn, "bench_trends_district")), None
    now, district, load_s = build(engine, n, days)
    with engine.begin() as conn:
        store.set_meta(conn, "bench_trends_now", now.isoformat())
        store.set_meta(conn, "bench_trends_district", str(district))
    return now, district, load_s


def bench(engine, n: int, days: int, runs: int, direct_runs: int) -> dict:
    now, district, load_s = build_or_reuse(engine, n, days)
    store.migrate(engine)
    out = {"incidents": n, "days": days, "generate_and_load_s": load_s and round(load_s, 1), "timings_ms": {}}
    start = time.perf_counter()
    with engine.begin() as conn:
        done = rollups.refresh(conn, TZ)
    out["rollup_build_s" if done["rebuilt"] else "rollup_refresh_s"] = round(time.perf_counter() - start, 1)
    print(f"  roll-up {'built' if done['rebuilt'] else 'refreshed'} in {time.perf_counter() - start:.1f} s", flush=True)
    for period in (7, 30, 90, 365):
        for label, scope in (("city", None), ("district", ("district", district))):
            for gran in ("day", "week"):
                key = f"{period}d {label} {gran}"
                row = out["timings_ms"][key] = {}

                def call(period=period, scope=scope, gran=gran, use=True):
                    with store.reading(engine) as conn:
                        return trends.review(conn, scope, now, TZ, days=period, granularity=gran, use_rollups=use)

                if direct_runs:
                    seconds, direct = median_time(lambda call=call: call(use=False), direct_runs)
                    row["direct"] = round(seconds * 1000)
                seconds, review = median_time(call, runs)
                row["rollup"] = round(seconds * 1000)
                choice = page.Choice(days=period, scope=scope and (scope_level(scope), scope[1]), granularity=gran)
                seconds, _ = median_time(lambda choice=choice: page.content(engine, choice, "en", TZ, now=now), runs)
                row["page"] = round(seconds * 1000)
                print(f"  {key:<22} {row}   received {review['totals']['received']:,}", flush=True)
    out["incremental_refresh"] = incremental(engine, now)
    return out


def scope_level(scope) -> int:
    return schema.LEVELS[scope[0]]


def incremental(engine, now, count: int = 300) -> dict:
    """Acknowledge `count` dispatched incidents through data/incidents/transitions.py, then time the refresh that applies them."""
    inc = schema.incidents
    with engine.begin() as conn:
        ids = [r[0] for r in conn.execute(select(inc.c.id).where(inc.c.state == "dispatched").limit(count))]
        for incident_id in ids:
            apply_action(conn, incident_id, "acknowledge", actor="bench", at=now)
    start = time.perf_counter()
    with engine.begin() as conn:
        done = rollups.refresh(conn, TZ)
    seconds = time.perf_counter() - start
    print(f"  incremental refresh of {done['incidents']} changed incidents: {seconds * 1000:,.0f} ms", flush=True)
    return {"incidents": done["incidents"], "ms": round(seconds * 1000)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--direct-runs", type=int, default=1, help="runs straight from the incidents (0: skip)")
    parser.add_argument(
        "--keep", action="store_true", help="SQLite: keep the store in tests/bench/results/ and reuse it next time"
    )
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    args = parser.parse_args()
    print(
        f"review() of /trends: {args.incidents:,} incidents over {args.days} days, {args.db}, "
        f"median of {args.runs} runs, {os.cpu_count()} cores"
    )
    if args.db == "sqlite" and args.keep:
        RESULTS.mkdir(parents=True, exist_ok=True)
        engine = store.make_engine(f"sqlite:///{RESULTS / f'trends-{args.incidents}-{args.days}.db'}")
        result = bench(engine, args.incidents, args.days, args.runs, args.direct_runs)
        engine.dispose()
    elif args.db == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            engine = store.make_engine(f"sqlite:///{tmp}/trends.db")
            result = bench(engine, args.incidents, args.days, args.runs, args.direct_runs)
            engine.dispose()
    else:
        with pg_schema_engine() as engine:
            if engine is None:
                return
            result = bench(engine, args.incidents, args.days, args.runs, args.direct_runs)
    result.update({"db": args.db, "runs": args.runs, "cores": os.cpu_count()})
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"trends-{args.db}.json").write_text(json.dumps(result, indent=2))
    print(f"\n{'case':<22} {'direct review':>14} {'roll-up review':>15} {'/trends content':>16}")
    for key, row in result["timings_ms"].items():
        direct = f"{row['direct']:,} ms" if "direct" in row else "-"
        print(f"{key:<22} {direct:>14} {row['rollup']:>12,} ms {row['page']:>13,} ms")
    built = result.get("rollup_build_s")
    print(f"roll-up build: {built if built is not None else 'kept'} s; incremental refresh: {result['incremental_refresh']}")
    print(f"generate + load: {result['generate_and_load_s'] or 'kept'} s")


if __name__ == "__main__":
    main()
