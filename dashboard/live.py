"""Server-sent events from the change feed: /live/events streams data.incidents.feed.events_after, resumable.

One FeedWatcher thread per process and store polls the feed head a few times a second and
wakes every open stream when it moves, so a hundred screens cost one cheap query per poll,
not a hundred. Each stream then reads the events after the last id it sent. Every message
carries `id:` = the feed id it covers, so a browser that reconnects sends Last-Event-ID and
resumes exactly where it stopped; no change is lost and none is sent twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy.exc import SQLAlchemyError

from data import store

log = logging.getLogger(__name__)

bp = Blueprint("live", __name__, url_prefix="/live")

POLL_SECONDS = 0.05  # how often the watcher looks at the feed head (one indexed max(), ~0.5 ms)
HEARTBEAT_SECONDS = 5.0  # a quiet stream still says "alive" this often, so screens can tell live from stale
STREAM_SECONDS = 300.0  # a stream ends after this; the browser reconnects at once (bounded worker hold)
RETRY_MS = 1000  # how long the browser waits before reconnecting
MAX_EVENTS = 200  # events listed in one message; the head always says how far the feed went
PAGE = 1000  # events read from the store at a time


# --- the wire format ---------------------------------------------------------------------------


def sse_message(data: dict, event_id: int | None = None) -> bytes:
    """One server-sent event: an `id:` line (for resume) and one `data:` line of JSON."""
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def sse_retry(milliseconds: int = RETRY_MS) -> bytes:
    """The reconnection delay the browser should use."""
    return f"retry: {milliseconds}\n\n".encode()


def _brief(event) -> dict:
    """What a screen needs to know about one change (never the whole incident)."""
    row = event if isinstance(event, dict) else event._mapping
    at = row.get("at")
    return {
        "id": int(row["id"]),
        "incident_id": int(row["incident_id"]),
        "action": row.get("action"),
        "to_state": row.get("to_state"),
        "at": at.isoformat() if hasattr(at, "isoformat") else at,
    }


def changes_message(events: list, head: int, count: int | None = None) -> bytes:
    """A 'changes' message covering the feed up to `head`: `count` events, the newest of them listed."""
    return sse_message(
        {
            "type": "changes",
            "head": head,
            "count": len(events) if count is None else count,
            "events": [_brief(e) for e in events[-MAX_EVENTS:]],
        },
        event_id=head,
    )


def heartbeat_message(head: int, ok: bool = True, build: str = "") -> bytes:
    """A 'heartbeat': nothing changed, the stream is alive, the store was (un)reachable, the server's build."""
    return sse_message(
        {"type": "heartbeat", "head": head, "ok": ok, "build": build, "at": datetime.now(UTC).isoformat(timespec="seconds")},
        event_id=head,
    )


