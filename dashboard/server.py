"""build_app(): wires store, cache, sign-in, server routes, the API and the page shell into one Dash app; the caller adds the callbacks."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

import dash
from flask import Flask, jsonify
from sqlalchemy import Engine

from dashboard.cache import cache, cache_config
from dashboard.settings import Settings
from data import store

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
    engine = engine or store.make_engine(settings.database_url)
    store.migrate(engine)
    server = Flask("citybrain")
    server.config["SECRET_KEY"] = settings.secret_key or secrets.token_hex(32)
    server.config.update(cache_config(settings.cache_url, testing=testing))
    cache.init_app(server)
    deps = Deps(settings=settings, engine=engine)
    server.extensions["citybrain"] = deps
    from dashboard import login_page
    from dashboard.auth import init_auth

    init_auth(server, settings)  # sign-in, the deny-by-default gate and CSRF come before every other route
    server.register_blueprint(login_page.bp)
    _register_health(server, deps)
    _register_overview_routes(server, engine, warm=not testing, tz=settings.timezone)
    from dashboard.api import register_api

    register_api(server, deps)

    app = dash.Dash(
        __name__,
        server=server,
        title="CityBrain Command",
        assets_folder="assets",
        serve_locally=True,  # closed networks: every script comes from this server
        suppress_callback_exceptions=True,
        update_title=None,
    )
    from dashboard.layout import build_layout

    app.layout = build_layout(deps)
    register_callbacks(app, deps)
    server.config["CITYBRAIN_BUILD"] = _build_id(app)
    return app


def _register_overview_routes(server: Flask, engine: Engine, warm: bool, tz: str) -> None:
    from dashboard import alerts_routes, geo_routes, live
    from data.metrics import working_set as kpi_set

    server.register_blueprint(geo_routes.bp)
    server.register_blueprint(live.bp)
    server.register_blueprint(alerts_routes.bp)
    if warm:
        geo_routes.warm(engine)
        kpi_set.warm(engine, tz)


def _build_id(app: dash.Dash) -> str:
    from dashboard import live

    return live.build_id(app)


def _register_health(server: Flask, deps: Deps) -> None:
    @server.get("/healthz")
    def healthz():
        try:
            with store.reading(deps.engine) as conn:
                counts = store.counts(conn)
                head = store.feed_head(conn)
        except Exception as exc:  # any database failure means "not healthy", said plainly
            log.warning("health check failed: %s", exc)
            return jsonify(status="error", error=f"database unreachable: {type(exc).__name__}"), 503
        return jsonify(status="ok", counts=counts, feed_head=head, database=deps.engine.dialect.name)
