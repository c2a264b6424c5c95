"""Benchmark: intake API throughput through a real HTTP server (gunicorn) on a 5,000-grid city, SQLite and PostgreSQL.

Measures, for a few seconds at a time with several client connections:
- single POSTs per second to /api/v1/incidents (one incident each; target at least 300/s), and
- incidents per second posted in batches of 1,000 (target at least 5,000/s),
each with median and p95 request latency. Prints a table (median of the runs, with the core
count) and writes tests/bench/results/intake.json.

Run: .venv/bin/python tests/bench/bench_intake.py [--seconds 8] [--runs 3] [--grids 5000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from data import store
from data.accounts.apikeys import create_key
from tests.factories import make_grids, make_world

PG_URL = os.environ.get("CITYBRAIN_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
TARGETS = {"single_per_s": 300, "batch_incidents_per_s": 5000}


# --- the city and the server --------------------------------------------------------------------


def build_city(engine, grids: int) -> tuple[str, dict]:
    """A migrated store with make_world's catalogue and a lattice of about `grids` grids; (key secret, lattice box)."""
    store.migrate(engine)
    with engine.begin() as conn:
        make_world(conn)
        cols = int(round((grids * 2) ** 0.5))
        lattice = make_grids(conn, cols, grids // cols, origin=(107.0, 30.0), cell=0.005, districts=9)
        secret = create_key(conn, "bench", ["intake"], source="bench", rate_limit="10000000/minute").secret
    box = {"x0": 107.0, "y0": 30.0, "w": lattice.cols * lattice.cell, "h": lattice.rows * lattice.cell}
    return secret, box


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def gunicorn(database_url: str, workers: int, threads: int):
    """A gunicorn serving the whole app on a free local port; stopped afterwards."""
    port = _free_port()
    env = {
        **os.environ,
        "CITYBRAIN_DATABASE_URL": database_url,
        "CITYBRAIN_LIVE": "false",
        "CITYBRAIN_BUILD_DEMO": "false",
        "CITYBRAIN_SECRET_KEY": "bench",
        "PYTHONPATH": str(ROOT),
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}",
        "--log-level", "warning",
        "app:create_server()",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not start")
            time.sleep(0.5)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


# --- the load -----------------------------------------------------------------------------------


def _bodies(box: dict, count: int, per_request: int, tag: str, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    n = count * per_request
    # About 2% of positions fall outside every grid, as real feeds do.
    lons = rng.uniform(box["x0"] - 0.02 * box["w"], box["x0"] + box["w"], n).tolist()
    lats = rng.uniform(box["y0"], box["y0"] + box["h"], n).tolist()
    codes = ("garbage", "water", "construction", "noise")
    incidents = [
        {
            "external_id": f"{tag}-{i}",
            "category_code": codes[i % 4],
            "priority": 1 + i % 3,
            "description": "bench incident",
            "lon": lons[i],
            "lat": lats[i],
        }
        for i in range(n)
    ]
    if per_request == 1:
        return [orjson.dumps(item) for item in incidents]
    return [orjson.dumps({"incidents": incidents[i : i + per_request]}) for i in range(0, n, per_request)]


def server_cpu_seconds(master_pid: int) -> float:
    """CPU seconds (user + system) used so far by the gunicorn master and its workers (Linux /proc)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, parent = int(entry.name), int(fields[1])
        if pid == master_pid or parent == master_pid:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def load(port: int, secret: str, bodies: list[bytes], clients: int, seconds: float, master_pid: int) -> dict:
    """POST bodies from `clients` keep-alive connections for `seconds`; throughput and latencies."""
    headers = {"Content-Type": "application/json", "X-API-Key": secret}
    latencies: list[float] = []
    failures: list[int] = []
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    stop_at = time.perf_counter() + seconds

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine, bad = [], []
        while time.perf_counter() < stop_at:
            with lock:
                index = next(next_body, None)
            if index is None:
                break
            started = time.perf_counter()
            connection.request("POST", "/api/v1/incidents", body=bodies[index], headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            if response.status not in (200, 201):
                bad.append(response.status)
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu_before = server_cpu_seconds(master_pid)
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    server_cpu = server_cpu_seconds(master_pid) - cpu_before
    latencies.sort()
    return {
        "requests": len(latencies),
        "elapsed_s": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p95_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))],
        "server_cpu_ms_per_request": 1000 * server_cpu / max(len(latencies), 1),
        "load_average_1m": os.getloadavg()[0],
        "failures": len(failures),
        "failure_statuses": sorted(set(failures)),
    }


def bench(database_url: str, engine, args) -> dict:
    secret, box = build_city(engine, args.grids)
    engine.dispose()
    results: dict = {"grids": args.grids, "single": [], "batch": []}
    with gunicorn(database_url, args.workers, args.threads) as (port, pid):
        # Warm up: each worker builds its grid locator once, on its first intake.
        load(port, secret, _bodies(box, 40, 1, "warm", 0), 8, 3.0, pid)
        for run in range(args.runs):
            singles = _bodies(box, int(args.seconds * 2000), 1, f"s{run}", run + 1)
            results["single"].append(load(port, secret, singles, args.clients, args.seconds, pid))
            batches = _bodies(box, int(args.seconds * 30), 1000, f"b{run}", run + 100)
            outcome = load(port, secret, batches, args.batch_clients, args.seconds, pid)
            outcome["incidents_per_s"] = outcome["requests_per_s"] * 1000
            results["batch"].append(outcome)

    def median(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in results[kind])

    results["summary"] = {
        "single_per_s": median("single", "requests_per_s"),
        "single_p50_ms": median("single", "p50_ms"),
        "single_p95_ms": median("single", "p95_ms"),
        "batch_incidents_per_s": median("batch", "incidents_per_s"),
        "batch_p50_ms": median("batch", "p50_ms"),
        "batch_p95_ms": median("batch", "p95_ms"),
        "single_cpu_ms": median("single", "server_cpu_ms_per_request"),
        "batch_cpu_ms_per_incident": median("batch", "server_cpu_ms_per_request") / 1000,
        "load_average_1m": median("single", "load_average_1m"),
        "failures": sum(r["failures"] for kind in ("single", "batch") for r in results[kind]),
    }
    return results


@contextmanager
def pg_database():
    """(url, engine) on a fresh PostgreSQL database, dropped afterwards; None when no server answers.

    A database of its own, not just a schema: advisory locks (the change feed's ordering lock)
    are per database, so other work on the same server cannot stall the measurement.
    """
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = store.make_engine(
        PG_URL, pool_size=1, max_overflow=0, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - without a server the benchmark still reports SQLite
        print(f"PostgreSQL skipped: {str(exc).splitlines()[0]}")
        admin.dispose()
        yield None
        return
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = store.make_engine(url)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="Length of each measured run.")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--grids", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes.")
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker.")
    parser.add_argument("--clients", type=int, default=8, help="Concurrent connections posting single incidents.")
    parser.add_argument("--batch-clients", type=int, default=2, help="Concurrent connections posting batches.")
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="Measure one database only.")
    args = parser.parse_args()

    results: dict = {"cores": os.cpu_count(), "targets": TARGETS, "settings": vars(args)}
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            results["sqlite"] = bench(url, store.make_engine(url), args)
    if args.only != "sqlite":
        with pg_database() as pg:
            if pg is not None:
                results["postgresql"] = bench(pg[0], pg[1], args)

    print(
        f"intake API through gunicorn ({args.workers} workers x {args.threads} threads), {args.grids} grids, "
        f"median of {args.runs} runs of {args.seconds:g} s, {results['cores']} cores (client on the same machine)"
    )
    print(
        f"{'database':<12}{'single/s':>10}{'p50 ms':>8}{'p95 ms':>8}{'cpu ms':>8}"
        f"{'batch inc/s':>13}{'p50 ms':>8}{'p95 ms':>8}{'cpu ms/inc':>11}{'errors':>8}{'load':>6}"
    )
    for name in ("sqlite", "postgresql"):
        if name in results:
            s = results[name]["summary"]
            print(
                f"{name:<12}{s['single_per_s']:>10.0f}{s['single_p50_ms']:>8.1f}{s['single_p95_ms']:>8.1f}{s['single_cpu_ms']:>8.2f}"
                f"{s['batch_incidents_per_s']:>13.0f}{s['batch_p50_ms']:>8.0f}{s['batch_p95_ms']:>8.0f}"
                f"{s['batch_cpu_ms_per_incident']:>11.3f}{s['failures']:>8}{s['load_average_1m']:>6.1f}"
            )
    print(f"targets: single >= {TARGETS['single_per_s']}/s, batches >= {TARGETS['batch_incidents_per_s']} incidents/s")
    print("cpu ms: server CPU (all gunicorn processes) per request / per incident; load: 1-minute load average during the runs")
    out = ROOT / "tests" / "bench" / "results" / "intake.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
