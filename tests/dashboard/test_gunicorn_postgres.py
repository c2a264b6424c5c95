"""The production command of docs/deploy.md: gunicorn with several uvicorn workers serving one PostgreSQL store."""

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from data import store
from data.demo.city import build_demo
from tests.auth_helpers import make_user, signed_in_opener
from tests.dashboard.test_run_command import _free_port
from tests.paths import ROOT


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


def _app_lines(log_path) -> list[dict]:
    """The app's JSON log lines (gunicorn's master writes its own plain lines beside them)."""
    return [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]


def _healthz_requests_counted(port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = _get(f"http://127.0.0.1:{port}/metrics")[1].decode()
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "citybrain_http_requests_total" and s.labels["route"] == "/healthz" and s.labels["status_class"] == "2xx"
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_several_gunicorn_workers_serve_the_same_postgres_store(tmp_path, own_pg_schema_url):
    url = own_pg_schema_url
    engine = store.make_engine(url)
    port = _free_port()
    process = log = None
    try:
        store.migrate(engine)
        build_demo(engine, grids=120, days=2, per_day=60)
        with store.reading(engine) as conn:
            expected = store.counts(conn)
        env = {k: v for k, v in os.environ.items() if k != "CITYBRAIN_SECRET_KEY"}  # the key is made and kept in the store
        env.update(
            CITYBRAIN_DATABASE_URL=url,
            CITYBRAIN_LIVE="false",
            CITYBRAIN_BACKGROUND="off",
            CITYBRAIN_LOG_FORMAT="json",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),  # made (and emptied) by the config's on_starting
        )
        log_path = tmp_path / "gunicorn.log"
        log = log_path.open("w")  # closed with the process below
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:dashboard.observability.gunicorn_conf",
                "-k",
                "uvicorn_worker.UvicornWorker",
                "--workers",
                "3",
                "--bind",
                f"127.0.0.1:{port}",
                "app:create_asgi()",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if _get(f"http://127.0.0.1:{port}/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"gunicorn never answered:\n{log_path.read_text()[-3000:]}")

        # Many requests at once spread over the workers; every one sees the same store.
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda _: _get(f"http://127.0.0.1:{port}/healthz"), range(36)))
        assert all(status == 200 for status, _ in answers)
        assert {json.dumps(json.loads(body)["counts"], sort_keys=True) for _, body in answers} == {
            json.dumps(expected, sort_keys=True)
        }

        # Every worker's requests are summed by /metrics, whichever worker answers it (PROMETHEUS_MULTIPROC_DIR).
        def healthz_served_by() -> Counter:
            return Counter(
                line["pid"] for line in _app_lines(log_path) if line.get("route") == "/healthz" and line["status"] == 200
            )

        deadline = time.monotonic() + 60
        while len(healthz_served_by()) < 2:  # more requests until more than one worker has answered some
            assert time.monotonic() < deadline, "every request went to one worker"
            with ThreadPoolExecutor(max_workers=12) as pool:
                list(pool.map(lambda _: _get(f"http://127.0.0.1:{port}/healthz"), range(12)))
        served_by = healthz_served_by()
        assert _healthz_requests_counted(port) == sum(served_by.values()) > max(served_by.values())

        # Sessions signed by one worker are honoured by the others: one secret key, made once and kept in the store
        # (CITYBRAIN_SECRET_KEY is unset), every request's id in the JSON log line of the worker that answered it.
        with store.reading(engine) as conn:
            assert len(store.get_meta(conn, "secret_key") or "") == 64
        viewer = make_user(engine, "viewer")
        opener = signed_in_opener(f"http://127.0.0.1:{port}", viewer["username"])

        def page(n: int) -> None:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"X-Request-ID": f"signed-in-{n}"})
            with opener.open(request, timeout=30) as answer:
                assert answer.status == 200 and "/login" not in answer.geturl()
                assert answer.headers["X-Request-ID"] == f"signed-in-{n}"

        workers: set[int] = set()
        deadline, sent = time.monotonic() + 60, 0
        while len(workers) < 2:  # until pages signed in on one worker were served by another
            assert time.monotonic() < deadline, "every signed-in page came from one worker"
            with ThreadPoolExecutor(max_workers=6) as pool:
                list(pool.map(page, range(sent, sent + 6)))
            sent += 6
            workers = {line["pid"] for line in _app_lines(log_path) if str(line.get("request_id")).startswith("signed-in-")}
        with opener.open(f"http://127.0.0.1:{port}/geo/units/district.json", timeout=30) as geo:
            assert len(json.loads(geo.read())["features"]) == 9
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
            if log is not None:
                log.close()
        engine.dispose()
