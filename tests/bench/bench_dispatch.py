"""Benchmark: one-click dispatch, from the click to the change stored and painted on another open desk and on the overview.

Run: .venv/bin/python tests/bench/bench_dispatch.py [--incidents 1000000] [--grids 5000] [--days 90] [--runs 20]
     [--no-overview] [--store PATH]
The store (built once into tests/bench/results/dispatch-GRIDS-INCIDENTS-DAYSd.db and reused; delete it to
rebuild) is the demo city with its last day played out by the demo builder (departments, workers, duty
lists, today's reports at every stage), plus generated history (tests/bench/_util.py, bulk-loaded) up to
`--incidents` over `--days` days.
The app runs in this process on werkzeug (threaded, its real cache, no simulator). One headless
Chromium holds three windows, kept running at full speed in the background: desk A (clicks), desk
B and the overview (watch). Each run reports a fresh urgent incident of a category that goes to
a department, waits until both desks list it, opens it on desk A and clicks the one-click button;
then it reads (1) when the dispatch event was stored (its time in the audit log), (2) when desk B's
queue dropped the row and (3) when the overview's department board counted it, all against the
click's time on the same clock. Also times the plain data functions behind the desk at this scale.
Prints a table (median and p95, with the machine's core count) and writes tests/bench/results/dispatch.json.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "bench"))

import numpy as np
from bench_overview import Reporter as OverviewReporter
from bench_overview import Server, TimedApp, bench_user, median, p95
from sqlalchemy import func, select

from app import create_app
from dashboard.settings import Settings
from data import schema, store
from data.demo.city import build_demo
from data.incidents import dispatch, queue
from data.incidents.clock import DEFAULT_LIMITS
from data.times import from_db, utc_now
from tests.auth_helpers import TEST_PASSWORD, sign_in_browser
from tests.bench._util import Catalogue, bulk_load, generate_history, load_grids, utc_now_whole
from tests.browser.chrome import UNTHROTTLED_FLAGS, start_chromium
from tests.browser.chrome import wait_for as browser_wait_for

RESULTS = ROOT / "tests" / "bench" / "results"
DEMO_PER_DAY = 1500  # the demo builder plays out the last day at this rate; the rest of the history is generated

# Installed in every window once loaded: notes (by wall clock) when a watched queue row leaves and when a
# watched board cell changes. Checked on every animation frame (the frame that paints the change) and on a
# 5 ms timer (should frames stall), whichever sees it first.
WATCH = """
if (window.__watch) { return; }
window.__watch = {rid: null, goneAt: null, cell: null, value: null, changedAt: null};
function check() {
  var w = window.__watch;
  try {
    if (w.rid && w.goneAt === null && !window.dash_ag_grid.getApi('dispatch-grid').getRowNode(w.rid)) { w.goneAt = Date.now(); }
  } catch (e) {}
  if (w.cell && w.changedAt === null) {
    var el = document.querySelector(w.cell);
    if (el && el.textContent !== w.value) { w.changedAt = Date.now(); }
  }
}
setInterval(check, 5);
(function frame() { check(); requestAnimationFrame(frame); })();
"""


def catalogue_of(conn) -> Catalogue:
    """The demo's categories as the history generator wants them: owner department and limits per priority."""
    c, lim = schema.categories, schema.category_limits
    cats = conn.execute(
        select(c.c.id, c.c.department_id).where(c.c.active.is_(True), c.c.department_id.is_not(None)).order_by(c.c.id)
    ).all()
    limits = {(r.category_id, r.priority): (r.ack_minutes, r.handle_minutes) for r in conn.execute(select(lim))}
    ack = [[limits.get((cid, p), DEFAULT_LIMITS[p])[0] for p in (1, 2, 3)] for cid, _ in cats]
    handle = [[limits.get((cid, p), DEFAULT_LIMITS[p])[1] for p in (1, 2, 3)] for cid, _ in cats]
    return Catalogue(np.array([r.id for r in cats]), np.array([r.department_id for r in cats]), np.array(ack), np.array(handle))