def build_id(app) -> str:
    """A short fingerprint of the app's callbacks and assets: an open page built against another one
    (the server was upgraded while the wall stayed open) reloads itself instead of failing quietly."""
    digest = hashlib.sha1("\n".join(sorted(app.callback_map)).encode())
    assets = Path(app.config.assets_folder)
    # Contents, not modification times: every worker and every host running the same code agrees.
    for path in sorted(p for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else []:
        digest.update(str(path.relative_to(assets)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


# --- the watcher ---------------------------------------------------------------------------------


class FeedWatcher:
    """Polls the feed head of one store while anybody listens; wakes the listeners when it moves."""

    def __init__(self, engine, poll_seconds: float = POLL_SECONDS):
        self.engine = engine
        self.poll_seconds = poll_seconds
        self.head: int | None = None
        self.ok = True
        self.listeners = 0
        self.condition = threading.Condition()
        self.thread: threading.Thread | None = None

    def subscribe(self) -> None:
        with self.condition:
            self.listeners += 1
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="citybrain-feed-watcher", daemon=True)
                self.thread.start()

    def unsubscribe(self) -> None:
        with self.condition:
            self.listeners -= 1

    def wait_for_change(self, known_head: int, timeout: float) -> tuple[int | None, bool]:
        """(head, ok) once the head differs from `known_head`, or after `timeout` seconds."""
        with self.condition:
            self.condition.wait_for(lambda: self.head is not None and self.head != known_head, timeout)
            return self.head, self.ok

    def _run(self) -> None:
        while True:
            with self.condition:
                if self.listeners <= 0:
                    self.thread = None
                    return
            try:
                with store.reading(self.engine) as conn:
                    head, ok = store.feed_head(conn), True
            except SQLAlchemyError as exc:
                # The store went away (restart, network): keep the last head, say so in heartbeats.
                log.warning("change feed unreachable: %s", exc.__class__.__name__)
                head, ok = self.head, False
            with self.condition:
                if head != self.head or ok != self.ok:
                    self.head, self.ok = head, ok
                    self.condition.notify_all()
            time.sleep(self.poll_seconds)


_watchers: dict[str, FeedWatcher] = {}
_watchers_lock = threading.Lock()


def watcher_for(engine) -> FeedWatcher:
    """The process's FeedWatcher of `engine`'s store."""
    key = engine.url.render_as_string(hide_password=True)
    with _watchers_lock:
        if key not in _watchers or _watchers[key].engine is not engine:
            _watchers[key] = FeedWatcher(engine)
        return _watchers[key]


# --- the stream ----------------------------------------------------------------------------------


def read_events(engine, after_id: int) -> list:
    """The change feed after `after_id`, oldest first (data.incidents.feed.events_after)."""
    from data.incidents.feed import events_after

    with store.reading(engine) as conn:
        return list(events_after(conn, after_id, limit=PAGE))


def catch_up(engine, after_id: int) -> tuple[int, list, int]:
    """(how many events, the newest MAX_EVENTS of them, the last id) after `after_id`, read in pages.

    A screen that was away for an hour gets one message saying "this much changed", not a
    thousand messages each asking it to refresh.
    """
    count, tail, last = 0, [], after_id
    while True:
        events = read_events(engine, last)
        count += len(events)
        tail = (tail + events)[-MAX_EVENTS:]
        last = max([last, *(int(_brief(e)["id"]) for e in events)])
        if len(events) < PAGE:
            return count, tail, last


def current_head(engine) -> int:
    with store.reading(engine) as conn:
        return store.feed_head(conn)


def event_stream(
    engine, after_id: int, watcher: FeedWatcher, stream_seconds: float = STREAM_SECONDS, build: str = ""
) -> Iterator[bytes]:
    """Messages from `after_id` on: first whatever the client missed, then each change as it lands."""
    watcher.subscribe()
    try:
        yield sse_retry()
        last = after_id
        head = current_head(engine)
        if last > head:
            # The client saw a feed this store does not have (the store was rebuilt): start over.
            yield sse_message({"type": "reset", "head": head}, event_id=head)
            last = head
        deadline = time.monotonic() + stream_seconds
        last_sent = 0.0
        while True:
            if head > last:
                count, tail, last = catch_up(engine, last)
                if count:
                    yield changes_message(tail, last, count)
                    last_sent = time.monotonic()
            now = time.monotonic()
            if now >= deadline:
                return
            if now - last_sent >= HEARTBEAT_SECONDS:
                yield heartbeat_message(last, watcher.ok, build)
                last_sent = now
            wait = min(HEARTBEAT_SECONDS - (time.monotonic() - last_sent), deadline - time.monotonic())
            # Wait on the head seen so far (not `last`): a head whose events are not readable yet
            # must not spin this loop; they are read on the next change or heartbeat.
            new_head, _ok = watcher.wait_for_change(head, max(wait, 0.0))
            head = new_head if new_head is not None else head
    finally:
        watcher.unsubscribe()


def resume_point(engine) -> int:
    """Where a stream starts: Last-Event-ID (a reconnect), else ?after= (the page's head), else now."""
    for raw in (request.headers.get("Last-Event-ID"), request.args.get("after")):
        if raw is not None and raw.strip().isdigit():
            return int(raw)
    return current_head(engine)


@bp.get("/events")
def events():
    """The change feed as server-sent events (text/event-stream)."""
    from dashboard import access, auth, jurisdiction

    engine = current_app.extensions["citybrain"].engine
    after = resume_point(engine)
    stream_seconds = float(current_app.config.get("CITYBRAIN_SSE_STREAM_SECONDS", STREAM_SECONDS))
    build = current_app.config.get("CITYBRAIN_BUILD", "")
    stream = event_stream(engine, after, watcher_for(engine), stream_seconds, build)
    if jurisdiction.restricted():  # which incidents changed may be outside the user's jurisdiction
        stream = jurisdiction.redact_stream(stream)
    # A stream outlives its request: it ends when the session does (kiosk revoked, user deactivated).
    stream = auth.end_with_session(stream, engine, access.current().get_id())
    response = Response(stream, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


@bp.get("/head")
def head():
    """The feed head, for the polling fallback when server push is blocked on the way."""
    engine = current_app.extensions["citybrain"].engine
    build = current_app.config.get("CITYBRAIN_BUILD", "")
    return jsonify(head=current_head(engine), build=build, at=datetime.now(UTC).isoformat(timespec="seconds"))
