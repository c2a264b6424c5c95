"""Live streams at scale: the production command holding thousands of open screens, and what that costs the rest.

    python tests/bench/bench_live_scale.py [--streams 2000] [--workers 2] [--runs 5] [--embedded-streams 200]

Production: PostgreSQL (a throwaway schema), Redis, `gunicorn -k uvicorn_worker.UvicornWorker 'app:create_asgi()'`
with background work off and `python app.py worker` beside it. Embedded: `python app.py` on SQLite. Prints
(median of --runs where it repeats) and writes tests/bench/results/live_scale.json:
- how many concurrent /live/events streams the server holds (each one answered and reading);
- change -> received at every stream: p50 / p95 / max, from an API post to each stream's message;
- API post and Dash callback latency with the streams open against idle (median, p95; one request every
  0.5 s, each post a change every stream receives). The streams are held by tests/bench/stream_holder.py in a
  process of its own, so reading them does not slow the process that times the requests;
- server memory per open stream (RSS of the web processes, before and after opening them).
Traffic goes only to 127.0.0.1 and everything stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import store  # noqa: E402
from data.accounts.apikeys import create_key  # noqa: E402
from data.demo.city import build_demo  # noqa: E402
from tests.auth_helpers import TEST_PASSWORD, make_user  # noqa: E402
from tests.bench._util import pg_schema_engine  # noqa: E402
from tests.dash_helpers import callback_body  # noqa: E402

RESULTS = ROOT / "tests" / "bench" / "results"
REDIS_URL = "redis://127.0.0.1:6379/14"


# --- servers --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("server never answered /healthz")


def start(command: list[str], env: dict, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=ROOT, env={**os.environ, **env}, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def rss_kb(root_pid: int) -> int:
    """Resident memory of a process and all its descendants (gunicorn's master and workers), in KB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            match = re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text())
        except OSError:
            continue
        total += int(match.group(1)) if match else 0
    return total


# --- clients --------------------------------------------------------------------------------------


def sign_in(base: str, username: str) -> tuple[str, str]:
    """(Cookie header value with session and CSRF cookies, CSRF token) after the real sign-in form."""
    import http.cookiejar

    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{base}/login", timeout=30) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({"username": username, "password": TEST_PASSWORD, "csrf_token": token}).encode()
    opener.open(f"{base}/login", data=form, timeout=30).read()
    cookies = {c.name: c.value for c in jar}
    return "; ".join(f"{k}={v}" for k, v in cookies.items()), cookies.get("_csrf_token", "")


def post_incident(port: int, key: str, n: int, lon: float, lat: float) -> float:
    body = json.dumps(
        {
            "external_id": f"scale-{n}-{time.time_ns()}",
            "category_code": "volunteer_request",
            "description": "bench",
            "lon": lon,
            "lat": lat,
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/incidents",
        data=body,
        headers={"X-API-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


def fire_kpis(port: int, cookie: str, csrf: str, body: bytes) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/_dash-update-component",
        data=body,
        headers={"Cookie": cookie, "X-CSRFToken": csrf, "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return time.perf_counter() - started


PACE_SECONDS = 0.5  # timed requests go one every half second: a hotline at its busiest, not a flood


def latencies(fn, n: int) -> dict:
    times = []
    for i in range(n):
        began = time.monotonic()
        times.append(fn(i))
        time.sleep(max(0.0, PACE_SECONDS - (time.monotonic() - began)))
    times.sort()
    return {"median_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[int(0.95 * (len(times) - 1))]}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(q * (len(ordered) - 1) + 0.5), len(ordered) - 1)] if ordered else float("nan")


class Holder:
    """tests/bench/stream_holder.py in a process of its own, holding the streams; commands over its stdin."""

    def __init__(self, port: int, cookie: str, count: int):
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("stream_holder.py")), str(port), cookie, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.opened = self._answer()

    def ask(self, command: str) -> dict:
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the stream holder stopped")
        return json.loads(line)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.process.stdin.write("close\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


# --- the runs -------------------------------------------------------------------------------------


def measure(port: int, root_pid: int, cookie: str, csrf: str, key: str, streams: int, runs: int, spot) -> dict:
    lon, lat = spot
    body = json.dumps(callback_body_for_kpis()).encode()
    idle_post = latencies(lambda i: post_incident(port, key, i, lon, lat), 30)
    idle_callback = latencies(lambda i: fire_kpis(port, cookie, csrf, body), 30)
    rss_before = rss_kb(root_pid)
    holder = Holder(port, cookie, streams)
    try:
        delays: list[float] = []
        missed = 0
        for run in range(runs):
            holder.ask("mark")
            posted = time.monotonic()
            post_incident(port, key, 10_000 + run, lon, lat)
            arrived = holder.ask(f"collect {posted}")
            delays += arrived["delays"]
            missed += arrived["missed"]
            time.sleep(1)
        rss_after = rss_kb(root_pid)
        loaded_post = latencies(lambda i: post_incident(port, key, 20_000 + i, lon, lat), 30)
        loaded_callback = latencies(lambda i: fire_kpis(port, cookie, csrf, body), 30)
    finally:
        holder.close()
    held = holder.opened["held"]
    return {
        "streams_asked": streams,
        "streams_held": held,
        "stream_errors": holder.opened["errors"],
        "change_p50_ms": 1000 * percentile(delays, 0.5),
        "change_p95_ms": 1000 * percentile(delays, 0.95),
        "change_max_ms": 1000 * max(delays) if delays else float("nan"),
        "changes_missed": missed,
        "idle_post": idle_post,
        "loaded_post": loaded_post,
        "idle_callback": idle_callback,
        "loaded_callback": loaded_callback,
        "rss_before_mb": rss_before / 1024,
        "rss_after_mb": rss_after / 1024,
        "kb_per_stream": (rss_after - rss_before) / max(held, 1),
    }


_KPI_BODY: dict | None = None


def callback_body_for_kpis() -> dict:
    """The overview's KPI callback as the browser posts it (built from the app's own callback map)."""
    global _KPI_BODY
    if _KPI_BODY is None:
        from app import create_app
        from dashboard.settings import Settings

        engine = store.make_engine(f"sqlite:///{tempfile.mkdtemp()}/shape.db")
        app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
        _KPI_BODY = callback_body(
            app, "overview-kpis.children", ("overview-refresh", "data", {"head": 1}), {"overview-state": {}}
        )
        engine.dispose()
    return _KPI_BODY


def seed(engine) -> tuple[str, tuple[float, float]]:
    """A small demo city, a viewer and an intake key; (key, a point inside the city)."""
    from sqlalchemy import text

    build_demo(engine, grids=300, days=2, per_day=200)
    make_user(engine, "viewer", username="wall")
    with engine.begin() as conn:
        key = create_key(conn, "bench", ["intake"], source="bench").secret
        lon, lat = conn.execute(text("SELECT centroid_lon, centroid_lat FROM units WHERE level = 4 LIMIT 1")).one()
    return key, (lon, lat)


def production(args) -> dict | None:
    with pg_schema_engine() as engine:
        if engine is None:
            return None
        store.migrate(engine)
        key, spot = seed(engine)
        url = _schema_url(engine)
        port = free_port()
        env = {
            "CITYBRAIN_DATABASE_URL": url,
            "CITYBRAIN_CACHE_URL": REDIS_URL,
            "CITYBRAIN_SECRET_KEY": "bench-live-scale",
            "CITYBRAIN_BACKGROUND": "off",
            "CITYBRAIN_LIVE": "false",
            "CITYBRAIN_BUILD_DEMO": "false",
        }
        logs = Path(tempfile.mkdtemp())
        web = start(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                str(args.workers),
                "--bind",
                f"127.0.0.1:{port}",
                "--backlog",
                "4096",
                "app:create_asgi()",
            ],
            env,
            logs / "web.log",
        )
        worker = None
        if subprocess.run([sys.executable, "app.py", "worker", "--help"], cwd=ROOT, capture_output=True).returncode == 0:
            worker = start([sys.executable, "app.py", "worker"], env, logs / "worker.log")
        try:
            wait_healthy(port, web)
            cookie, csrf = sign_in(f"http://127.0.0.1:{port}", "wall")
            figures = measure(port, web.pid, cookie, csrf, key, args.streams, args.runs, spot)
            figures["worker"] = worker is not None
            figures["web_workers"] = args.workers
            return figures
        finally:
            stop(web)
            if worker is not None:
                stop(worker)


def _schema_url(engine) -> str:
    """The engine's URL with its schema as a libpq option (the throwaway schema travels to the servers)."""
    with engine.connect() as conn:
        from sqlalchemy import text

        name = conn.execute(text("SELECT current_schema()")).scalar_one()
    return f"{engine.url.render_as_string(hide_password=False)}?options=-csearch_path%3D{name}"


def embedded(args) -> dict:
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite:///{folder / 'city.db'}"
    engine = store.make_engine(url)
    store.migrate(engine)
    key, spot = seed(engine)
    engine.dispose()
    port = free_port()
    env = {
        "CITYBRAIN_DATABASE_URL": url,
        "CITYBRAIN_PORT": str(port),
        "CITYBRAIN_LIVE": "false",
        "CITYBRAIN_BUILD_DEMO": "false",
        "CITYBRAIN_SECRET_KEY": "bench-live-scale",
    }
    server = start([sys.executable, "app.py"], env, folder / "server.log")
    try:
        wait_healthy(port, server)
        cookie, csrf = sign_in(f"http://127.0.0.1:{port}", "wall")
        return measure(port, server.pid, cookie, csrf, key, args.embedded_streams, args.runs, spot)
    finally:
        stop(server)


def row(name: str, f: dict) -> str:
    return (
        f"| {name} | {f['streams_held']:,} / {f['streams_asked']:,} | {f['change_p50_ms']:.0f} / {f['change_p95_ms']:.0f} / "
        f"{f['change_max_ms']:.0f} ms ({f['changes_missed']} missed) | {f['idle_post']['median_ms']:.0f} -> "
        f"{f['loaded_post']['median_ms']:.0f} ms (p95 {f['idle_post']['p95_ms']:.0f} -> {f['loaded_post']['p95_ms']:.0f}) | "
        f"{f['idle_callback']['median_ms']:.0f} -> {f['loaded_callback']['median_ms']:.0f} ms (p95 "
        f"{f['idle_callback']['p95_ms']:.0f} -> {f['loaded_callback']['p95_ms']:.0f}) | {f['kb_per_stream']:.1f} KB |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (uvicorn)")
    parser.add_argument("--runs", type=int, default=5, help="changes timed at every stream")
    parser.add_argument("--embedded-streams", type=int, default=200)
    parser.add_argument("--skip-embedded", action="store_true")
    args = parser.parse_args()
    results = {"cores": os.cpu_count()}
    results["production"] = production(args)
    if not args.skip_embedded:
        results["embedded"] = embedded(args)
    print(f"\nLive streams ({os.cpu_count()} cores; change latency over {args.runs} changes at every stream)\n")
    print(
        "| server | streams held | change -> received p50 / p95 / max | API post median idle -> with streams (one per 0.5 s) | "
        "callback median idle -> with streams | memory per stream |"
    )
    print("|---|---|---|---|---|---|")
    if results["production"]:
        print(row(f"production: gunicorn {args.workers} uvicorn workers, PostgreSQL, Redis", results["production"]))
    if results.get("embedded"):
        print(row("embedded: python app.py, SQLite", results["embedded"]))
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "live_scale.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
