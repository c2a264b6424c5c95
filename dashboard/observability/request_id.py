"""The request id: taken from an incoming X-Request-ID when it is sane, else made; kept on flask.g for the request's log lines and error bodies."""

from __future__ import annotations

import re
import uuid

from flask import g, has_request_context, request

HEADER = "X-Request-ID"
# What a proxy or client may hand us (nginx's $request_id is 32 hex digits; UUIDs; base64): anything else
# (too long, spaces, control characters, quotes) would let a caller write into the logs, so a new id is made.
_SANE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=-]{0,127}")


def request_id_from(presented: str | None) -> str:
    """`presented` when it is a sane id, else a new one (32 hex digits, like nginx's)."""
    if presented and _SANE.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    """The id of the request this thread is answering (given on first use, so a hook that answers before
    requests.py's first one still has it); None outside a request (background work, start-up)."""
    if not has_request_context():
        return None
    request_id = g.get("request_id")
    if request_id is None:
        request_id = g.request_id = request_id_from(request.headers.get(HEADER))
    return request_id
