"""What the API's views share per app: the store, settings, the process's grid locator and the rate limiter."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask import current_app
from flask_limiter import Limiter
from sqlalchemy.engine import Connection, Engine

from dashboard.api.intake import GroupWriter, LocatorCache
from dashboard.api.keys import CONTEXT_EXTENSION, KeyCache
from dashboard.settings import Settings
from data.incidents.api_store import categories
from data.incidents.intake import IntakeResult, report_incidents

EXTENSION = CONTEXT_EXTENSION
CATEGORY_SECONDS = 5.0  # how long intake trusts its copy of the category codes


@dataclass
class ApiContext:
    """One per app (so one per gunicorn worker): the locator is built once and shared by every request."""

    deps: object  # dashboard.server.Deps: read through it so a swapped engine is seen at once
    limiter: Limiter
    locators: LocatorCache = field(default_factory=LocatorCache)
    keys: KeyCache = field(default_factory=KeyCache)
    _categories: tuple[float, dict[str, int]] = (0.0, {})

    def __post_init__(self) -> None:
        self.writer = GroupWriter(lambda: self.deps.engine, self.locators)

    @property
    def engine(self) -> Engine:
        return self.deps.engine

    @property
    def settings(self) -> Settings:
        return self.deps.settings

    def category_ids(self, conn: Connection) -> dict[str, int]:
        """{code: id} of the active categories, re-read every few seconds (report_incidents checks them again)."""
        read_at, ids = self._categories
        if time.monotonic() - read_at > CATEGORY_SECONDS:
            ids = {c["code"]: c["id"] for c in categories(conn)}
            self._categories = (time.monotonic(), ids)
        return ids

    def report(self, conn: Connection, rows: list[dict], actor: str) -> list[IntakeResult]:
        """Store reported rows in the caller's transaction, with the shared locator (data.incidents.intake.report_incidents)."""
        return report_incidents(conn, rows, actor=actor, locator=self.locators.get(conn))

    def submit(self, rows: list[dict], actor: str) -> list[IntakeResult]:
        """Store reported rows in a transaction shared with concurrent requests (GroupWriter)."""
        return self.writer.submit(rows, actor)


def api_context() -> ApiContext:
    """The current app's ApiContext."""
    return current_app.extensions[EXTENSION]
