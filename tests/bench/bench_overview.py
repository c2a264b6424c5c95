"""Benchmark: the overview (/ and /wall) in headless Chromium on a demo store: paint, server time, zoom, live latency, restyle, sizes.

Run: .venv/bin/python tests/bench/bench_overview.py [--grids 5000] [--days 90] [--per-day 1500] [--runs 5]
     (the issue's scale: --grids 62000 --per-day 11112, about a million incidents)
     --server-starts N measures only the first page after a server start (server_start.py)
The demo store is built once into tests/bench/results/overview-<grids>-<days>x<per-day>.db and
reused. The app runs in this process on werkzeug (threaded, its real cache, no simulator), so
every request's server time is measured by a WSGI wrapper, and store changes are made here with
data.incidents.intake.report_incidents, as an intake channel would. Readiness is the page's own markers:
window.citybrain.unitLayers (the map drew units), the KPI card values, citybrain.appliedHead (the
map was restyled with live values). Prints a table (medians, with the machine's core count) and
writes tests/bench/results/overview.json. Unless --no-naive, the naive overview of
naive_overview.py (all grid GeoJSON in the layout, SVG, one-second polling) is then measured in the
same run on its own server, and printed beside the real one with the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import logging
import os
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from naive_overview import create_naive_app  # noqa: E402  (beside this script)
from server_start import measure_server_starts, print_server_starts  # noqa: E402  (beside this script)
from sqlalchemy import select
from werkzeug.serving import make_server

from app import create_app
from dashboard.settings import Settings
from data import schema, store
from data.accounts import users as accounts
from data.demo.city import build_demo
from data.errors import NotFound
from data.geo.locate import GridLocator
from data.incidents.intake import report_incidents
from data.warnings.detect import run_detection
from tests.auth_helpers import TEST_PASSWORD, sign_in_browser
from tests.browser.chrome import start_chromium
from tests.browser.chrome import wait_for as browser_wait_for

RESULTS = ROOT / "tests" / "bench" / "results"
BENCH_USER = "bench-admin"  # every route needs a signed-in user; this one is kept in the bench store
DESK_SIZE, WALL_SIZE = (1600, 1000), (1920, 1080)

# Installed before any page script: records, per frame, when the page first showed a drawn map and
# filled KPI cards, when the open-backlog card last changed, and when the map applied a live head.
PROBE = """
(function () {
  var probe = window.__probe = {started: 0, readyAt: null, kpi: null, kpiAt: null, applied: null, appliedAt: null, inflight: 0, lastNet: 0};
  var origFetch = window.fetch;
  window.fetch = function () {
    // The page's idle prefetch of the next level's geometry (citybrain.prefetch) is not this step's work.
    if (arguments[1] && arguments[1].cbPrefetch) { probe.prefetches = (probe.prefetches || 0) + 1; return origFetch.apply(this, arguments); }
    probe.inflight += 1;
    probe.started += 1;
    return origFetch.apply(this, arguments).finally(function () { probe.inflight -= 1; probe.lastNet = performance.now(); });
  };
  function frame() {
    var cb = window.citybrain;
    var card = document.querySelector('.cb-kpi-open');
    var value = card && card.querySelector('.cb-kpi-value') ? card.dataset.value : null;
    var drawn = cb && cb.unitLayers && Object.keys(cb.unitLayers).length > 0;
    var now = performance.now();
    if (probe.readyAt === null && drawn && value !== null) { probe.readyAt = now; }
    if (value !== probe.kpi) { probe.kpi = value; probe.kpiAt = Date.now(); }
    var applied = cb ? cb.appliedHead || null : null;
    if (applied !== probe.applied) { probe.applied = applied; probe.appliedAt = Date.now(); }
    requestAnimationFrame(frame);
  }
  requestAnimationFrame(frame);
})();
"""


# --- the store and the server ---------------------------------------------------------------------


def demo_store(grids: int, days: float, per_day: float) -> tuple[object, Path, bool]:
    """(engine, path, built now) of the demo store for these sizes, built once and then reused."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"overview-{grids}-{days:g}x{per_day:g}.db"
    built = not path.exists()
    if built:
        partial = path.with_suffix(".partial")
        for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
            leftover.unlink(missing_ok=True)
        engine = store.make_engine(f"sqlite:///{partial}")
        store.migrate(engine)
        started = time.perf_counter()
        report = build_demo(engine, grids=grids, days=days, per_day=per_day)
        engine.dispose()  # checkpoints the WAL into the file before it is renamed
        os.replace(partial, path)
        print(f"demo store built in {time.perf_counter() - started:.0f} s: {path.name}")
        for line in report.summary_lines():
            print("  " + line)
    engine = store.make_engine(f"sqlite:///{path}")
    store.migrate(engine)
    return engine, path, built


