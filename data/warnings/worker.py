"""The background early-warning pass: a daemon thread the server starts when CITYBRAIN_WARNINGS_INTERVAL > 0."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from data import store
from data.errors import CityBrainError
from data.times import utc_now
from data.warnings.detect import run_detection, summary_line

log = logging.getLogger(__name__)

# Several gunicorn workers each start a thread; a pass that finished less than this share of the
# interval ago (by any of them) is enough, so the others skip their turn.
SKIP_SHARE = 0.8
FIRST_PASS_DELAY = 5.0


def recent_pass_at(engine: Engine) -> datetime | None:
    """When the last pass (of any process) finished its write, from the meta table."""
    with store.reading(engine) as conn:
        value = store.get_meta(conn, "warnings.last_pass_at")
    return datetime.fromisoformat(value) if value else None


class WarningWorker(threading.Thread):
    """Runs a detection pass every `interval` seconds until stopped; screens only ever read stored alerts."""

    def __init__(self, engine: Engine, interval: float, timezone: str = "Asia/Shanghai"):
        super().__init__(name="citybrain-early-warning", daemon=True)
        self.engine, self.interval, self.timezone = engine, interval, timezone
        self.stopping = threading.Event()
        self.passes = 0
        self.last_summary: dict | None = None

    def run(self) -> None:
        delay = min(FIRST_PASS_DELAY, self.interval)
        while not self.stopping.wait(delay):
            delay = self.interval
            try:
                last = recent_pass_at(self.engine)
                if last is not None and (utc_now() - last).total_seconds() < SKIP_SHARE * self.interval:
                    continue
                self.last_summary = run_detection(self.engine, tz=self.timezone)
                self.passes += 1
                log.info("early warning: %s", summary_line(self.last_summary))
            except (SQLAlchemyError, CityBrainError) as exc:
                # A locked or briefly unreachable database: the next pass tries again.
                log.warning("early-warning pass skipped: %s: %s", type(exc).__name__, str(exc).splitlines()[0])
            except Exception:
                # Never let a bug in detection take the server's thread down silently.
                log.exception("early-warning pass failed; trying again next interval")

    def stop(self, timeout: float = 10.0) -> None:
        self.stopping.set()
        self.join(timeout)


def start_warning_worker(engine: Engine, interval_seconds: float, timezone: str = "Asia/Shanghai") -> WarningWorker | None:
    """Start the background pass when configured (interval > 0); None when early warning runs only by command."""
    if not interval_seconds or interval_seconds <= 0:
        return None
    worker = WarningWorker(engine, float(interval_seconds), timezone)
    worker.start()
    return worker


__all__ = ["WarningWorker", "recent_pass_at", "start_warning_worker"]
