"""Logging: every line written while a request is answered carries its id; plain text by default, one JSON object a line on request."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from dashboard.observability.logs import configure_logging
from data import store
from tests.dashboard.observability.helpers import logged, make_app
from tests.paths import ROOT


def _unreachable():
    return store.make_engine("postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1})


def test_a_requests_lines_carry_its_request_id_in_text(sqlite_engine):
    app = make_app(sqlite_engine)
    app.server.extensions["citybrain"].engine = _unreachable()  # the health check then logs a warning of its own
    with logged() as lines:
        answer = app.server.test_client().get("/healthz", headers={"X-Request-ID": "req-7f3a"})
    assert answer.status_code == 503 and answer.headers["X-Request-ID"] == "req-7f3a"
    written = lines.getvalue().splitlines()
    warning = [line for line in written if "health check failed" in line]
    access = [line for line in written if "citybrain.access" in line]
    assert len(warning) == 1 and "WARNING" in warning[0] and "[req-7f3a]" in warning[0]
    assert len(access) == 1 and "[req-7f3a]" in access[0] and "GET /healthz 503" in access[0]


def test_json_lines_parse_one_object_each_with_the_request_fields(sqlite_engine):
    app = make_app(sqlite_engine)
    with logged("json") as lines:
        answer = app.server.test_client().get("/api/v1/incidents/12345", environ_base={"REMOTE_ADDR": "10.0.0.7"})
        try:
            raise ValueError("a message\nover two lines")
        except ValueError:
            logging.getLogger("citybrain.test").exception("outside any request")
    documents = [json.loads(line) for line in lines.getvalue().splitlines()]  # every line is one whole object
    access = [d for d in documents if d["logger"] == "citybrain.access"]
    assert len(access) == 1
    line = access[0]
    assert line["request_id"] == answer.headers["X-Request-ID"]
    assert {k: line[k] for k in ("method", "path", "route", "status", "client")} == {
        "method": "GET",
        "path": "/api/v1/incidents/12345",
        "route": "/api/v1/incidents/<incident_id>",
        "status": answer.status_code,
        "client": "10.0.0.7",
    }
    assert line["level"] == "INFO" and isinstance(line["duration_ms"], float) and line["time"].endswith("+00:00")
    outside = [d for d in documents if d["logger"] == "citybrain.test"]
    assert outside[0]["request_id"] is None and "over two lines" in outside[0]["exception"]


def test_an_access_line_never_holds_a_kiosk_token_or_a_query(sqlite_engine):
    app = make_app(sqlite_engine)
    token = "k" * 40
    with logged("json") as lines:
        app.server.test_client().get(f"/kiosk/{token}?api_key=secret-value")
    text = lines.getvalue()
    assert token not in text and "secret-value" not in text
    (path,) = [json.loads(line)["path"] for line in text.splitlines() if "citybrain.access" in line]
    assert path.startswith("/kiosk/kkkk") and path.endswith("…")


def test_an_unknown_log_format_is_refused_at_start():
    with pytest.raises(ValueError, match="CITYBRAIN_LOG_FORMAT"):
        configure_logging("xml")


def test_the_worker_logs_json_lines_too(tmp_path):
    """`python app.py worker` (configured by the CLI like every command): one JSON object a line."""
    env = dict(
        os.environ,
        CITYBRAIN_DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
        CITYBRAIN_LOG_FORMAT="json",
        CITYBRAIN_WARNINGS_INTERVAL="0",
        CITYBRAIN_ROLLUP_REFRESH_SECONDS="0",
    )
    log_path = tmp_path / "worker.log"
    with log_path.open("w") as log:
        worker = subprocess.Popen([sys.executable, "app.py", "worker"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while "started" not in log_path.read_text():
                assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.1)
        finally:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=30)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert any(line["logger"] == "dashboard.commands.worker" and "started" in line["message"] for line in lines)
    assert all(line["request_id"] is None for line in lines)
