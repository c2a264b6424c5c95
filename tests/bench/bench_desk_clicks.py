"""Benchmark: how long a desk click waits, on the server and in the browser, with a 5,000-case queue.

Run: .venv/bin/python tests/bench/bench_desk_clicks.py [--cases 5200] [--loaders 4] [--clicks 8] [--tabs 7]
The store (tests/bench/results/desk-clicks-CASES.db, built once) is a small city with CASES new reports, so the
dispatcher's queue is full (5,000 rows). Measures, in this process:
1. the server: a desk's first paint (the page callback: the whole queue, its size), a click alone, and a click
   while LOADERS other desks load the page without pause (the server's threads and the GIL shared);
2. a headless Chromium desk on uvicorn with another desk changing a case every 0.3 s: from the click to its
   request leaving the browser and to its answer, and the main thread's long tasks meanwhile;
3. the same browser with more screens of the centre open (each holding its live stream): which tab no longer loads.
Prints a table (median and max, with the machine's core count) and writes tests/bench/results/desk_clicks.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select

from app import create_app
from dashboard import ids
from dashboard.settings import Settings
from data import schema, store
from data.incidents import dispatch
from data.incidents.feed import get_incident
from data.incidents.intake import report_incidents
from data.times import utc_now
from tests.asgi_server import AsgiServer
from tests.auth_helpers import TEST_PASSWORD, make_user, sign_in_browser, signed_in_client
from tests.browser.chrome import UNTHROTTLED_FLAGS, start_chromium, wait_for
from tests.dash_helpers import fire_callback
from tests.factories import make_world

RESULTS = ROOT / "tests" / "bench" / "results"
# Installed in the desk's window: each callback request (when fetch was called, when it answered), each click, long tasks.
HOOK = """
if (!window.__req) {
  window.__req = []; window.__long = [];
  const send = window.fetch;
  window.fetch = function (url, options) {
    const body = options && options.body ? String(options.body) : '';
    const record = {output: (body.match(/"output":"([^"]{0,60})/) || [])[1] || '', sent: performance.now()};
    window.__req.push(record);
    return send.apply(this, arguments).then(answer => { record.back = performance.now(); return answer; });
  };
  new PerformanceObserver(list => list.getEntries().forEach(e => window.__long.push(e.duration))).observe({entryTypes: ['longtask']});
  document.addEventListener('click', () => { window.__clickAt = performance.now(); }, true);
}
"""


def build_store(cases: int):
    path = RESULTS / f"desk-clicks-{cases}.db"
    fresh = not path.exists()
    engine = store.make_engine(f"sqlite:///{path}")
    store.migrate(engine)
    if fresh:
        with engine.begin() as conn:
            world = make_world(conn)
            now = utc_now()
            rows = [
                {
                    "source": "bench",
                    "external_id": f"desk-{i}",
                    "category_id": world.categories["garbage"],
                    "priority": 2,
                    "reported_at": now,
                    "lon": world.lattice.center(i % 6)[0],
                    "lat": world.lattice.center(i % 6)[1],
                    "description": "overflowing bins by the north gate of the market, reported by a passer-by",
                }
                for i in range(cases)
            ]
            report_incidents(conn, rows, actor="bench", locator=world.locator, now=now)
        make_user(engine, "dispatcher", username="bench-desk")
    return path, engine


def reported(engine, n: int) -> list[int]:
    with store.reading(engine) as conn:
        query = select(schema.incidents.c.id).where(schema.incidents.c.state == "reported").order_by(schema.incidents.c.id)
        return list(conn.execute(query.limit(n)).scalars())


def server_side(app, engine, loaders: int, clicks: int) -> dict:
    clients = [
        signed_in_client(app, "dispatcher", username=f"bench-{os.getpid()}-{n}-{time.time_ns()}") for n in range(loaders + 1)
    ]

    def first_paint(client) -> tuple[float, int]:
        started = time.perf_counter()
        answer = fire_callback(
            app, client, "shell-page.children", ("shell-location", "pathname", "/dispatch"), {"shell-lang": "en"}
        )
        assert answer.status_code == 200
        return time.perf_counter() - started, len(answer.data)

    def click(incident_id: int) -> float:
        with store.reading(engine) as conn:
            version = get_incident(conn, incident_id)["version"]
        shown = {"id": incident_id, "version": version}
        started = time.perf_counter()
        answer = fire_callback(
            app,
            clients[0],
            "dispatch-message.children",
            ({"type": ids.DISPATCH_ACTION, "index": "register"}, "n_clicks", 1),
            {ids.DISPATCH_CURRENT: shown, ids.DISPATCH_CONFIG: {"lang": "en"}},
        )
        assert answer.status_code == 200 and "Registered" in answer.get_data(as_text=True)
        return time.perf_counter() - started

    paints = [first_paint(clients[0]) for _ in range(3)]
    cases = iter(reported(engine, 2 * clicks))
    alone = [click(next(cases)) for _ in range(clicks)]
    stop, loads = threading.Event(), []

    def load(client) -> None:
        while not stop.is_set():
            loads.append(first_paint(client)[0])

    threads = [threading.Thread(target=load, args=(c,)) for c in clients[1:]]
    for thread in threads:
        thread.start()
    while len(loads) < loaders:  # every loader under way
        time.sleep(0.05)
    busy = [click(next(cases)) for _ in range(clicks)]
    stop.set()
    for thread in threads:
        thread.join()
    return {
        "first_paint_s": statistics.median(p[0] for p in paints),
        "first_paint_mb": paints[0][1] / 1e6,
        "click_alone_ms": [1000 * statistics.median(alone), 1000 * max(alone)],
        "click_while_loading_ms": [1000 * statistics.median(busy), 1000 * max(busy)],
        "loads_meanwhile_s": statistics.median(loads),
    }


def browser_side(app, engine, clicks: int, tabs: int) -> dict:
    out: dict = {}
    with AsgiServer(app, threads=8) as server:
        driver = start_chromium(UNTHROTTLED_FLAGS)
        try:
            sign_in_browser(driver, server.url, "bench-desk", TEST_PASSWORD, "/dispatch")
            wait_for(driver, "!!document.querySelector('#dispatch-grid .ag-row')", 60)
            driver.execute_script(HOOK)
            cases = reported(engine, clicks + 200)
            stop = threading.Event()

            def other_desk() -> None:
                for incident_id in cases[clicks:]:
                    if stop.wait(0.3):
                        return
                    with engine.begin() as conn:
                        version = get_incident(conn, incident_id)["version"]
                        dispatch.act(conn, incident_id, "register", actor="other-desk", expected_version=version)

            changer = threading.Thread(target=other_desk)
            changer.start()
            sent, answered, long_tasks = [], [], []
            try:
                for incident_id in cases[:clicks]:
                    driver.execute_script(
                        f"window.dash_clientside.set_props('dispatch-selected', {{data: {{id: {incident_id}}}}})"
                    )
                    shown = "(document.querySelector('#dispatch-panel [data-incident]') || {getAttribute: () => null})"
                    wait_for(driver, f"{shown}.getAttribute('data-incident') === '{incident_id}'", 30)
                    driver.execute_script("window.__req.length = 0; window.__long.length = 0;")
                    driver.find_element("css selector", "#dispatch-panel button[id*='register']").click()
                    mine = "window.__req.find(r => r.output.indexOf('dispatch-message') >= 0)"
                    wait_for(driver, f"!!({mine} || {{}}).back", 60)
                    record = driver.execute_script(
                        f"var r = {mine}; return [r.sent - window.__clickAt, r.back - window.__clickAt, window.__long]"
                    )
                    sent.append(record[0])
                    answered.append(record[1])
                    long_tasks += record[2]
            finally:
                stop.set()
                changer.join()
            out["click_to_request_ms"] = [statistics.median(sent), max(sent)]
            out["click_to_answer_ms"] = [statistics.median(answered), max(answered)]
            out["long_tasks_ms"] = [statistics.median(long_tasks) if long_tasks else 0, max(long_tasks, default=0)]
            out["stalled_tab"] = None
            desk = driver.current_window_handle
            driver.set_page_load_timeout(15)
            for n in range(2, tabs + 1):  # more screens of the centre in the same browser, each with its stream
                driver.switch_to.new_window("tab")
                try:
                    driver.get(server.url + "/dispatch")
                    wait_for(driver, "!!document.querySelector('#dispatch-grid .ag-row')", 15)
                except Exception:  # the page never came: every connection the browser allows is held
                    out["stalled_tab"] = n
                    break
            driver.switch_to.window(desk)
        finally:
            driver.quit()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5200)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--clicks", type=int, default=8)
    parser.add_argument("--tabs", type=int, default=7)
    args = parser.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path, engine = build_store(args.cases)
    app = create_app(Settings.from_env({}, database_url=f"sqlite:///{path}", live=False, build_demo=False), engine=engine)
    figures = {"cores": os.cpu_count(), "cases": args.cases}
    figures |= server_side(app, engine, args.loaders, args.clicks)
    figures |= browser_side(app, engine, args.clicks, args.tabs)
    print(f"desk clicks, {args.cases:,} cases queued, {figures['cores']} cores")
    print("| measure | median | max |\n|---|---|---|")
    print(f"| desk first paint (server) | {figures['first_paint_s']:.2f} s, {figures['first_paint_mb']:.2f} MB | |")
    for key, label in (
        ("click_alone_ms", "click, server alone"),
        ("click_while_loading_ms", f"click, server while {args.loaders} desks load"),
        ("click_to_request_ms", "browser: click -> request leaves"),
        ("click_to_answer_ms", "browser: click -> answer"),
        ("long_tasks_ms", "browser: main-thread long tasks"),
    ):
        print(f"| {label} | {figures[key][0]:.0f} ms | {figures[key][1]:.0f} ms |")
    stalled = figures["stalled_tab"]
    print(f"| screens open in one HTTP/1.1 browser before a new one stalls | {stalled - 1 if stalled else f'>= {args.tabs}'} | |")
    (RESULTS / "desk_clicks.json").write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
