"""The figures /metrics reads from the store when scraped: background jobs' last runs (job_runs), the webhook outbox, the feed head.

They are the same whichever process answers the scrape, so they are read, not counted, and never
summed over workers. The read is bounded like the health checks (dashboard/health.py): a store
that does not answer in time gives `citybrain_store_up 0` and nothing else, never a hung scrape.
"""

from __future__ import annotations

import logging
from datetime import UTC

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from sqlalchemy import select

from dashboard.health import bounded
from data import schema, store
from data.incidents.webhooks import outbox_counts

log = logging.getLogger(__name__)


def read_store_figures(engine) -> dict:
    """Job heartbeats, outbox rows by status and the feed head, in one short read."""
    with store.reading(engine) as conn:
        jobs = [dict(r._mapping) for r in conn.execute(select(schema.job_runs))]
        return {"jobs": jobs, "outbox": outbox_counts(conn), "feed_head": store.feed_head(conn)}


def _epoch(moment) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


class StoreFigures:
    """A prometheus_client collector of read_store_figures, for one scrape's registry."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        up = GaugeMetricFamily("citybrain_store_up", "Whether the store answered this scrape in time (1) or not (0).")
        try:
            figures = bounded(read_store_figures, self.engine)
        except Exception as exc:  # any failure to read is "store down" to the scraper, said quickly
            log.warning("metrics: the store did not answer: %s", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = GaugeMetricFamily("citybrain_feed_head", "The newest change-feed event id in the store.")
        head.add_metric([], figures["feed_head"])
        yield head
        yield from _job_families(figures["jobs"])
        outbox = GaugeMetricFamily(
            "citybrain_webhook_outbox",
            "Webhook outbox rows by status: pending is the depth still to post, failed the rows given up on.",
            labels=["status"],
        )
        for status, count in sorted(figures["outbox"].items()):
            outbox.add_metric([status], count)
        yield outbox


def _job_families(jobs: list[dict]):
    started = GaugeMetricFamily(
        "citybrain_job_last_started_timestamp_seconds", "When each background job last began a run (Unix time).", labels=["job"]
    )
    duration = GaugeMetricFamily(
        "citybrain_job_last_duration_seconds", "How long each background job's last finished run took.", labels=["job"]
    )
    failed = GaugeMetricFamily(
        "citybrain_job_last_failed", "Whether each background job's last run ended in an error (1) or not (0).", labels=["job"]
    )
    interval = GaugeMetricFamily("citybrain_job_interval_seconds", "How often each background job should run.", labels=["job"])
    runs = CounterMetricFamily("citybrain_job_runs", "Runs of each background job.", labels=["job"])
    failures = CounterMetricFamily("citybrain_job_failures", "Runs of each background job that failed.", labels=["job"])
    for job in jobs:
        name = [job["job"]]
        started.add_metric(name, _epoch(job["started_at"]))
        if job.get("duration_ms") is not None:
            duration.add_metric(name, job["duration_ms"] / 1000)
        failed.add_metric(name, 1 if job.get("error") else 0)
        interval.add_metric(name, job["interval_s"])
        runs.add_metric(name, job.get("runs") or 0)
        failures.add_metric(name, job.get("failures") or 0)
    yield from (started, duration, failed, interval, runs, failures)