class TimedApp:
    """WSGI wrapper noting each request's path and server time (until the app hands back its body);
    a Dash callback is also noted by its first output (`callbacks`), to tell where a refresh's time goes."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()
        self.records: list[tuple[str, float]] = []
        self.callbacks: list[tuple[str, float]] = []

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        path = environ.get("PATH_INFO", "")
        output = None
        if path.endswith("_dash-update-component"):
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            with contextlib.suppress(ValueError, AttributeError):
                output = json.loads(body).get("output", "")[:60]
        try:
            return self.app(environ, start_response)
        finally:
            if not path.startswith("/live/events"):  # a stream lasts minutes by design
                seconds = time.perf_counter() - started
                with self.lock:
                    self.records.append((path, seconds))
                    if output is not None:
                        self.callbacks.append((output, seconds))

    def take(self) -> list[tuple[str, float]]:
        with self.lock:
            records, self.records = self.records, []
            self.callbacks = []
        return records

    def take_callbacks(self) -> list[tuple[str, float]]:
        with self.lock:
            callbacks, self.callbacks = self.callbacks, []
        return callbacks


class Server(threading.Thread):
    def __init__(self, wsgi):
        super().__init__(daemon=True)
        self.httpd = make_server("127.0.0.1", 0, wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"

    def run(self):
        self.httpd.serve_forever()


def bench_user(engine) -> str:
    """The benchmark's administrator (whole city) in the store, made on first use."""
    with engine.begin() as conn:
        try:
            accounts.get_user_by_username(conn, BENCH_USER)
        except NotFound:
            accounts.create_user(conn, BENCH_USER, TEST_PASSWORD, "admin")
    return BENCH_USER


def session_cookie(driver) -> str:
    """The signed-in browser's cookies as a Cookie header, for the route-size requests made here."""
    return "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())


def chromium():
    driver = start_chromium(page_load_timeout=60)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": False})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PROBE})
    return driver


def wait_for(driver, script: str, timeout: float = 30.0, interval: float = 0.02):
    return browser_wait_for(driver, script, timeout, interval, error=TimeoutError)


DRAWN = "Object.values(window.citybrain.unitLayers).filter(l => l._map).length"


def move(driver, script: str, *args) -> float:
    """Run a map move (performance.now() before it is returned), then wait until the page has asked
    the server about it and settled."""
    before = driver.execute_script("return window.__probe.started")
    started = driver.execute_script(f"const t = performance.now(); {script}; return t", *args)
    with contextlib.suppress(TimeoutError):  # a move that needs nothing new from the server
        wait_for(driver, f"window.__probe.started > {before}", timeout=3)
    settle(driver, quiet_ms=300)
    return started


def settle(driver, quiet_ms: float = 400, timeout: float = 30.0) -> None:
    """Wait until the page has had no request in flight for `quiet_ms`."""
    wait_for(
        driver,
        f"window.__probe.inflight === 0 && performance.now() - window.__probe.lastNet > {quiet_ms}"
        f" && performance.now() - (window.citybrain.unitsDrawnAt || 0) > {quiet_ms}",
        timeout,
    )


# --- the measurements ---------------------------------------------------------------------------


def first_paint(driver, timed: TimedApp, url: str, size: tuple[int, int]) -> dict:
    """One page load: ms from navigation to map drawn + KPIs filled (the page's markers), and server time."""
    driver.set_window_size(*size)
    driver.get("about:blank")
    timed.take()
    driver.get(url)
    ready = wait_for(driver, "window.__probe.readyAt")
    settle(driver)
    records = timed.take()
    transferred = driver.execute_script(
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".reduce((s, e) => s + (e.transferSize || 0), 0)"
    )
    return {
        "paint_ms": ready,
        "server_ms": 1000 * sum(seconds for _, seconds in records),
        "requests": len(records),
        "transferred_kb": transferred / 1024,
        "units_drawn": driver.execute_script("return " + DRAWN),
    }


# Where one zoom step's time went, from the browser's resource timings since the step began: the map
# callback's round trip, the unit geometry's fetch (and its size), and the units' drawing after it.
STEP_PARTS = """
const started = arguments[0], cb = window.citybrain;
const entries = performance.getEntriesByType('resource').filter(e => e.startTime >= started);
const span = test => entries.filter(e => test(e.name)).reduce(
    (a, e) => ({start: Math.min(a.start, e.startTime), end: Math.max(a.end, e.responseEnd),
                bytes: a.bytes + (e.encodedBodySize || 0), n: a.n + 1}), {start: Infinity, end: 0, bytes: 0, n: 0});
const calls = span(n => n.includes('_dash-update-component')), geo = span(n => n.includes('/geo/units/'));
return {callbacks_ms: calls.n ? calls.end - calls.start : 0, callbacks: calls.n,
        geometry_ms: geo.n ? geo.end - geo.start : 0, geometry_kb: geo.bytes / 1024,
        draw_ms: geo.n && cb.unitsDrawnAt > geo.end ? cb.unitsDrawnAt - geo.end : 0,
        drawn: Object.values(cb.unitLayers).filter(l => l._map).length, level: cb.hideout && cb.hideout.level,
        requests: entries.map(e => [e.name.replace(location.origin, '').slice(0, 40), Math.round(e.startTime - started),
                                    Math.round(e.responseEnd - started), e.transferSize])};
"""


