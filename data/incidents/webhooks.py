"""Signed webhooks to departments' systems: the outbox, signing, delivery with retries and back-off, the delivery log.

When a department has a webhook URL, a transition that concerns it queues a row in the webhook
outbox in the transition's own transaction (data/incidents/notify.py). The background job posts
due outbox rows (data/incidents/webhook_delivery.py):

- the body is the JSON stored in the row, byte for byte, so every retry carries the same signature;
- ``X-CityBrain-Signature: sha256=<hex>`` is HMAC-SHA256 of that body with the department's
  webhook secret; ``X-CityBrain-Delivery`` (the outbox id) lets a receiver ignore a repeat;
- a 2xx answer delivers it; anything else (or no answer) is retried with exponential back-off
  (BACKOFF_BASE, doubling, at most BACKOFF_MAX) until MAX_ATTEMPTS, then it is marked failed;
- every attempt is logged (webhook_attempts) with its status code or error and how long it took.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from urllib.parse import urlparse

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection

from data import schema
from data.errors import NotFound, ValidationError
from data.incidents.webhook_targets import PUBLIC_ONLY, WebhookTargets, check_url, post
from data.times import from_db, utc_now

log = logging.getLogger(__name__)

D, A = schema.webhook_deliveries, schema.webhook_attempts

SIGNATURE_HEADER = "X-CityBrain-Signature"
DELIVERY_HEADER = "X-CityBrain-Delivery"
EVENT_HEADER = "X-CityBrain-Event"
USER_AGENT = "CityBrain-Webhook/1"

MAX_ATTEMPTS = 8
BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_MAX = timedelta(minutes=10)

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"


# --- signatures ------------------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for `body`: 'sha256=' and the hex HMAC-SHA256 with `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """Whether `header` is the right signature of `body` (what a receiver checks), in constant time."""
    return bool(header) and hmac.compare_digest(sign(secret, body), header)


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed attempt: 2 s, 4 s, 8 s ... at most 10 minutes."""
    return min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)


# --- configuration ---------------------------------------------------------------------------------


