"""The leaders' review in a real browser: change the period and the scope, see charts and tables follow, download a CSV that matches the store."""

from __future__ import annotations

import csv
import io
import time
import urllib.request

from selenium.webdriver.common.by import By

from data import store
from data.metrics import trends
from data.times import utc_now

TZ = "Asia/Shanghai"
CHARTS = ("volume", "rates", "times", "sectors", "rising", "units", "heat")
TABLES = ("league", "units", "series", "categories")


def wait_for(driver, condition, timeout: float = 40.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except Exception:  # noqa: BLE001 - the page is mid-render: stale or missing elements mean "not yet"
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the page")
        time.sleep(0.1)


def snapshot(driver) -> dict:
    """What the user sees: the headline received figure, each chart's plotted data and each table's rows."""
    received = driver.find_element(By.CSS_SELECTOR, "#trends-kpi-received .cb-kpi-value").text
    charts = {
        key: driver.execute_script(
            "const g = document.querySelector(arguments[0]);"
            "return g && g.data ? JSON.stringify(g.data.map(t => [t.x, t.y, t.z])) : null;",
            f"#trends-chart-{key} .js-plotly-plot",
        )
        for key in CHARTS
    }
    tables = {key: driver.find_element(By.ID, f"trends-table-{key}").text for key in TABLES}
    return {"received": received, "charts": charts, "tables": tables}


def store_review(city, **kwargs):
    with store.reading(city.engine) as conn:
        return trends.review(conn, kwargs.pop("scope", None), utc_now(), TZ, **kwargs)


def test_period_and_scope_change_every_chart_and_table(browser, server, city):
    browser.get(f"{server}/trends?period=7&lang=en")
    wait_for(browser, lambda: all(snapshot(browser)["charts"].values()))
    week = snapshot(browser)
    assert int(week["received"]) == store_review(city, days=7)["totals"]["received"]

    # A longer period: the demo history covers three days, so 30 days adds the previous period's comparison
    # and a longer daily axis; every chart and table redraws.
    browser.find_element(By.XPATH, "//*[@id='trends-period']//label[contains(., '30 days')]").click()
    wait_for(browser, lambda: snapshot(browser)["charts"]["volume"] != week["charts"]["volume"])
    month = wait_for(browser, lambda: (s := snapshot(browser)) and all(s["charts"].values()) and s)
    assert int(month["received"]) == store_review(city, days=30)["totals"]["received"]
    assert month["tables"]["series"] != week["tables"]["series"]

    # Drill into the busiest district from the areas table: the scope narrows, so figures shrink.
    district = store_review(city, days=30)["units"][0]
    browser.find_element(By.LINK_TEXT, district["name_en"]).click()
    wait_for(browser, lambda: "scope=district" in browser.current_url and snapshot(browser))
    scoped = wait_for(browser, lambda: (s := snapshot(browser)) and all(s["charts"].values()) and s)
    want = store_review(city, days=30, scope=("district", district["unit_id"]))
    assert int(scoped["received"]) == want["totals"]["received"] < int(month["received"])
    changed = [key for key in CHARTS if scoped["charts"][key] != month["charts"][key]]
    assert set(changed) >= {"volume", "sectors", "units", "heat"}, changed
    assert all(scoped["tables"][key] != month["tables"][key] for key in ("units", "series"))

    # The CSV behind the page's own link carries the store's numbers for this period and scope.
    href = browser.find_element(By.ID, "trends-csv-series").get_attribute("href")
    # Downloaded as the signed-in browser would: with its session cookie.
    session = browser.get_cookie("citybrain_session")["value"]
    request = urllib.request.Request(href, headers={"Cookie": f"citybrain_session={session}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the test server's own URL
        rows = list(csv.reader(io.StringIO(response.read().decode("utf-8-sig"))))
    assert [int(r[1]) for r in rows[1:]] == [b["received"] for b in want["series"]]
    assert [int(r[2]) for r in rows[1:]] == [b["closed"] for b in want["series"]]
