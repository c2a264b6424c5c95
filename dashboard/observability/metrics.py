"""/metrics in Prometheus text format: requests by route, open live streams, change-feed lag, and the store's figures.

Figures a process counts itself (requests, streams, feed lag) are prometheus_client metrics. Under
gunicorn set PROMETHEUS_MULTIPROC_DIR (docs/deploy.md): every worker then writes its figures to a
file there and /metrics, whichever worker answers, sums them all (open streams: the live workers'
sum; feed lag: the largest). Unset, the process's own figures are shown (`python app.py`).
Figures of the store (background jobs, webhook outbox, feed head) are read when scraped
(store_figures.py), the same whichever process answers.

Labels never carry a raw path: a request is counted by its Flask url rule (`/api/v1/incidents/<int:incident_id>`),
so ids and kiosk tokens never become label values; an unknown path is counted as "unmatched".

Who may read it: the scraper from loopback or a network named in CITYBRAIN_METRICS_ALLOW, or a
signed-in administrator from anywhere. A request that came through a proxy the app was not told
about (X-Forwarded-For with CITYBRAIN_TRUSTED_PROXIES=0) is not "from loopback": its address is
the proxy's, and the proxy may be serving the internet.
"""

from __future__ import annotations

import ipaddress
import os

from flask import Flask, Response, jsonify, request
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.exposition import choose_encoder

from dashboard import access
from dashboard.observability.request_id import current_request_id
from dashboard.observability.store_figures import StoreFigures

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

REQUEST_SECONDS = Histogram(
    "citybrain_http_request_duration_seconds",
    "Time the app took to answer a request, by method and route (the Flask url rule).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REQUESTS = Counter(
    "citybrain_http_requests",
    "Requests answered, by method, route (the Flask url rule) and status class (2xx, 3xx, 4xx, 5xx).",
    ["method", "route", "status_class"],
)
STREAMS_OPEN = Gauge(
    "citybrain_live_streams_open",
    "Live event streams (/live/events, /api/v1/feed) open now (summed over the live workers).",
    multiprocess_mode="livesum",
)
FEED_LAG = Gauge(
    "citybrain_feed_lag_seconds",
    "How far behind the store the live streams may be: the age of the feed head their watcher last read "
    "(a poll or notification apart while the store answers, growing while it does not); 0 with no stream open; "
    "the largest over the live workers.",
    multiprocess_mode="livemax",
)


def route_of_request() -> str:
    """The current request's url rule (a template), or "unmatched" (a 404, a refused method)."""
    rule = request.url_rule
    return rule.rule if rule is not None else UNMATCHED


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count one answered request."""
    method = method if method in METHODS else "OTHER"
    REQUEST_SECONDS.labels(method, route).observe(seconds)
    REQUESTS.labels(method, route, f"{status // 100}xx").inc()


def stream_opened() -> None:
    STREAMS_OPEN.inc()


def stream_closed() -> None:
    STREAMS_OPEN.dec()


def set_feed_lag(seconds: float) -> None:
    """This process's change-feed watcher knows the store's head as of `seconds` ago (dashboard/live/hub.py)."""
    FEED_LAG.set(seconds)


# --- who may read it ---------------------------------------------------------------------------


def allowed_networks(setting: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """CITYBRAIN_METRICS_ALLOW parsed: addresses or networks, comma-separated (ValueError names a bad one)."""
    networks = []
    for item in (part.strip() for part in setting.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"CITYBRAIN_METRICS_ALLOW: {item!r} is not an address or network") from None
    return tuple(networks)


def _address(raw: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address((raw or "").strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def from_allowed_network(networks, trusted_proxies: int) -> bool:
    """Whether the request comes from a network allowed to scrape (never through an untrusted proxy)."""
    if trusted_proxies == 0 and request.headers.get("X-Forwarded-For"):
        return False
    address = _address(request.remote_addr)
    return address is not None and any(address.version == net.version and address in net for net in networks)


# --- the route -----------------------------------------------------------------------------------


def exposition(engine, accept: str | None) -> tuple[bytes, str]:
    """(body, content type) of this process's figures (or every worker's, under PROMETHEUS_MULTIPROC_DIR) and the
    store's, in the format the scraper's Accept header asks for (Prometheus text 0.0.4 unless it asks for more)."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    registry.register(StoreFigures(engine))
    encode, content_type = choose_encoder(accept or "")
    return encode(registry), content_type


class _ThisProcess:
    """The default registry's figures (this process's requests, streams, lag; its CPU and memory)."""

    def collect(self):
        yield from REGISTRY.collect()


def register_metrics(server: Flask, engine_of, allow: str, trusted_proxies: int) -> None:
    """/metrics on `server`; `engine_of()` gives the store's engine; `allow` is CITYBRAIN_METRICS_ALLOW."""
    networks = allowed_networks(allow)

    @server.get("/metrics")
    @access.requires(access.PUBLIC)  # the view decides: scraper's network or an administrator
    def metrics():
        if not (from_allowed_network(networks, trusted_proxies) or access.can(access.ADMIN)):
            response = jsonify(
                error="forbidden",
                message="/metrics is read from CITYBRAIN_METRICS_ALLOW's networks or by an administrator",
                request_id=current_request_id(),
            )
            response.status_code = 403
            return response
        body, content_type = exposition(engine_of(), request.headers.get("Accept"))
        return Response(body, content_type=content_type)
