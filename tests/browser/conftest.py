"""Browser test fixtures: a small demo store served by Dash's own server in a thread, and headless Chromium.

Chromium and chromedriver are Debian's (/usr/bin/chromium, /usr/bin/chromedriver); without
them the tests skip locally and fail in CI (tests.conftest.skip_or_fail).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from app import create_app
from dashboard.settings import Settings
from data import schema, store
from data.demo.city import build_demo
from data.geo.locate import GridLocator
from data.incidents.intake import report_incidents
from tests.asgi_server import AsgiServer
from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.chrome import chromium_paths, start_chromium
from tests.conftest import skip_or_fail


@dataclass
class City:
    """The small demo city the browser looks at (real district outlines), and how a test adds to it."""

    engine: object
    units: dict[str, list[dict]]  # level name -> units with id, names, ancestors and an inside point (lon, lat)
    category_id: int
    locator: GridLocator
    serial: int = 0

    def report(self, unit: dict, priority: int = 1) -> int:
        """Report one incident at a point inside `unit`, as an intake channel would; returns its id."""
        self.serial += 1
        with self.engine.begin() as conn:
            (result,) = report_incidents(
                conn,
                [
                    {
                        "source": "browser-test",
                        "external_id": f"bt-{self.serial}",
                        "category_id": self.category_id,
                        "priority": priority,
                        "lon": unit["lon"],
                        "lat": unit["lat"],
                    }
                ],
                actor="browser-test",
                locator=self.locator,
            )
        return result.incident_id


def seed(engine) -> City:
    """A small demo city: nine districts, 200 grids, three days of incidents."""
    build_demo(engine, grids=200, days=3, per_day=100)
    u = schema.units
    units: dict[str, list[dict]] = {}
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                u.c.id,
                u.c.level,
                u.c.code,
                u.c.name_en,
                u.c.name_zh,
                u.c.district_id,
                u.c.street_id,
                u.c.community_id,
                u.c.centroid_lon.label("lon"),
                u.c.centroid_lat.label("lat"),
            )
            .where(u.c.level.in_([schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID]))
            .order_by(u.c.id)
        ).all()
        category_id = (
            conn.execute(
                select(schema.categories.c.id).where(schema.categories.c.active.is_(True)).order_by(schema.categories.c.id)
            )
            .scalars()
            .first()
        )
        locator = GridLocator.from_conn(conn)
    for row in rows:
        units.setdefault(schema.LEVEL_NAMES[row.level], []).append(dict(row._mapping))
    city = City(engine, units, category_id, locator)
    # The demo's history hands most reports on within minutes, so whether any still waits for a dispatcher
    # depends on the hour the suite runs; a few fresh reports make the queue the same at any hour.
    for grid in units["grid"][-3:]:
        city.report(grid, priority=2)
    return city


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}")
    store.migrate(engine)
    yield seed(engine)
    engine.dispose()


# Every browser test server signs sessions with this key, so a restarted server keeps them.
BROWSER_SECRET = "browser-tests-secret"
# The user the `browser` fixture is signed in as (created by `server` in the module's store).
BROWSER_ADMIN = "browser-admin"


@pytest.fixture(scope="module")
def server(city):
    settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai", secret_key=BROWSER_SECRET)
    app = create_app(settings, engine=city.engine, testing=True)
    make_user(city.engine, "admin", username=BROWSER_ADMIN)
    with AsgiServer(app) as served:  # as production serves it: streams on the event loop
        yield served.url


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium shared by a module's tests (each test checks the console it produced)."""
    if chromium_paths() is None:
        skip_or_fail("headless Chromium (/usr/bin/chromium and /usr/bin/chromedriver) is not installed")
    driver = start_chromium(log_console=True)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, server):
    """The shared Chromium signed in as BROWSER_ADMIN, checked after each test: no console errors, no
    request to another host. A test that signs in as someone else (sign_in_browser) replaces the session."""
    if chromium.get_cookie("citybrain_session") is None:
        sign_in_browser(chromium, server, BROWSER_ADMIN, next_path="/healthz")
    chromium.get_log("browser")  # start clean: drop what an earlier test left
    yield chromium
    errors = [entry["message"] for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"browser console errors: {errors}"
    urls = chromium.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") or []
    foreign = [u for u in urls if not u.startswith(server) and not u.startswith("data:")]
    assert not foreign, f"requests left the machine: {foreign}"
