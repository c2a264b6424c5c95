"""Names from a hostile boundary file show as text and never run, on every screen that shows them (item 4).

The boundaries come in through `python app.py import-boundaries`, as an administrator would load a
file a contractor sent: each district, street, community and grid is named with markup that would run
if any screen put it into HTML (an image's onerror, a script, an attribute breaking out into an SVG's
onload). Each screen is then opened in headless Chromium as its users open it: the overview, the
wall (also through a kiosk link), the leaders' review with its map tooltips, and the desk with an
incident of one of those grids on its panel.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner
from selenium.webdriver.common.by import By
from sqlalchemy import select

from app import cli, create_app
from dashboard.settings import Settings
from data import schema, store
from data.accounts import users as accounts
from data.geo.locate import GridLocator
from data.incidents.intake import report_incidents
from data.times import utc_now
from tests.asgi_server import AsgiServer
from tests.auth_helpers import make_user, sign_in_browser
from tests.browser.chrome import chromium_paths, start_chromium, wait_for
from tests.conftest import skip_or_fail
from tests.factories import make_category, make_department

pytestmark = pytest.mark.browser

# Every way a name has been seen to break out: an element with a handler, a script, and a quote closing an
# attribute before an SVG with onload. Each sets window.__xss if it ever runs.
PAYLOADS = (
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
)
LEVELS = ("district", "street", "community", "grid")
ORIGIN, SIZE = (106.5, 29.5), 0.04  # two districts side by side, each SIZE degrees square, four grids each
ADMIN = "xss-admin"

# Elements a name would have made had it been read as HTML, and scripts carrying a payload.
INJECTED = (
    "document.querySelectorAll('img[src=\"x\"], svg[onload], [onerror]').length"
    " + [...document.scripts].filter(s => s.textContent.includes('__xss')).length"
)


def _name(level: str, index: int) -> str:
    return f"{PAYLOADS[index % len(PAYLOADS)]}{level} {index}"


def _square(minx: float, miny: float, size: float) -> dict:
    ring = [[minx, miny], [minx + size, miny], [minx + size, miny + size], [minx, miny + size], [minx, miny]]
    return {"type": "Polygon", "coordinates": [ring]}


def _features(level: str) -> list[dict]:
    """The units of one level: a district, its street and community are the same square; grids quarter it."""
    boxes = []
    for d in range(2):
        minx = ORIGIN[0] + d * SIZE
        if level == "grid":
            half = SIZE / 2
            boxes += [(minx + (i % 2) * half, ORIGIN[1] + (i // 2) * half, half) for i in range(4)]
        else:
            boxes.append((minx, ORIGIN[1], SIZE))
    return [
        {
            "type": "Feature",
            "properties": {"code": f"{level}-{i}", "name": _name(level, i), "name_zh": _name(level, i) + " 中文"},
            "geometry": _square(*box),
        }
        for i, box in enumerate(boxes)
    ]


def _import_boundaries(url: str, folder) -> None:
    """Each level through `python app.py import-boundaries`, parents found by overlap."""
    for level in LEVELS:
        path = folder / f"{level}.geojson"
        path.write_text(json.dumps({"type": "FeatureCollection", "features": _features(level)}), encoding="utf-8")
        result = CliRunner().invoke(
            cli,
            ["import-boundaries", str(path), "--level", level, "--name-zh-field", "name_zh"],
            env={"CITYBRAIN_DATABASE_URL": url},
        )
        assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def hostile_city(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hostile")
    url = f"sqlite:///{folder / 'store.db'}"
    _import_boundaries(url, folder)
    engine = store.make_engine(url)
    units = {}
    with engine.begin() as conn:
        for level in LEVELS:
            rows = conn.execute(
                select(schema.units.c.id, schema.units.c.name_en, schema.units.c.centroid_lon, schema.units.c.centroid_lat)
                .where(schema.units.c.level == schema.LEVELS[level])
                .order_by(schema.units.c.code)
            ).all()
            units[level] = [dict(r._mapping) for r in rows]
        department = make_department(conn, "cg", name_en=_name("department", 0), name_zh=_name("department", 0))
        category = make_category(conn, "garbage", department)
        locator = GridLocator.from_conn(conn)
        reported = [
            {
                "source": "xss-test",
                "external_id": f"x{i}",
                "category_id": category,
                "priority": 1,
                "description": _name("description", i),
                "address": _name("address", i),
                "lon": grid["centroid_lon"],
                "lat": grid["centroid_lat"],
                "reported_at": utc_now() - timedelta(hours=1),
            }
            for i, grid in enumerate(units["grid"])
        ]
        results = report_incidents(conn, reported, actor="xss-test", locator=locator)
    assert all(not r.unlocated for r in results)
    yield engine, units, results[0].incident_id
    engine.dispose()


@pytest.fixture(scope="module")
def server(hostile_city):
    engine = hostile_city[0]
    settings = Settings.from_env({}, live=False, build_demo=False, timezone="Asia/Shanghai", secret_key="xss-tests")
    app = create_app(settings, engine=engine, testing=True)
    make_user(engine, "admin", username=ADMIN)
    with AsgiServer(app) as served:  # as production serves it
        yield served.url


@pytest.fixture(scope="module")
def browser(server):
    if chromium_paths() is None:
        skip_or_fail("headless Chromium (/usr/bin/chromium and /usr/bin/chromedriver) is not installed")
    driver = start_chromium(log_console=True)
    sign_in_browser(driver, server, ADMIN, next_path="/healthz")
    yield driver
    driver.quit()


def _assert_inert(browser, where: str) -> None:
    """Nothing a name carried became an element or ran, and the console stayed clean (no request for 'x')."""
    assert browser.execute_script(f"return {INJECTED};") == 0, f"{where}: a name was read as HTML"
    assert browser.execute_script("return window.__xss;") is None, f"{where}: a name ran as script"
    errors = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, f"{where}: console errors {errors}"


def _tooltip_texts(browser) -> list[str]:
    return browser.execute_script("return [...document.querySelectorAll('.leaflet-tooltip')].map(e => e.textContent);")


ALL_NAMES = [_name(level, i) for level in LEVELS for i in range(8)]


def _wait_for_labels(browser) -> list[str]:
    """The map's labels once one shows a unit by its literal name (payload and all), or something ran."""
    wanted = json.dumps(ALL_NAMES)
    wait_for(
        browser,
        f"[...document.querySelectorAll('.leaflet-tooltip')].some(e => {wanted}.some(n => e.textContent.includes(n)))"
        f" || ({INJECTED}) > 0 || window.__xss !== undefined",
        timeout=40,
    )
    return _tooltip_texts(browser)


