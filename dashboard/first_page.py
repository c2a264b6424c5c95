"""After a start, hold the warm-ups back until the server has answered its first page (or a while has passed).

A start's warm-up loads seconds of work (the KPI working set: every open and recent incident) in this
process; begun at once, it competes with the first page's callbacks for the interpreter and the first
screen after a restart (a wall reconnecting) waits for both. So the load waits until no page request has
been in flight for QUIET_SECONDS after at least one was answered, or MAX_WAIT_SECONDS after the start for
a server nobody opens. Live streams are not page requests (they are served beside Flask), so an open
wall does not hold the warm-up back.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, g

QUIET_SECONDS = 0.75
MAX_WAIT_SECONDS = 10.0


class FirstPageGate:
    """Counts this process's Flask requests in flight; `wait()` returns once the first page was answered."""

    def __init__(self, quiet: float = QUIET_SECONDS, max_wait: float = MAX_WAIT_SECONDS, clock=time.monotonic):
        self.quiet, self.max_wait, self._clock = quiet, max_wait, clock
        self._started = clock()
        self._lock = threading.Lock()
        self._in_flight = 0
        self._answered = 0
        self._last_answer = 0.0

    def install(self, server: Flask) -> FirstPageGate:
        server.before_request(self._began)
        server.teardown_request(self._ended)
        return self

    def _began(self) -> None:
        g.first_page_counted = True  # an earlier hook (the sign-in gate) may answer first: then this never ran
        with self._lock:
            self._in_flight += 1

    def _ended(self, _exc=None) -> None:
        counted = g.pop("first_page_counted", False)
        with self._lock:
            self._in_flight -= counted
            self._answered += 1
            self._last_answer = self._clock()

    def open(self) -> bool:
        now = self._clock()
        if now - self._started >= self.max_wait:
            return True
        with self._lock:
            return self._answered > 0 and self._in_flight == 0 and now - self._last_answer >= self.quiet

    def wait(self) -> None:
        while not self.open():
            time.sleep(0.05)
