"""Sign-in in headless Chromium: a dispatcher and a viewer see different screens; a revoked kiosk wall shows the sign-in page."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from dashboard.live import hub, streams
from data.accounts import users as accounts
from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.chrome import wait_for

pytestmark = pytest.mark.browser


def _drain_expected(driver, *expected: str) -> None:
    """Read the console now: refusals this test caused on purpose (403/401) are expected, nothing else."""
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    unexpected = [m for m in errors if not any(code in m for code in expected)]
    assert not unexpected, f"browser console errors: {unexpected}"


def _nav_links(driver) -> list[str]:
    return [a.get_attribute("pathname") for a in driver.find_elements(By.CSS_SELECTOR, ".cb-nav a.cb-nav-link")]


def test_a_dispatcher_and_a_viewer_see_the_difference(browser, server, city):
    dispatcher = make_user(city.engine, "dispatcher", display_name="Desk Wang")
    viewer = make_user(city.engine, "viewer", display_name="Viewer Li")

    sign_in_browser(browser, server, dispatcher["username"], next_path="/dispatch?lang=en")
    wait_for(browser, "document.querySelector('#dispatch-grid .ag-row')", timeout=30)
    assert "/dispatch" in _nav_links(browser) and "/trends" not in _nav_links(browser)
    assert "Desk Wang" in browser.find_element(By.ID, "nav-user").text
    assert browser.find_elements(By.ID, "dispatch-batch"), "the dispatcher has the desk's controls"

    browser.find_element(By.ID, "nav-signout").click()
    wait_for(browser, "document.querySelector('#login-form')", timeout=10)
    assert "signed out" in browser.find_element(By.ID, "login-message").text

    sign_in_browser(browser, server, viewer["username"], next_path="/?lang=en")
    wait_for(browser, "document.querySelector('.cb-kpi-open .cb-kpi-value')", timeout=30)
    links = _nav_links(browser)
    assert "/" in links and "/dispatch" not in links and "/inbox" not in links
    assert not browser.find_elements(By.ID, "dispatch-batch")
    # Typing the desk's address is refused by the server, not just hidden.
    browser.get(f"{server}/dispatch?lang=en")
    wait_for(browser, "document.querySelector('#refused-title')", timeout=10)
    assert not browser.find_elements(By.ID, "dispatch-grid")
    _drain_expected(browser, "403")


def test_a_revoked_kiosk_wall_shows_the_sign_in_page(browser, server, city, monkeypatch):
    # Sign-ins are checked again every 10 s in production; every second here (the server runs in this
    # process), so the wall's way to the sign-in page is what is timed, not the period.
    monkeypatch.setattr(hub, "SESSION_CHECK_SECONDS", 1.0)
    monkeypatch.setattr(streams, "SESSION_CHECK_SECONDS", 1.0)
    district = city.units["district"][0]
    with city.engine.begin() as conn:
        token, row = accounts.create_kiosk_token(conn, "wall, room 3", district["id"], "cli:test")
    browser.delete_all_cookies()
    browser.get(f"{server}/kiosk/{token}?lang=en")
    wait_for(
        browser, "window.citybrain && window.citybrain.liveState && window.citybrain.liveState.status === 'live'", timeout=30
    )
    assert browser.current_url.endswith("/wall?lang=en")
    assert district["name_en"] in browser.find_element(By.ID, "overview-breadcrumb").text  # the wall shows its unit

    with city.engine.begin() as conn:
        accounts.revoke_kiosk_token(conn, row["id"])
    # The live stream ends with the session; the wall, reconnecting, is refused and says so.
    wait_for(browser, "document.querySelector('#login-form')", timeout=60)
    assert "/login" in browser.current_url and "next=%2Fwall" in browser.current_url
    assert "session ended" in browser.find_element(By.ID, "login-message").text
    assert "cb-login-wall" in browser.find_element(By.TAG_NAME, "body").get_attribute("class")
    _drain_expected(browser, "401")
    browser.delete_all_cookies()  # the next test's browser fixture signs in afresh
