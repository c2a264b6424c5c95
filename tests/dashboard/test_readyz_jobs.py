"""/readyz reads the heartbeats real jobs write: who ran each, how long ago, its error, and stale ones make it 'degraded'."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from app import create_app
from dashboard.settings import Settings
from data import schema
from data.jobs.catalogue import escalation_job, rollups_job
from data.jobs.heartbeat import this_holder
from data.jobs.runner import Job, JobRunner
from data.times import utc_now


def _tick(engine, job) -> None:
    runner = JobRunner(engine, job)
    try:
        assert runner.tick()
    finally:
        runner.lock.close()


def test_readyz_shows_each_jobs_heartbeat_and_says_when_one_is_stale(tmp_path):
    settings = Settings.from_env({}, database_url=f"sqlite:///{tmp_path / 'app.db'}", live=False, build_demo=False)
    app = create_app(settings, testing=True)
    engine = app.server.extensions["citybrain"].engine
    _tick(engine, rollups_job(engine, 30, "Asia/Shanghai"))
    _tick(engine, escalation_job(engine, 60))

    def broken():
        raise RuntimeError("detector exploded")

    _tick(engine, Job("warnings", 60, broken))
    client = app.server.test_client()
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok" and set(body["jobs"]) == {"rollups", "escalation", "warnings"}
    assert all(j["fresh"] and j["holder"] == this_holder() and j["age_s"] <= 5 for j in body["jobs"].values())
    assert body["jobs"]["rollups"]["error"] is None and body["jobs"]["rollups"]["duration_ms"] >= 0
    assert body["jobs"]["warnings"]["error"] == "RuntimeError: detector exploded"

    # The worker stopped an hour ago: 2 x 30 s + 60 s have long passed for the roll-up.
    with engine.begin() as conn:
        conn.execute(
            update(schema.job_runs).where(schema.job_runs.c.job == "rollups").values(started_at=utc_now() - timedelta(hours=1))
        )
    answer = client.get("/readyz")
    assert answer.status_code == 200  # degraded, still serving: the screens work while the worker restarts
    body = answer.get_json()
    assert body["status"] == "degraded" and not body["jobs"]["rollups"]["fresh"] and body["jobs"]["escalation"]["fresh"]
