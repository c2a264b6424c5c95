"""What the API's views share per app: the store, settings, the process's grid locator and the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app
from flask_limiter import Limiter
from sqlalchemy.engine import Connection, Engine

from dashboard.api.intake import LocatorCache
from dashboard.settings import Settings
from data.incidents import IntakeResult, report_incidents

EXTENSION = "citybrain_api"


@dataclass
class ApiContext:
    """One per app (so one per gunicorn worker): the locator is built once and shared by every request."""

    deps: object  # dashboard.server.Deps: read through it so a swapped engine is seen at once
    limiter: Limiter
    locators: LocatorCache = field(default_factory=LocatorCache)

    @property
    def engine(self) -> Engine:
        return self.deps.engine

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def report(self, conn: Connection, rows: list[dict], actor: str) -> list[IntakeResult]:
        """Store reported rows with the shared locator (data.incidents.report_incidents)."""
        return report_incidents(conn, rows, actor=actor, locator=self.locators.get(conn))


def api_context() -> ApiContext:
    """The current app's ApiContext."""
    return current_app.extensions[EXTENSION]
