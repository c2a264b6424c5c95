"""build_app(): wires store, cache, sign-in, server routes, the API and the page shell into one Dash app; the caller adds the callbacks."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import dash
from flask import Flask
from sqlalchemy import Engine

from dashboard.cache import cache, cache_config
from dashboard.headers import content_security_policy, install_security_headers
from dashboard.health import register_health
from dashboard.log_redaction import install_log_redaction
from dashboard.observability.metrics import register_metrics
from dashboard.observability.requests import install_request_hooks, trust_proxies
from dashboard.settings import Settings
from data import store
from data.secret_key import shared_secret_key

log = logging.getLogger(__name__)


@dataclass
class Deps:
    """What callbacks and routes need: settings and the store's engine (the cache is global)."""

    settings: Settings
    engine: Engine


def build_app(
    settings: Settings | None = None,
    engine: Engine | None = None,
    testing: bool = False,
    *,
    register_callbacks: Callable[[dash.Dash, Deps], None],
) -> dash.Dash:
    """A ready Dash app for `settings`, its callbacks added by `register_callbacks(app, deps)` (app.create_app
    passes callbacks.register_all); migrates the store but never builds demo data."""
    settings = settings or Settings.from_env()
    engine = engine or store.make_engine(settings.database_url, timeout=settings.store_timeout)
    store.migrate(engine)
    server = Flask("citybrain")
    trust_proxies(server, settings.trusted_proxies)
    # Every worker, server and restart signs sessions alike: the setting, else the key kept beside the store.
    server.config["SECRET_KEY"] = settings.secret_key or shared_secret_key(engine)
    server.config.update(cache_config(settings.cache_url, testing=testing))
    cache.init_app(server)
    deps = Deps(settings=settings, engine=engine)
    server.extensions["citybrain"] = deps
    from dashboard import audit_exports, login_page
    from dashboard.auth import init_auth

    init_auth(server, settings)  # sign-in, the deny-by-default gate and CSRF come before every other route
    server.register_blueprint(login_page.bp)
    server.register_blueprint(audit_exports.bp)
    register_health(server, lambda: deps.engine)  # the engine read per request: tests swap it
    register_metrics(server, lambda: deps.engine, settings.metrics_allow, settings.trusted_proxies)
    _register_overview_routes(server, engine, warm=not testing, tz=settings.timezone)
    from dashboard.api import register_api

    api = register_api(server, deps)
    login_page.limit_sign_ins(api.limiter, settings.signin_rate_limit)

    app = dash.Dash(
        __name__,
        server=server,
        title="CityBrain Command",
        assets_folder="assets",
        serve_locally=True,  # closed networks: every script comes from this server
        suppress_callback_exceptions=True,
        update_title=None,
    )
    from dashboard import input_guard
    from dashboard.layout import build_layout

    input_guard.install(app)  # ValidationError -> 400; malformed callback requests refused before the gate reads them
    app.layout = build_layout(deps)
    register_callbacks(app, deps)
    # After the callbacks: the policy names Dash's inline scripts (renderer start-up, inline clientside callbacks) by hash.
    install_security_headers(
        server, content_security_policy(app.csp_hashes(), settings.tile_url), https=bool(settings.secure_cookies)
    )
    install_log_redaction()
    install_request_hooks(server)  # last, so its hooks come first and go last: every request's id, access line and figures
    server.config["CITYBRAIN_BUILD"] = _build_id(app)
    return app


def _register_overview_routes(server: Flask, engine: Engine, warm: bool, tz: str) -> None:
    from dashboard import alerts_routes, geo_routes
    from dashboard.live import routes as live_routes
    from data.metrics import working_set as kpi_set

    server.register_blueprint(geo_routes.bp)
    server.register_blueprint(live_routes.bp)
    server.register_blueprint(alerts_routes.bp)
    if warm:
        from dashboard.first_page import FirstPageGate

        geo_routes.warm(engine)  # the first page needs the geometry: at once (about 0.1 s to read)
        kpi_set.warm(engine, tz, when=FirstPageGate().install(server).wait)


def _build_id(app: dash.Dash) -> str:
    from dashboard.live import wire

    return wire.build_id(app)
