"""Which process runs a job now: a PostgreSQL advisory lock per job, a file lock beside a SQLite file.

PostgreSQL: the lock is session-level, on a connection kept for the job alone, taken with
pg_try_advisory_lock (never waits) and keyed by the job and the schema, so tests and several
cities on one server never meet. Holding it costs no transaction: the job's own transactions run
on other connections. The lock ends with its session, so a worker that dies frees its jobs at once.
The lock's statements are bounded (a stalled server cannot hang the election); holding it is not.

SQLite is one machine: an exclusive, non-blocking flock on `<database file>.job-<name>.lock`
elects one process (and one thread) at a time; an in-memory database has a lock per process.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from data import deadlines

log = logging.getLogger(__name__)

# Advisory lock keys used elsewhere: 727001 migrations, 727002 the change feed, 727003 the warning pass's
# write, 727004 the roll-up's write. A job's election is held while its run takes those, so it needs its own.
ELECTION_KEYS = {"warnings": 727011, "rollups": 727012, "escalation": 727013, "webhooks": 727014, "simulator": 727015}
# How long one election statement may take before its connection is broken (the server has stalled).
STATEMENT_SECONDS = 5.0


def election_key(job: str) -> int:
    """The advisory lock key of `job`'s election; KeyError for a job with no key (each job needs a distinct one)."""
    return ELECTION_KEYS[job]


class JobLock:
    """The right to run one job: `acquire()` without waiting (True when won), `release()`, `held` meanwhile."""

    def __init__(self, engine: Engine, job: str):
        self.engine, self.job = engine, job
        self.held = False

    def acquire(self) -> bool:
        raise NotImplementedError

    def release(self) -> None:
        raise NotImplementedError

    def alive(self) -> bool:
        """Whether a lock won earlier is still held (a PostgreSQL session can be lost under a held lock)."""
        return self.held

    def close(self) -> None:
        """Release it for good (the worker is stopping)."""
        self.release()


class AdvisoryLock(JobLock):
    """pg_try_advisory_lock(key, hashtext(current_schema())) on a connection of the job's own."""

    def __init__(self, engine: Engine, job: str):
        super().__init__(engine, job)
        self.key = election_key(job)
        self._conn: Connection | None = None

    def _bounded(self, sql: str):
        """Run one election statement on the lock's connection, its socket broken if the server does not answer."""
        raw = self._conn.connection.dbapi_connection
        token = deadlines.WATCHDOG.arm(raw, STATEMENT_SECONDS, f"election of job {self.job}")
        try:
            value = self._conn.execute(text(sql), {"k": self.key}).scalar()
            self._conn.commit()  # no transaction is left open on the lock's session
            return value
        finally:
            deadlines.WATCHDOG.disarm(token)

    def acquire(self) -> bool:
        if self.held:
            return self.alive()
        try:
            if self._conn is None:
                # Checked out under a deadline (its ping too), then held for as long as the job runs: from then
                # on only each statement is bounded (above).
                with deadlines.time_limit(STATEMENT_SECONDS):
                    self._conn = self.engine.connect()
                deadlines.lift(self._conn)
            self.held = bool(self._bounded("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))"))
        except SQLAlchemyError as exc:
            log.warning("job %s: election failed: %s", self.job, type(exc).__name__)
            self._drop()
        return self.held

    def alive(self) -> bool:
        if not self.held:
            return False
        try:
            self._bounded("SELECT 1")  # a lost session has lost its lock: another worker may hold it now
            return True
        except SQLAlchemyError as exc:
            log.warning("job %s: the election's connection was lost (%s): standing down", self.job, type(exc).__name__)
            self._drop()
            return False

    def release(self) -> None:
        if not self.held:
            return
        try:
            self._bounded("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))")
            self.held = False
        except SQLAlchemyError as exc:
            log.warning("job %s: could not release its election (%s): closing its connection", self.job, type(exc).__name__)
            self._drop()

    def close(self) -> None:
        """Release and give the connection back (the worker is stopping)."""
        self.release()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _drop(self) -> None:
        # The session (and any lock in it) is gone or unusable: discard the connection, never pool it again.
        self.held = False
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                pass
            self._conn = None


class FileLock(JobLock):
    """flock(LOCK_EX | LOCK_NB) on a file beside the SQLite database: one holder per machine."""

    def __init__(self, engine: Engine, job: str, path: Path):
        super().__init__(engine, job)
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self.held:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd, self.held = fd, True
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its flock
        self._fd, self.held = None, False


_memory_locks: dict[tuple[int, str], threading.Lock] = {}
_memory_guard = threading.Lock()


class ProcessLock(JobLock):
    """A lock per engine and job in this process: an in-memory SQLite database lives in one process only."""

    def __init__(self, engine: Engine, job: str):
        super().__init__(engine, job)
        with _memory_guard:
            self._lock = _memory_locks.setdefault((id(engine), job), threading.Lock())

    def acquire(self) -> bool:
        if not self.held:
            self.held = self._lock.acquire(blocking=False)
        return self.held

    def release(self) -> None:
        if self.held:
            self._lock.release()
            self.held = False


def job_lock(engine: Engine, job: str) -> JobLock:
    """The election of `job` on this store."""
    if engine.dialect.name == "postgresql":
        return AdvisoryLock(engine, job)
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file::memory"):
        election_key(job)  # the same jobs as on PostgreSQL
        return FileLock(engine, job, Path(f"{database}.job-{job}.lock"))
    return ProcessLock(engine, job)


__all__ = ["ELECTION_KEYS", "AdvisoryLock", "FileLock", "JobLock", "ProcessLock", "election_key", "job_lock"]
