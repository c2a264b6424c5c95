"""The leaders' review map in a real Chromium: units coloured by the chosen rate as the store has it, a legend,
and a click on a unit that drills the review into it (the URL and every figure follow)."""

from __future__ import annotations

import json
import time

from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By

from data import store
from data.metrics import rollups, trends
from data.times import utc_now
from layers import rate_choropleth
from tests.browser.chrome import wait_for

TZ = "Asia/Shanghai"


def direct_review(city, **kwargs):
    """The review straight from the raw incidents (never the roll-up)."""
    with store.reading(city.engine) as conn:
        return trends.review(conn, kwargs.pop("scope", None), utc_now(), TZ, use_rollups=False, **kwargs)


def drawn(browser) -> dict:
    return browser.execute_script("return (window.citybrain && window.citybrain.trendsMapDrawn) || {};")


def wait_drawn(browser, unit_ids: set[int], rate: str) -> dict:
    """The map's drawn units once they are exactly `unit_ids`, coloured by `rate`."""
    want = json.dumps(sorted(str(u) for u in unit_ids), separators=(",", ":"))
    script = (
        "(() => { const ns = window.citybrain || {}; const h = ns.trendsMapHideout, d = ns.trendsMapDrawn;"
        f" return !!(h && d && h.rate === {json.dumps(rate)} && JSON.stringify(Object.keys(d).sort()) === {json.dumps(want)}); }})()"
    )
    wait_for(browser, script, timeout=40)
    return drawn(browser)


def assert_matches_store(shown: dict, units: list[dict], rate: str) -> None:
    for u in units:
        got = shown[str(u["unit_id"])]
        assert got["rate"] == u[rate], (u["name_en"], got, u[rate])
        assert got["fill"] == rate_choropleth.colour_of(u[rate])


def click_inside(browser, unit_id: int) -> None:
    """A real mouse click on a point inside the unit's drawn shape (found with elementFromPoint)."""
    # Scrolled first, in a call of its own: hit tests in the same script as the scroll can see the old layout.
    # Charts above the map may still be drawing and push it down after the scroll: scroll again until the
    # shape holds still in view.
    deadline = time.monotonic() + 10
    while True:
        browser.execute_script(
            "document.querySelector(arguments[0]).scrollIntoView({block: 'center'});", f"path.cb-trends-unit-{unit_id}"
        )
        time.sleep(0.3)
        point = _point_inside(browser, unit_id)
        if point:
            time.sleep(0.2)
            if _point_inside(browser, unit_id) == point:  # the layout has settled
                break
        if time.monotonic() > deadline:
            break
    assert point, f"no clickable point inside unit {unit_id}"
    actions = ActionBuilder(browser)  # viewport coordinates, as getBoundingClientRect gives them
    actions.pointer_action.move_to_location(int(point[0]), int(point[1]))
    actions.pointer_action.click()
    actions.perform()


def _point_inside(browser, unit_id: int) -> list[int] | None:
    """A point well inside the unit's shape as drawn now, or None (none in view)."""
    return browser.execute_script(
        """
        const path = document.querySelector(arguments[0]);
        const r = path.getBoundingClientRect();
        // Whole pixels (the mouse moves by them), as far inside the shape as it allows: a point on the
        // border with a neighbour would send the click to the neighbour; a small street has little room.
        const inside = (x, y, m) => [[0, 0], [m, 0], [-m, 0], [0, m], [0, -m]].every(
          ([dx, dy]) => document.elementFromPoint(x + dx, y + dy) === path);
        for (const margin of [4, 2, 0])
          for (let fy = 0.5; fy < 1; fy += 0.05) for (const sy of [1, -1]) for (let fx = 0.5; fx < 1; fx += 0.05)
            for (const sx of [1, -1]) {
              const x = Math.round(r.left + r.width * (0.5 + sx * (fx - 0.5)));
              const y = Math.round(r.top + r.height * (0.5 + sy * (fy - 0.5)));
              if (inside(x, y, margin)) return [x, y];
            }
        return null;
        """,
        f"path.cb-trends-unit-{unit_id}",
    )


def test_rate_map_colours_units_and_a_click_drills_in(browser, server, city):
    # The page reads the roll-up (as it does when served); the store's figures come from the raw rows.
    with city.engine.begin() as conn:
        rollups.refresh(conn, TZ)
    browser.get(f"{server}/trends?period=30&lang=en")
    want = direct_review(city, days=30)
    shown = wait_drawn(browser, {u["unit_id"] for u in want["units"]}, "on_time_rate")
    assert_matches_store(shown, want["units"], "on_time_rate")
    legend = browser.find_element(By.ID, "trends-map-legend").text
    assert "On-time rate" in legend and "≥ 95%" in legend and "No data" in legend

    # Every chart exports itself as PNG in the browser (Plotly's camera button), offline: no server renderer.
    for key in ("volume", "rates", "times", "sectors", "rising", "units", "heat"):
        graph = f"#trends-chart-{key} .js-plotly-plot"
        titles = browser.execute_script(
            "return [...document.querySelectorAll(arguments[0] + ' .modebar-btn')].map(b => b.getAttribute('data-title'));",
            f"#trends-chart-{key}",
        )
        assert any("png" in (title or "").lower() for title in titles), (key, titles)
        png = browser.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "Plotly.toImage(document.querySelector(arguments[0]), {format: 'png', width: 600, height: 300})"
            ".then(done, e => done('error: ' + e));",
            graph,
        )
        assert png.startswith("data:image/png;base64,") and len(png) > 2000, (key, png[:80])

    # Another rate: the same units recoloured by satisfaction.
    browser.find_element(By.CSS_SELECTOR, "#trends-rate .dash-dropdown-trigger, #trends-rate").click()
    option = "//*[contains(@class, 'dash-dropdown-option')][contains(., 'Satisfaction rate')]"
    wait_for(browser, f"document.evaluate({json.dumps(option)}, document, null, 9, null).singleNodeValue")
    browser.find_element(By.XPATH, option).click()
    shown = wait_drawn(browser, {u["unit_id"] for u in want["units"]}, "satisfaction_rate")
    assert_matches_store(shown, want["units"], "satisfaction_rate")

    # A click on the busiest district drills in: its URL, its figures, its streets on the map.
    district = want["units"][0]
    click_inside(browser, district["unit_id"])
    wait_for(browser, f"location.search.includes('scope=district%3A{district['unit_id']}')", timeout=40)
    scoped = direct_review(city, days=30, scope=("district", district["unit_id"]))
    shown = wait_drawn(browser, {u["unit_id"] for u in scoped["units"]}, "on_time_rate")
    assert_matches_store(shown, scoped["units"], "on_time_rate")
    received = wait_for(browser, "document.querySelector('#trends-kpi-received .cb-kpi-value').textContent", timeout=40)
    assert int(received) == scoped["totals"]["received"] < want["totals"]["received"]
    scope_shown = browser.find_element(By.ID, "trends-scope").text
    assert district["name_en"] in scope_shown

    # And one level further, from the street's map to its communities.
    street = scoped["units"][0]
    click_inside(browser, street["unit_id"])
    wait_for(browser, f"location.search.includes('scope=street%3A{street['unit_id']}')", timeout=40)
    deeper = direct_review(city, days=30, scope=("street", street["unit_id"]))
    wait_drawn(browser, {u["unit_id"] for u in deeper["units"]}, "on_time_rate")
