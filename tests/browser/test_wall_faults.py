"""A kiosk wall on PostgreSQL rides through a database outage and a stall: stale meanwhile, live again by itself, never signed out.

The database is reached through a TCP proxy this test starts (tests/tcp_proxy.py), which cuts
every connection (an outage) or holds them open and forwards nothing (a stall); the shared
PostgreSQL server is never touched.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest

from app import create_app
from dashboard.settings import Settings
from data import store
from data.accounts import users as accounts
from tests.asgi_server import AsgiServer
from tests.browser.chrome import start_chromium, wait_for
from tests.browser.conftest import seed
from tests.conftest import own_pg_schema
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]

FAULT_SECONDS = 20  # how long the outage and the stall last (the scenario)
LIVE_AGAIN_WITHIN = 10  # seconds after the restore


@pytest.fixture(scope="module")
def pg_city():
    """A small demo city in a PostgreSQL schema of its own; (city on a direct engine, schema name)."""
    with own_pg_schema() as (url, name):
        engine = store.make_engine(url)
        try:
            store.migrate(engine)
            yield seed(engine), name
        finally:
            engine.dispose()


@pytest.fixture
def wall_server(pg_city):
    """The app on uvicorn, its store reached through a proxy the test controls: (server url, proxy)."""
    _city, name = pg_city
    with TcpProxy(5432) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/test?options=-csearch_path%3D{name}"
        settings = Settings.from_env({}, live=False, build_demo=False, secret_key="faults", store_timeout=3)
        engine = store.make_engine(url, timeout=settings.store_timeout)
        app = create_app(settings, engine=engine, testing=True)
        with AsgiServer(app) as served:
            yield served.url, proxy
        engine.dispose()


def status_text(driver) -> str:
    return driver.execute_script("const s = document.querySelector('#overview-live-status'); return s ? s.textContent : ''")


def hold(driver, proxy_action, seconds: float) -> list[str]:
    """Apply a fault for `seconds`, watching the wall all along; the statuses it showed, in order."""
    proxy_action()
    shown: list[str] = []
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        path = driver.execute_script("return window.location.pathname")
        assert path == "/wall", f"the wall left for {path} during the fault"
        word = status_text(driver).split(" ")[0]
        if not shown or shown[-1] != word:
            shown.append(word)
        time.sleep(0.25)
    return shown


def answers_within(url: str, seconds: float) -> tuple[int, float]:
    """(status, seconds taken) of a GET, failing the test if it takes longer than `seconds`."""
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=seconds + 1) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    took = time.monotonic() - started
    assert took < seconds, f"{url} took {took:.1f} s"
    return status, took


def test_a_kiosk_wall_rides_through_an_outage_and_a_stall(pg_city, wall_server):
    city, _name = pg_city
    base, proxy = wall_server
    with city.engine.begin() as conn:
        token, _row = accounts.create_kiosk_token(conn, "wall, faults", None, "cli:test")
    driver = start_chromium(log_console=True)
    try:
        driver.set_window_size(1920, 1080)
        driver.get(f"{base}/kiosk/{token}?lang=en")
        wait_for(
            driver, "window.location.pathname === '/wall' && window.citybrain && window.citybrain.liveState.status === 'live'", 30
        )
        open_before = int(
            wait_for(driver, "document.querySelector('.cb-kpi-open') && document.querySelector('.cb-kpi-open').dataset.value", 20)
        )

        # An outage: every connection cut, new ones refused.
        shown = hold(driver, proxy.cut, FAULT_SECONDS)
        assert "Stale" in shown, f"the wall never said stale during the outage: {shown}"
        restored = time.monotonic()
        proxy.restore()
        wait_for(driver, "document.querySelector('#overview-live-status').textContent.startsWith('Live')", LIVE_AGAIN_WITHIN)
        assert time.monotonic() - restored < LIVE_AGAIN_WITHIN

        # A stall: connections accepted, nothing answered. Health and readiness still answer quickly.
        stalled = time.monotonic()
        proxy.stall()
        wait_for(driver, "document.querySelector('#overview-live-status').textContent.startsWith('Stale')", FAULT_SECONDS)
        assert answers_within(f"{base}/healthz", 2.0)[0] == 503
        assert answers_within(f"{base}/readyz", 2.0)[0] == 503
        shown = hold(driver, lambda: None, max(FAULT_SECONDS - (time.monotonic() - stalled), 0))
        assert shown in ([], ["Stale"]), f"the wall showed {shown} while the store hung"
        restored = time.monotonic()
        proxy.restore()
        wait_for(driver, "document.querySelector('#overview-live-status').textContent.startsWith('Live')", LIVE_AGAIN_WITHIN)
        assert time.monotonic() - restored < LIVE_AGAIN_WITHIN
        assert answers_within(f"{base}/healthz", 2.0)[0] == 200

        # And it is really live: a new report reaches the wall's figures.
        city.report(city.units["grid"][5])
        wait_for(driver, f"Number(document.querySelector('.cb-kpi-open').dataset.value) === {open_before + 1}", 15)
        assert driver.execute_script("return window.location.pathname") == "/wall"
    finally:
        driver.quit()
