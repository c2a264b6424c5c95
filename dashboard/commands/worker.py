"""`python app.py worker`: the periodic jobs in one process (web processes then run with CITYBRAIN_BACKGROUND=off)."""

from __future__ import annotations

import logging
import os
import signal
import threading

import click
from sqlalchemy import Engine

from dashboard.settings import Settings
from data import store
from data.jobs.catalogue import standard_jobs
from data.jobs.runner import Background, start_jobs

log = logging.getLogger(__name__)


def start_background(engine: Engine, settings: Settings, simulate: bool = False) -> Background:
    """Start every configured job in threads of this process: the worker's, or the embedded server's."""
    from data.incidents.webhook_targets import WebhookTargets, poster

    jobs = standard_jobs(
        engine,
        timezone=settings.timezone,
        warnings_every=settings.warnings_interval,
        rollups_every=settings.rollup_refresh_seconds,
        escalate_every=settings.auto_escalate_seconds,
        webhook_post=poster(WebhookTargets.parse(settings.webhook_allow)),
        simulate=simulate,
    )
    background = start_jobs(engine, jobs)
    log.info("background jobs: %s", ", ".join(f"{j.name} every {j.interval:g} s" for j in jobs))
    return background


def _simulate_asked(flag: bool | None, settings: Settings) -> bool:
    # CITYBRAIN_LIVE is on by default for the embedded demo; a worker simulates only when told to,
    # so a worker started beside a real city never reports made-up incidents.
    if flag is not None:
        return flag
    return "CITYBRAIN_LIVE" in os.environ and settings.live


@click.command("worker")
@click.option(
    "--simulate/--no-simulate",
    default=None,
    help="Run the demo's live simulator too (default: only when CITYBRAIN_LIVE is set to true in the environment).",
)
@click.option("--verbose", is_flag=True, help="Log every run of every job, not only the runs that did something.")
def worker(simulate: bool | None, verbose: bool) -> None:
    """Run the periodic jobs (early warning, roll-up, escalation, webhooks, simulator) until SIGTERM or Ctrl-C.

    Several workers may run at once: each job runs in one of them at a time (elected on PostgreSQL)."""
    if verbose:
        logging.getLogger("data.jobs").setLevel(logging.DEBUG)
    settings = Settings.from_env()
    engine = store.make_engine(settings.database_url)
    store.migrate(engine)
    stopping = threading.Event()

    def stop(signum, _frame) -> None:
        log.info("worker: %s received, stopping", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    background = start_background(engine, settings, simulate=_simulate_asked(simulate, settings))
    log.info("worker %s started", os.getpid())
    while not stopping.wait(1.0):
        pass
    # Each job finishes the run it is in (a webhook post in flight is recorded) and gives up its election.
    background.stop()
    engine.dispose()
    log.info("worker stopped")


COMMANDS = [worker]
