"""Kiosk tokens kept out of the access logs: a logging filter that shortens `/kiosk/<token>` and `kiosk=<token>` to their shown prefix.

A wall's kiosk link carries its token in the URL (`/kiosk/<token>`, `/wall?kiosk=<token>`), and request
lines are logged by uvicorn (`python app.py`), gunicorn's access log and Werkzeug's development server. A log line is no place
for a credential that never expires: the filter leaves the part `kiosk list` shows (enough to tell
walls apart, never enough to sign in) and an ellipsis.
"""

from __future__ import annotations

import logging
import re
from collections.abc import MutableMapping

from data.accounts.users import kiosk_token_shown

# The request loggers: uvicorn's (`python app.py`, and gunicorn's uvicorn workers), gunicorn's access log,
# Werkzeug's development server (Flask's own `run`).
REQUEST_LOGGERS = ("uvicorn.access", "gunicorn.access", "werkzeug")
# A token runs to the end of its path segment or query value (or of the quoted request line).
_TOKEN = re.compile(r"(/kiosk/|[?&;]kiosk=)([^\s/?&;#\"']+)")


def redact_kiosk_tokens(text: str) -> str:
    """`text` with every kiosk token in a URL cut to its shown prefix."""
    return _TOKEN.sub(lambda m: m.group(1) + kiosk_token_shown(m.group(2)) + "…", text)


class KioskTokenFilter(logging.Filter):
    """Rewrites a record's message and arguments (a tuple, or gunicorn's mapping of atoms) before it is formatted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_kiosk_tokens(record.msg)
        if isinstance(record.args, MutableMapping):
            for key, value in list(record.args.items()):
                if isinstance(value, str):
                    record.args[key] = redact_kiosk_tokens(value)
        elif isinstance(record.args, tuple):
            record.args = tuple(redact_kiosk_tokens(a) if isinstance(a, str) else a for a in record.args)
        return True


_FILTER = KioskTokenFilter()


def install_log_redaction() -> None:
    """Put the filter on the request loggers (once per process, however many apps are built)."""
    for name in REQUEST_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
