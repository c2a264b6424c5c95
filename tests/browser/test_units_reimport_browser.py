"""A boundary re-import reaches a page that is open, without a reload or a server restart (in a module of its own: it renames a district)."""

from __future__ import annotations

import geopandas as gpd
import pytest

from data import schema, store
from data.geo import units as geo
from data.geo.importer import import_boundaries
from tests.browser.chrome import wait_for
from tests.browser.test_overview_browser import open_page

pytestmark = pytest.mark.browser

LABEL_TEXTS = "[...document.querySelectorAll('.cb-unit-label')].map(e => e.textContent)"


def test_a_renamed_district_shows_on_the_open_map_without_a_reload(browser, server, city, tmp_path):
    open_page(browser, server + "/?lang=en")
    district = city.units["district"][0]
    wait_for(browser, f"{LABEL_TEXTS}.some(t => t.startsWith({district['name_en']!r}))", timeout=20)
    browser.execute_script("window.__sameDocument = true")

    with store.reading(city.engine) as conn:
        districts = geo.load_units(conn, level=schema.DISTRICT)
    renamed = gpd.GeoDataFrame(
        {
            "code": districts["code"],
            "name": districts["name_en"].where(districts["code"] != district["code"], "Harbour New Town"),
            "name_zh": districts["name_zh"],
        },
        geometry=districts.geometry.values,
        crs="EPSG:4326",
    )
    path = tmp_path / "districts.geojson"
    renamed.to_file(path, driver="GeoJSON")
    report = import_boundaries(city.engine, path, "district", code_field="code", name_field="name", name_zh_field="name_zh")
    assert report.updated == len(districts)

    wait_for(browser, f"{LABEL_TEXTS}.some(t => t.startsWith('Harbour New Town'))", timeout=20)
    assert browser.execute_script("return window.__sameDocument === true"), "the page was reloaded"
