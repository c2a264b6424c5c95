"""One watcher of the change feed per process and store, on the event loop: every open stream waits on it.

The head comes from PostgreSQL's NOTIFY (migration 0013 notifies on every statement that adds
events), so a change reaches every process at once without polling; a probe of the head every
few seconds confirms the store answers (and catches a notification lost with a dropped
connection). SQLite has no NOTIFY: its watcher polls the head, as one cheap indexed max().

When the head moves, the events since the previous head are read once and the message built
once; every stream that was up to date sends those same bytes. Only a stream that fell behind
(a reconnect with an old Last-Event-ID) reads its own catch-up. Store reads run in a small
thread pool of their own with a time-out, so a stalled database makes the hub say "not ok"
(heartbeats tell the screens, which show stale) instead of blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from dashboard.live import wire
from dashboard.observability.metrics import set_feed_lag
from data import deadlines, store
from data.geo.units import units_version
from data.incidents.feed import events_after

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05  # SQLite: how often the head is read (one indexed max(), ~0.5 ms)
PROBE_SECONDS = 2.0  # PostgreSQL: how often the head is read anyway (is the store answering?)
READ_TIMEOUT = 3.0  # a hub read that takes longer counts as "store not answering"
SESSION_CHECK_SECONDS = 10.0  # how often a sign-in is checked again for its streams (kiosk revoked, user off)
UNITS_SECONDS = 2.0  # how often the units version is read with the head: a boundary import reaches the screens
CHANNEL = "citybrain_feed"
# Streams woken per turn of the event loop: a change reaching a thousand streams wakes them a slice at a
# time, so a request's answer waiting on the loop goes out between slices, not after the whole fan-out.
WAKE_SLICE = 64


@dataclass
class Batch:
    """The events between two heads, read once, with the message every up-to-date stream sends."""

    after: int
    head: int
    count: int
    message: bytes
    redacted: bytes


@dataclass
class Hub:
    """The feed head of one store, kept current on the event loop; streams await `changed`."""

    engine: Any
    loop: asyncio.AbstractEventLoop
    head: int | None = None
    ok: bool = True
    units: str | None = None  # the units version: screens fetch their geometry again when it changes
    streams: int = 0
    batch: Batch | None = None
    _waiters: set[asyncio.Future] = field(default_factory=set)  # one future per waiting stream
    _task: asyncio.Task | None = None
    _reads: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(4, thread_name_prefix="citybrain-hub"))
    _batches: dict[int, Batch] = field(default_factory=dict)
    _reading: dict[int, asyncio.Task] = field(default_factory=dict)
    _refresh_queued: bool = False
    _read_ok_at: float | None = None  # when the last read of the head that answered began (monotonic): feed lag
    # session id -> (still valid, when checked): screens sharing a sign-in share its check
    _sessions: dict[str, tuple[bool, float]] = field(default_factory=dict)
    _session_checks: dict[str, asyncio.Task] = field(default_factory=dict)
    _units_read_at: float = -math.inf

    # --- reads, off the loop ---------------------------------------------------------------------

    async def read(self, fn: Callable, *args, timeout: float = READ_TIMEOUT):
        """Run a blocking store read in the hub's threads; TimeoutError or SQLAlchemyError when it fails.
        The thread's connection is broken soon after (deadlines), so a stall cannot pile threads up."""
        return await asyncio.wait_for(self.loop.run_in_executor(self._reads, _limited, timeout + 1.0, fn, *args), timeout)

    def _head_now(self, with_units: bool) -> tuple[int, str | None]:
        with store.reading(self.engine) as conn:
            return store.feed_head(conn), units_version(conn) if with_units else None

    async def refresh(self) -> None:
        """Read the head now (and the units version every UNITS_SECONDS); wake every stream when either
        moved or the store's health changed."""
        began = time.monotonic()
        units_due = began - self._units_read_at >= UNITS_SECONDS
        try:
            (head, units), ok = await self.read(self._head_now, units_due), True
        except (TimeoutError, SQLAlchemyError, OSError) as exc:
            if self.ok:
                log.warning("change feed unreachable: %s", type(exc).__name__)
            head, units, ok = self.head, None, False
        if ok and not self.ok:
            log.info("change feed reachable again at head %s", head)
        self._note_lag(began, ok)
        if units is not None:
            self._units_read_at = time.monotonic()
        units = units or self.units
        if head != self.head or ok != self.ok or units != self.units:
            self.head, self.ok, self.units = head, ok, units
            self._wake()

    def _wake(self) -> None:
        waiters, self._waiters = list(self._waiters), set()
        if waiters:
            self.loop.create_task(_release(waiters))

    async def wait(self, known_head: int | None, timeout: float) -> None:
        """Until the head differs from `known_head` (or the store's health changes), at most `timeout` s.

        A plain future and a timer per wait (no task, no wait_for): a fan-out to a thousand streams
        is a thousand cheap callbacks."""
        if (self.head is not None and self.head != known_head) or timeout <= 0:
            return
        waiter = self.loop.create_future()
        self._waiters.add(waiter)
        timer = self.loop.call_later(timeout, _settle, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiters.discard(waiter)

    # --- whether a stream's sign-in still holds, asked once per session ---------------------------

    async def session_valid(self, session_id: str, check: Callable[[str], bool | None]) -> bool | None:
        """check(session_id) at most once per SESSION_CHECK_SECONDS for all the streams of that session;
        None when the store cannot be asked (which ends nothing: it is not a sign-out)."""
        known = self._sessions.get(session_id)
        if known is not None and time.monotonic() - known[1] < SESSION_CHECK_SECONDS:
            return known[0]
        pending = self._session_checks.get(session_id)
        if pending is None:
            pending = self._session_checks[session_id] = self.loop.create_task(self._check_session(session_id, check))
        return await asyncio.shield(pending)

    async def _check_session(self, session_id: str, check) -> bool | None:
        try:
            valid = await self.read(check, session_id)
        except (TimeoutError, SQLAlchemyError, OSError):
            valid = None
        finally:
            self._session_checks.pop(session_id, None)
        if valid is not None:
            self._sessions[session_id] = (valid, time.monotonic())
            if len(self._sessions) > 10_000:  # sessions come and go all day: forget the oldest checks
                self._sessions.pop(next(iter(self._sessions)))
        return valid

    # --- the events of a change, read once ------------------------------------------------------

    async def events_since(self, after: int, head: int) -> Batch:
        """The events after `after` (at least up to `head`), read once for every stream that asks alike."""
        batch = self._batches.get(after)
        if batch is not None and batch.head >= head:
            return batch
        pending = self._reading.get(after)
        if pending is None:
            pending = self._reading[after] = self.loop.create_task(self._read_batch(after))
        return await asyncio.shield(pending)

    async def _read_batch(self, after: int) -> Batch:
        try:
            count, tail, last = await self.read(catch_up, self.engine, after)
            message = wire.changes_message(tail, last, count) if count else b""
            batch = Batch(after, last, count, message, wire.redacted(message))
            self._batches[after] = batch
            while len(self._batches) > 16:  # streams share a handful of positions; older ones are gone
                self._batches.pop(next(iter(self._batches)))
            return batch
        finally:
            self._reading.pop(after, None)

    def _note_lag(self, began: float, ok: bool) -> None:
        """Feed lag for /metrics: how far behind the store this process's streams may be. A read that answered knew
        the head as of when it began; while reads fail, the streams know it as of the last read that answered."""
        if ok or self._read_ok_at is None:
            self._read_ok_at = began
        if self.streams > 0:
            set_feed_lag(time.monotonic() - self._read_ok_at)

    # --- the watcher -----------------------------------------------------------------------------

    def subscribe(self) -> None:
        self.streams += 1
        if self._task is None or self._task.done():
            self._task = self.loop.create_task(self._watch())

    def unsubscribe(self) -> None:
        self.streams -= 1
        if self.streams == 0:
            set_feed_lag(0.0)  # no screen here to be late for

    async def _watch(self) -> None:
        await self.refresh()
        if store.is_sqlite(self.engine):
            while self.streams > 0:
                await asyncio.sleep(POLL_SECONDS)
                await self.refresh()
            return
        stop = threading.Event()
        listener = threading.Thread(target=self._listen, args=(stop,), name="citybrain-feed-listener", daemon=True)
        listener.start()
        try:
            while self.streams > 0:
                await asyncio.sleep(PROBE_SECONDS)
                await self.refresh()  # the probe: is the store answering, did a notification get lost?
        finally:
            stop.set()

    def _listen(self, stop: threading.Event) -> None:
        """PostgreSQL, in a thread of its own: LISTEN on one connection; each NOTIFY from this store's schema
        makes the loop read the head. The connection is never returned to the pool (it holds a LISTEN)."""
        while not stop.is_set() and not self.loop.is_closed():
            raw = None
            try:
                with deadlines.time_limit(math.inf):  # held for as long as anybody listens
                    raw = self.engine.raw_connection()
                connection = raw.driver_connection
                connection.autocommit = True
                schema = connection.execute("SELECT current_schema()").fetchone()[0]
                connection.execute(f"LISTEN {CHANNEL}")
                self._call_refresh()
                while not stop.is_set() and not self.loop.is_closed():
                    for note in connection.notifies(timeout=PROBE_SECONDS):
                        if note.payload == schema:
                            self._call_refresh()
                            break
            except Exception as exc:  # any failure of the listening connection: say so, wait, listen again
                log.warning("change feed listener lost (%s); listening again", type(exc).__name__)
                self._call_refresh()
                stop.wait(PROBE_SECONDS)
            finally:
                if raw is not None:
                    with contextlib.suppress(Exception):
                        raw.invalidate()

    def _call_refresh(self) -> None:
        if not self._refresh_queued:
            self._refresh_queued = True
            # The loop may have stopped meanwhile (the server is shutting down): nobody is left to tell.
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self._start_refresh)

    def _start_refresh(self) -> None:
        self._refresh_queued = False
        self.loop.create_task(self.refresh())


