"""Logging for every process (python app.py, gunicorn's uvicorn workers, python app.py worker): plain text, or one JSON object a line.

`configure_logging(log_format)` puts one handler on the root logger: plain text by default, JSON
(CITYBRAIN_LOG_FORMAT=json) for log collectors. Every line written while a request is answered
carries that request's id (a handler filter reads it from flask.g), and kiosk tokens are cut from
every line, not only from request lines. The servers' own loggers (uvicorn, gunicorn's error log)
keep their destinations but take the same format; uvicorn's access log is switched off, since the
app writes one access line per request itself (dashboard/observability/requests.py).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import TextIO

from dashboard.log_redaction import KioskTokenFilter
from dashboard.observability.request_id import current_request_id

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
HANDLER_NAME = "citybrain"
NO_REQUEST = "-"
# The fields an access line adds (dashboard/observability/requests.py passes them as `extra`).
ACCESS_FIELDS = ("method", "path", "route", "status", "duration_ms", "client")
# Servers that log through handlers of their own: their lines take our format (and request ids).
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "gunicorn.error")
# Alembic narrates every check at INFO; a command's own output is what the user wants to read.
QUIET_LOGGERS = ("alembic",)


class RequestIdFilter(logging.Filter):
    """Adds `request_id` to every record: the id of the request being answered, or "-"."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = current_request_id() or NO_REQUEST
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, pid, and an access line's fields."""

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", NO_REQUEST)
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None if request_id == NO_REQUEST else request_id,
            "pid": record.process,
        }
        for name in ACCESS_FIELDS:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        # json.dumps escapes newlines, so a traceback or a hostile message stays on its one line.
        return json.dumps(document, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    """The formatter of CITYBRAIN_LOG_FORMAT: "text" or "json" (anything else is refused at start)."""
    if log_format not in FORMATS:
        raise ValueError(f"CITYBRAIN_LOG_FORMAT must be one of {', '.join(FORMATS)}, not {log_format!r}")
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


_FILTERS = (RequestIdFilter(), KioskTokenFilter())


def _dress(handler: logging.Handler, formatter: logging.Formatter) -> None:
    handler.setFormatter(formatter)
    for log_filter in _FILTERS:
        if log_filter not in handler.filters:
            handler.addFilter(log_filter)


def configure_logging(log_format: str = "text", stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """Log at `level` to `stream` (stderr) in `log_format`; safe to call again (the handler is replaced in place)."""
    formatter = formatter_for(log_format)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if h.get_name() == HANDLER_NAME), None)
    if handler is None:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.set_name(HANDLER_NAME)
        root.addHandler(handler)
    elif stream is not None:
        handler.setStream(stream)
    _dress(handler, formatter)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name in SERVER_LOGGERS:
        for server_handler in logging.getLogger(name).handlers:
            _dress(server_handler, formatter)
    # The app writes one access line per request with its id; uvicorn's would be a second, without it.
    logging.getLogger("uvicorn.access").disabled = True


def remove_logging() -> None:
    """Take configure_logging's handler off the root logger again (tests)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == HANDLER_NAME]:
        root.removeHandler(handler)