def zoom_steps(driver, timed: TimedApp, centre: tuple[float, float], start_zoom: int, end_zoom: int) -> dict[int, dict]:
    """Per one-level zoom step (no animation) into `centre`: ms until the layers are fetched and drawn
    (`ms`), and its parts (STEP_PARTS, plus the map callback's server time)."""
    set_view = "window.citybrain.map.setView([arguments[0], arguments[1]], arguments[2], {animate: false})"
    move(driver, set_view, centre[0], centre[1], start_zoom)
    steps = {}
    for zoom in range(start_zoom + 1, end_zoom + 1):
        driver.execute_script("performance.clearResourceTimings(); performance.setResourceTimingBufferSize(1000)")
        timed.take()
        started = move(driver, "window.citybrain.map.setZoom(arguments[0], {animate: false})", zoom)
        done = driver.execute_script(
            "return new Promise(r => requestAnimationFrame(() => r(Math.max(window.__probe.lastNet, window.citybrain.unitsDrawnAt || 0))))"
        )
        parts = driver.execute_script(STEP_PARTS, started)
        parts["view_server_ms"] = 1000 * sum(sec for out, sec in timed.take_callbacks() if "overview-units.url" in out)
        steps[zoom] = {"ms": max(done - started, 0.0), **parts}
    return steps


def restyle(driver) -> dict:
    """Restyle every drawn unit with other values (as a live push does) and put the real ones back: ms to the next frame."""
    return driver.execute_script(
        """
        const cb = window.citybrain, hideout = cb.hideout;
        Object.keys(cb.unitLayers).forEach(id => { if (!cb.unitLayers[id]._map) { delete cb.unitLayers[id]; } });
        const real = cb.live[hideout.key] || {key: hideout.key, values: hideout.values, breaks: hideout.breaks,
                                              colours: hideout.colours, head: hideout.head || 0};
        const shifted = Object.assign({}, real, {values: {}});
        Object.keys(cb.unitLayers).forEach((id, i) => { shifted.values[id] = (i % 7) * 3; });
        const started = performance.now();
        cb.applyValues(shifted);
        const js = cb.lastRestyleMs;
        return new Promise(resolve => requestAnimationFrame(() => {
            const painted = performance.now() - started;
            cb.applyValues(real);
            resolve({units: Object.keys(cb.unitLayers).length, js_ms: js, painted_ms: painted});
        }));
        """
    )


class Reporter:
    """Reports incidents into the store, one at a time, at points inside real grids (shared by the benchmarks)."""

    source, prefix, priority = "bench-overview", "bo", 2

    def __init__(self, engine):
        self.engine = engine
        with engine.connect() as conn:
            self.category_id = self.choose_category(conn)
            u = schema.units
            self.points = conn.execute(
                select(u.c.centroid_lon, u.c.centroid_lat).where(u.c.level == schema.GRID).order_by(u.c.id).limit(500)
            ).all()
            self.locator = GridLocator.from_conn(conn)
        self.serial = int(time.time())

    def choose_category(self, conn) -> int:
        """The category every report uses: the first active one."""
        c = schema.categories
        return conn.execute(select(c.c.id).where(c.c.active.is_(True)).order_by(c.c.id)).scalar()

    def report_one(self) -> int:
        """One new incident, committed; its id."""
        self.serial += 1
        lon, lat = self.points[self.serial % len(self.points)]
        row = {
            "source": self.source,
            "external_id": f"{self.prefix}-{self.serial}",
            "category_id": self.category_id,
            "priority": self.priority,
            "lon": lon,
            "lat": lat,
        }
        with self.engine.begin() as conn:
            (result,) = report_incidents(conn, [row], actor="bench", locator=self.locator)
        return result.incident_id

    def report(self) -> float:
        """One new incident; the epoch seconds its transaction committed."""
        self.report_one()
        return time.time()

    def head(self) -> int:
        with store.reading(self.engine) as conn:
            return store.feed_head(conn)


def change_latency(driver, reporter: Reporter, runs: int, timeout: float) -> list[dict]:
    """ms from a committed store change to (a) the open-backlog KPI changing on screen and (b) the map restyled."""
    out = []
    for _ in range(runs):
        time.sleep(1.2)  # past the page's 500 ms refresh throttle: each change is measured on its own
        kpi_before = driver.execute_script("return window.__probe.kpiAt")
        applied_before = driver.execute_script("return window.__probe.applied")
        committed = reporter.report()
        wait_for(driver, f"window.__probe.kpiAt !== {json.dumps(kpi_before)}", timeout=timeout)
        wait_for(driver, f"window.__probe.applied !== {json.dumps(applied_before)}", timeout=timeout)
        kpi_at, applied_at, restyle_ms = driver.execute_script(
            "return [window.__probe.kpiAt, window.__probe.appliedAt, window.citybrain.lastRestyleMs]"
        )
        out.append(
            {
                "kpi_ms": kpi_at - committed * 1000,
                "map_ms": applied_at - committed * 1000,
                "painted_ms": max(kpi_at, applied_at) - committed * 1000,
                "restyle_ms": restyle_ms,
            }
        )
    return out


