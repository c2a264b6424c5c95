"""The wall through a server restart: it keeps its figures and says "stale", then reconnects by itself and catches up."""

from __future__ import annotations

import re
import socket
import time

import pytest

from app import create_app
from dashboard.settings import Settings
from tests.asgi_server import AsgiServer
from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.conftest import BROWSER_SECRET
from tests.browser.test_overview_browser import open_page, shown_kpis, wait_for

pytestmark = pytest.mark.browser

NETWORK_FAILURE = re.compile(r"Failed to load resource: net::ERR_|Failed to fetch")


class RestartableServer:
    """The app served as in production (uvicorn) in a thread, on a port that stays the same across stop() and start().

    stop() also cuts the connections still open (the wall's event stream), as a dying process would;
    start() builds the app afresh against the same store, as a restarted process does.
    """

    def __init__(self, engine):
        self.engine = engine
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.served = None

    def start(self) -> None:
        settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai", secret_key=BROWSER_SECRET)
        app = create_app(settings, engine=self.engine, testing=True)
        self.served = AsgiServer(app, port=self.port).start()

    def stop(self) -> None:
        self.served.stop()


@pytest.fixture
def restartable(city):
    server = RestartableServer(city.engine)
    server.start()
    yield server
    server.stop()


def still_showing(driver) -> tuple[int, str | None]:
    """(units drawn on the map, the open-backlog figure): what a wall with nothing on it would lose."""
    return driver.execute_script(
        "const card = document.querySelector('.cb-kpi-open');"
        "return [Object.values(window.citybrain.unitLayers).filter(l => l._map).length, card ? card.dataset.value : null]"
    )


def wait_never_blank(driver, script: str, timeout: float, figures: set) -> None:
    """Wait for `script`, checking every step that the map and the KPI figures are still on screen."""
    deadline = time.monotonic() + timeout
    while not driver.execute_script(f"try {{ return !!({script}); }} catch (e) {{ return false; }}"):
        drawn, open_figure = still_showing(driver)
        assert drawn > 0, "the map went blank"
        assert open_figure not in (None, ""), "the KPI cards went blank"
        figures.add(open_figure)
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {script}")
        time.sleep(0.25)


def test_the_wall_says_stale_while_the_server_is_down_and_catches_up_when_it_returns(chromium, city, restartable):
    driver = chromium
    driver.get_log("browser")
    driver.set_window_size(1920, 1080)
    viewer = make_user(city.engine, "viewer")
    sign_in_browser(driver, restartable.url, viewer["username"], next_path="/healthz")
    try:
        open_page(driver, restartable.url + "/wall?lang=en")
        wait_for(driver, "window.citybrain.liveState.status === 'live'")
        driver.execute_script("window.__notReloaded = true")
        before = shown_kpis(driver)["open"]
        drawn_before, _ = still_showing(driver)

        restartable.stop()
        seen: set = set()
        # Within the page's stale limit (12 s without a word) plus one polling period, it says so.
        wait_never_blank(driver, "document.querySelector('#overview-live-status').textContent.startsWith('Stale')", 25, seen)
        assert "cb-live-stale" in driver.find_element("id", "overview-live-status").get_attribute("class")
        assert seen == {str(int(before))}, "the last figures stay on screen while the server is away"
        assert still_showing(driver)[0] == drawn_before

        # A change lands in the store while the server is down; the server comes back on the same port.
        city.report(city.units["grid"][3])
        restartable.start()
        wait_never_blank(driver, f"Number(document.querySelector('.cb-kpi-open').dataset.value) === {before + 1}", 25, seen)
        wait_never_blank(driver, "document.querySelector('#overview-live-status').textContent.startsWith('Live')", 25, seen)
        assert driver.execute_script("return window.__notReloaded === true"), "the page reloaded"
    finally:
        driver.set_window_size(1600, 1000)
    # Requests cut or refused while the server was away are expected; nothing else may go wrong.
    errors = [
        entry["message"]
        for entry in driver.get_log("browser")
        if entry["level"] == "SEVERE" and not NETWORK_FAILURE.search(entry["message"])
    ]
    assert not errors, f"browser console errors: {errors}"
