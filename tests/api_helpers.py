"""Helpers for the API tests: an app on the test store with a small world and one key per role."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app import create_app
from dashboard.settings import Settings
from data import schema
from data.accounts.apikeys import create_key
from tests.factories import World, make_world


@dataclass
class ApiWorld:
    """The app's server and client, the factories' World, and the secrets of a few keys."""

    server: Flask
    client: FlaskClient
    engine: object
    world: World
    intake: str  # intake only, source "hotline"
    reader: str  # read only
    cg: str  # actions (and read) for department cg
    zj: str  # actions for department zj

    def headers(self, secret: str | None = None, **extra) -> dict:
        return {"X-API-Key": secret or self.intake, **extra}

    def incident_count(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one()


def build_api_world(engine, **config) -> ApiWorld:
    """An app on `engine` with make_world's city and keys; `config` goes into the Flask config."""
    settings = Settings.from_env({}, live=False, build_demo=False)
    app = create_app(settings, engine=engine, testing=True)
    app.server.config.update(config)
    with engine.begin() as conn:
        world = make_world(conn)
        keys = {
            "intake": create_key(conn, "hotline", ["intake"]).secret,
            "reader": create_key(conn, "wall", ["read"]).secret,
            "cg": create_key(conn, "cg-system", ["actions", "read"], department_code="cg").secret,
            "zj": create_key(conn, "zj-system", ["actions"], department_code="zj").secret,
        }
    return ApiWorld(app.server, app.server.test_client(), engine, world, **keys)
