"""The periodic jobs a worker runs: early-warning passes, the roll-up refresh, auto-escalation, webhook delivery, the simulator."""

from __future__ import annotations

import time

from sqlalchemy import Engine

from data.demo.simulator import TICK_SECONDS, Simulator
from data.incidents.escalation import escalate_overdue
from data.incidents.webhook_delivery import DeliveryLanes
from data.incidents.webhooks import Poster, http_post
from data.jobs.runner import Job
from data.metrics.rollups import refresh_store
from data.warnings.detect import run_detection, summary_line

WEBHOOK_SECONDS = 1.0
FIRST_WARNING_DELAY = 5.0  # let a starting server answer its first screens before the first pass reads everything


def warnings_job(engine: Engine, every: float, timezone: str) -> Job:
    return Job(
        "warnings",
        every,
        lambda: summary_line(run_detection(engine, tz=timezone)),
        first_delay=min(FIRST_WARNING_DELAY, every),
    )


def rollups_job(engine: Engine, every: float, timezone: str) -> Job:
    def refresh() -> str | None:
        done = refresh_store(engine, timezone)
        if done["rebuilt"]:
            return f"trends roll-up built from {done['incidents']} incidents"
        return f"trends roll-up refreshed with {done['incidents']} changed incident(s)" if done["incidents"] else None

    # A first build at a million incidents takes minutes.
    return Job("rollups", every, refresh, time_limit=1800.0)


def escalation_job(engine: Engine, every: float) -> Job:
    def sweep() -> str | None:
        done = escalate_overdue(engine)
        return f"auto-escalated {len(done)} overdue incident(s)" if done else None

    return Job("escalation", every, sweep, first_delay=every)


def webhooks_job(engine: Engine, every: float = WEBHOOK_SECONDS, **lanes_options) -> Job:
    lanes = DeliveryLanes(engine, **lanes_options)
    # Held: the lanes posting in this process are the job's state; a standby worker takes over when this one stops.
    return Job("webhooks", every, lanes.run, hold=True, stop=lanes.stop)


def simulator_job(engine: Engine, timezone: str, every: float | None = None, speed: float = 1.0) -> Job:
    simulator = Simulator(engine, timezone, speed)
    every = every or TICK_SECONDS
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        elapsed, last[0] = min(now - last[0], 3 * every), now  # after a stand-by, no burst of catching up
        simulator.tick(seconds=elapsed)

    # Held: the simulated city lives in this process; one simulator at a time.
    return Job("simulator", every, tick, hold=True, first_delay=every)


def standard_jobs(
    engine: Engine,
    *,
    timezone: str,
    warnings_every: float,
    rollups_every: float,
    escalate_every: float,
    webhook_post: Poster = http_post,
    simulate: bool = False,
) -> list[Job]:
    """The jobs configured to run (an interval of 0 or less leaves that job to its command); webhooks always,
    posted with `webhook_post` (the allow-list's poster, data/incidents/webhook_targets.py)."""
    jobs = []
    if warnings_every > 0:
        jobs.append(warnings_job(engine, warnings_every, timezone))
    if rollups_every > 0:
        jobs.append(rollups_job(engine, rollups_every, timezone))
    if escalate_every > 0:
        jobs.append(escalation_job(engine, escalate_every))
    jobs.append(webhooks_job(engine, post=webhook_post))
    if simulate:
        jobs.append(simulator_job(engine, timezone))
    return jobs


__all__ = ["escalation_job", "rollups_job", "simulator_job", "standard_jobs", "warnings_job", "webhooks_job"]
