"""Hold many /live/events streams open in a process of their own, for bench_live_scale.py.

    python tests/bench/stream_holder.py PORT COOKIE COUNT

Reading thousands of streams costs the reader CPU; in the process that times API posts it would add its
own work to every post it times. This process opens COUNT streams as one viewer, prints one JSON line
{"held": n, "errors": {...}} when they are open, then answers commands on stdin, one JSON line each:
- `mark`: remember how many changes each stream has had so far; answers {"ok": true}
- `collect T`: wait (at most 10 s) until every open stream had a change after the mark; answers
  {"delays": [seconds from T (time.monotonic, shared by processes on Linux) to each arrival], "missed": n}
- `close`: close every stream and exit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter


class Screen:
    """One open /live/events stream over a raw asyncio connection; notes when each 'changes' message lands."""

    def __init__(self, port: int, cookie: str):
        self.port, self.cookie = port, cookie
        self.open = asyncio.Event()
        self.changes: list[float] = []  # monotonic arrival time of each changes message
        self.task: asyncio.Task | None = None
        self.error: str | None = None

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            writer.write(
                f"GET /live/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nCookie: {self.cookie}\r\n\r\n".encode()
            )
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            if b" 200 " not in head.split(b"\r\n", 1)[0]:
                self.error = head.split(b"\r\n", 1)[0].decode()
                return
            buffer = b""
            while True:
                size = int((await reader.readline()).strip() or b"0", 16)
                if size == 0:
                    return
                buffer += await reader.readexactly(size)
                await reader.readexactly(2)
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    if frame.startswith(b"retry:"):
                        self.open.set()
                    elif b'"type":"changes"' in frame:
                        self.changes.append(time.monotonic())
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            self.error = type(exc).__name__


async def hold(port: int, cookie: str, count: int) -> None:
    screens = [Screen(port, cookie) for _ in range(count)]
    for i, screen in enumerate(screens):
        screen.task = asyncio.ensure_future(screen.run())
        if i % 100 == 99:
            await asyncio.sleep(0.05)  # a wall of screens comes up over a few seconds, not in one burst
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and sum(s.open.is_set() or s.error is not None for s in screens) < count:
        await asyncio.sleep(0.2)
    await asyncio.sleep(3)  # let them settle (first heartbeats) before measuring
    held = sum(s.open.is_set() and s.error is None for s in screens)
    say({"held": held, "errors": dict(Counter(s.error for s in screens if s.error))})
    loop = asyncio.get_running_loop()
    marks: list[int] = []
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line or line[0] == "close":
            break
        if line[0] == "mark":
            marks = [len(s.changes) for s in screens]
            say({"ok": True})
        elif line[0] == "collect":
            posted = float(line[1])
            waiting = [(s, m) for s, m in zip(screens, marks, strict=True) if s.open.is_set() and s.error is None]
            until = time.monotonic() + 10
            while time.monotonic() < until and any(len(s.changes) == m for s, m in waiting):
                await asyncio.sleep(0.02)
            delays = [s.changes[m] - posted for s, m in waiting if len(s.changes) > m]
            say({"delays": delays, "missed": len(waiting) - len(delays)})
    for screen in screens:
        if screen.task:
            screen.task.cancel()
    await asyncio.gather(*(s.task for s in screens if s.task), return_exceptions=True)


def say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(hold(int(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
