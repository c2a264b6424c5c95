"""Running periodic jobs: a thread per job that wins the job's election, writes its heartbeat and runs it, until stopped.

A job that ran less than SKIP_SHARE of its interval ago (by any process) is not run again: that
check reads the heartbeat while holding the election, so two workers take turns instead of both
running. A job that keeps state of its own in the process (the simulator's city, the webhook
lanes) holds its election between runs (`hold`): the other workers stand by and take over when
its holder stops or dies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data import deadlines, store
from data.errors import CityBrainError
from data.jobs.election import JobLock, job_lock
from data.jobs.heartbeat import begin_run, end_run, last_run, this_holder
from data.times import utc_now

log = logging.getLogger(__name__)

SKIP_SHARE = 0.8


@dataclass
class Job:
    """A periodic job: its name (its election and heartbeat), seconds between runs, and one run.

    `run()` returns a line worth logging at INFO (None when the run found nothing to do)."""

    name: str
    interval: float
    run: Callable[[], str | None]
    hold: bool = False  # keep the election between runs (state of its own in this process)
    first_delay: float = 0.0
    time_limit: float = 300.0  # seconds a run may hold a store connection (data/deadlines.py)
    stop: Callable[[], None] | None = None  # called once when the runner stops: finish what is in flight


def _error_text(exc: BaseException) -> str:
    first = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {first}"


class JobRunner(threading.Thread):
    """Runs one job every `interval` seconds while this process wins its election."""

    def __init__(self, engine: Engine, job: Job, holder: str | None = None, lock: JobLock | None = None):
        super().__init__(name=f"citybrain-job-{job.name}", daemon=True)
        self.engine, self.job = engine, job
        self.holder = holder or this_holder()
        self.lock = lock or job_lock(engine, job.name)
        self.stopping = threading.Event()
        self.runs = 0
        self.last_error: str | None = None

    def run(self) -> None:
        delay = self.job.first_delay
        try:
            while not self.stopping.wait(delay):
                delay = self.job.interval
                self.tick()
        finally:
            if self.job.stop is not None:
                self.job.stop()
            self.lock.close()

    def tick(self) -> bool:
        """One turn: win the election, run the job unless another process just did; whether it ran."""
        try:
            if not self.lock.acquire():
                self.lock.close()  # a standby keeps no connection between its tries
                return False
            try:
                if not self.job.hold and self._ran_recently():
                    return False
                self._run_once()
                return True
            finally:
                if not self.job.hold:  # its connection too: a web process's pool is not kept short between runs
                    self.lock.close()
        except (SQLAlchemyError, CityBrainError, OSError) as exc:  # the store or the lock file is not there right now
            log.warning("job %s: turn skipped: %s", self.job.name, _error_text(exc))
        return False

    def _ran_recently(self) -> bool:
        with store.reading(self.engine) as conn:
            row = last_run(conn, self.job.name)
        return row is not None and utc_now() - row["started_at"] < timedelta(seconds=SKIP_SHARE * self.job.interval)

    def _run_once(self) -> None:
        job = self.job
        started = begin_run(self.engine, job.name, self.holder, job.interval)
        clock = time.perf_counter()
        summary = error = None
        try:
            with deadlines.time_limit(job.time_limit):
                summary = job.run()
        except (SQLAlchemyError, CityBrainError) as exc:  # a busy or unreachable store: the next run tries again
            error = _error_text(exc)
            log.warning("job %s failed: %s", job.name, error)
        except Exception as exc:  # a bug in one job must never take the worker down: logged with its traceback
            error = _error_text(exc)
            log.exception("job %s failed", job.name)
        finished = utc_now()
        self.runs, self.last_error = self.runs + 1, error
        if not end_run(self.engine, job.name, self.holder, started, error):
            log.error("job %s: another process started it while this run went on (its election was lost)", job.name)
        # Each run's span, so a log shows (and a test can check) that runs of a job never overlap.
        log.debug(
            "job %s ran %s to %s by %s (%.0f ms)",
            job.name,
            started.isoformat(),
            finished.isoformat(),
            self.holder,
            (time.perf_counter() - clock) * 1000,
        )
        if summary:
            log.info("%s: %s", job.name, summary)

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


class Background:
    """The job runners of one process; `stop()` ends them all."""

    def __init__(self, runners: list[JobRunner]):
        self.runners = runners

    @property
    def jobs(self) -> list[str]:
        return [r.job.name for r in self.runners]

    def runner(self, name: str) -> JobRunner:
        return next(r for r in self.runners if r.job.name == name)

    def stop(self, timeout: float = 15.0) -> None:
        for runner in self.runners:  # all told first, so they wind down side by side
            runner.stopping.set()
        deadline = time.monotonic() + timeout
        for runner in self.runners:
            runner.join(max(0.0, deadline - time.monotonic()))


def start_jobs(engine: Engine, jobs: list[Job], holder: str | None = None) -> Background:
    """A runner thread for each job, started."""
    runners = [JobRunner(engine, job, holder) for job in jobs]
    for runner in runners:
        runner.start()
    return Background(runners)


__all__ = ["SKIP_SHARE", "Background", "Job", "JobRunner", "start_jobs"]
