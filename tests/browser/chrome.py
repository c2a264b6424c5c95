"""Headless Debian Chromium for browser tests and benchmarks: one set of flags, one driver factory, one wait."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

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
# Several screens in one browser: none may be slowed down for being in the background.
UNTHROTTLED_FLAGS = (
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
)


def chromium_paths() -> tuple[str, str] | None:
    """(chromium, chromedriver) when both are installed, else None."""
    browser = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    driver = str(CHROMEDRIVER) if CHROMEDRIVER.exists() else shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def start_chromium(extra_flags=(), log_console: bool = False, page_load_timeout: float = 30):
    """A new headless Chromium driven by selenium (the caller quits it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if paths is None:
        raise RuntimeError("headless Chromium (/usr/bin/chromium and /usr/bin/chromedriver) is not installed")
    options = Options()
    options.binary_location = paths[0]
    for flag in (*CHROME_FLAGS, *extra_flags):
        options.add_argument(flag)
    if log_console:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    return driver


def wait_for(driver, script: str, timeout: float = 10.0, interval: float = 0.05, error: type[Exception] = AssertionError):
    """Poll a JavaScript expression until it is truthy; its value (`error` is raised on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = driver.execute_script(f"try {{ return ({script}); }} catch (e) {{ return null; }}")
        if value:
            return value
        if time.monotonic() > deadline:
            raise error(f"timed out waiting for: {script}")
        time.sleep(interval)


def click(driver, css: str, timeout: float = 10.0) -> None:
    """Wait for the element `css` selects and click it, finding it again if the page redraws it in between
    (Dash replaces a list's children on every live update, which turns a found element stale)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    deadline = time.monotonic() + timeout
    while True:
        wait_for(driver, f"document.querySelector({css!r})", timeout=timeout)
        try:
            driver.find_element(By.CSS_SELECTOR, css).click()
            return
        except StaleElementReferenceException:
            if time.monotonic() > deadline:
                raise
