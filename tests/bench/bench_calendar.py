"""Benchmark: what the working-hours calendar costs a due time and a dispatch (calendar off against on).

Run: .venv/bin/python tests/bench/bench_calendar.py [--runs 200]
Times (median of --runs calls, on this machine's cores): WorkCalendar.add for a 4-hour limit, a
24-hour limit and a 90-day extension; clock.compute_due_times on a SQLite store with the
calendar off and on (it reads the calendar each time); and one dispatch through apply_action
(due times and the assignee's notification included). Prints a table, writes
tests/bench/results/calendar.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

from _util import median_time

from data import store, times
from data.incidents import calendar as work_calendar
from data.incidents import clock, lifecycle
from data.incidents.calendar import WorkCalendar
from data.incidents.transitions import apply_action
from tests.factories import drive_to, make_incident, make_world

START = datetime(2026, 9, 30, 9, 20, tzinfo=UTC)  # a Wednesday afternoon in Shanghai, before National Day
CALENDAR = WorkCalendar(
    holidays=work_calendar.parse_dates("2026-10-01..2026-10-08"), workdays=work_calendar.parse_dates("2026-09-27,2026-10-10")
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    rows: list[tuple[str, float]] = []
    for label, minutes in (
        ("add 4 working hours", 240),
        ("add 24 working hours", 1440),
        ("add 90 days (extension cap)", 129_600),
    ):
        seconds, _ = median_time(lambda m=minutes: CALENDAR.add(START, m), args.runs)
        rows.append((f"WorkCalendar: {label}", seconds))

    with tempfile.TemporaryDirectory() as tmp:
        engine = store.make_engine(f"sqlite:///{Path(tmp) / 'bench.db'}")
        store.migrate(engine)
        with engine.begin() as conn:
            world = make_world(conn)
        category = world.categories["construction"]
        for state in ("off", "on"):
            with engine.begin() as conn:
                if state == "on":
                    work_calendar.save(conn, CALENDAR)
                ids = [make_incident(conn, category, at=world.lattice.center(0), locator=world.locator) for _ in range(args.runs)]
                for incident_id in ids:
                    drive_to(conn, incident_id, lifecycle.REGISTERED)
            with engine.connect() as conn:
                seconds, _ = median_time(lambda c=conn: clock.compute_due_times(c, category, 3, START), args.runs)
            rows.append((f"compute_due_times, calendar {state}", seconds))
            pending = iter(ids)

            def dispatch_one(pending=pending):
                incident_id = next(pending)
                with engine.begin() as conn:
                    at = times.utc_now() + timedelta(hours=1)
                    return apply_action(conn, incident_id, "dispatch", actor="bench", at=at)

            seconds, _ = median_time(dispatch_one, args.runs)
            rows.append((f"one dispatch (apply_action, SQLite), calendar {state}", seconds))
        engine.dispose()

    cores = os.cpu_count()
    print(f"\nworking-hours calendar, median of {args.runs} runs, {cores} cores")
    print(f"{'what':60} {'median':>12}")
    for label, seconds in rows:
        print(f"{label:60} {seconds * 1e3:>9.3f} ms")
    out = ROOT / "tests" / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "calendar.json").write_text(
        json.dumps({"runs": args.runs, "cores": cores, "median_ms": {k: round(v * 1e3, 4) for k, v in rows}}, indent=2)
    )


if __name__ == "__main__":
    main()
