"""Background jobs run once: each job's election (PostgreSQL advisory lock, SQLite file lock), its heartbeat, the runner."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError

from data import schema, store
from data.jobs import election
from data.jobs.election import job_lock
from data.jobs.heartbeat import begin_run, end_run, last_run
from data.jobs.runner import Job, JobRunner, start_jobs
from data.times import utc_now


def _wait_for(condition, seconds: float = 20.0, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"{what} was not met within {seconds} s")


def test_one_holder_per_job_at_a_time_and_jobs_are_independent(engine):
    first, second, other = job_lock(engine, "warnings"), job_lock(engine, "warnings"), job_lock(engine, "rollups")
    try:
        assert first.acquire()
        assert not second.acquire()  # never waits: the turn is simply not this one's
        assert other.acquire()  # another job, its own key
        first.release()
        assert second.acquire()
        assert not first.acquire()
    finally:
        for lock in (first, second, other):
            lock.close()


def test_every_job_has_a_key_of_its_own_apart_from_the_locks_runs_take():
    keys = list(election.ELECTION_KEYS.values())
    assert len(set(keys)) == len(keys)
    from data.incidents.feed import CHANGE_FEED_LOCK
    from data.metrics.rollups import ROLLUP_LOCK
    from data.warnings.detect import PASS_LOCK

    taken_by_runs = {727001, CHANGE_FEED_LOCK, PASS_LOCK, ROLLUP_LOCK}
    assert len(taken_by_runs) == 4  # the warning pass and the roll-up no longer share one
    assert not taken_by_runs & set(keys)


@pytest.mark.postgres
def test_a_dead_holder_frees_its_job_and_learns_it_lost_it(pg_engine):
    holder, standby = job_lock(pg_engine, "simulator"), job_lock(pg_engine, "simulator")
    try:
        assert holder.acquire() and not standby.acquire()
        pid = holder._conn.execute(text("SELECT pg_backend_pid()")).scalar()
        holder._conn.commit()
        with pg_engine.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        _wait_for(standby.acquire, what="the standby winning the freed election")
        assert not holder.alive()  # the holder's next turn finds its session gone and stands down
        assert not holder.acquire()
    finally:
        holder.close()
        standby.close()


@pytest.mark.postgres
def test_a_held_election_outlives_the_stores_time_limit(pg_engine, monkeypatch):
    from data import deadlines

    monkeypatch.setattr(election, "STATEMENT_SECONDS", 0.5)  # its checkout is bounded by this, its holding is not
    engine = store.make_engine(pg_engine.url.render_as_string(hide_password=False), timeout=0.5)
    holder, standby = job_lock(engine, "webhooks"), job_lock(engine, "webhooks")
    try:
        assert holder.acquire()
        fired = deadlines.WATCHDOG.fired
        started = time.monotonic()
        _wait_for(lambda: time.monotonic() - started > 1.5, what="three times the store's time limit")
        assert holder.alive() and not standby.acquire()  # still held: the watchdog left its connection alone
        assert deadlines.WATCHDOG.fired == fired
    finally:
        holder.close()
        standby.close()
        engine.dispose()


def test_a_heartbeat_names_its_run(engine):
    started = begin_run(engine, "rollups", "host-a:1", 30)
    with store.reading(engine) as conn:
        row = last_run(conn, "rollups")
    assert (row["holder"], row["started_at"], row["finished_at"], row["runs"], row["interval_s"]) == (
        "host-a:1",
        started,
        None,
        0,
        30,
    )
    assert end_run(engine, "rollups", "host-a:1", started, None)
    second = begin_run(engine, "rollups", "host-b:2", 30)
    assert not end_run(engine, "rollups", "host-a:1", started, "late")  # another run began: not this one's row
    assert end_run(engine, "rollups", "host-b:2", second, "OperationalError: gone")
    with store.reading(engine) as conn:
        row = last_run(conn, "rollups")
    assert (row["holder"], row["runs"], row["failures"], row["error"]) == ("host-b:2", 2, 1, "OperationalError: gone")
    assert row["finished_at"] >= row["started_at"] == second and row["duration_ms"] >= 0


def test_two_runners_of_one_job_never_run_it_at_once(engine):
    """Two processes' runners (two holders, each with its own election) racing for a slow job: the runs never overlap."""
    spans: list[tuple[float, float]] = []
    running, most = [0], [0]
    guard = threading.Lock()

    def slow_run() -> None:
        with guard:
            running[0] += 1
            most[0] = max(most[0], running[0])
        began = time.monotonic()
        time.sleep(0.15)
        with guard:
            running[0] -= 1
            spans.append((began, time.monotonic()))

    job = Job("escalation", 0.02, slow_run)
    runners = [JobRunner(engine, job, holder=f"host-{n}:{n}") for n in (1, 2)]
    for runner in runners:
        runner.start()
    try:
        _wait_for(lambda: len(spans) >= 8, 60, "eight runs")
    finally:
        for runner in runners:
            runner.stop()
    done = sorted(spans)
    assert most[0] == 1
    assert all(later[0] >= earlier[1] for earlier, later in zip(done, done[1:], strict=False)), done
    with store.reading(engine) as conn:
        row = last_run(conn, "escalation")
    assert row["runs"] == sum(r.runs for r in runners) == len(done)


def test_a_job_that_ran_recently_is_not_run_again_by_another_process(engine):
    calls = []
    job = Job("warnings", 60, lambda: calls.append(1))
    begin_run(engine, "warnings", "elsewhere:9", 60)  # another worker started a pass a moment ago
    runner = JobRunner(engine, job, holder="here:1")
    try:
        assert not runner.tick() and calls == []
        with engine.begin() as conn:  # ... a minute ago: our turn
            conn.execute(update(schema.job_runs).values(started_at=utc_now() - timedelta(seconds=61)))
        assert runner.tick() and calls == [1]
    finally:
        runner.lock.close()


def test_a_failing_run_is_recorded_and_the_runner_carries_on(engine):
    def broken():
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))

    runner = JobRunner(engine, Job("rollups", 60, broken), holder="here:1")
    try:
        assert runner.tick() and runner.tick() is False  # the second turn: ran a moment ago
    finally:
        runner.lock.close()
    with store.reading(engine) as conn:
        row = last_run(conn, "rollups")
    assert (row["runs"], row["failures"]) == (1, 1)
    assert row["error"].startswith("OperationalError: ") and "server closed" in row["error"]


def test_a_held_job_keeps_its_election_until_it_stops_and_a_standby_takes_over(engine):
    runs = {"a": 0, "b": 0}
    stopped = []

    def job_for(name):
        return Job(
            "simulator", 0.02, lambda: runs.__setitem__(name, runs[name] + 1), hold=True, stop=lambda: stopped.append(name)
        )

    first = start_jobs(engine, [job_for("a")], holder="a:1")
    _wait_for(lambda: runs["a"] >= 3, what="the first holder running")
    second = start_jobs(engine, [job_for("b")], holder="b:2")
    try:
        seen = runs["a"]
        _wait_for(lambda: runs["a"] >= seen + 5, what="more runs of the holder while the standby tries its turns")
        assert runs["b"] == 0
        first.stop()
        assert stopped == ["a"]
        _wait_for(lambda: runs["b"] >= 3, what="the standby taking over")
    finally:
        second.stop()
    with store.reading(engine) as conn:
        assert last_run(conn, "simulator")["holder"] == "b:2"
