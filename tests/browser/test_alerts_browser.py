"""Early warnings in headless Chromium: alerts raised by the engine appear on the overview (list and rings) and the
wall, a click flies the map there, a dispatcher dismisses one (a reason is required) and turns one into a case that
opens on the dispatch desk, and a new alert arrives without a reload."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By

from data.warnings import alerts as warnings
from data.warnings import sensitivity
from tests.auth_helpers import make_user, sign_in_browser, sign_out_browser
from tests.browser.chrome import click, wait_for
from tests.browser.map_labels import LABELS_ON_RINGS, SHOWN_LABELS

pytestmark = pytest.mark.browser


def _finding(city, grid: dict, kind: str, observed: float, tag: str) -> dict:
    return {
        "kind": kind,
        "condition_key": f"browser:{tag}:{grid['id']}",
        "score": observed,
        "observed": observed,
        "expected": 2.0,
        "unit_id": grid["id"],
        "category_id": city.category_id,
        "lon": grid["lon"],
        "lat": grid["lat"],
        "reason_en": f"{observed:g} reports in {grid['name_en']} ({tag}); 2 expected",
        "reason_zh": f"{grid['name_zh']} {observed:g}件（{tag}），预期2件",
        "details": {},
    }


def raise_alerts(city, findings: list[dict]) -> list[int]:
    """Raise alerts the way the detection pass does (data.warnings.alerts.record_findings); their ids, in order."""
    with city.engine.begin() as conn:
        warnings.record_findings(conn, findings, (), datetime.now(UTC))  # kinds_run=(): clears nothing
    with city.engine.connect() as conn:
        by_key = {a["condition_key"]: a["id"] for a in warnings.list_alerts(conn, statuses=None, limit=500)}
    return [by_key[f["condition_key"]] for f in findings]


def alert(city, alert_id: int) -> dict:
    with city.engine.connect() as conn:
        return warnings.get_alert(conn, alert_id)


def item(alert_id: int) -> str:
    return f".cb-alert[data-alert='{alert_id}']"


def present(alert_id: int) -> str:
    return f"!!document.querySelector({item(alert_id)!r})"


def open_overview(driver, url: str):
    driver.get(url)
    wait_for(driver, "window.citybrain && Object.keys(window.citybrain.unitLayers || {}).length > 0", timeout=20)
    wait_for(driver, "document.querySelector('#alerts-panel')", timeout=20)


@pytest.fixture(scope="module")
def seeded(city):
    grids = city.units["grid"]
    findings = [
        _finding(city, grids[0], "surge", 30, "first"),
        _finding(city, grids[40], "hotspot", 20, "second"),
        _finding(city, grids[80], "chronic", 10, "third"),
    ]
    return raise_alerts(city, findings)


@pytest.fixture(scope="module")
def dispatcher(city):
    return make_user(city.engine, "dispatcher", username="alert-operator")


def test_alerts_show_on_the_overview_and_a_dispatcher_dismisses_one_with_a_reason(browser, server, city, seeded, dispatcher):
    first, second, third = seeded
    sign_out_browser(browser, server)
    sign_in_browser(browser, server, dispatcher["username"], next_path="/?lang=en")
    open_overview(browser, f"{server}/?lang=en")
    for alert_id in seeded:
        wait_for(browser, present(alert_id), timeout=15)
    # Ranked by score: the surge first, with its reason and numbers in words, and a numbered ring on the map.
    first_text = browser.find_element(By.CSS_SELECTOR, item(first)).text
    assert "Surge" in first_text and "30 reports in" in first_text and "30 seen, 2 expected" in first_text
    assert browser.find_element(By.CSS_SELECTOR, f"{item(first)} .cb-alert-rank").text == "1"
    wait_for(browser, "document.querySelectorAll('.cb-alert-marker').length === 3", timeout=10)

    # A click on the alert flies the map to it.
    click(browser, f"{item(third)} .cb-alert-focus")
    grid = city.units["grid"][80]
    wait_for(
        browser,
        f"window.citybrain.map.getZoom() >= 15 && window.citybrain.map.getCenter().distanceTo([{grid['lat']}, {grid['lon']}]) < 300",
        timeout=10,
    )
    # And a click on its ring brings it forward in the list.
    wait_for(browser, f"window.citybrain.alertMarkers['{third}'] && window.citybrain.alertMarkers['{third}'].getElement()")
    time.sleep(0.8)  # the flight has landed
    browser.execute_script(f"return window.citybrain.alertMarkers['{third}'].getElement()").click()
    wait_for(browser, f"document.querySelector({item(third)!r}).classList.contains('cb-alert-picked')")

    # Dismiss without a reason: refused, said so, nothing changed.
    browser.execute_script("window.__notReloaded = true;")
    click(browser, f"{item(second)} button[id*='alerts-dismiss']")
    wait_for(browser, "!document.querySelector('#alerts-prompt').hidden")
    click(browser, "#alerts-prompt-ok")
    wait_for(browser, "document.querySelector('#alerts-message').textContent.includes('A reason is required')")
    assert alert(city, second)["status"] == "open"
    assert browser.execute_script(f"return {present(second)}")

    browser.find_element(By.ID, "alerts-reason").send_keys("known street market, not a surge")
    click(browser, "#alerts-prompt-ok")
    wait_for(browser, f"!document.querySelector({item(second)!r})", timeout=10)
    wait_for(browser, "document.querySelectorAll('.cb-alert-marker').length === 2", timeout=10)
    stored = alert(city, second)
    assert (stored["status"], stored["acted_by"], stored["act_note"]) == (
        "dismissed",
        "alert-operator",
        "known street market, not a surge",
    )

    # A new alert raised by the engine arrives without a reload (the panel polls /alerts/head).
    (fresh,) = raise_alerts(city, [_finding(city, city.units["grid"][120], "surge", 50, "fresh")])
    wait_for(browser, present(fresh), timeout=15)
    assert browser.execute_script("return window.__notReloaded === true")
    assert browser.find_element(By.CSS_SELECTOR, f"{item(fresh)} .cb-alert-rank").text == "1"

    # The server out of reach: the panel says it is not updating, and stops saying so once it answers again.
    assert not browser.find_element(By.ID, "alerts-stale").is_displayed()
    browser.execute_script(
        "window.__fetch = window.fetch; window.citybrain.ALERTS_STALE_AFTER_MS = 0;"
        "window.fetch = (url, o) => String(url).includes('/alerts/head') ? Promise.reject(new Error('offline')) : window.__fetch(url, o);"
    )
    wait_for(browser, "!document.getElementById('alerts-stale').hidden", timeout=10)
    assert browser.find_element(By.ID, "alerts-stale").text == "not updating"
    browser.execute_script("window.fetch = window.__fetch;")
    wait_for(browser, "document.getElementById('alerts-stale').hidden", timeout=10)


def test_an_alert_turned_into_a_case_opens_on_the_dispatch_desk(browser, server, city, seeded, dispatcher):
    (target,) = raise_alerts(city, [_finding(city, city.units["grid"][20], "chronic", 12, "case")])
    sign_out_browser(browser, server)
    sign_in_browser(browser, server, dispatcher["username"], next_path="/?lang=zh")
    open_overview(browser, f"{server}/?lang=zh")
    wait_for(browser, present(target), timeout=15)
    click(browser, f"{item(target)} button[id*='alerts-case']")
    wait_for(browser, "document.querySelector('#alerts-message a.cb-alert-case-link')", timeout=10)
    incident_id = alert(city, target)["case_incident_id"]
    link = browser.find_element(By.CSS_SELECTOR, "#alerts-message a.cb-alert-case-link")
    assert link.get_attribute("href").endswith(f"/dispatch?incident={incident_id}")
    assert f"#{incident_id}" in browser.find_element(By.ID, "alerts-message").text
    wait_for(browser, f"!document.querySelector({item(target)!r})", timeout=10)
    link.click()
    wait_for(
        browser,
        f"document.querySelector('#dispatch-panel') && document.querySelector('#dispatch-panel').textContent.includes('#{incident_id}')",
        timeout=20,
    )


def test_the_wall_shows_the_alerts_large_and_read_only(browser, server, city, seeded, dispatcher):
    sign_out_browser(browser, server)
    sign_in_browser(browser, server, dispatcher["username"], next_path="/wall?lang=zh")
    open_overview(browser, f"{server}/wall?lang=zh")
    wait_for(browser, "document.querySelectorAll('.cb-wall .cb-alert').length >= 2", timeout=15)
    assert (
        browser.execute_script("return document.querySelectorAll('.cb-wall .cb-alert-btn, .cb-wall .cb-alert-focus').length") == 0
    )
    assert "预测预警" in browser.find_element(By.ID, "alerts-panel").text
    wait_for(browser, "document.querySelectorAll('.cb-alert-marker').length >= 2", timeout=10)
    # Readable from metres away: the reason is no smaller than the wall's body type (which follows the screen height).
    reason, body = browser.execute_script(
        "return [parseFloat(getComputedStyle(document.querySelector('.cb-wall .cb-alert-reason')).fontSize),"
        " parseFloat(getComputedStyle(document.querySelector('.cb-wall')).fontSize)]"
    )
    assert reason >= body >= 14
    # Side by side and inside the panel: a long place name is cut with an ellipsis, never pushed off the wall.
    overflow = browser.execute_script(
        "const panel = document.getElementById('alerts-panel').getBoundingClientRect();"
        "return [...document.querySelectorAll('.cb-wall .cb-alert')].map(a => a.getBoundingClientRect().right - panel.right);"
    )
    assert len(overflow) == 2 and max(overflow) <= 1, overflow
    # With the alerts' row the charts have less height: the breakdown's category names still never overlap.
    names = wait_for(
        browser,
        "(() => { const boxes = [...document.querySelectorAll('#overview-breakdown .ytick text')].map(e => e.getBoundingClientRect());"
        " return boxes.length >= 2 && boxes.map(r => [r.top, r.bottom]); })()",
        timeout=15,
    )
    names.sort()
    assert all(upper[1] <= lower[0] + 0.5 for upper, lower in itertools.pairwise(names)), names


def test_a_label_moves_off_an_alert_ring_and_comes_back_when_the_alert_goes(browser, server, city, seeded, dispatcher):
    sign_out_browser(browser, server)
    sign_in_browser(browser, server, dispatcher["username"], next_path="/?lang=en")
    open_overview(browser, f"{server}/?lang=en")
    wait_for(browser, "window.citybrain.labelsShown > 0 && document.querySelectorAll('.cb-alert-marker').length >= 2", timeout=15)
    # A district whose label is shown on its centre, clear of every ring; an alert is raised right under it.
    district_id, lat, lon = wait_for(
        browser,
        "(() => { const rings = [...document.querySelectorAll('.cb-alert-marker')].map(e => e.getBoundingClientRect());"
        " for (const [id, layer] of Object.entries(window.citybrain.unitLayers)) {"
        "  const tip = layer.getTooltip(), el = tip && tip.getElement();"
        "  const o = window.L.point(tip.options.offset || [0, 0]);"
        f"  if (!el || !{SHOWN_LABELS}.includes(el) || o.x || o.y) {{ continue; }}"
        "  const a = el.getBoundingClientRect();"
        "  if (rings.some(b => !(a.right + 40 <= b.left || b.right <= a.left - 40 || a.bottom + 40 <= b.top || b.bottom <= a.top - 40))) { continue; }"
        "  const at = tip.getLatLng(); return [Number(id), at.lat, at.lng]; } return null; })()",
    )
    grid = min(
        (g for g in city.units["grid"] if g["district_id"] == district_id),
        key=lambda g: (g["lat"] - lat) ** 2 + (g["lon"] - lon) ** 2,
    )
    (under,) = raise_alerts(city, [_finding(city, {**grid, "lat": lat, "lon": lon}, "surge", 60, "under-label")])
    # Where the district's label is: [shown, its offset from the centre in px].
    label = (
        f"(() => {{ const tip = window.citybrain.unitLayers['{district_id}'].getTooltip(), o = window.L.point(tip.options.offset || [0, 0]);"
        " return [!tip.getElement().classList.contains('cb-label-clash'), o.x, o.y]; })()"
    )
    wait_for(
        browser, f"!!(window.citybrain.alertMarkers['{under}'] && window.citybrain.alertMarkers['{under}']._map)", timeout=15
    )
    # The label stays readable beside the ring (a spot near the centre is free), and no label covers a ring.
    shown, dx, dy = wait_for(browser, f"(([shown, x, y]) => shown && (x || y) && [shown, x, y])({label})", timeout=5)
    assert shown and (dx, dy) != (0, 0)
    assert browser.execute_script(f"return {LABELS_ON_RINGS}") == []

    # The alert dismissed (by another operator): its ring goes and the label is back on the district's centre.
    with city.engine.begin() as conn:
        warnings.act_on_alert(conn, under, "dismiss", actor="other-operator", note="a fair, expected")
    wait_for(browser, f"!window.citybrain.alertMarkers['{under}']", timeout=15)  # off the map and forgotten
    wait_for(browser, f"(([shown, x, y]) => shown && !x && !y)({label})", timeout=5)
    assert browser.execute_script(f"return {LABELS_ON_RINGS}") == []


def test_an_administrator_switches_a_category_off_on_the_warnings_page(browser, server, city, seeded):
    admin = make_user(city.engine, "admin", username="alert-admin")
    sign_out_browser(browser, server)
    sign_in_browser(browser, server, admin["username"], next_path="/warnings?lang=en")
    browser.get(f"{server}/warnings?lang=en")
    wait_for(browser, f"document.querySelector({item_row(seeded[0])!r})", timeout=20)
    checkbox = f"#warnings-settings .ag-row[row-id='{city.category_id}'] .ag-cell[col-id='enabled'] input"
    wait_for(browser, f"!!window.dash_ag_grid.getApi('warnings-settings').getRowNode('{city.category_id}')", timeout=20)
    browser.execute_script(
        "const api = window.dash_ag_grid.getApi('warnings-settings'); api.ensureNodeVisible(api.getRowNode(arguments[0]), 'top');",
        str(city.category_id),
    )
    wait_for(browser, f"document.querySelector({checkbox!r})", timeout=20)
    browser.find_element(By.CSS_SELECTOR, checkbox).click()
    wait_for(browser, "document.querySelector('#warnings-message').textContent.includes('off')", timeout=10)
    with city.engine.connect() as conn:
        setting = next(s for s in sensitivity.get_settings(conn) if s["category_id"] == city.category_id)
    assert (setting["enabled"], setting["updated_by"]) == (False, "alert-admin")
    wait_for(browser, f"document.querySelector({checkbox!r}).checked === false")


def item_row(alert_id: int) -> str:
    return f".cb-alert-row[data-alert='{alert_id}']"
