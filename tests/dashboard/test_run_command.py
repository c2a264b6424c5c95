"""The README's run command: `python app.py` builds a (small) demo city on first run and serves it live."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.auth_helpers import signed_in_opener
from tests.paths import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


@pytest.mark.slow
def test_python_app_py_serves_the_demo_city_and_keeps_it_alive(tmp_path):
    port = _free_port()
    env = dict(
        os.environ,
        CITYBRAIN_DATABASE_URL=f"sqlite:///{tmp_path / 'city.db'}",
        CITYBRAIN_PORT=str(port),
        CITYBRAIN_DEMO_GRIDS="150",
        CITYBRAIN_DEMO_DAYS="2",
        CITYBRAIN_DEMO_PER_DAY="60",
        CITYBRAIN_LIVE="true",
    )
    log = (tmp_path / "server.log").open("w")  # closed in the finally below
    process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        health = None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            health = _get_json(f"http://127.0.0.1:{port}/healthz")
            if health:
                break
            time.sleep(0.5)
        assert health, f"server never answered; log:\n{(tmp_path / 'server.log').read_text()[-3000:]}"
        assert health["status"] == "ok"
        counts = health["counts"]
        assert counts["grids"] >= 100 and counts["incidents"] > 0 and 0 < counts["open_incidents"] <= counts["incidents"]
        # The live simulator keeps writing audited changes while serving.
        first_head = health["feed_head"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            time.sleep(2)
            if _get_json(f"http://127.0.0.1:{port}/healthz")["feed_head"] > first_head:
                break
        else:
            pytest.fail("the live simulator changed nothing in 60 s")
        # The screens need a sign-in: a browser is sent to the sign-in page, and a demo user gets in.
        request = urllib.request.Request(f"http://127.0.0.1:{port}/", headers={"Accept": "text/html"})
        with urllib.request.urlopen(request, timeout=10) as page:
            assert "/login" in page.geturl() and 'id="login-form"' in page.read().decode("utf-8")
        opener = signed_in_opener(f"http://127.0.0.1:{port}", "viewer", "viewer-demo")
        with opener.open(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200 and "/login" not in page.geturl()
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()
