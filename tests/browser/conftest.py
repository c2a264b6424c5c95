"""Browser test fixtures: a small seeded store served by Dash's own server in a thread, and headless Chromium.

Chromium and chromedriver are Debian's (/usr/bin/chromium, /usr/bin/chromedriver); without
them the tests skip locally and fail in CI (tests.conftest.skip_or_fail).
"""

from __future__ import annotations

import random
import shutil
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from dashboard.server import create_app
from dashboard.settings import Settings
from data import store
from data.incidents import apply_action, report_incidents
from data.locate import GridLocator
from tests.conftest import skip_or_fail
from tests.factories import make_category, make_department
from tests.overview_city import build_tiny_city

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROME_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1600,1000",
)


@dataclass
class City:
    """The seeded store the browser looks at, and how a test adds to it."""

    engine: object
    units: dict
    categories: list[int]
    departments: dict[str, int]
    locator: GridLocator
    serial: int = 0
    reported: list[int] = field(default_factory=list)

    def report(self, grid: dict, priority: int = 1) -> int:
        """Report one incident in the middle of `grid`, as an intake channel would; returns its id."""
        self.serial += 1
        minx, miny, maxx, maxy = grid["box"]
        with self.engine.begin() as conn:
            (result,) = report_incidents(
                conn,
                [
                    {
                        "source": "browser-test",
                        "external_id": f"bt-{self.serial}",
                        "category_id": self.categories[0],
                        "priority": priority,
                        "lon": (minx + maxx) / 2,
                        "lat": (miny + maxy) / 2,
                    }
                ],
                actor="browser-test",
                locator=self.locator,
            )
        self.reported.append(result.incident_id)
        return result.incident_id


def seed(engine, incidents: int = 160, seed_value: int = 7) -> City:
    """The tiny city with three departments, four categories and a day and a half of incidents in various states."""
    units = build_tiny_city(engine)
    rng = random.Random(seed_value)
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        departments = {
            code: make_department(conn, code, name_en=en, name_zh=zh)
            for code, en, zh in (("cg", "City management", "城管"), ("zj", "Housing", "住建"), ("ga", "Police", "公安"))
        }
        categories = [
            make_category(conn, "garbage", departments["cg"]),
            make_category(conn, "road", departments["zj"], sector="economy"),
            make_category(conn, "noise", departments["ga"], sector="safety"),
        ]
        locator = GridLocator.from_conn(conn)
        for k in range(incidents):
            grid = rng.choice(units["grid"])
            minx, miny, maxx, maxy = grid["box"]
            reported_at = now - timedelta(minutes=rng.randint(60, 36 * 60))
            category = rng.choice(categories)
            (result,) = report_incidents(
                conn,
                [
                    {
                        "source": "seed",
                        "external_id": f"s{k}",
                        "category_id": category,
                        "priority": rng.choice((1, 2, 3, 3)),
                        "lon": rng.uniform(minx, maxx),
                        "lat": rng.uniform(miny, maxy),
                        "reported_at": reported_at,
                    }
                ],
                actor="seed",
                locator=locator,
                now=reported_at,
            )
            steps = rng.choice((0, 1, 2, 3, 5, 5))
            path = ["register", "dispatch", "acknowledge", "resolve", "verify_pass"][:steps]
            at = reported_at
            owner = {categories[0]: "cg", categories[1]: "zj", categories[2]: "ga"}[category]
            for action in path:
                at = min(at + timedelta(minutes=rng.randint(5, 40)), now)
                extra = {"department_id": departments[owner]} if action == "dispatch" else {}
                apply_action(conn, result.incident_id, action, actor="seed", at=at, **extra)
    return City(engine, units, categories, departments, locator)


class ServerThread(threading.Thread):
    """Dash's own Flask server (werkzeug) on a free port, in a daemon thread."""

    def __init__(self, app):
        super().__init__(daemon=True)
        self.server = make_server("127.0.0.1", 0, app.server, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def run(self):
        self.server.serve_forever()

    def stop(self):
        self.server.shutdown()


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('browser') / 'store.db'}")
    store.migrate(engine)
    yield seed(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def server(city):
    settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai")
    app = create_app(settings, engine=city.engine, testing=True)
    thread = ServerThread(app)
    thread.start()
    yield thread.url
    thread.stop()


@pytest.fixture(scope="module")
def chromium():
    """A headless Chromium shared by a module's tests (each test checks the console it produced)."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and not (shutil.which("chromium") and shutil.which("chromedriver")):
        skip_or_fail("headless Chromium (/usr/bin/chromium and /usr/bin/chromedriver) is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM if CHROMIUM.exists() else shutil.which("chromium"))
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER if CHROMEDRIVER.exists() else shutil.which("chromedriver"))), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def browser(chromium, server):
    """The shared Chromium, checked after each test: no console errors, no request to another host."""
    chromium.get_log("browser")  # start clean: drop what an earlier test left
    yield chromium
    errors = [entry["message"] for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"browser console errors: {errors}"
    urls = chromium.execute_script("return performance.getEntriesByType('resource').map(e => e.name)") or []
    foreign = [u for u in urls if not u.startswith(server) and not u.startswith("data:")]
    assert not foreign, f"requests left the machine: {foreign}"