def _settle(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _release(waiters: list[asyncio.Future]) -> None:
    """Wake `waiters` WAKE_SLICE at a time, yielding to the loop between slices."""
    for start in range(0, len(waiters), WAKE_SLICE):
        if start:
            await asyncio.sleep(0)
        for waiter in waiters[start : start + WAKE_SLICE]:
            _settle(waiter)


def _limited(seconds: float, fn: Callable, *args):
    with deadlines.time_limit(seconds):
        return fn(*args)


def catch_up(engine, after_id: int) -> tuple[int, list, int]:
    """(how many events, the newest MAX_EVENTS of them, the last id) after `after_id`, read in pages.

    A screen that was away for an hour gets one message saying "this much changed", not a
    thousand messages each asking it to refresh.
    """
    count, tail, last = 0, [], after_id
    while True:
        with store.reading(engine) as conn:
            events = list(events_after(conn, last, limit=wire.PAGE))
        count += len(events)
        tail = (tail + events)[-wire.MAX_EVENTS :]
        last = max([last, *(int(e["id"]) for e in events)])
        if len(events) < wire.PAGE:
            return count, tail, last


_hubs: dict[tuple[int, str], Hub] = {}
_hubs_lock = threading.Lock()


def hub_for(engine, loop: asyncio.AbstractEventLoop) -> Hub:
    """The Hub of `engine`'s store on `loop` (one per process and event loop)."""
    key = (id(loop), engine.url.render_as_string(hide_password=True))
    with _hubs_lock:
        hub = _hubs.get(key)
        if hub is None or hub.engine is not engine:
            hub = _hubs[key] = Hub(engine=engine, loop=loop)
        return hub
