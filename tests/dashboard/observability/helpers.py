"""What the observability tests share: an app on a test store, and the log lines it writes while a test runs."""

from __future__ import annotations

import io
import logging
from contextlib import contextmanager

from app import create_app
from dashboard.observability.logs import configure_logging, remove_logging
from dashboard.settings import Settings


def make_app(engine, **settings):
    return create_app(Settings.from_env({}, live=False, build_demo=False, **settings), engine=engine, testing=True)


@contextmanager
def logged(log_format: str = "text"):
    """The lines configure_logging writes meanwhile (a StringIO); the process's logging is put back after."""
    buffer = io.StringIO()
    access = logging.getLogger("uvicorn.access")
    was_disabled, level = access.disabled, logging.getLogger().level
    configure_logging(log_format, stream=buffer)
    try:
        yield buffer
    finally:
        remove_logging()
        access.disabled = was_disabled
        logging.getLogger().setLevel(level)