def large_store(incidents: int, grids: int, days: int) -> tuple[object, Path, bool]:
    """(engine, path, built now): the demo city with its last day played out, then enough generated history
    (tests/bench/_util.py, bulk-loaded) to reach `incidents`; built once into tests/bench/results/ and reused."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"dispatch-{grids}-{incidents}-{days}d.db"
    if path.exists():
        engine = store.make_engine(f"sqlite:///{path}")
        store.migrate(engine)
        return engine, path, False
    partial = path.with_suffix(".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    started = time.perf_counter()
    engine = store.make_engine(f"sqlite:///{partial}")
    store.migrate(engine)
    now = utc_now_whole()
    # The live part (today's reports at every stage, real departments, workers and duty lists) from the demo builder.
    build_demo(engine, grids=grids, days=1, per_day=DEMO_PER_DAY, now=now)
    with engine.connect() as conn:
        have = conn.execute(select(func.count()).select_from(schema.incidents)).scalar()
        first_id = conn.execute(select(func.coalesce(func.max(schema.incidents.c.id), 0))).scalar()
        first_event = conn.execute(select(func.coalesce(func.max(schema.incident_events.c.id), 0))).scalar()
        catalogue, grid_table = catalogue_of(conn), load_grids(conn)
    extra = max(0, incidents - have)
    if extra:
        inc, events = generate_history(extra, grid_table, catalogue, now, days=days, seed=11)
        inc["id"] += first_id
        inc["merged_into_id"] = np.where(inc.merged_into_id != -1, inc.merged_into_id + first_id, -1)
        events["id"] += first_event
        events["incident_id"] += first_id
        bulk_load(engine, inc, events)
        del inc, events
    engine.dispose()  # checkpoints the WAL into the file before it is renamed
    os.replace(partial, path)
    print(f"store built in {time.perf_counter() - started:.0f} s: {path.name}")
    engine = store.make_engine(f"sqlite:///{path}")
    store.migrate(engine)
    return engine, path, True


class CallbackTimer(TimedApp):
    """TimedApp that also notes which Dash callback each request ran (its output), for the time breakdown."""

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").endswith("_dash-update-component"):
            size = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(size)
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                output = json.loads(body).get("output", "?")
            except ValueError:
                output = "?"
            environ["PATH_INFO"] = environ["PATH_INFO"]
            started = time.perf_counter()
            try:
                return self.app(environ, start_response)
            finally:
                with self.lock:
                    self.records.append((f"callback {output[:60]}", time.perf_counter() - started))
        return super().__call__(environ, start_response)


def chromium():
    return start_chromium(UNTHROTTLED_FLAGS, page_load_timeout=120)


def wait_for(driver, script: str, timeout: float = 30.0, interval: float = 0.01):
    return browser_wait_for(driver, script, timeout, interval)


def has_row(incident_id: int) -> str:
    return f"!!window.dash_ag_grid.getApi('dispatch-grid').getRowNode('{incident_id}')"


class Reporter(OverviewReporter):
    """Reports urgent incidents of one department-only category at real grid centres."""

    source, prefix, priority = "bench-dispatch", "bd", 1

    def choose_category(self, conn) -> int:
        c, d = schema.categories, schema.departments
        row = conn.execute(
            select(c.c.id, d.c.code)
            .join_from(c, d, c.c.department_id == d.c.id)
            .where(c.c.active.is_(True), c.c.grid_worker_ok.is_(False))
            .order_by(c.c.id)
        ).first()
        self.department_code = row.code
        return row.id

    def report(self) -> int:
        return self.report_one()


def stored_at_ms(engine, incident_id: int) -> float:
    """Epoch ms of the incident's dispatch event (the moment its transaction wrote it)."""
    ev = schema.incident_events
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with store.reading(engine) as conn:
            at = conn.execute(
                select(ev.c.at).where(ev.c.incident_id == incident_id, ev.c.action == "dispatch").order_by(ev.c.id.desc())
            ).scalar()
        if at is not None:
            return from_db(at).timestamp() * 1000
        time.sleep(0.005)
    raise AssertionError(f"incident {incident_id} was never dispatched")


