"""The README's production command: several gunicorn workers serving one PostgreSQL store."""

import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import text

from data import store
from data.demo.city import build_demo
from tests.auth_helpers import make_user, signed_in_opener
from tests.conftest import PG_AVAILABLE, PG_URL, skip_or_fail
from tests.dashboard.test_run_command import _free_port
from tests.paths import ROOT


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status, response.read()


@pytest.mark.postgres
@pytest.mark.slow
def test_several_gunicorn_workers_serve_the_same_postgres_store(tmp_path):
    if not PG_AVAILABLE:
        skip_or_fail(f"no PostgreSQL server at {PG_URL}")
    schema_name = f"t_{uuid.uuid4().hex[:12]}"
    admin = store.make_engine(PG_URL, pool_size=1, max_overflow=0)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
    url = f"{PG_URL}?options=-csearch_path%3D{schema_name}"
    engine = store.make_engine(url)
    port = _free_port()
    process = log = None
    try:
        store.migrate(engine)
        build_demo(engine, grids=120, days=2, per_day=60)
        with store.reading(engine) as conn:
            expected = store.counts(conn)
        env = dict(os.environ, CITYBRAIN_DATABASE_URL=url, CITYBRAIN_SECRET_KEY="test-secret", CITYBRAIN_LIVE="false")
        log = (tmp_path / "gunicorn.log").open("w")  # closed with the process below
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                "3",
                "--threads",
                "4",
                "--bind",
                f"127.0.0.1:{port}",
                "app:create_server()",
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
            pytest.fail(f"gunicorn never answered:\n{(tmp_path / 'gunicorn.log').read_text()[-3000:]}")

        # Many requests at once spread over the workers; every one sees the same store.
        with ThreadPoolExecutor(max_workers=12) as pool:
            answers = list(pool.map(lambda _: _get(f"http://127.0.0.1:{port}/healthz"), range(36)))
        assert all(status == 200 for status, _ in answers)
        assert {json.dumps(json.loads(body)["counts"], sort_keys=True) for _, body in answers} == {
            json.dumps(expected, sort_keys=True)
        }
        # Sessions signed by one worker are honoured by the others (one shared secret key).
        viewer = make_user(engine, "viewer")
        opener = signed_in_opener(f"http://127.0.0.1:{port}", viewer["username"])
        for _ in range(4):
            with opener.open(f"http://127.0.0.1:{port}/", timeout=30) as page:
                assert page.status == 200 and "/login" not in page.geturl()
            with opener.open(f"http://127.0.0.1:{port}/geo/units/district.json", timeout=30) as geo:
                assert len(json.loads(geo.read())["features"]) == 9
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
            if log is not None:
                log.close()
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema_name}" CASCADE'))
        admin.dispose()
