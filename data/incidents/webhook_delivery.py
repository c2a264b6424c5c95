"""Posting the webhook outbox: each row claimed alone so no two workers post it, departments side by side.

A row is claimed in a short transaction (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers pass over each other's rows instead of waiting; SQLite's BEGIN IMMEDIATE serialises
claimers) by moving its next_attempt_at CLAIM_LEASE ahead. One row is claimed at a time, so the
lease only has to outlast one post: POST_TIMEOUT_SECONDS per socket read, with room for a receiver
that answers slowly; a worker that dies mid-post leaves that one row waiting out the lease. The
attempt is logged at the time of the post, and the row's status is written only while the claim is
still this worker's.

The background job (data/jobs/catalogue.py) runs a DeliveryLanes: a lane per department with due
rows, LANES at a time, each posting its department's rows one after another, so a slow receiver
holds up only its own department.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import SQLAlchemyError

from data import schema, store
from data.incidents.webhooks import (
    DELIVERED,
    DELIVERY_HEADER,
    EVENT_HEADER,
    FAILED,
    MAX_ATTEMPTS,
    PENDING,
    SIGNATURE_HEADER,
    USER_AGENT,
    Poster,
    backoff,
    http_post,
    sign,
)
from data.times import to_utc, utc_now

log = logging.getLogger(__name__)

D, A = schema.webhook_deliveries, schema.webhook_attempts

POST_TIMEOUT_SECONDS = 5.0
# Covers one post (each of its socket reads may take POST_TIMEOUT_SECONDS) many times over.
CLAIM_LEASE = timedelta(minutes=2)
LANES = 8
MAX_ERROR_CHARS = 500


def claim_next(engine: Engine, now: datetime, department_id: int | None = None) -> dict | None:
    """The oldest due row (of one department, when given), claimed for CLAIM_LEASE; None when none is due and free."""
    with engine.begin() as conn:
        due = select(D.c.id).where(D.c.status == PENDING, D.c.next_attempt_at <= now)
        if department_id is not None:
            due = due.where(D.c.department_id == department_id)
        due = due.order_by(D.c.next_attempt_at, D.c.id).limit(1)
        if conn.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        row_id = conn.execute(due).scalar()
        if row_id is None:
            return None
        lease_until = now + CLAIM_LEASE
        won = conn.execute(
            update(D)
            .where(D.c.id == row_id, D.c.status == PENDING, D.c.next_attempt_at <= now)
            .values(next_attempt_at=lease_until)
        ).rowcount
        if not won:
            return None
        d = schema.departments
        row = conn.execute(
            select(D.c.id, D.c.department_id, D.c.kind, D.c.url, D.c.body, D.c.attempts, d.c.webhook_secret)
            .join_from(D, d, D.c.department_id == d.c.id)
            .where(D.c.id == row_id)
        ).one()
        return {**row._mapping, "lease_until": lease_until}


def due_departments(engine: Engine, now: datetime) -> list[int]:
    """Departments with a row due at `now`."""
    with store.reading(engine) as conn:
        rows = conn.execute(select(D.c.department_id).where(D.c.status == PENDING, D.c.next_attempt_at <= now).distinct())
        return sorted(r[0] for r in rows)


def attempt(
    engine: Engine, delivery: dict, timeout: float = POST_TIMEOUT_SECONDS, post: Poster = http_post, at: datetime | None = None
) -> bool:
    """Post one claimed row and record the attempt (at `at`, or the moment of the post); whether it was delivered."""
    body = delivery["body"].encode()
    number = delivery["attempts"] + 1
    at = to_utc(at, "at") if at is not None else utc_now()
    status_code, error = None, None
    started = time.monotonic()
    if not delivery["webhook_secret"]:
        error = "the department has no webhook secret: set one with set_webhook before webhooks can be signed"
    else:
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(delivery["webhook_secret"], body),
            DELIVERY_HEADER: str(delivery["id"]),
            EVENT_HEADER: delivery["kind"],
        }
        try:
            status_code = post(delivery["url"], body, headers, timeout)
        except (OSError, ValueError) as exc:  # refused, timed out, unreachable, malformed URL
            error = f"{type(exc).__name__}: {exc}"
    duration_ms = int((time.monotonic() - started) * 1000)
    delivered = status_code is not None and 200 <= status_code < 300
    if not delivered and error is None:
        error = f"HTTP {status_code}"
    _record(engine, delivery, number, at, status_code, None if delivered else error[:MAX_ERROR_CHARS], duration_ms)
    if not delivered:
        log.info("webhook %s attempt %d failed: %s", delivery["id"], number, error)
    return delivered


def _record(engine, delivery, number, at, status_code, error, duration_ms) -> None:
    delivered = error is None
    with engine.begin() as conn:
        conn.execute(
            A.insert().values(
                delivery_id=delivery["id"], attempt=number, at=at, status_code=status_code, error=error, duration_ms=duration_ms
            )
        )
        values: dict[str, Any] = {"attempts": number}
        if delivered:
            values.update(status=DELIVERED, delivered_at=at, next_attempt_at=None, last_error=None)
        elif number >= MAX_ATTEMPTS:
            values.update(status=FAILED, next_attempt_at=None, last_error=error)
        else:
            values.update(next_attempt_at=at + backoff(number), last_error=error)
        still_ours = conn.execute(
            update(D)
            .where(D.c.id == delivery["id"], D.c.status == PENDING, D.c.next_attempt_at == delivery["lease_until"])
            .values(**values)
        ).rowcount
    if not still_ours:
        log.warning("webhook %s: its claim ran out while it was posted; only the attempt is logged", delivery["id"])


def deliver_due(
    engine: Engine,
    *,
    now: datetime | None = None,
    limit: int = 20,
    timeout: float = POST_TIMEOUT_SECONDS,
    post: Poster = http_post,
) -> int:
    """Post the webhooks due at `now` one after another (up to `limit`), recording each attempt; how many were attempted.

    With `now` given (tests, commands), every claim and attempt is at that time."""
    at = to_utc(now, "now") if now is not None else None
    attempted = 0
    while attempted < limit:
        delivery = claim_next(engine, at or utc_now())
        if delivery is None:
            break
        attempt(engine, delivery, timeout, post, at)
        attempted += 1
    return attempted


class DeliveryLanes:
    """The webhook job of one process: each run starts a lane for every department with due rows and none running."""

    def __init__(self, engine: Engine, lanes: int = LANES, timeout: float = POST_TIMEOUT_SECONDS, post: Poster = http_post):
        self.engine, self.timeout, self.post = engine, timeout, post
        self._pool = ThreadPoolExecutor(lanes, thread_name_prefix="citybrain-webhook-lane")
        self._busy: set[int] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._counts = {"delivered": 0, "failed": 0}

    def run(self) -> str | None:
        """Start lanes for the departments that have due rows; what the lanes did since the last run."""
        for department_id in due_departments(self.engine, utc_now()):
            with self._lock:
                if department_id in self._busy or self._stopping.is_set():
                    continue
                self._busy.add(department_id)
            self._pool.submit(self._drain, department_id)
        with self._lock:
            done, self._counts = self._counts, {"delivered": 0, "failed": 0}
        return f"{done['delivered']} delivered, {done['failed']} failed" if any(done.values()) else None

    def _drain(self, department_id: int) -> None:
        """Post the department's due rows one at a time until none is due (or the worker stops)."""
        try:
            while not self._stopping.is_set():
                delivery = claim_next(self.engine, utc_now(), department_id)
                if delivery is None:
                    return
                outcome = "delivered" if attempt(self.engine, delivery, self.timeout, self.post) else "failed"
                with self._lock:
                    self._counts[outcome] += 1
        except SQLAlchemyError as exc:  # the store went away: the next run starts the lane again
            log.warning(
                "webhook lane of department %s paused: %s: %s", department_id, type(exc).__name__, str(exc).splitlines()[0]
            )
        except Exception:
            log.exception("webhook lane of department %s failed", department_id)
        finally:
            with self._lock:
                self._busy.discard(department_id)

    def busy(self) -> set[int]:
        with self._lock:
            return set(self._busy)

    def stop(self) -> None:
        """Claim nothing more; wait for the posts in flight (each bounded by the post time-out) to be recorded."""
        self._stopping.set()
        self._pool.shutdown(wait=True, cancel_futures=True)


__all__ = [
    "CLAIM_LEASE",
    "LANES",
    "POST_TIMEOUT_SECONDS",
    "DeliveryLanes",
    "attempt",
    "claim_next",
    "deliver_due",
    "due_departments",
]