def route_sizes(base: str, bbox: str, cookie: str) -> list[dict]:
    """Bytes on the wire (gzip) and unzipped for the geometry and live-data routes."""
    with urllib.request.urlopen(
        urllib.request.Request(base + "/geo/units/district.json", headers={"Cookie": cookie})
    ) as response:
        version = response.headers["X-Units-Version"]
    routes = [f"/geo/units/{level}.json?v={version}" for level in ("district", "street")]
    routes += [f"/geo/units/{level}.json?v={version}&bbox={bbox}" for level in ("community", "grid")]
    routes += ["/geo/units/grid.json?v=" + version, "/geo/heat.json?window=24h", f"/geo/incidents.json?bbox={bbox}", "/live/head"]
    out = []
    for route in routes:
        request = urllib.request.Request(base + route, headers={"Accept-Encoding": "gzip", "Cookie": cookie})
        started = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            body = response.read()
            zipped = response.headers.get("Content-Encoding") == "gzip"
        ms = 1000 * (time.perf_counter() - started)
        raw = gzip.decompress(body) if zipped else body
        features = None
        if "/units/" in route or "incidents" in route:
            features = len(json.loads(raw).get("features", []))
        out.append(
            {
                "route": route.split("?")[0] + ("?bbox=view" if "bbox" in route else ""),
                "wire_kb": len(body) / 1024,
                "raw_kb": len(raw) / 1024,
                "features": features,
                "ms": ms,
            }
        )
    return out


SHOTS = (("desk-en.png", "/?lang=en"), ("wall-en.png", "/wall?lang=en"), ("wall-zh.png", "/wall?lang=zh"))


def screenshots(driver, base: str, folder: Path) -> None:
    """The README's pictures: each route at 1920x1080 once the map, KPIs, charts and heat are drawn."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, route in SHOTS:
        # The window's size includes the browser's frame: set the page's own size, as on a wall.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride", {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False}
        )
        driver.get(base + route)
        wait_for(driver, "window.__probe.readyAt")
        wait_for(driver, "document.querySelector('#overview-trend .js-plotly-plot, #overview-trend.js-plotly-plot')")
        wait_for(driver, "window.citybrain.liveState.status === 'live' && window.citybrain.heatPoints !== undefined")
        settle(driver, quiet_ms=800)
        time.sleep(1.5)  # one more clock tick and the charts' transitions
        driver.save_screenshot(str(folder / name))
        size = (folder / name).stat().st_size
        print(f"{folder / name}: {size / 1024:.0f} KB, viewport {driver.execute_script('return [innerWidth, innerHeight]')}")


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def p95(values) -> float | None:
    values = sorted(v for v in values if v is not None)
    return values[min(len(values) - 1, round(0.95 * (len(values) - 1)))] if values else None


# --- the naive approach, measured in the same run -------------------------------------------------

# Installed before the naive page's scripts: catches the Leaflet map as it is made (dash-leaflet
# keeps it to itself), and per frame notes when grid paths and the KPI text first showed, each
# rebuild of the SVG paths (a new first <path>), and the feed head the drawn paths carry.
# Times are taken in the frame after the change, so the SVG's paint is included.
NAIVE_PROBE = """
(function () {
  var p = window.__naive = {map: null, readyAt: null, kpi: null, kpiAt: null, path: null, rebuilds: 0,
                            rebuiltAt: null, repaints: [], applied: null, appliedAt: null};
  var leaflet;
  Object.defineProperty(window, 'L', {configurable: true, get: function () { return leaflet; }, set: function (v) {
    leaflet = v;
    if (v && v.Map && !v.__naiveHooked) { v.__naiveHooked = true; v.Map.addInitHook(function () { p.map = this; }); }
  }});
  var pending = null;
  function frame() {
    requestAnimationFrame(frame);  // first: nothing below may stop the probe
    var now = performance.now();
    if (pending) { pending(now); pending = null; }
    var card = document.getElementById('naive-kpi-open');
    var value = card ? card.textContent : null;
    var first = document.querySelector('.leaflet-overlay-pane path');
    var rebuilt = first && first !== p.path;
    p.path = first;
    var kpiChanged = value !== p.kpi;
    p.kpi = value;
    if (rebuilt || kpiChanged) {
      var head = first ? (/naive-h(\\d+)/.exec(first.getAttribute('class') || '') || [null, null])[1] : null;
      var netAt = window.__probe ? window.__probe.lastNet : null;
      pending = function (paintedAt) {
        if (kpiChanged) { p.kpiAt = Date.now(); }
        if (rebuilt) {
          p.rebuilds += 1; p.rebuiltAt = paintedAt;
          if (netAt) { p.repaints.push(paintedAt - netAt); }
          if (head !== p.applied) { p.applied = head; p.appliedAt = Date.now(); }
        }
        if (p.readyAt === null && p.path && p.kpi) { p.readyAt = paintedAt; }
      };
    }
  }
  requestAnimationFrame(frame);
})();
"""


def naive_first_paint(driver, timed: TimedApp, url: str, size: tuple[int, int]) -> dict:
    """One load of the naive page: ms to the frame after the grid paths and KPI text showed, and server time."""
    driver.set_window_size(*size)
    driver.get("about:blank")
    timed.take()
    driver.get(url)
    ready = wait_for(driver, "window.__naive.readyAt", timeout=120)
    records = [(path_, s) for path_, s in timed.take() if not path_.endswith("_dash-update-component")]
    transferred = driver.execute_script(
        "return performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".filter(e => !e.name.includes('_dash-update-component')).reduce((s, e) => s + (e.transferSize || 0), 0)"
    )
    return {
        "paint_ms": ready,
        "server_ms": 1000 * sum(seconds for _, seconds in records),
        "requests": len(records),
        "transferred_kb": transferred / 1024,
        "units_drawn": driver.execute_script("return document.querySelectorAll('.leaflet-overlay-pane path').length"),
    }


def naive_zoom_steps(driver, centre: tuple[float, float], start_zoom: int, end_zoom: int) -> dict[int, float]:
    """ms per one-level zoom step (no animation) of the naive map, to the frame after (SVG re-projected
    and painted). Each step starts just after a one-second refresh repainted, so none overlaps it."""
    driver.execute_script(
        "window.__naive.map.setView([arguments[0], arguments[1]], arguments[2], {animate: false})", *centre, start_zoom
    )
    steps = {}
    for zoom in range(start_zoom + 1, end_zoom + 1):
        rebuilds = driver.execute_script("return window.__naive.rebuilds")
        with contextlib.suppress(TimeoutError):  # a refresh still on its way: zoom anyway
            wait_for(driver, f"window.__naive.rebuilds > {rebuilds}", timeout=5)
        steps[zoom] = driver.execute_script(
            """
            const started = performance.now();
            window.__naive.map.setZoom(arguments[0], {animate: false});
            return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(performance.now() - started))));
            """,
            zoom,
        )
    return steps


NAIVE_CHANGE_TIMEOUT = 30  # s: a change not painted by then is reported as not painted at all


def naive_change_latency(driver, reporter: Reporter, runs: int, timeout: float) -> list[dict]:
    """ms from a committed store change to the naive page's KPI text changing and its map drawing the new head."""
    out = []
    for _ in range(runs):
        time.sleep(1.2)
        kpi_before = driver.execute_script("return window.__naive.kpi")
        committed = reporter.report()
        head = str(reporter.head())
        try:
            wait_for(driver, f"window.__naive.kpi !== {json.dumps(kpi_before)}", timeout=timeout)
            wait_for(driver, f"Number(window.__naive.applied) >= {head}", timeout=timeout)
        except TimeoutError:
            out.append({"kpi_ms": None, "map_ms": None, "painted_ms": None, "timed_out": True})
            break  # the page is not keeping up: more changes would only time out too
        kpi_at, applied_at = driver.execute_script("return [window.__naive.kpiAt, window.__naive.appliedAt]")
        out.append(
            {
                "kpi_ms": kpi_at - committed * 1000,
                "map_ms": applied_at - committed * 1000,
                "painted_ms": max(kpi_at, applied_at) - committed * 1000,
            }
        )
    return out


