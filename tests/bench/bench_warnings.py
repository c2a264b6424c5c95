"""Benchmark: one early-warning detection pass over the demo city (default 62,000 grids, ~1M incidents), with precision and recall on injected cases.

Run: .venv/bin/python tests/bench/bench_warnings.py [--grids 62000] [--days 90] [--per-day 11112] [--runs 5] [--inject 10]
The demo store is the one bench_overview.py builds and caches (tests/bench/results/overview-<grids>-<days>x<per-day>.db);
this script works on a copy of it (results/warnings-work.db), so the cache stays untouched.

1. A quiet spell: a pass every 3 hours over the last two days of the ordinary history (surges, hotspots,
   chronic places): the alerts they raise per day. The demo history plants a few emerging hotspots of
   its own (data/demo/history.py, EMERGING_HOTSPOTS), which are real signals, not false alarms.
2. Timing at the history's end (`now`): median of --runs full passes (all four kinds, read + detect +
   write), with the grids cached in the process (the server's thread) and without (a fresh process).
3. --inject cases of each kind are written as ordinary reports (data/demo/inject.py), one pass runs, and
   the alerts it newly raises are scored: recall per kind, precision over all new pattern alerts.
Prints a table and writes tests/bench/results/warnings-<db>.json. --db postgres builds the demo in a
throwaway schema of the server at CITYBRAIN_TEST_PG_URL instead (slow at 1M incidents: minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy import inspect

from data import schema, store
from data.demo.inject import inject_warnings, score_alerts
from data.warnings import alerts as warnings
from data.warnings import detect as warning_detect

RESULTS = ROOT / "tests" / "bench" / "results"
PATTERNS = ("surge", "hotspot", "chronic")


def work_copy(grids: int, days: float, per_day: float):
    """An engine on a fresh copy of the cached demo store (built first when missing)."""
    from bench_overview import demo_store  # the overview benchmark owns the cache and how it is built

    engine, path, _ = demo_store(grids, days, per_day)
    engine.dispose()  # checkpoints the WAL into the file before it is copied
    target = RESULTS / "warnings-work.db"
    for leftover in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copy(path, target)
    engine = store.make_engine(f"sqlite:///{target}")
    store.migrate(engine)
    _ensure_detection_indexes(engine)
    return engine


def _ensure_detection_indexes(engine) -> None:
    # A cache built while migration 0006 lacked its covering indexes: add them as the migration now does.
    with engine.begin() as conn:
        for table in (schema.incidents, schema.units):
            present = {ix["name"] for ix in inspect(conn).get_indexes(table.name)}
            for index in table.indexes:
                if index.name in ("ix_incidents_warning_cover", "ix_units_grid_cover") and index.name not in present:
                    index.create(conn)


def timed_passes(engine, now: datetime, runs: int, cold_grids: bool) -> tuple[float, dict]:
    """(median seconds, the median run's summary) of `runs` full passes at `now`; cold_grids: as a fresh process."""
    results = []
    for i in range(runs):
        if cold_grids:
            warning_detect.clear_caches()
        started = time.perf_counter()
        summary = warning_detect.run_detection(engine, now + timedelta(seconds=i + 1))
        results.append((time.perf_counter() - started, summary))
    results.sort(key=lambda r: r[0])
    seconds, summary = results[len(results) // 2]
    return seconds, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=62000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--per-day", type=float, default=11112)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--inject", type=int, default=10, help="injected cases of each kind")
    parser.add_argument("--quiet-hours", type=int, default=48, help="quiet spell scanned every 3 h before injecting")
    parser.add_argument(
        "--db", choices=("sqlite", "postgres"), default="sqlite", help="postgres: a demo built in a throwaway schema"
    )
    args = parser.parse_args()
    if args.db == "postgres":
        from _util import pg_schema_engine

        from data.demo.city import build_demo

        with pg_schema_engine() as engine:
            if engine is None:
                return
            store.migrate(engine)
            started = time.perf_counter()
            build_demo(engine, grids=args.grids, days=args.days, per_day=args.per_day)
            print(f"PostgreSQL demo built in {time.perf_counter() - started:.0f} s")
            run(engine, args, "PostgreSQL")
        return
    run(work_copy(args.grids, args.days, args.per_day), args, "SQLite")


def run(engine, args, db_name: str) -> None:
    """The three parts on one store; prints the table and writes warnings-<db>.json."""
    warning_detect.clear_caches()
    with store.reading(engine) as conn:
        now = datetime.fromisoformat(store.get_meta(conn, "demo_built_at"))
        counts = store.counts(conn)
    load = os.getloadavg()
    print(
        f"early-warning pass: {counts['grids']:,} grids, {counts['incidents']:,} incidents ({counts['open_incidents']:,} open), "
        f"{db_name}, {os.cpu_count()} cores, load average {load[0]:.1f}; median of {args.runs} runs"
    )

    # 1. A quiet spell.
    quiet_passes = 0
    for hours in range(-args.quiet_hours, 1, 3):
        warning_detect.run_detection(engine, now + timedelta(hours=hours), kinds=PATTERNS)
        quiet_passes += 1
    with store.reading(engine) as conn:
        quiet = warnings.list_alerts(conn, statuses=None, kinds=PATTERNS, limit=1_000_000)
    quiet_per_day = len(quiet) / (args.quiet_hours / 24)
    by_kind = {k: sum(1 for a in quiet if a["kind"] == k) for k in PATTERNS}

    # 2. Timing.
    warm_s, warm = timed_passes(engine, now, args.runs, cold_grids=False)
    cold_s, cold = timed_passes(engine, now + timedelta(minutes=1), args.runs, cold_grids=True)

    # 3. Injected cases.
    injected_at = now + timedelta(minutes=5)
    started = time.perf_counter()
    cases = inject_warnings(engine, injected_at, surges=args.inject, hotspots=args.inject, chronic=args.inject, seed=17)
    inject_s = time.perf_counter() - started
    first = warning_detect.run_detection(engine, injected_at)
    with store.reading(engine) as conn:
        raised = [
            a
            for a in warnings.list_alerts(conn, statuses=("open",), kinds=PATTERNS, limit=1_000_000)
            if a["first_seen_at"] == injected_at
        ]
    score = score_alerts(raised, cases)
    after_s, after = timed_passes(engine, injected_at, args.runs, cold_grids=False)

    result = {
        "grids": counts["grids"],
        "incidents": counts["incidents"],
        "cores": os.cpu_count(),
        "load_average": load[0],
        "runs": args.runs,
        "pass_s_grids_cached": round(warm_s, 3),
        "pass_s_fresh_process": round(cold_s, 3),
        "pass_s_after_injection": round(after_s, 3),
        "timings_grids_cached": warm["timings"],
        "timings_fresh_process": cold["timings"],
        "found_at_now": {k: v["found"] for k, v in warm["kinds"].items()},
        "quiet": {
            "hours": args.quiet_hours,
            "passes": quiet_passes,
            "alerts": len(quiet),
            "per_day": quiet_per_day,
            "by_kind": by_kind,
        },
        "injected": {k: v for k, v in score.items() if k != "false_alerts"},
        "false_alerts": [a["reason_en"] for a in score["false_alerts"]],
        "inject_s": round(inject_s, 2),
        "first_pass_after_injection": first["kinds"],
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"warnings-{db_name.lower()}.json").write_text(json.dumps(result, indent=2, default=str))

    print(f"\n{'measure':<52} {'value':>12}")
    print(f"{'pass, grids cached in the process (median)':<52} {warm_s:>10.2f} s")
    print(f"{'pass in a fresh process (median)':<52} {cold_s:>10.2f} s")
    print(f"{'pass after injection (median)':<52} {after_s:>10.2f} s")
    t = warm["timings"]
    steps = ("load_grids", "load_reports", "surge", "hotspot", "chronic", "deadline", "write")
    print("  of which (grids cached): " + ", ".join(f"{k} {t[k]:.2f}" for k in steps if k in t))
    print(f"  reports read per pass: {int(t['reports_read']):,}")
    print(f"  found at now: {', '.join(f'{k} {v}' for k, v in result['found_at_now'].items())}")
    print(
        f"{'quiet spell: pattern alerts a day':<52} {quiet_per_day:>12.1f}"
        f"   ({len(quiet)} in {args.quiet_hours} h, {quiet_passes} passes: {by_kind})"
    )
    for kind, s in score["kinds"].items():
        print(f"{'injected ' + kind + ': recall':<52} {s['found']:>5} / {s['cases']:<4} ({s['recall']:.0%})")
    precision = score["precision"]
    print(
        f"{'precision of the new pattern alerts':<52} {score['true_alerts']:>5} / {score['alerts']:<4} ({precision:.0%})"
        if precision is not None
        else "no new pattern alerts"
    )
    for reason in result["false_alerts"][:10]:
        print(f"    not injected: {reason}")
    for case in cases:
        if not any(case.matches(a) for a in raised if a["kind"] == case.kind):
            print(
                f"    missed {case.kind}: category {case.category_id}, grids {case.grid_ids[:3]}, at {case.lon:.5f},{case.lat:.5f}"
            )
    print(f"(injecting {sum(c.reports for c in cases)} reports took {inject_s:.1f} s)")
    engine.dispose()


if __name__ == "__main__":
    main()
