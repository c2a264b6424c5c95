"""What the alerts panel costs a screen: the /alerts/head poll, the ranked read, the list and the map layer, at 100 alerts.

Run: .venv/bin/python tests/bench/bench_alerts_panel.py [--alerts 100] [--runs 30]
Prints a table of medians (SQLite file store, the small demo city of the browser tests).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dashboard.components import alerts_panel
from data import store
from layers import alerts as alert_layer
from tests.bench._util import median_time
from tests.browser.conftest import seed
from tests.browser.test_alerts_browser import _finding, raise_alerts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        engine = store.make_engine(f"sqlite:///{folder}/bench.db")
        store.migrate(engine)
        city = seed(engine)
        grids = city.units["grid"]
        kinds = ("surge", "hotspot", "chronic", "deadline")
        raise_alerts(
            city,
            [_finding(city, grids[i % len(grids)], kinds[i % 4], 5 + i, f"bench{i}") for i in range(args.alerts)],
        )
        rows = alerts_panel.read_alerts(engine, None)
        steps = [
            ("alerts head (each screen, every 4 s)", lambda: alerts_panel.read_head(engine)),
            (f"ranked read of {len(rows)} alerts", lambda: alerts_panel.read_alerts(engine, None)),
            ("desk list components", lambda: alerts_panel.alerts_list(rows, "en")),
            ("wall list components", lambda: alerts_panel.alerts_list(rows, "zh", wall=True)),
            ("rows -> GeoJSON", lambda: alert_layer.alert_features(rows)),
        ]
        print(f"alerts panel, SQLite, {os.cpu_count()} cores, median of {args.runs} runs")
        print(f"{'step':<42}{'ms':>10}")
        for label, step in steps:
            seconds, _ = median_time(step, args.runs)
            print(f"{label:<42}{seconds * 1000:>10.2f}")
        engine.dispose()


if __name__ == "__main__":
    main()