def one_dispatch(driver, windows: dict, engine, reporter: Reporter) -> dict:
    incident_id = reporter.report()
    for name in ("desk", "other"):
        driver.switch_to.window(windows[name])
        wait_for(driver, has_row(incident_id), timeout=15)
    driver.execute_script("window.__watch.rid = arguments[0]; window.__watch.goneAt = null;", str(incident_id))
    if "overview" in windows:
        driver.switch_to.window(windows["overview"])
        cell = f".cb-board-row[data-department='{reporter.department_code}'] td:nth-child(2)"
        driver.execute_script(
            "const el = document.querySelector(arguments[0]); window.__watch.cell = arguments[0];"
            "window.__watch.value = el ? el.textContent : null; window.__watch.changedAt = null;",
            cell,
        )
    driver.switch_to.window(windows["desk"])
    driver.execute_script(
        "const api = window.dash_ag_grid.getApi('dispatch-grid'); api.ensureNodeVisible(api.getRowNode(arguments[0]), 'top');",
        str(incident_id),
    )
    wait_for(driver, f"document.querySelector('#dispatch-grid .ag-center-cols-container .ag-row[row-id=\"{incident_id}\"]')")
    driver.find_element(
        "css selector", f'#dispatch-grid .ag-center-cols-container .ag-row[row-id="{incident_id}"] .ag-cell[col-id="area"]'
    ).click()
    wait_for(
        driver,
        f"document.querySelector('.cb-panel-head') && document.querySelector('.cb-panel-head').dataset.incident === '{incident_id}'",
    )
    clicked = driver.execute_script(
        "const t = Date.now(); document.querySelector('#dispatch-panel .cb-send-primary').click(); return t;"
    )
    wait_for(driver, "document.querySelector('.cb-message-ok') || document.querySelector('.cb-message-refused')", timeout=15)
    stored = stored_at_ms(engine, incident_id)
    driver.switch_to.window(windows["other"])
    gone = wait_for(driver, "window.__watch.goneAt", timeout=15)
    asked, rows_at = driver.execute_script("return [window.citybrain.dispatchRefreshAskedAt, window.citybrain.dispatchDeltaAt]")
    out = {
        "stored_ms": stored - clicked,
        "other_asked_ms": asked - clicked,
        "other_rows_ms": rows_at - clicked,
        "other_desk_ms": gone - clicked,
    }
    if "overview" in windows:
        driver.switch_to.window(windows["overview"])
        out["overview_ms"] = wait_for(driver, "window.__watch.changedAt", timeout=15) - clicked
    return out