def measure_naive(driver, engine, reporter: Reporter, args, centre, start_zoom: int) -> dict:
    """The naive overview on its own server in this process, measured like the real one."""
    app = create_naive_app(engine, zoom=start_zoom)
    timed = TimedApp(app.server.wsgi_app)
    app.server.wsgi_app = timed
    server = Server(app.server)
    server.start()
    url = server.url + "/"
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": NAIVE_PROBE})
    out: dict = {}
    try:
        out["cold"] = naive_first_paint(driver, timed, url, WALL_SIZE)
        loads = [naive_first_paint(driver, timed, url, WALL_SIZE) for _ in range(args.runs)]
        out["load"] = {key: median(load[key] for load in loads) for key in loads[0]}
        out["load"]["paint_ms_all"] = [round(load["paint_ms"]) for load in loads]

        # Every refresh re-sends and redraws all grids: server time per refresh, and the repaint
        # (response received -> SVG painted) of the refreshes seen while changes are timed below.
        naive_first_paint(driver, timed, url, WALL_SIZE)
        driver.execute_script("window.__naive.repaints = []")
        rebuilds_before = driver.execute_script("return window.__naive.rebuilds")
        timed.take()
        started = time.perf_counter()
        changes = naive_change_latency(driver, reporter, args.changes, timeout=NAIVE_CHANGE_TIMEOUT)
        elapsed = time.perf_counter() - started
        refreshes = [seconds for path_, seconds in timed.take() if path_.endswith("_dash-update-component")]
        repaints = driver.execute_script("return window.__naive.repaints")
        rebuilds = driver.execute_script("return window.__naive.rebuilds") - rebuilds_before
        out["live"] = {
            "painted_ms": median(r["painted_ms"] for r in changes),
            "painted_p95_ms": p95([r["painted_ms"] for r in changes]),
            "kpi_ms": median(r["kpi_ms"] for r in changes),
            "map_ms": median(r["map_ms"] for r in changes),
            "server_ms_per_refresh": 1000 * median(refreshes) if refreshes else None,
            "refreshes_per_s": len(refreshes) / elapsed,
            "repaints_per_s": rebuilds / elapsed,
            "changes": len(changes),
            "timed_out": sum(1 for r in changes if r.get("timed_out")),
        }
        out["restyle"] = {
            "units": driver.execute_script("return document.querySelectorAll('.leaflet-overlay-pane path').length"),
            "painted_ms": median(repaints),
            "samples": len(repaints),
        }
        passes = [naive_zoom_steps(driver, centre, start_zoom, 16) for _ in range(max(2, args.runs // 2))]
        per_zoom = {z: median(p[z] for p in passes) for z in passes[0]}
        out["zoom_ms"] = {str(z): ms for z, ms in per_zoom.items()}
        out["zoom_step_ms"] = median(v for p in passes for v in p.values())
        out["zoom_step_max_ms"] = max(per_zoom.values())
    finally:
        driver.get("about:blank")  # stops the page's polling before its server goes
        server.httpd.shutdown()
    return out


# --- the run ------------------------------------------------------------------------------------------


def city_centre(engine) -> tuple[float, float]:
    """The centroid of the district with the most grids: where a zoom finds the densest grids."""
    u = schema.units
    from sqlalchemy import func

    with engine.connect() as conn:
        district = conn.execute(
            select(u.c.district_id)
            .where(u.c.level == schema.GRID)
            .group_by(u.c.district_id)
            .order_by(func.count().desc())
            .limit(1)
        ).scalar()
        lon, lat = conn.execute(select(u.c.centroid_lon, u.c.centroid_lat).where(u.c.id == district)).one()
    return lat, lon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--days", type=float, default=90)
    parser.add_argument("--per-day", type=float, default=1500)
    parser.add_argument("--runs", type=int, default=5, help="page loads per route, zoom passes")
    parser.add_argument("--changes", type=int, default=10, help="store changes timed with server push")
    parser.add_argument("--polled-changes", type=int, default=5, help="store changes timed with push blocked (0 skips)")
    parser.add_argument("--no-naive", action="store_true", help="skip the naive overview's comparison")
    parser.add_argument("--screenshots", type=Path, help="only take the README screenshots into this folder")
    parser.add_argument(
        "--server-starts", type=int, metavar="N", help="only time the first page after N + 1 starts of `app.py serve`"
    )
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request would bury the table
    engine, path, built = demo_store(args.grids, args.days, args.per_day)
    if args.server_starts:
        server_starts(engine, path, args)
        return
    settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai")
    app = create_app(settings, engine=engine)
    timed = TimedApp(app.server.wsgi_app)
    app.server.wsgi_app = timed
    server = Server(app.server)
    server.start()
    base = server.url
    with store.reading(engine) as conn:
        counts = store.counts(conn)
    print(f"store {path.name}: {counts}")
    driver = chromium()
    # Signed in once, landing on a public route so the first overview load below is still cold.
    sign_in_browser(driver, base, bench_user(engine), TEST_PASSWORD, next_path="/healthz")
    if args.screenshots:
        try:
            # As the app runs in production: the early-warning pass has looked at the city.
            print(f"early-warning pass: {run_detection(engine)}")
            screenshots(driver, base, args.screenshots)
        finally:
            driver.quit()
            server.httpd.shutdown()
        return
    results: dict = {
        "grids": args.grids,
        "days": args.days,
        "per_day": args.per_day,
        "counts": counts,
        "cores": os.cpu_count(),
        "load_before": os.getloadavg()[0],
        "runs": args.runs,
        "store": "sqlite",
    }
    try:
        # A first load of each route warms the server (geometry indexes, caches) and is reported apart.
        cold = {
            name: first_paint(driver, timed, base + route, size)
            for name, route, size in (("desk", "/?lang=en", DESK_SIZE), ("wall", "/wall?lang=en", WALL_SIZE))
        }
        results["cold"] = cold
        for name, route, size in (("desk", "/?lang=en", DESK_SIZE), ("wall", "/wall?lang=en", WALL_SIZE)):
            loads = [first_paint(driver, timed, base + route, size) for _ in range(args.runs)]
            results[name] = {key: median(load[key] for load in loads) for key in loads[0]}
            results[name]["paint_ms_all"] = [round(load["paint_ms"]) for load in loads]

        # Zoom from the city into the densest district, one level at a time, on the desk.
        centre = city_centre(engine)
        first_paint(driver, timed, base + "/?lang=en", DESK_SIZE)
        start = int(driver.execute_script("return window.citybrain.map.getZoom()"))
        passes = [zoom_steps(driver, timed, centre, start, 16) for _ in range(max(2, args.runs // 2))]
        per_zoom = {z: median(p[z]["ms"] for p in passes) for z in passes[0]}
        results["zoom_ms"] = {str(z): ms for z, ms in per_zoom.items()}
        results["zoom_step_ms"] = median(step["ms"] for p in passes for step in p.values())
        results["zoom_step_max_ms"] = max(per_zoom.values())
        results["zoom_parts"] = {
            str(z): {key: median(p[z][key] for p in passes) for key in passes[0][z] if key not in ("level", "requests")}
            | {"level": passes[-1][z]["level"], "requests": passes[-1][z]["requests"]}
            for z in passes[0]
        }
        # Restyle where the most units are drawn, on a 4K wall-sized window (the most a screen shows).
        driver.set_window_size(3840, 2160)
        best = {}
        set_view = "window.citybrain.map.setView([arguments[0], arguments[1]], arguments[2], {animate: false})"
        for zoom in range(start, 17):
            move(driver, set_view, *centre, zoom)
            n = driver.execute_script("return " + DRAWN)
            if n > best.get("units", 0):
                best = {"units": n, "zoom": zoom}
        move(driver, set_view, *centre, best["zoom"])
        restyles = [restyle(driver) for _ in range(args.runs)]
        results["restyle"] = {
            "window": "3840x2160",
            "zoom": best["zoom"],
            "units": restyles[0]["units"],
            "js_ms": median(r["js_ms"] for r in restyles),
            "painted_ms": median(r["painted_ms"] for r in restyles),
        }
        bounds = driver.execute_script(
            "const b = window.citybrain.map.getBounds(); return [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]"
        )
        bbox = ",".join(f"{v:.4f}" for v in bounds)

        # Store change -> painted, with server push, on the wall.
        reporter = Reporter(engine)
        first_paint(driver, timed, base + "/wall?lang=en", WALL_SIZE)
        wait_for(driver, "window.citybrain.liveState.status === 'live'")
        timed.take()
        pushed = change_latency(driver, reporter, args.changes, timeout=10)
        per_callback: dict[str, list[float]] = {}
        for output, seconds in timed.take_callbacks():
            per_callback.setdefault(output.strip(".").split(".")[0], []).append(1000 * seconds)
        refreshes = [seconds for path_, seconds in timed.take() if path_.endswith("_dash-update-component")]
        results["push"] = {
            "painted_ms": median(r["painted_ms"] for r in pushed),
            "painted_p95_ms": p95([r["painted_ms"] for r in pushed]),
            "kpi_ms": median(r["kpi_ms"] for r in pushed),
            "map_ms": median(r["map_ms"] for r in pushed),
            "live_restyle_ms": median(r["restyle_ms"] for r in pushed),
            "server_ms_per_refresh": 1000 * sum(refreshes) / max(len(pushed), 1),
            "callbacks_per_refresh": len(refreshes) / max(len(pushed), 1),
            # Server ms per call of each callback (named by its first output) during the changes.
            "callback_server_ms": {name: median(times) for name, times in per_callback.items()},
            "kpi_p95_ms": p95([r["kpi_ms"] for r in pushed]),
            "map_p95_ms": p95([r["map_ms"] for r in pushed]),
        }
        # The same with server push blocked on the way (a proxy that buffers it): the page falls back to polling.
        if args.polled_changes:
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*/live/events*"]})
            first_paint(driver, timed, base + "/wall?lang=en", WALL_SIZE)
            wait_for(driver, "window.citybrain.liveState.status === 'polling'", timeout=40)
            # From the page opening its stream to the indicator saying "polling", by the page's clock.
            fell_back = driver.execute_script("return (window.citybrain.liveState.since - window.citybrain.pageOpenedAt) / 1000")
            polled = change_latency(driver, reporter, args.polled_changes, timeout=20)
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})
            results["polling"] = {
                "fallback_after_s": fell_back,
                "painted_ms": median(r["painted_ms"] for r in polled),
                "painted_p95_ms": p95([r["painted_ms"] for r in polled]),
            }
        results["routes"] = route_sizes(base, bbox, session_cookie(driver))
        if not args.no_naive:
            results["naive"] = measure_naive(driver, engine, reporter, args, centre, start)
            results["comparison"] = [
                {"measure": label, "overview_ms": real, "naive_ms": naive, "ratio": naive / real if real and naive else None}
                for label, real, naive, _ in comparison_rows(results)
            ]
    finally:
        driver.quit()
        server.httpd.shutdown()
    results["load_after"] = os.getloadavg()[0]
    (RESULTS / "overview.json").write_text(json.dumps(results, indent=2, default=float))
    print_table(results)


def server_starts(engine, path: Path, args) -> None:
    """The first page after a server start (server_start.py): printed, and written to server-starts.json."""
    driver = chromium()
    try:
        results = measure_server_starts(
            driver,
            engine,
            path,
            lambda d, base: sign_in_browser(d, base, bench_user(engine), TEST_PASSWORD, next_path="/healthz"),
            wait_for,
            args.server_starts,
            ROOT,
            city_centre(engine),
        )
    finally:
        driver.quit()
    results.update(grids=args.grids, cores=os.cpu_count())
    (RESULTS / "server-starts.json").write_text(json.dumps(results, indent=2, default=float))
    print_server_starts(results, args.grids, os.cpu_count())


def print_table(r: dict) -> None:
    def ms(v):
        return "-" if v is None else f"{v:,.0f} ms"

    c = r["counts"]
    print(
        f"\nOverview in headless Chromium, SQLite store: {r['grids']:,} grids, {c.get('incidents', 0):,} incidents; "
        f"median of {r['runs']} runs; {r['cores']} cores, load average {r['load_before']:.1f} -> {r['load_after']:.1f}"
    )
    rows = [
        ("first paint / (map + KPIs), warm", ms(r["desk"]["paint_ms"]), f"cold {ms(r['cold']['desk']['paint_ms'])}"),
        ("first paint /wall (map + KPIs), warm", ms(r["wall"]["paint_ms"]), f"cold {ms(r['cold']['wall']['paint_ms'])}"),
        (
            "server time per load of /",
            ms(r["desk"]["server_ms"]),
            f"{r['desk']['requests']:.0f} requests, {r['desk']['transferred_kb']:.0f} KB",
        ),
        (
            "server time per load of /wall",
            ms(r["wall"]["server_ms"]),
            f"{r['wall']['requests']:.0f} requests, {r['wall']['transferred_kb']:.0f} KB",
        ),
        (
            "zoom step (no animation)",
            ms(r["zoom_step_ms"]),
            "per zoom: " + ", ".join(f"{z}: {v:.0f}" for z, v in r["zoom_ms"].items()),
        ),
        *(
            (
                f"  zoom {z} (level {part['level']}, {part['drawn']:.0f} units)",
                ms(part["ms"]),
                f"map callback {part['callbacks_ms']:.0f} ms (server {part['view_server_ms']:.0f}), "
                f"geometry {part['geometry_ms']:.0f} ms / {part['geometry_kb']:.0f} KB, draw {part['draw_ms']:.0f} ms",
            )
            for z, part in r.get("zoom_parts", {}).items()
        ),
        (
            f"restyle {r['restyle']['units']:,} units (setStyle)",
            ms(r["restyle"]["painted_ms"]),
            f"JS {r['restyle']['js_ms']:.0f} ms, zoom {r['restyle']['zoom']} at 3840x2160",
        ),
        (
            "store change -> painted, push (median)",
            ms(r["push"]["painted_ms"]),
            f"KPI {ms(r['push']['kpi_ms'])}, map {ms(r['push']['map_ms'])}",
        ),
        (
            "store change -> painted, push (p95)",
            ms(r["push"]["painted_p95_ms"]),
            f"KPI {ms(r['push'].get('kpi_p95_ms'))}, map {ms(r['push'].get('map_p95_ms'))}",
        ),
        (
            "server time per live refresh",
            ms(r["push"]["server_ms_per_refresh"]),
            f"{r['push']['callbacks_per_refresh']:.1f} callbacks: "
            + ", ".join(f"{name} {v:.0f} ms" for name, v in r["push"].get("callback_server_ms", {}).items()),
        ),
    ]
    if "polling" in r:
        rows += [
            (
                "store change -> painted, polling (median)",
                ms(r["polling"]["painted_ms"]),
                f"p95 {ms(r['polling']['painted_p95_ms'])}",
            ),
            ("fallback to polling after push blocked", f"{r['polling']['fallback_after_s']:.0f} s", ""),
        ]
    width = max(len(label) for label, *_ in rows)
    for label, value, note in rows:
        print(f"  {label:<{width}}  {value:>10}  {note}")
    print("\n  route sizes (gzip on the wire / raw):")
    for route in r["routes"]:
        features = "" if route["features"] is None else f"{route['features']:>6,} features"
        print(
            f"    {route['route']:<34} {route['wire_kb']:>8.1f} KB / {route['raw_kb']:>8.1f} KB  {features}  {route['ms']:.0f} ms"
        )
    if "naive" in r:
        print_comparison(r)
    print(f"\nwritten: {RESULTS / 'overview.json'}")


def comparison_rows(r: dict) -> list[tuple[str, float | None, float | None, str]]:
    """(measure, real, naive, note) for each figure the issue compares."""
    n = r["naive"]
    return [
        ("first paint /wall, warm", r["wall"]["paint_ms"], n["load"]["paint_ms"], ""),
        ("first paint /wall, cold", r["cold"]["wall"]["paint_ms"], n["cold"]["paint_ms"], ""),
        (
            "server time per page load",
            r["wall"]["server_ms"],
            n["load"]["server_ms"],
            f"{r['wall']['transferred_kb']:,.0f} KB vs {n['load']['transferred_kb']:,.0f} KB transferred",
        ),
        (
            "server time per live refresh",
            r["push"]["server_ms_per_refresh"],
            n["live"]["server_ms_per_refresh"],
            f"naive: {n['live']['refreshes_per_s']:.2f} refreshes/s whether or not anything changed, "
            f"{n['live'].get('repaints_per_s', 0):.2f} repaints/s",
        ),
        (
            "store change -> painted (median)",
            r["push"]["painted_ms"],
            n["live"]["painted_ms"],
            f"naive: {n['live']['timed_out']} of {n['live']['changes']} changes not painted within {NAIVE_CHANGE_TIMEOUT} s"
            if n["live"].get("timed_out")
            else "",
        ),
        ("store change -> painted (p95)", r["push"]["painted_p95_ms"], n["live"]["painted_p95_ms"], ""),
        (
            "restyle",
            r["restyle"]["painted_ms"],
            n["restyle"]["painted_ms"],
            f"{r['restyle']['units']:,} units setStyle vs {n['restyle']['units']:,} SVG paths rebuilt",
        ),
        ("zoom step (median)", r["zoom_step_ms"], n["zoom_step_ms"], ""),
        ("zoom step (worst level)", r["zoom_step_max_ms"], n["zoom_step_max_ms"], ""),
    ]


def print_comparison(r: dict) -> None:
    def ms(v):
        return "-" if v is None else f"{v:,.0f} ms"

    print("\n  beside the naive approach (all grid GeoJSON in the layout, SVG, 1 s dcc.Interval polling), same run:")
    rows = comparison_rows(r)
    width = max(len(label) for label, *_ in rows)
    print(f"    {'':<{width}}  {'overview':>10}  {'naive':>10}  {'naive/ov':>8}")
    for label, real, naive, note in rows:
        ratio = f"{naive / real:.1f}x" if real and naive is not None else "-"
        print(f"    {label:<{width}}  {ms(real):>10}  {ms(naive):>10}  {ratio:>8}  {note}")


if __name__ == "__main__":
    main()
