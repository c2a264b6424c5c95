"""The first page after a server start: a fresh `python app.py serve` per run on the benchmark's store, opened in Chromium.

bench_overview.py --server-starts N runs this instead of its usual measurements. The first run
starts with no prepared geometry in the store (as right after a boundary import), so that server
simplifies every level and stores it; every later run is a plain restart, which loads the stored
geometry. Each run: the process is started, / is opened the moment /healthz answers (the browser's
cache emptied, so the geometry comes from the server), and the page's own markers say when the map
drew units with KPIs filled; at the same moment a wall's view of the densest grids (the level that
used to be simplified at every start) is asked for straight from /geo/units/grid.json.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import func, select

from data import schema
from layers import boundaries

SECRET = "bench-server-start"  # one key for every start, so the browser's sign-in holds across them

# From navigation to the end of the slowest /geo/units/ answer, in the page's clock.
GEOMETRY_DONE = (
    "return Math.max(0, ...performance.getEntriesByType('resource')"
    ".filter(e => e.name.includes('/geo/units/')).map(e => e.responseEnd))"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(root: Path, db_path: Path, port: int, log_path: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "CITYBRAIN_DATABASE_URL": f"sqlite:///{db_path}",
        "CITYBRAIN_HOST": "127.0.0.1",
        "CITYBRAIN_PORT": str(port),
        "CITYBRAIN_LIVE": "false",
        "CITYBRAIN_BUILD_DEMO": "false",
        "CITYBRAIN_BACKGROUND": "off",  # no warning pass or roll-up competing with the start
        "CITYBRAIN_SECRET_KEY": SECRET,
    }
    with log_path.open("ab") as log:
        return subprocess.Popen([sys.executable, "app.py", "serve"], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_up(base: str, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.02)
    raise TimeoutError("the server did not answer /healthz")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _grids_in_view(base: str, cookie: str, bbox: str, answered: dict) -> None:
    """A wall's view of the densest grids asked for straight away: the level that needs the most geometry."""
    request = urllib.request.Request(
        f"{base}/geo/units/grid.json?bbox={bbox}", headers={"Cookie": cookie, "Accept-Encoding": "gzip"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as response:
        response.read()
    answered["grids_ms"] = 1000 * (time.perf_counter() - started)


def _open_first_page(driver, base: str, wait_for, bbox: str) -> dict:
    driver.get("about:blank")
    driver.execute_cdp_cmd("Network.clearBrowserCache", {})
    cookies = driver.execute_cdp_cmd("Network.getAllCookies", {})["cookies"]  # the sign-in's, whatever page is open
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in cookies if c["domain"] == "127.0.0.1")
    answered: dict = {}
    grids = threading.Thread(target=_grids_in_view, args=(base, cookie, bbox, answered))
    grids.start()  # with the page, as a second screen opened at the same moment would
    driver.get(base + "/?lang=en")
    ready = wait_for(driver, "window.__probe.readyAt", timeout=120)
    geometry = driver.execute_script(GEOMETRY_DONE)
    grids.join(120)
    return {"paint_ms": ready, "geometry_ms": geometry, **answered}


def _wait_prepared(engine, timeout: float = 600.0) -> None:
    """Until the server has stored every map level (its warm-up builds them after the first page)."""
    p = schema.prepared_geometry
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as conn:
            stored = conn.execute(select(func.count()).select_from(p).where(p.c.payload.is_not(None))).scalar_one()
        if stored >= len(boundaries.MAP_LEVELS):
            return
        time.sleep(0.2)
    raise TimeoutError("the server did not store every level's geometry")


def measure_server_starts(driver, engine, db_path: Path, sign_in, wait_for, runs: int, root: Path, centre) -> dict:
    """Start the server `runs` + 1 times on `db_path` (the first with no prepared geometry); per start,
    seconds until it answered, the first page's paint and geometry times, and how long a view of the
    grids around `centre` (lat, lon) took to answer when asked for at the same moment."""
    lat, lon = centre
    bbox = ",".join(f"{v:g}" for v in boundaries.snap_bbox((lon - 0.04, lat - 0.025, lon + 0.04, lat + 0.025)))
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log_path = db_path.with_suffix(".server-start.log")
    process = _start(root, db_path, port, log_path)
    try:  # a start only to sign the browser in: the session outlives the process (same key, same store)
        _wait_up(base, process)
        sign_in(driver, base)
    finally:
        _stop(process)
    starts = []
    for run in range(runs + 1):
        if run == 0:
            with engine.begin() as conn:  # as a boundary import leaves it: nothing prepared for the new version
                conn.execute(schema.prepared_geometry.delete())
        started = time.perf_counter()
        process = _start(root, db_path, port, log_path)
        try:
            _wait_up(base, process)
            up_s = time.perf_counter() - started
            starts.append({"up_s": up_s, **_open_first_page(driver, base, wait_for, bbox)})
            if run == 0:
                _wait_prepared(engine)  # so that every later start is a plain restart
        finally:
            _stop(process)
    later = starts[1:]
    return {
        "after_import": starts[0],
        "restart": {key: statistics.median(s[key] for s in later) for key in starts[0]} if later else None,
        "restarts": later,
    }


def print_server_starts(results: dict, grids: int, cores: int | None) -> None:
    def row(label: str, figures: dict | None) -> None:
        if figures:
            print(
                f"  {label:<38} page {figures['paint_ms']:>6,.0f} ms (its geometry answered at {figures['geometry_ms']:>5,.0f} ms)"
                f"   grids in view {figures['grids_ms']:>6,.0f} ms   (server up {figures['up_s']:.1f} s after its start)"
            )

    n = len(results["restarts"])
    print(f"\nFirst page / after a server start, {grids:,} grids, SQLite; {cores} cores; browser cache emptied each time")
    row("first start after a boundary import", results["after_import"])
    row(f"later starts (median of {n})", results["restart"])
