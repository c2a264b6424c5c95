"""Every request's first and last hook: its id (X-Request-ID), its one access-log line and its figures; and the trusted-proxy setting.

The first before_request gives the request its id (an incoming X-Request-ID when sane, else a new
one); the last after_request returns it in the X-Request-ID header, counts the request for
/metrics by its url rule and writes the access line: method, path (kiosk tokens cut), status,
duration, client address and the id. A stream (/live/events, /api/v1/feed) is logged when Flask
admits it; the stream itself then runs on the event loop (dashboard/live/asgi.py).

Behind a reverse proxy every request comes from the proxy's address: CITYBRAIN_TRUSTED_PROXIES
(how many proxies stand in front) lets werkzeug's ProxyFix take the client's address from
X-Forwarded-For (and the scheme from X-Forwarded-Proto), so rate limits, the sign-in log, /metrics'
access check and the access log see the client. With 0 (the default) those headers are ignored:
anyone could write them.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from dashboard.log_redaction import redact_kiosk_tokens
from dashboard.observability import metrics
from dashboard.observability.request_id import HEADER, current_request_id

access_log = logging.getLogger("citybrain.access")


def _begin() -> None:
    g.request_started = time.perf_counter()
    current_request_id()  # given now, so every line of the request carries it


def _end(response):
    seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
    response.headers[HEADER] = current_request_id()
    route = metrics.route_of_request()
    metrics.observe_request(request.method, route, response.status_code, seconds)
    path = redact_kiosk_tokens(request.path)  # the query string is left out: it may carry a token or key
    duration_ms = round(seconds * 1000, 1)
    access_log.info(
        "%s %s %s %.1f ms %s",
        request.method,
        path,
        response.status_code,
        duration_ms,
        request.remote_addr,
        extra={
            "method": request.method,
            "path": path,
            "route": route,
            "status": response.status_code,
            "duration_ms": duration_ms,
            "client": request.remote_addr,
        },
    )
    return response


def install_request_hooks(server: Flask) -> None:
    """Make `_begin` the first before_request (the clock starts before any gate) and `_end` the last after_request
    (Flask runs them in reverse order of registration: it sees the final answer). Call it once the other hooks are in."""
    server.before_request_funcs.setdefault(None, []).insert(0, _begin)
    server.after_request_funcs.setdefault(None, []).insert(0, _end)


def trust_proxies(server: Flask, count: int) -> None:
    """Take the client's address and scheme from the `count` proxies in front (X-Forwarded-For/-Proto); 0: none."""
    if count < 0:
        raise ValueError("CITYBRAIN_TRUSTED_PROXIES is how many proxies stand in front: 0 or more")
    if count:
        # Host is left alone: nginx passes the client's Host header itself, and X-Forwarded-Host is not one it
        # overwrites, so trusting it would let a client choose the host the app builds links with.
        server.wsgi_app = ProxyFix(server.wsgi_app, x_for=count, x_proto=count)