def set_webhook(
    conn: Connection, department_id: int, url: str | None, secret: str | None = None, targets: WebhookTargets = PUBLIC_ONLY
) -> str | None:
    """Point a department's webhook at `url` (None turns it off); the signing secret, made up when not given.

    ValidationError when the URL's host is an address `targets` (CITYBRAIN_WEBHOOK_ALLOW) does not allow.
    """
    d = schema.departments
    if conn.execute(select(d.c.id).where(d.c.id == department_id)).first() is None:
        raise NotFound(f"department {department_id} does not exist")
    if url is None:
        conn.execute(update(d).where(d.c.id == department_id).values(webhook_url=None))
        return None
    parsed = urlparse(url.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValidationError(f"webhook URL must be http:// or https:// with a host; got {url!r}")
    check_url(url.strip(), targets)
    if secret is not None and len(secret) < 16:
        raise ValidationError("webhook secret must be at least 16 characters")
    secret = secret or secrets.token_hex(32)
    conn.execute(update(d).where(d.c.id == department_id).values(webhook_url=url.strip(), webhook_secret=secret))
    return secret


# --- the outbox ----------------------------------------------------------------------------------


def webhook_body(incident: dict, event_id: int, kind: str, department_code: str) -> bytes:
    """The JSON posted for an event: what a department's system needs to act, nothing personal."""

    def iso(value):
        value = from_db(value)
        return value.isoformat() if isinstance(value, datetime) else None

    payload = {
        "event": kind,
        "event_id": event_id,
        "department": department_code,
        "incident": {
            "id": incident["id"],
            "version": incident["version"],
            "state": incident["state"],
            "category_id": incident["category_id"],
            "priority": incident["priority"],
            "description": incident.get("description") or "",
            "address": incident.get("address"),
            "lon": incident.get("lon"),
            "lat": incident.get("lat"),
            "grid_id": incident.get("grid_id"),
            "reported_at": iso(incident.get("reported_at")),
            "dispatched_at": iso(incident.get("dispatched_at")),
            "ack_due_at": iso(incident.get("ack_due_at")),
            "handle_due_at": iso(incident.get("handle_due_at")),
            "media_url": incident.get("media_url"),
        },
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def enqueue_webhook(conn: Connection, department_id: int, incident: dict, event_id: int, kind: str) -> int | None:
    """Queue a webhook of `event_id` for a department with a URL; its outbox id (None: no URL, or already queued)."""
    d = schema.departments
    dept = conn.execute(select(d.c.code, d.c.webhook_url).where(d.c.id == department_id)).first()
    if dept is None or not dept.webhook_url:
        return None
    exists = conn.execute(select(D.c.id).where(D.c.event_id == event_id, D.c.department_id == department_id)).first()
    if exists is not None:
        return None
    now = utc_now()
    return conn.execute(
        D.insert()
        .values(
            department_id=department_id,
            incident_id=incident["id"],
            event_id=event_id,
            kind=kind,
            url=dept.webhook_url,
            body=webhook_body(incident, event_id, kind, dept.code).decode(),
            status=PENDING,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .returning(D.c.id)
    ).scalar_one()


def withdraw_webhook(
    conn: Connection, department_id: int, incident: dict, event_id: int, kind: str, withdrawn_event_id: int | None = None
) -> None:
    """Tell a department's system a case is no longer its own (notify_withdrawal's webhook part).

    A webhook for the withdrawn dispatch that was never tried is simply cancelled; one already
    posted (or being posted) is followed by a webhook of `kind` saying the case was withdrawn.
    """
    if withdrawn_event_id is not None:
        cancelled = conn.execute(
            update(D)
            .where(
                D.c.event_id == withdrawn_event_id,
                D.c.department_id == department_id,
                D.c.status == PENDING,
                D.c.attempts == 0,
                # Unclaimed: a worker claiming the row moves next_attempt_at away from created_at.
                D.c.next_attempt_at == D.c.created_at,
            )
            .values(status=CANCELLED, last_error="withdrawn before it was sent")
        ).rowcount
        sent_before = conn.execute(
            select(D.c.id).where(D.c.event_id == withdrawn_event_id, D.c.department_id == department_id)
        ).first()
        if cancelled or sent_before is None:
            return
    enqueue_webhook(conn, department_id, incident, event_id, kind)


# --- the delivery log ----------------------------------------------------------------------------


def _as_dict(row) -> dict:
    return {k: from_db(v) for k, v in row._mapping.items()}


def deliveries(
    conn: Connection, *, incident_id: int | None = None, department_id: int | None = None, limit: int = 50
) -> list[dict]:
    """The delivery log: outbox rows newest first, each with its attempts (oldest first) under 'attempts_log'."""
    stmt = select(
        D.c.id,
        D.c.department_id,
        D.c.incident_id,
        D.c.event_id,
        D.c.kind,
        D.c.url,
        D.c.status,
        D.c.attempts,
        D.c.next_attempt_at,
        D.c.created_at,
        D.c.delivered_at,
        D.c.last_error,
    )
    if incident_id is not None:
        stmt = stmt.where(D.c.incident_id == incident_id)
    if department_id is not None:
        stmt = stmt.where(D.c.department_id == department_id)
    rows = [_as_dict(r) for r in conn.execute(stmt.order_by(D.c.id.desc()).limit(max(1, min(limit, 500))))]
    if rows:
        log_rows = conn.execute(select(A).where(A.c.delivery_id.in_([r["id"] for r in rows])).order_by(A.c.id))
        by_delivery: dict[int, list] = {}
        for a in log_rows:
            by_delivery.setdefault(a.delivery_id, []).append(_as_dict(a))
        for r in rows:
            r["attempts_log"] = by_delivery.get(r["id"], [])
    return rows


# --- delivering ------------------------------------------------------------------------------------

Poster = Callable[[str, bytes, dict[str, str], float], int]


def http_post(url: str, body: bytes, headers: dict[str, str], timeout: float, targets: WebhookTargets = PUBLIC_ONLY) -> int:
    """POST `body` and return the status code (a redirect is not followed: a 3xx is a failed delivery); raises OSError
    when nothing answers or the host is an address `targets` does not allow (data/incidents/webhook_targets.py)."""
    return post(url, body, headers, timeout, targets)


def outbox_counts(conn: Connection) -> dict[str, int]:
    """How many outbox rows are in each status (for health and the dispatcher's screen)."""
    rows = conn.execute(select(D.c.status, func.count()).group_by(D.c.status)).all()
    return {status: 0 for status in (PENDING, DELIVERED, FAILED, CANCELLED)} | {r[0]: int(r[1]) for r in rows}


__all__ = [
    "DELIVERED",
    "DELIVERY_HEADER",
    "FAILED",
    "PENDING",
    "Poster",
    "USER_AGENT",
    "EVENT_HEADER",
    "MAX_ATTEMPTS",
    "SIGNATURE_HEADER",
    "backoff",
    "deliveries",
    "enqueue_webhook",
    "http_post",
    "outbox_counts",
    "set_webhook",
    "sign",
    "verify_signature",
    "webhook_body",
    "withdraw_webhook",
]
