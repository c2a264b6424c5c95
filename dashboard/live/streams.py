"""The stream loops as coroutines: a screen's /live/events and an API client's /api/v1/feed, each costing a connection, not a thread.

A stream is admitted by Flask first (routes.py: sign-in or API key, jurisdiction, where to resume),
which hands over a spec; the loop then only waits on the process's Hub and sends bytes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from dashboard.live import wire
from dashboard.live.hub import SESSION_CHECK_SECONDS, Hub

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]
STORE_ERRORS = (TimeoutError, SQLAlchemyError, OSError)


@dataclass
class LiveSpec:
    """A screen's stream, as admitted: where to resume, and who (for redaction and sign-in checks)."""

    after: int
    session_id: str
    redact: bool
    build: str
    stream_seconds: float
    still_valid: Callable[[str], bool | None]  # None: cannot tell now (the store is unreachable)


@dataclass
class FeedSpec:
    """An API client's stream: every event after `after` within the key's unit, one message each."""

    after: int
    read_page: Callable[[int], tuple[list[dict], int]]  # after -> (events as JSON-ready dicts, next after)
    page: int  # the most events read_page returns: a full page means more are waiting
    stream_seconds: float


async def live_stream(spec: LiveSpec, hub: Hub, send: Send) -> None:
    """What the screens get: whatever they missed in one message, then one message per change, heartbeats between."""
    hub.subscribe()
    try:
        await send(wire.sse_retry())
        last = spec.after
        head = await _head(hub)
        if head is not None and last > head:
            # The client saw a feed this store does not have (the store was rebuilt): start over.
            await send(wire.sse_message({"type": "reset", "head": head}, event_id=head))
            last = head
        deadline = time.monotonic() + spec.stream_seconds
        last_sent = checked = time.monotonic()
        sent_ok, sent_units = True, hub.units
        while True:
            if head is not None and head > last:
                try:
                    batch = await hub.events_since(last, head)
                except STORE_ERRORS:
                    batch = None  # told by the next heartbeat (hub.ok is False); read again on the next change
                if batch is not None:
                    if batch.count:
                        await send(batch.redacted if spec.redact else batch.message)
                        last_sent = time.monotonic()
                    last = batch.head
            now = time.monotonic()
            if now >= deadline:
                return
            # A heartbeat when due, and at once when the store's health or the units changed: the wall turns
            # stale (or live again), or fetches re-imported boundaries, within a hub probe, not a period later.
            if now - last_sent >= wire.HEARTBEAT_SECONDS or hub.ok != sent_ok or hub.units != sent_units:
                await send(wire.heartbeat_message(last, hub.ok, spec.build, hub.units))
                last_sent, sent_ok, sent_units = now, hub.ok, hub.units
            if now - checked >= SESSION_CHECK_SECONDS:
                checked = now
                if await _session_ended(hub, spec):
                    return
            wait = min(wire.HEARTBEAT_SECONDS - (now - last_sent), deadline - now, SESSION_CHECK_SECONDS)
            # Wait on the head seen so far (not `last`): a head whose events could not be read yet must
            # not spin this loop; they are read on the next change or heartbeat.
            await hub.wait(head, wait)
            head = hub.head if hub.head is not None else head
    finally:
        hub.unsubscribe()


async def _head(hub: Hub) -> int | None:
    if hub.head is None:
        await hub.refresh()
    return hub.head


async def _session_ended(hub: Hub, spec: LiveSpec) -> bool:
    """Whether the stream's sign-in ended; a store that cannot be asked ends nothing (it is not a sign-out)."""
    return await hub.session_valid(spec.session_id, spec.still_valid) is False


async def feed_stream(spec: FeedSpec, hub: Hub, send: Send) -> None:
    """What an API client gets: every event after `after` as its own message (id: = event id), then each new one."""
    hub.subscribe()
    try:
        await send(wire.sse_retry())
        last = spec.after
        deadline = time.monotonic() + spec.stream_seconds
        last_sent = time.monotonic()
        await _head(hub)
        while True:
            seen = hub.head
            try:
                events, last = await hub.read(spec.read_page, last)
            except STORE_ERRORS:
                events = []
            for event in events:
                await send(wire.sse_message(event, event_id=event["id"]))
            now = time.monotonic()
            if events:
                last_sent = now
                if len(events) >= spec.page:
                    continue  # a full page: more are waiting
            if now >= deadline:
                return
            if now - last_sent >= wire.HEARTBEAT_SECONDS:
                await send(wire.heartbeat_message(last, hub.ok))
                last_sent = now
            await hub.wait(seen, min(wire.HEARTBEAT_SECONDS - (now - last_sent), deadline - now))
    finally:
        hub.unsubscribe()


async def run_until_disconnected(stream: Awaitable[None], receive: Callable[[], Awaitable[dict]]) -> None:
    """Run a stream until it ends or the client goes away (the ASGI receive channel says http.disconnect)."""
    task = asyncio.ensure_future(stream)

    async def watch() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return

    watcher = asyncio.ensure_future(watch())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, watcher):
            if not pending.done():
                pending.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        exc = task.exception()
        if not isinstance(exc, ConnectionError | OSError):
            log.error("live stream failed", exc_info=exc)
