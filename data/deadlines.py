"""Time-outs on the store: a PostgreSQL connection held past its deadline is broken, so no call hangs on a stalled server.

A server that accepts connections but never answers (a hung host, a stuck proxy, a full disk) leaves
libpq waiting for ever: TCP keeps acknowledging, so neither keepalives nor statement_timeout fire.
Every connection taken from the pool is therefore armed with a deadline (the engine's default, or
`time_limit(...)` around longer work); one watchdog thread per process shuts the socket of a
connection still held when its deadline passes. The blocked call then fails at once with a
disconnect error, SQLAlchemy discards the connection, and the caller answers 503 instead of hanging.
Checkout also pings the connection under the same deadline (the pool's own pre-ping is unbounded).
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import logging
import math
import os
import socket
import threading
import time
import weakref
from collections.abc import Iterator

from sqlalchemy import Engine, event, exc

log = logging.getLogger(__name__)

_limit: contextvars.ContextVar[float | None] = contextvars.ContextVar("citybrain_store_time_limit", default=None)


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Connections taken inside this block may be held `seconds` (None: the engine's default; math.inf:
    no limit, for migrations and whole rebuilds run by a command or the worker)."""
    token = _limit.set(seconds)
    try:
        yield
    finally:
        _limit.reset(token)


class Watchdog:
    """Deadlines of checked-out connections; breaks the socket of one held too long."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int]] = []
        self._armed: dict[int, tuple[weakref.ref, str]] = {}
        self._counter = itertools.count(1)
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self.fired = 0

    def arm(self, dbapi_connection, seconds: float, what: str) -> int:
        token = next(self._counter)
        with self._cv:
            self._armed[token] = (weakref.ref(dbapi_connection), what)
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="citybrain-store-watchdog", daemon=True)
                self._thread.start()
            self._cv.notify()
        return token

    def disarm(self, token: int | None) -> None:
        if token is not None:
            with self._cv:
                self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap:
                    self._cv.wait()
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cv.wait(wait)
                    continue
                heapq.heappop(self._heap)
                entry = self._armed.pop(token, None)
            if entry is not None:
                self._break(*entry)

    def _break(self, ref: weakref.ref, what: str) -> None:
        connection = ref()
        try:
            fd = connection.pgconn.socket if connection is not None and not connection.closed else -1
        except Exception:  # psycopg raises once the connection is gone: nothing left to break
            fd = -1
        if fd < 0:
            return
        self.fired += 1
        log.warning("store call over its time limit (%s): breaking the connection", what)
        # shutdown() acts on the socket itself, so a duplicate descriptor reaches libpq's one.
        with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


WATCHDOG = Watchdog()
_TOKEN = "citybrain_deadline"


def lift(connection) -> None:
    """Take the deadline off a connection checked out under one (a SQLAlchemy Connection): it is held on purpose
    from now on, as a job's election is for as long as the job runs."""
    WATCHDOG.disarm(connection.connection.info.pop(_TOKEN, None))


def guard(engine: Engine, default_seconds: float) -> None:
    """Arm every checkout of `engine` (PostgreSQL) with a deadline and ping it under that deadline."""

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        seconds = _limit.get() or default_seconds
        if not math.isinf(seconds):
            record.info[_TOKEN] = WATCHDOG.arm(dbapi_connection, seconds, f"{seconds:g} s")
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            # A ping is a transaction on psycopg; close it so the caller starts clean.
            dbapi_connection.rollback()
        except Exception as error:
            WATCHDOG.disarm(record.info.pop(_TOKEN, None))
            # The pool reconnects (connect_timeout bounds that) and retries once.
            raise exc.DisconnectionError(f"store connection failed its check: {type(error).__name__}") from error

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        if record is not None:
            WATCHDOG.disarm(record.info.pop(_TOKEN, None))

    @event.listens_for(engine, "invalidate")
    def _on_invalidate(_dbapi_connection, record, _exception):
        if record is not None:
            WATCHDOG.disarm(record.info.pop(_TOKEN, None))
