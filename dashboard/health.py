"""Health and readiness (/healthz, /readyz) and the one answer to a store that cannot be reached: 503, retry, never a sign-out.

Both checks read the store in a thread of their own and wait at most CHECK_SECONDS, so a stalled
database (connections accepted, no answers) makes them say so within two seconds instead of
hanging the load balancer's probe.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime

from flask import Flask, jsonify, request
from sqlalchemy import exc as sa_exc
from sqlalchemy import select

from dashboard.observability.request_id import current_request_id
from data import schema, store
from data.errors import StoreUnavailable

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.5
RETRY_AFTER_SECONDS = 5
# A failed or slow read of the store (not a bug in a query): answered 503 and retried by the client.
UNREACHABLE = (StoreUnavailable, sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, TimeoutError)

_checks = ThreadPoolExecutor(4, thread_name_prefix="citybrain-health")


def bounded(fn, *args, seconds: float = CHECK_SECONDS):
    """fn(*args) run in the health threads; TimeoutError when it has not answered within `seconds`."""
    try:
        return _checks.submit(fn, *args).result(timeout=seconds)
    except FutureTimeout as exc:
        raise TimeoutError(f"no answer within {seconds:g} s") from exc


def _counts(engine) -> tuple[dict, int]:
    with store.reading(engine) as conn:
        return store.counts(conn), store.feed_head(conn)


def _store_state(engine) -> dict:
    """Whether the store answers, how its schema stands against this release's migrations, and each job's heartbeat."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(store.alembic_config(engine))
    with store.reading(engine) as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
        jobs = [dict(r._mapping) for r in conn.execute(select(schema.job_runs))]
    return {"migrations": migration_state(script, current), "jobs": jobs}


def migration_state(script, current: set[str]) -> str:
    """ "current"; "behind" (this release needs migrations the store lacks); or "ahead": a newer release has migrated
    the store, as the first step of a rolling upgrade (docs/deploy.md), and this one keeps serving until replaced."""
    from alembic.util import CommandError

    if current == set(script.get_heads()):
        return "current"
    for revision in current:
        try:
            script.get_revision(revision)
        except CommandError:  # a revision this release has never heard of: written by a newer one
            return "ahead"
    return "behind"


def job_health(jobs: list[dict], now: datetime) -> dict[str, dict]:
    """Each job's last run, and whether its heartbeat is fresh (a run began within twice its interval, plus a minute)."""
    health = {}
    for job in jobs:
        started = job["started_at"] if job["started_at"].tzinfo else job["started_at"].replace(tzinfo=UTC)
        age = (now - started).total_seconds()
        health[job["job"]] = {
            "fresh": age <= 2 * job["interval_s"] + 60,
            "last_started": started.isoformat(timespec="seconds"),
            "age_s": round(age),
            "duration_ms": job["duration_ms"],
            "error": job["error"],
            "holder": job["holder"],
        }
    return health


def register_health(server: Flask, engine_of) -> None:
    """/healthz, /readyz and the 503 answer for an unreachable store; `engine_of()` gives the store's engine."""

    @server.get("/healthz")
    def healthz():
        """Liveness: the process answers; with the store's counts when the store answers in time."""
        engine = engine_of()
        try:
            counts, head = bounded(_counts, engine)
        except Exception as exc:  # any failure to read means "not healthy", said plainly and quickly
            log.warning("health check failed: %s", type(exc).__name__)
            error = f"database unreachable: {type(exc).__name__}"
            return jsonify(status="error", error=error, request_id=current_request_id()), 503
        return jsonify(status="ok", counts=counts, feed_head=head, database=engine.dialect.name)

    @server.get("/readyz")
    def readyz():
        """Readiness: the store answers and has every migration this release needs (a newer release's too, mid-upgrade);
        background jobs' heartbeats shown (stale ones make the status 'degraded', not unready: a web process still
        serves while the worker restarts)."""
        engine = engine_of()
        try:
            state = bounded(_store_state, engine)
        except Exception as exc:
            log.warning("readiness check failed: %s", type(exc).__name__)
            return jsonify(status="unready", store="unreachable", error=type(exc).__name__, request_id=current_request_id()), 503
        jobs = job_health(state["jobs"], datetime.now(UTC))
        if state["migrations"] == "behind":
            return jsonify(status="unready", store="ok", migrations="behind", jobs=jobs), 503
        status = "ok" if all(j["fresh"] for j in jobs.values()) else "degraded"
        return jsonify(status=status, store="ok", migrations=state["migrations"], jobs=jobs)

    def store_unavailable(error):
        log.warning("store unavailable for %s %s: %s", request.method, request.path, type(error).__name__)
        message = "The store is not answering; this page tries again by itself."
        if (
            request.method == "GET"
            and request.accept_mimetypes.accept_html
            and not request.path.startswith(("/_dash", "/geo/", "/live/", "/api/", "/open311/"))
        ):
            page = (
                "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>"
                "<title>CityBrain Command</title><p>" + message + "</p><p>存储暂时无法访问，页面将自动重试。</p>"
            )
            response = server.response_class(page, status=503, mimetype="text/html")
        else:
            response = jsonify(error="store_unavailable", message=message, request_id=current_request_id())
            response.status_code = 503
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    for kind in UNREACHABLE:
        server.register_error_handler(kind, store_unavailable)
