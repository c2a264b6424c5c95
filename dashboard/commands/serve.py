"""`python app.py serve`: build the demo on first run, start the live simulator, run the server."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from dashboard.settings import Settings
from data import store

if TYPE_CHECKING:
    import dash

log = logging.getLogger(__name__)


def serve_app(settings: Settings, host: str, port: int, create_app: Callable[..., dash.Dash]) -> None:
    """Serve the dashboard with uvicorn, live streams on its event loop and pages in a thread pool (the same
    server production runs under gunicorn); `create_app(settings, engine=...)` builds it (app.py passes its
    own, which adds the callbacks)."""
    engine = store.make_engine(settings.database_url)
    store.migrate(engine)
    if settings.build_demo:
        from data.demo.city import ensure_demo

        ensure_demo(engine, grids=settings.demo_grids, days=settings.demo_days, per_day=settings.demo_per_day)
        from data.demo.users import ensure_demo_users

        for user in ensure_demo_users(engine):
            log.info("demo user %s (%s): the README lists its password", user["username"], user["role"])
    _warn_without_users(engine)
    app = create_app(settings, engine=engine)
    if debug_allowed(settings.debug, host):
        app.enable_dev_tools(debug=True, dev_tools_hot_reload=False)
    if settings.background == "in-process":
        from dashboard.commands.worker import start_background

        # The embedded default: this one process is also the worker (the simulator when CITYBRAIN_LIVE is on).
        start_background(engine, settings, simulate=settings.live)
    log.info("serving on http://%s:%s", host, port)
    run_asgi(asgi_app(app, settings), host, port)


def asgi_app(app: dash.Dash, settings: Settings):
    """The ASGI application serving `app`: streams on the event loop, the rest in settings.web_threads threads."""
    from dashboard.live.asgi import CityBrainASGI

    return CityBrainASGI(app.server, threads=settings.web_threads)


def run_asgi(application, host: str, port: int) -> None:
    """uvicorn in this process until stopped (Ctrl-C): what `python app.py` serves with."""
    import uvicorn

    # lifespan off: the app has no startup work of its own; a short graceful stop, since open streams
    # never end by themselves (browsers reconnect to the next server). Logging is the app's (configure_logging):
    # no access log of uvicorn's (the app writes one line per request, with its id), and no proxy headers read by
    # uvicorn (it trusts X-Forwarded-For from loopback by default; CITYBRAIN_TRUSTED_PROXIES decides instead).
    uvicorn.run(
        application,
        host=host,
        port=port,
        lifespan="off",
        timeout_graceful_shutdown=3,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


def debug_allowed(debug: bool, host: str) -> bool:
    """Whether to run in debug mode: only when asked and listening on a loopback address, since debug mode
    shows tracebacks (and the code and settings they reveal) to whoever can reach the server."""
    if not debug:
        return False
    if _is_loopback(host):
        return True
    log.warning(
        "CITYBRAIN_DEBUG is on, but the server listens on %s, which other machines can reach: debug mode is refused "
        "(it shows tracebacks to whoever connects); listen on 127.0.0.1 to debug",
        host,
    )
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything, so it is not trusted to be local
        return False


def _warn_without_users(engine) -> None:
    from data.accounts.users import count_users

    with store.reading(engine) as conn:
        if count_users(conn) == 0:
            log.warning("nobody can sign in yet: create an administrator with `python app.py user create NAME --role admin`")