@pytest.mark.parametrize("page", ["/", "/wall"])
def test_the_overview_and_the_wall_label_units_with_their_names_as_text(browser, server, hostile_city, page):
    _engine, units, _incident = hostile_city
    for scope in (None, units["community"][0]["id"]):
        query = "?lang=en" + (f"&scope={scope}" if scope else "")
        browser.get(server + page + query)
        texts = _wait_for_labels(browser)
        _assert_inert(browser, page + query)
        assert any(name in text for text in texts for name in ALL_NAMES), texts
    # The breadcrumb names the scope's chain: district, street, community.
    crumbs = browser.find_element(By.ID, "overview-breadcrumb").text
    assert _name("district", 0) in crumbs and _name("community", 0) in crumbs, crumbs


def test_the_reviews_map_tooltips_and_charts_show_names_as_text(browser, server):
    browser.get(server + "/trends?lang=en")
    wait_for(browser, "Object.keys((window.citybrain && window.citybrain.trendsMapDrawn) || {}).length === 2", timeout=40)
    # A leader hovering over each unit: every tooltip opens.
    browser.execute_script(
        "window.citybrain.map.eachLayer(l => { if (l.feature && l.getTooltip && l.getTooltip()) { l.openTooltip(); } });"
    )
    wait_for(browser, "document.querySelectorAll('.leaflet-tooltip').length >= 2 || window.__xss !== undefined")
    texts = _tooltip_texts(browser)
    _assert_inert(browser, "/trends")
    assert any(_name("district", 0) in t for t in texts) and any(_name("district", 1) in t for t in texts), texts
    # The areas table and the charts name the districts too.
    wait_for(browser, f"document.body.innerText.includes({json.dumps(_name('district', 1))})", timeout=20)
    _assert_inert(browser, "/trends, tables and charts")


def test_the_desk_shows_an_incidents_names_as_text(browser, server, hostile_city):
    _engine, units, incident_id = hostile_city
    browser.get(server + f"/dispatch?lang=en&incident={incident_id}")
    wait_for(
        browser,
        f"(document.querySelector('.cb-panel-head') || {{dataset: {{}}}}).dataset.incident === '{incident_id}'",
        timeout=30,
    )
    wait_for(browser, "document.querySelector('#dispatch-grid .ag-row')", timeout=20)
    panel = browser.find_element(By.ID, "dispatch-panel").text
    _assert_inert(browser, "/dispatch")
    assert _name("grid", 0) in panel and _name("description", 0) in panel, panel
    queue = browser.find_element(By.ID, "dispatch-grid").text
    assert _name("district", 0) in queue, queue


def test_a_kiosk_wall_shows_its_units_name_as_text(browser, server, hostile_city):
    engine, units, _incident = hostile_city
    district = units["district"][1]
    with engine.begin() as conn:
        token, _row = accounts.create_kiosk_token(conn, "wall, room 3", district["id"], "cli:test")
    browser.delete_all_cookies()
    browser.get(f"{server}/kiosk/{token}?lang=en")
    wait_for(browser, "location.pathname === '/wall'", timeout=30)
    _wait_for_labels(browser)
    _assert_inert(browser, "kiosk wall")
    assert district["name_en"] in browser.find_element(By.ID, "overview-breadcrumb").text
