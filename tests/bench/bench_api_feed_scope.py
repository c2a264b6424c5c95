"""The API change feed of keys bound to a unit (dashboard/api/jurisdiction.feed_page) on a large SQLite store, opened read-only.

    .venv/bin/python -m tests.bench.bench_api_feed_scope [--db tests/bench/results/dispatch-5000-1000000-90d.db]

Uses the store bench_dispatch builds (run that first). Prints the median time of one page of 500
for a city, district, street and grid key, reading from a little behind the head (a client
polling), from far behind (catching up) and from the start (a new client).
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, func, select

from dashboard.api import jurisdiction
from data import schema
from data.accounts.apikeys import ApiKey
from tests.bench._util import median_time

DEFAULT_DB = Path(__file__).parent / "results" / "dispatch-5000-1000000-90d.db"


def _key(level: int | None, unit_id: int | None) -> ApiKey:
    now = datetime.now(UTC)
    return ApiKey(0, "bench", "cbk_bench", frozenset({"read"}), None, None, None, None, now, None, unit_id, level, "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=DEFAULT_DB)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.db.exists():
        raise SystemExit(f"{args.db} does not exist: run tests/bench/bench_dispatch.py first")
    engine = create_engine(f"sqlite:///file:{args.db}?mode=ro&uri=true")
    inc, ev = schema.incidents, schema.incident_events
    with engine.connect() as conn:
        head = conn.execute(select(func.max(ev.c.id))).scalar()
        incidents = conn.execute(select(func.count()).select_from(inc)).scalar()
        unit = conn.execute(
            select(inc.c.district_id, inc.c.street_id, inc.c.grid_id)
            .where(inc.c.grid_id.is_not(None))
            .order_by(inc.c.id.desc())
            .limit(1)
        ).one()
    keys = {
        "city": _key(None, None),
        "district": _key(schema.DISTRICT, unit.district_id),
        "street": _key(schema.STREET, unit.street_id),
        "grid": _key(schema.GRID, unit.grid_id),
    }
    starts = {"head-1,000": head - 1000, "head-100,000": head - 100_000, "0": 0}
    print(f"{incidents:,} incidents, {head:,} events; load average {os.getloadavg()[0]:.2f}; median of {args.runs}")
    print("| key | " + " | ".join(f"after {name}" for name in starts) + " |")
    print("|---|" + "---|" * len(starts))
    for name, key in keys.items():
        cells = []
        for after in starts.values():

            def page(key=key, after=after):
                with engine.connect() as conn:
                    return jurisdiction.feed_page(conn, key, after, 500)

            seconds, (events, _next, _head) = median_time(page, args.runs)
            cells.append(f"{seconds * 1000:.1f} ms ({len(events)})")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