def data_timings(engine, runs: int) -> dict:
    """Median ms of the desk's plain reads at this scale: the queue, its counts, one panel."""
    now = utc_now()

    def timed(fn):
        values = []
        for _ in range(runs):
            started = time.perf_counter()
            result = fn()
            values.append((time.perf_counter() - started) * 1000)
        return median(values), result

    with store.reading(engine) as conn:
        queue_ms, rows = timed(lambda: queue.queue(conn, now))
        counts_ms, counts = timed(lambda: queue.queue_counts(conn, now))
        panel_ms, _ = timed(lambda: dispatch.panel_facts(conn, rows[0]["id"])) if rows else (None, None)
    return {
        "queue_ms": queue_ms,
        "queue_rows": len(rows),
        "counts_ms": counts_ms,
        "panel_ms": panel_ms,
        "queue_size": counts["queue"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000, help="incidents in the store (the issue's scale)")
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=20, help="dispatches timed")
    parser.add_argument("--no-overview", action="store_true", help="leave the overview window out (desks only)")
    parser.add_argument("--store", type=Path, default=None, help="an existing SQLite store to use instead (e.g. a copy)")
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.store:
        path = args.store
        engine = store.make_engine(f"sqlite:///{path}")
        store.migrate(engine)
    else:
        engine, path, _built = large_store(args.incidents, args.grids, args.days)
    with store.reading(engine) as conn:
        counts = store.counts(conn)
    print(f"store {path.name}: {counts}")
    results: dict = {
        "grids": args.grids,
        "days": args.days,
        "counts": counts,
        "cores": os.cpu_count(),
        "runs": args.runs,
        "store": "sqlite",
        "load_before": os.getloadavg(),
    }
    results["data"] = data_timings(engine, 5)

    settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai")
    app = create_app(settings, engine=engine)
    timed = CallbackTimer(app.server.wsgi_app)
    app.server.wsgi_app = timed
    server = Server(app.server)
    server.start()
    driver = chromium()
    reporter = Reporter(engine)
    screens = [("desk", "/dispatch?lang=en"), ("other", "/dispatch?lang=en")]
    if not args.no_overview:
        screens.append(("overview", "/?lang=en"))
    try:
        sign_in_browser(driver, server.url, bench_user(engine), TEST_PASSWORD, next_path="/healthz")
        windows = {}
        for name, route in screens:
            if windows:
                driver.switch_to.new_window("window")
            windows[name] = driver.current_window_handle
            started = time.monotonic()
            driver.get(server.url + route)
            ready = (
                "document.querySelector('.cb-board-row')" if name == "overview" else "window.dash_ag_grid.getApi('dispatch-grid')"
            )
            wait_for(driver, ready, timeout=120)
            driver.execute_script(WATCH)
            results.setdefault("first_paint_s", {})[name] = time.monotonic() - started
        one_dispatch(driver, windows, engine, reporter)  # warm-up, not counted
        timed.take()
        runs = [one_dispatch(driver, windows, engine, reporter) for _ in range(args.runs)]
        calls = timed.take()
    finally:
        driver.quit()
        server.httpd.shutdown()
    results["load_after"] = os.getloadavg()
    for key in ("stored_ms", "other_asked_ms", "other_rows_ms", "other_desk_ms", "overview_ms"):
        values = [r[key] for r in runs if key in r]
        if values:
            results[key] = {"median": median(values), "p95": p95(values), "all": [round(v) for v in values]}
    by_callback: dict[str, list[float]] = {}
    for p, s in calls:
        if p.startswith("callback "):
            by_callback.setdefault(p.removeprefix("callback "), []).append(s * 1000)
    results["server_ms_per_dispatch"] = sum(sum(v) for v in by_callback.values()) / max(len(runs), 1)
    results["callbacks"] = {
        k: {"calls": len(v), "median_ms": median(v), "total_ms_per_dispatch": sum(v) / max(len(runs), 1)}
        for k, v in sorted(by_callback.items(), key=lambda kv: -sum(kv[1]))
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "dispatch.json").write_text(json.dumps(results, indent=2, default=float))
    print_table(results)


def print_table(r: dict) -> None:
    def ms(v):
        return "-" if v is None else f"{v:,.0f} ms"

    c = r["counts"]
    print(
        f"\nOne-click dispatch in headless Chromium, SQLite store: {r['grids']:,} grids, {c.get('incidents', 0):,} incidents; "
        f"{r['runs']} dispatches; {r['cores']} cores"
    )
    rows = [
        ("click -> dispatch stored", r.get("stored_ms")),
        ("click -> the other desk asks for its rows (change feed)", r.get("other_asked_ms")),
        ("click -> its rows arrive (server callback answered)", r.get("other_rows_ms")),
        ("click -> gone from another open desk's queue", r.get("other_desk_ms")),
        ("click -> counted on the overview's department board", r.get("overview_ms")),
    ]
    print(f"{'':55} {'median':>10} {'p95':>10}")
    for label, figure in rows:
        if figure:
            print(f"{label:55} {ms(figure['median']):>10} {ms(figure['p95']):>10}")
    d = r["data"]
    print(
        "load average (1/5/15 min) before / after: "
        + " / ".join(", ".join(f"{x:.1f}" for x in r[k]) for k in ("load_before", "load_after"))
    )
    print(f"server time of the Dash callbacks per dispatch (all windows): {ms(r['server_ms_per_dispatch'])}, of which:")
    for name, c in list(r["callbacks"].items())[:8]:
        print(
            f"  {name:60} {c['calls']:>4} calls, median {ms(c['median_ms']):>8}, {ms(c['total_ms_per_dispatch']):>8} per dispatch"
        )
    print(
        f"data.dispatch.queue: {ms(d['queue_ms'])} for {d['queue_rows']:,} rows (queue size {d['queue_size']:,}); "
        f"queue_counts {ms(d['counts_ms'])}; panel_facts {ms(d['panel_ms'])}"
    )


if __name__ == "__main__":
    main()
