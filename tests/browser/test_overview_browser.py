"""The overview in headless Chromium: map and KPIs on / and /wall, drilling in and back, live updates, language."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.actions.action_builder import ActionBuilder
from selenium.webdriver.common.by import By

from dashboard.components.kpis import CARDS
from data import schema, store
from data.metrics.board import department_board
from data.metrics.kpis import overview_kpis
from data.metrics.overview_charts import trend_24h
from tests.browser.chrome import click, wait_for
from tests.browser.map_labels import OVERLAPPING_LABELS, SHOWN_LABELS

pytestmark = pytest.mark.browser

TZ = "Asia/Shanghai"


def open_page(driver, url: str) -> float:
    """Load a page and wait until the map has drawn units and the KPI cards hold values; seconds it took."""
    started = time.monotonic()
    driver.get(url)
    wait_for(driver, "window.citybrain && Object.keys(window.citybrain.unitLayers).length > 0", timeout=20)
    wait_for(driver, "document.querySelector('.cb-kpi-open .cb-kpi-value')", timeout=20)
    seconds = time.monotonic() - started
    # Settled: the charts arrive with the panel's first refresh after the map drew.
    wait_for(driver, "document.querySelector('#overview-trend')", timeout=20)
    return seconds


def shown_kpis(driver) -> dict:
    """The raw value of every KPI card (its data-value attribute), by card key, read in one go
    (the panel is redrawn on every refresh, so element handles would go stale)."""
    raw = driver.execute_script(
        "const out = {}; for (const key of arguments[0]) {"
        "  const card = document.querySelector('.cb-kpi-' + key); out[key] = card ? card.dataset.value : undefined; }"
        "return out;",
        [key for key, *_ in CARDS],
    )
    return {key: None if value in ("", None) else float(value) for key, value in raw.items()}


def store_kpis(engine, scope=None) -> dict:
    """The same figures computed straight from the store, keyed like the cards."""
    with store.reading(engine) as conn:
        figures = overview_kpis(conn, scope, datetime.now(UTC), TZ)
    return {key: figures[source]["value"] for key, source, _kind, _good in CARDS}


def assert_kpis_match(driver, engine, scope=None):
    expected = store_kpis(engine, scope)
    shown = shown_kpis(driver)
    for key, value in expected.items():
        if value is None:
            assert shown[key] is None, key
        else:
            assert shown[key] == pytest.approx(float(value), rel=1e-6, abs=1e-6), key


def click_unit(driver, unit: dict):
    """Click a point inside a unit on the map canvas, as a user would."""
    lon, lat = unit["lon"], unit["lat"]
    x, y = driver.execute_script(
        "const m = window.citybrain.map; const p = m.latLngToContainerPoint([arguments[0], arguments[1]]);"
        "const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];",
        lat,
        lon,
    )
    actions = ActionBuilder(driver)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()


def test_desk_shows_the_city_map_and_kpis_equal_to_the_store(browser, server, city):
    started = datetime.now(UTC)
    seconds = open_page(browser, server + "/?lang=en")
    drawn = browser.execute_script("return Object.keys(window.citybrain.unitLayers).map(Number)")
    level = browser.execute_script("return window.citybrain.hideout.level")
    assert level == schema.DISTRICT
    assert sorted(drawn) == sorted(u["id"] for u in city.units["district"])
    # Labels name each district with its value, so nothing needs hovering.
    # (textContent: a label hidden because it would overlap a larger district's is still there when zoomed in.)
    labels = browser.execute_script("return [...document.querySelectorAll('.cb-unit-label')].map(e => e.textContent)")
    assert sorted(label.split(" · ")[0] for label in labels) == sorted(u["name_en"] for u in city.units["district"])
    assert_kpis_match(browser, city.engine)
    board_rows = browser.find_elements(By.CSS_SELECTOR, ".cb-board-row")
    with store.reading(city.engine) as conn:
        board = department_board(conn, None, datetime.now(UTC), TZ)
    # Worst first, as the store ranks them, with the red and yellow rows marked.
    assert [r.get_attribute("data-department") for r in board_rows] == [row["code"] for row in board]
    assert [r.get_attribute("class").split("cb-flag-")[1] for r in board_rows] == [row["flag"] for row in board]
    assert browser.find_element(By.CSS_SELECTOR, ".cb-legend").text.startswith("Open backlog")
    # The charts follow once the map is up: the 24-hour trend's bars are the store's hourly counts.
    wait_for(browser, "document.querySelector('#overview-trend .js-plotly-plot, #overview-trend.js-plotly-plot')")
    bars = browser.execute_script(
        "const g = document.querySelector('#overview-trend .js-plotly-plot') || document.querySelector('#overview-trend');"
        "return g.data[0].y"
    )
    # The page drew them at some moment since `started`; an hour may have begun since, moving the window.
    with store.reading(city.engine) as conn:
        expected = [[row["received"] for row in trend_24h(conn, None, at, TZ)] for at in (started, datetime.now(UTC))]
    assert list(bars) in expected
    wait_for(browser, "document.querySelector('#overview-breakdown .js-plotly-plot, #overview-breakdown.js-plotly-plot')")
    print(f"desk first paint (map drawn, KPIs filled): {seconds:.2f} s")


def test_clicking_a_district_scopes_every_kpi_and_the_breadcrumb_leads_back(browser, server, city):
    open_page(browser, server + "/?lang=en")
    # The district with the most grids: a big target, drawn well clear of its neighbours' labels.
    district = max(city.units["district"], key=lambda d: sum(g["district_id"] == d["id"] for g in city.units["grid"]))
    click_unit(browser, district)
    wait_for(browser, f"document.querySelector('.cb-crumb-current').textContent === {district['name_en']!r}")
    wait_for(browser, f"document.querySelector('#overview-scope-title').textContent.includes({district['name_en']!r})")
    # The map flew into the district: its streets are drawn now, the other district's dimmed.
    wait_for(browser, f"window.citybrain.hideout && window.citybrain.hideout.scope === {district['id']}")
    wait_for(browser, f"window.citybrain.hideout.level === {schema.STREET}")
    assert browser.execute_script(
        "return window.citybrain.map.getBounds().contains(arguments[0])", [district["lat"], district["lon"]]
    )
    assert_kpis_match(browser, city.engine, (schema.DISTRICT, district["id"]))
    city_open = store_kpis(city.engine)["open"]
    district_open = store_kpis(city.engine, (schema.DISTRICT, district["id"]))["open"]
    assert district_open < city_open

    click(browser, "button.cb-crumb")  # "Whole city"
    wait_for(browser, "document.querySelector('.cb-crumb-current').textContent === 'Whole city'")
    wait_for(browser, "window.citybrain.hideout && window.citybrain.hideout.scope === null")
    assert_kpis_match(browser, city.engine)


def test_a_new_incident_reaches_kpis_map_and_heat_without_a_reload(browser, server, city):
    open_page(browser, server + "/?lang=en")
    wait_for(browser, "window.citybrain.liveState.status === 'live'")
    before = shown_kpis(browser)["open"]
    grid = city.units["grid"][0]
    district_id = grid["district_id"]
    label_before = browser.execute_script(
        "return window.citybrain.unitLayers[arguments[0]].getTooltip().getContent()", str(district_id)
    )
    marker = browser.execute_script("return document.querySelector('#overview-root') !== null")
    assert marker
    page_id = browser.execute_script("window.__notReloaded = true; return 1")
    assert page_id == 1

    started = time.monotonic()
    city.report(grid)
    wait_for(browser, f"Number(document.querySelector('.cb-kpi-open').dataset.value) === {before + 1}", timeout=5)
    latency = time.monotonic() - started
    with store.reading(city.engine) as conn:
        head = store.feed_head(conn)
    # The district's colour value went up by one, restyled in place...
    wait_for(
        browser,
        f"window.citybrain.unitLayers[{str(district_id)!r}].getTooltip().getContent() !== {label_before!r}",
        timeout=5,
    )
    count_before = int(label_before.rsplit(" · ", 1)[1])
    label_after = browser.execute_script(
        "return window.citybrain.unitLayers[arguments[0]].getTooltip().getContent()", str(district_id)
    )
    assert int(label_after.rsplit(" · ", 1)[1]) == count_before + 1
    # ... the heat layer re-read its points at the new head, and the page never reloaded.
    wait_for(browser, f"window.citybrain.heatHead === {head}", timeout=5)
    assert browser.execute_script("return window.__notReloaded === true")
    assert browser.execute_script("return window.citybrain.connections") == 1
    assert_kpis_match(browser, city.engine)
    print(f"store change -> KPI on screen: {latency * 1000:.0f} ms")


def test_the_wall_is_dark_with_a_clock_data_as_of_and_the_same_figures(browser, server, city):
    browser.set_window_size(1920, 1080)
    try:
        seconds = open_page(browser, server + "/wall?lang=en")
        root = browser.find_element(By.ID, "overview-root")
        assert "cb-wall" in root.get_attribute("class")
        background = browser.execute_script("return getComputedStyle(document.querySelector('.cb-wall')).backgroundColor")
        red, green, blue = (int(v) for v in re.findall(r"\d+", background)[:3])
        assert red + green + blue < 120, background  # dark
        clock = wait_for(browser, "document.querySelector('#overview-clock').textContent")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", clock)
        as_of = browser.find_element(By.ID, "overview-as-of").text
        assert as_of.startswith("Data as of ")
        wait_for(browser, "document.querySelector('#overview-live-status').textContent.startsWith('Live since')")
        big, height = browser.execute_script(
            "return [parseFloat(getComputedStyle(document.querySelector('.cb-wall .cb-kpi-value')).fontSize), innerHeight]"
        )
        # KPI figures stand about 1/35 of the screen tall, at 1080 px as at 2160 px: readable from metres away.
        assert big >= height / 40, (big, height)
        assert_kpis_match(browser, city.engine)
        print(f"wall first paint (map drawn, KPIs filled): {seconds:.2f} s")
    finally:
        browser.set_window_size(1600, 1000)


def test_the_language_switch_changes_the_labels(browser, server, city):
    open_page(browser, server + "/?lang=en")
    assert browser.execute_script("return document.querySelector('.cb-kpi-open .cb-kpi-label').textContent") == "Open backlog"
    browser.find_element(By.ID, "overview-lang-switch").click()
    wait_for(
        browser,
        "document.querySelector('.cb-kpi-open .cb-kpi-label') && document.querySelector('.cb-kpi-open .cb-kpi-label').textContent === '待办积压'",
    )
    assert browser.execute_script("return document.querySelector('.cb-crumb-current').textContent") == "全市"
    wait_for(browser, "document.querySelectorAll('.cb-unit-label').length > 0")
    labels = browser.execute_script("return [...document.querySelectorAll('.cb-unit-label')].map(e => e.textContent)")
    assert sorted(label.split(" · ")[0] for label in labels) == sorted(u["name_zh"] for u in city.units["district"])
    assert_kpis_match(browser, city.engine)
    # Back to English; the choice is remembered by the browser.
    browser.find_element(By.ID, "overview-lang-switch").click()
    wait_for(browser, "document.querySelector('.cb-kpi-open .cb-kpi-label').textContent === 'Open backlog'")


def test_zooming_in_shows_grids_and_open_incidents_and_a_marker_opens_its_card(browser, server, city):
    open_page(browser, server + "/?lang=en")
    grid = city.units["grid"][5]
    incident_id = city.report(grid, priority=1)
    lon, lat = grid["lon"], grid["lat"]
    browser.execute_script(
        "window.citybrain.map.setView([arguments[0], arguments[1]], 15, {animate: false}); return true", lat, lon
    )
    wait_for(browser, f"window.citybrain.hideout && window.citybrain.hideout.level === {schema.GRID}")
    drawn = wait_for(browser, "Object.keys(window.citybrain.unitLayers).length && Object.keys(window.citybrain.unitLayers)")
    # Only the grids in view travel: far fewer than the city has.
    assert str(grid["id"]) in drawn and len(drawn) < len(city.units["grid"])
    marker_drawn = (
        f"!!(window.citybrain.markerLayers[{str(incident_id)!r}] && window.citybrain.markerLayers[{str(incident_id)!r}]._map)"
    )
    wait_for(browser, marker_drawn)
    # The grids' geometry may arrive after the markers (two fetches race): make it so, and the markers
    # must still be drawn above the grids and take the click.
    again = browser.execute_script(
        "const url = window.citybrain.built['overview-units'].url + '&again=1';"
        "window.dash_clientside.set_props('overview-units', {url: url}); return url;"
    )
    wait_for(browser, f"window.citybrain.built['overview-units'].url === {again!r}")
    wait_for(browser, marker_drawn)
    x, y = browser.execute_script(
        "const m = window.citybrain.map; const p = m.latLngToContainerPoint(window.citybrain.markerLayers[arguments[0]].getLatLng());"
        "const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];",
        str(incident_id),
    )
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    wait_for(browser, "document.querySelector('#overview-card') && !document.querySelector('#overview-card').hidden")
    card = browser.find_element(By.ID, "overview-card").text
    assert f"Incident #{incident_id}" in card
    assert "Urgent" in card and grid["name_en"] in card
    browser.find_element(By.ID, "overview-card-close").click()
    wait_for(browser, "document.querySelector('#overview-card').hidden")
    # Beside the marker the click goes through the markers' pane to the grid below: it drills in.
    x, y = browser.execute_script(
        "const m = window.citybrain.map, grid = window.citybrain.unitLayers[arguments[0]];"
        "const corner = grid.getLatLngs().flat(2)[0], centre = window.citybrain.markerLayers[arguments[1]].getLatLng();"
        "const p = m.latLngToContainerPoint([0.3 * centre.lat + 0.7 * corner.lat, 0.3 * centre.lng + 0.7 * corner.lng]);"
        "const r = m.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];",
        str(grid["id"]),
        str(incident_id),
    )
    actions = ActionBuilder(browser)
    actions.pointer_action.move_to_location(int(x), int(y)).click()
    actions.perform()
    wait_for(browser, f"document.querySelector('.cb-crumb-current').textContent === {grid['name_en']!r}")
    assert browser.execute_script("return document.querySelector('#overview-card').hidden")
    # Zoomed back out the markers go, and the page keeps none of them (a desk stays open all day).
    browser.execute_script("window.citybrain.map.setZoom(11, {animate: false})")
    wait_for(browser, "window.citybrain.map.getZoom() === 11 && Object.keys(window.citybrain.markerLayers).length === 0")


def test_district_labels_never_overlap_when_zoomed_out(browser, server, city):
    open_page(browser, server + "/?lang=en")
    zoom = browser.execute_script("return window.citybrain.map.getZoom()")
    browser.execute_script("window.citybrain.map.setZoom(arguments[0], {animate: false})", zoom - 3)
    # Far out, the districts' labels would sit on top of each other: the larger district's stays readable.
    boxes = wait_for(
        browser,
        f"(() => {{ const z = window.citybrain.map.getZoom(), shown = {SHOWN_LABELS}.map(e => e.getBoundingClientRect());"
        f"return z < {zoom} && window.citybrain.labelsZoom === z && window.citybrain.labelsShown === shown.length && shown.length < {len(city.units['district'])}"
        " && shown.map(r => [r.left, r.top, r.right, r.bottom]); })()",
        timeout=30,
    )
    assert boxes, "at least one district keeps its label"
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)
    # Zooming in makes room: more districts get their label back.
    browser.execute_script("window.citybrain.map.setZoom(arguments[0], {animate: false})", zoom + 1)
    wait_for(
        browser,
        f"window.citybrain.map.getZoom() > {zoom} && window.citybrain.labelsZoom > {zoom} && window.citybrain.labelsShown > {len(boxes)}",
        timeout=30,
    )


def test_the_chinese_wall_never_shows_one_label_on_top_of_another(browser, server, city):
    # Every frame the page draws is checked, from the first labels through a live push: Leaflet re-shows
    # a tooltip whenever it updates one (new value, reopened), and a hidden label must stay hidden.
    frames = browser.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {
            "source": "window.__labelFrames = 0; window.__labelClashes = [];"
            "(function watch() { requestAnimationFrame(() => { window.__labelFrames += 1;"
            f" const clash = {OVERLAPPING_LABELS}; if (clash.length) {{ window.__labelClashes.push(clash); }} watch(); }}); }})();"
        },
    )
    browser.set_window_size(1920, 1080)
    try:
        open_page(browser, server + "/wall?lang=zh")
        wait_for(browser, "window.citybrain.liveState.status === 'live'")
        districts = len(city.units["district"])
        # At the wall's default zoom some Chinese labels would clash (九龙坡区 and 大渡口区): one moves off its
        # district's centre (or hides), so the check is not empty.
        shown, moved = wait_for(
            browser,
            f"window.citybrain.labelsZoom !== null && {SHOWN_LABELS}.length === window.citybrain.labelsShown"
            f" && (window.citybrain.labelsMoved > 0 || window.citybrain.labelsShown < {districts})"
            " && [window.citybrain.labelsShown, window.citybrain.labelsMoved]",
            timeout=20,
        )
        assert shown > 0 and (moved > 0 or shown < districts)
        # Right after each live push has rewritten the labels (before any later pass could tidy up) and in
        # every frame since the page opened, no two shown labels overlap.
        browser.execute_script(
            "const cb = window.citybrain, apply = cb.applyValues; window.__afterPush = [];"
            f"cb.applyValues = function () {{ const out = apply.apply(this, arguments); window.__afterPush.push({OVERLAPPING_LABELS}); return out; }};"
        )
        grid = city.units["grid"][0]
        label_before = browser.execute_script(
            "return window.citybrain.unitLayers[arguments[0]].getTooltip().getContent()", str(grid["district_id"])
        )
        city.report(grid)
        wait_for(
            browser,
            f"window.citybrain.unitLayers[{str(grid['district_id'])!r}].getTooltip().getContent() !== {label_before!r}"
            " && window.__afterPush.length > 0",
            timeout=10,
        )
        pushes = browser.execute_script("return window.__afterPush")
        assert all(clash == [] for clash in pushes), pushes
        wait_for(browser, f"{SHOWN_LABELS}.length === window.citybrain.labelsShown && window.citybrain.labelsShown > 0")
        assert browser.execute_script(f"return {OVERLAPPING_LABELS}") == []
        assert browser.execute_script("return window.__labelFrames") > 0
        assert browser.execute_script("return window.__labelClashes") == []
    finally:
        browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument", {"identifier": frames["identifier"]})
        browser.set_window_size(1600, 1000)
