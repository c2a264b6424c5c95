"""Running the service: each background job's heartbeat (last run, how long, what failed), read by /readyz and the screens."""

from __future__ import annotations

from sqlalchemy import Column, Integer, String, Table, Text

from data.schema.base import TS, metadata

# One row per periodic job (warnings, rollups, escalation, webhooks, simulator), written by whichever
# worker process won that job's election, so every web process can say whether background work is alive.
job_runs = Table(
    "job_runs",
    metadata,
    Column("job", String(40), primary_key=True),
    Column("holder", String(120), nullable=False),  # host:pid of the process running it
    Column("started_at", TS, nullable=False),  # the last run's start
    Column("finished_at", TS),  # its end (None while it runs)
    Column("duration_ms", Integer),
    Column("error", Text),  # the last run's error, None when it succeeded
    Column("runs", Integer, nullable=False, default=0),
    Column("failures", Integer, nullable=False, default=0),
    Column("interval_s", Integer, nullable=False),  # how often it should run: a heartbeat older than twice this is stale
)
