"""Each job's heartbeat in job_runs: written at the start and end of every run by the process that won the job's election."""

from __future__ import annotations

import os
import socket
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from data import schema
from data.times import from_db, utc_now

J = schema.job_runs
MAX_ERROR_CHARS = 500


def this_holder() -> str:
    """host:pid of this process, as job_runs records who ran a job."""
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def _upsert(conn: Connection):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert


def begin_run(engine: Engine, job: str, holder: str, interval_s: float) -> datetime:
    """Record that `holder` starts a run of `job` now; the start time, which end_run names the run by."""
    started = utc_now()
    with engine.begin() as conn:
        insert = _upsert(conn)(J).values(
            job=job, holder=holder, started_at=started, finished_at=None, runs=0, failures=0, interval_s=round(interval_s)
        )
        conn.execute(
            insert.on_conflict_do_update(
                index_elements=[J.c.job],
                set_={"holder": holder, "started_at": started, "finished_at": None, "interval_s": round(interval_s)},
            )
        )
    return started


def end_run(engine: Engine, job: str, holder: str, started: datetime, error: str | None) -> bool:
    """Record the end of the run `holder` began at `started`: its duration, its error (None: it succeeded).

    False when the row names another run by then: someone else started the job meanwhile, which an
    election that holds never lets happen (the caller logs it)."""
    finished = utc_now()
    with engine.begin() as conn:
        done = conn.execute(
            update(J)
            .where(J.c.job == job, J.c.holder == holder, J.c.started_at == started)
            .values(
                finished_at=finished,
                duration_ms=int((finished - started).total_seconds() * 1000),
                error=None if error is None else error[:MAX_ERROR_CHARS],
                runs=J.c.runs + 1,
                failures=J.c.failures + (0 if error is None else 1),
            )
        ).rowcount
    return done == 1


def last_run(conn: Connection, job: str) -> dict | None:
    """The job's heartbeat row (times aware UTC), or None before its first run."""
    row = conn.execute(select(J).where(J.c.job == job)).first()
    return None if row is None else {k: from_db(v) for k, v in row._mapping.items()}


__all__ = ["begin_run", "end_run", "last_run", "this_holder"]
