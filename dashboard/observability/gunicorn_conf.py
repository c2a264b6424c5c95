"""gunicorn's settings and hooks for the production command: `gunicorn -c python:dashboard.observability.gunicorn_conf ...` (docs/deploy.md).

- /metrics across workers: with PROMETHEUS_MULTIPROC_DIR set, the master empties that directory when
  it starts (figures of an earlier run would be summed in) and tells prometheus_client when a worker
  exits, so open-stream gauges of a dead worker stop counting.
- Proxies: uvicorn's workers would take the client's address from X-Forwarded-For whenever the
  peer is loopback; the app decides that itself (CITYBRAIN_TRUSTED_PROXIES, werkzeug's ProxyFix), so
  uvicorn trusts nobody's forwarding headers here.
- No access log of gunicorn's: the app writes one line per request with its request id.

Importing this module reads no store and starts nothing; gunicorn calls the hooks.
"""

from __future__ import annotations

import os
from pathlib import Path

forwarded_allow_ips = ""  # uvicorn_worker passes this on: forwarding headers are the app's to trust (ProxyFix)
accesslog = None

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def on_starting(server) -> None:
    """In the master, before any worker: an empty metrics directory (created if missing)."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server, worker) -> None:
    """In the master, when a worker has exited: its live gauges (open streams, feed lag) leave the sums."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
