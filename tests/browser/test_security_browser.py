"""Security in headless Chromium: every screen runs under the Content-Security-Policy with no violation, and the
nav's sign-out button ends the session (issue 13, items 6 and 12)."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By

from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.chrome import click, wait_for

pytestmark = pytest.mark.browser

# Each screen with something on it that shows it has run its scripts (Dash rendered, the map or grid drawn).
SCREENS = (
    ("/?lang=en", "document.querySelector('.cb-kpi-open .cb-kpi-value') && document.querySelector('.leaflet-container')"),
    ("/wall?lang=en", "document.querySelector('.cb-wall .leaflet-container') || document.querySelector('.leaflet-container')"),
    ("/dispatch?lang=en", "document.querySelector('#dispatch-grid .ag-root')"),
    ("/trends?lang=en", "document.querySelector('.js-plotly-plot .main-svg')"),
    ("/admin?lang=en", "document.querySelector('#admin-users-grid .ag-row')"),
    ("/warnings?lang=en", "document.querySelector('.cb-nav')"),
    ("/inbox?lang=en", "document.querySelector('.cb-nav')"),
)
# Chromium reports a blocked script, style, image or frame on the console, naming the policy.
CSP_WORDS = ("Content Security Policy", "Content-Security-Policy", "Refused to")

# Collects violations the page reports to itself (securitypolicyviolation), from the moment it is installed.
WATCH_VIOLATIONS = """
window.__cspViolations = window.__cspViolations || [];
if (!window.__cspWatching) {
    window.__cspWatching = true;
    document.addEventListener('securitypolicyviolation', function (e) {
        window.__cspViolations.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
    });
}
"""


def _console_csp_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if any(word in e["message"] for word in CSP_WORDS)]


def test_every_screen_runs_under_the_policy_and_the_nav_button_signs_out(chromium, server, city):
    admin = make_user(city.engine, "admin", display_name="Security Admin")
    chromium.delete_all_cookies()
    chromium.get(f"{server}/login?lang=en")
    wait_for(chromium, "document.querySelector('#login-form')")
    sign_in_browser(chromium, server, admin["username"], next_path="/?lang=en")
    chromium.get_log("browser")  # start clean
    for path, ready in SCREENS:
        chromium.get(f"{server}{path}")
        chromium.execute_script(WATCH_VIOLATIONS)
        try:
            wait_for(chromium, ready, timeout=30)
        except AssertionError as exc:  # a blocked script shows as a screen that never draws: say why
            raise AssertionError(f"{path} did not draw; policy errors: {_console_csp_errors(chromium)}") from exc
        # Let the screen's first live updates and callbacks run under the policy too.
        wait_for(chromium, "document.readyState === 'complete' && !document.querySelector('._dash-loading')", timeout=15)
        violations = chromium.execute_script("return window.__cspViolations") or []
        assert not violations, f"{path}: {violations}"
        errors = _console_csp_errors(chromium)
        assert not errors, f"{path}: {errors}"

    # The nav's sign-out is a button (a POST with the CSRF token), not a link; on a phone's width the nav
    # wraps and the button stays on the screen (it once sat 400 px to the right of a 390 px screen).
    chromium.set_window_size(390, 844)
    try:
        chromium.get(f"{server}/dispatch?lang=en")
        wait_for(chromium, "document.querySelector('#nav-signout')", timeout=30)
        assert chromium.find_element(By.ID, "nav-signout").tag_name == "button"
        left, right, width = chromium.execute_script(
            "const r = document.querySelector('#nav-signout').getBoundingClientRect();"
            "return [r.left, r.right, document.documentElement.clientWidth]"
        )
        assert left >= 0 and right <= width, f"sign-out at {left}-{right} px on a {width} px wide screen"
        click(chromium, "#nav-signout")
    finally:
        chromium.set_window_size(1600, 1000)
    wait_for(chromium, "document.querySelector('#login-form')", timeout=10)
    assert "signed out" in chromium.find_element(By.ID, "login-message").text
    # The screen is gone for good: asking for it again goes to the sign-in page.
    chromium.get(f"{server}/dispatch?lang=en")
    wait_for(chromium, "document.querySelector('#login-form')", timeout=10)
    assert not _console_csp_errors(chromium)
