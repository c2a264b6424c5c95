"""`python app.py worker` twice against one PostgreSQL schema: each job runs in one of them at a time, /readyz reads their heartbeats."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from app import create_app
from dashboard.settings import Settings
from data import schema, store
from data.demo.city import build_demo
from data.jobs.election import ELECTION_KEYS
from tests.paths import ROOT

JOBS = ("warnings", "rollups", "escalation", "webhooks")
RUN_LINE = re.compile(r"job (\w+) ran (\S+) to (\S+) by (\S+) \(")


def _runs(engine) -> dict[str, dict]:
    with store.reading(engine) as conn:
        return {r.job: dict(r._mapping) for r in conn.execute(select(schema.job_runs))}


def _wait(condition, seconds: float, what: str, logs=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    tails = "\n".join(path.read_text()[-2000:] for path in logs)
    pytest.fail(f"{what} within {seconds} s\n{tails}")


def _spans(paths) -> dict[str, list[tuple[datetime, datetime, str]]]:
    """Every run each worker logged: job -> [(start, end, holder)]."""
    spans = defaultdict(list)
    for path in paths:
        for match in RUN_LINE.finditer(path.read_text()):
            job, began, ended, holder = match.groups()
            spans[job].append((datetime.fromisoformat(began), datetime.fromisoformat(ended), holder))
    return spans


@pytest.mark.postgres
@pytest.mark.slow
def test_two_workers_run_each_job_once_at_a_time(tmp_path, own_pg_schema_url):
    url = own_pg_schema_url
    engine = store.make_engine(url)
    processes, logs = [], [tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    blocker = engine.connect()
    try:
        store.migrate(engine)
        build_demo(engine, grids=120, days=2, per_day=60)  # something for each pass and refresh to read
        # The test holds the warning pass's election itself: no worker may run a pass until it lets go.
        blocker.execute(text("SELECT pg_advisory_lock(:k, hashtext(current_schema()))"), {"k": ELECTION_KEYS["warnings"]})
        blocker.commit()
        env = dict(
            os.environ,
            CITYBRAIN_DATABASE_URL=url,
            CITYBRAIN_WARNINGS_INTERVAL="1",
            CITYBRAIN_ROLLUP_REFRESH_SECONDS="1",
            CITYBRAIN_AUTO_ESCALATE_SECONDS="1",
            CITYBRAIN_LOG_FORMAT="text",
        )
        env.pop("CITYBRAIN_LIVE", None)
        for path in logs:
            with path.open("w") as out:  # the child keeps its own descriptor
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "app.py", "worker", "--verbose"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
                    )
                )

        def others_ran(times: int) -> bool:
            runs = _runs(engine)
            return all(runs.get(job, {}).get("runs", 0) >= times for job in ("rollups", "escalation", "webhooks"))

        _wait(lambda: others_ran(3), 120, "the other jobs never ran three times", logs)
        assert "warnings" not in _runs(engine)  # its election is held elsewhere: not run, not even begun
        blocker.execute(text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"), {"k": ELECTION_KEYS["warnings"]})
        blocker.commit()
        _wait(lambda: _runs(engine).get("warnings", {}).get("runs", 0) >= 3, 120, "no three warning passes", logs)
        _wait(lambda: others_ran(8), 120, "the jobs never ran eight times", logs)

        # /readyz of a web process reads the workers' heartbeats: every job fresh, run by one of the two.
        pids = {str(p.pid) for p in processes}
        web = create_app(Settings.from_env({}, database_url=url, live=False, build_demo=False), testing=True)
        ready = web.server.test_client().get("/readyz")
        assert ready.status_code == 200, ready.get_json()
        body = ready.get_json()
        assert body["status"] == "ok" and set(body["jobs"]) == set(JOBS)
        for job, health in body["jobs"].items():
            assert health["fresh"] and health["error"] is None, (job, health)
            assert health["holder"].rsplit(":", 1)[1] in pids
    finally:
        stopping_at = datetime.now(UTC)
        for process in processes:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(30) for process in processes]
        blocker.close()
        final = _runs(engine)
        engine.dispose()
    assert codes == [0, 0], [path.read_text()[-2000:] for path in logs]
    for path in logs:
        log = path.read_text()
        assert "worker stopped" in log  # SIGTERM ends it cleanly
        assert "election was lost" not in log and "Traceback" not in log, log[-3000:]

    spans = _spans(logs)
    for job in JOBS:
        runs = sorted(spans[job])
        # Every run was logged by the process that recorded it: no run's heartbeat lost or counted twice ...
        assert len(runs) == final[job]["runs"], job
        # ... and no two runs of one job, in either process, overlapped in time.
        for earlier, later in zip(runs, runs[1:], strict=False):
            assert later[0] >= earlier[1], (job, earlier, later)
    # The webhook job keeps its election: one worker delivers, the other stands by (until the one delivering
    # stops: the other may take over in the moment before its own stop signal lands).
    assert len({holder for began, _e, holder in spans["webhooks"] if began < stopping_at}) == 1
    # Periodic jobs take turns instead of both running every interval (1 s): a run starts 0.8 s after the last at the soonest.
    for job in ("rollups", "escalation"):
        starts = sorted(began for began, _e, _h in spans[job])
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert min(gaps) >= timedelta(seconds=0.75), (job, min(gaps))
