"""One report cannot break Open311's XML for every reader: control characters are refused at intake and dropped on output (item 11)."""

from __future__ import annotations

import csv
from datetime import timedelta
from xml.etree import ElementTree as ET

import pytest
from sqlalchemy import func, select, update

from data import schema
from data.errors import ValidationError
from data.incidents.file_import import import_incident_file
from data.incidents.file_reading import ColumnMapping
from data.incidents.intake import report_incidents
from data.times import utc_now
from tests.api_helpers import build_api_world
from tests.factories import make_incident

BASE = "/open311/v2"
# What XML 1.0 cannot carry: C0 controls but tab, LF and CR (and NUL, which PostgreSQL cannot store either).
CONTROLS = ("\x02", "\x00", "\x1b", "\x0b")


@pytest.fixture
def api(engine):
    return build_api_world(engine)


def _requests_xml(api) -> ET.Element:
    response = api.client.get(f"{BASE}/requests.xml")
    assert response.status_code == 200
    return ET.fromstring(response.data)  # raises on a document that is not well-formed


def _position(api) -> dict:
    lon, lat = api.world.lattice.center(0)
    return {"lat": str(lat), "long": str(lon)}


def test_open311_refuses_a_report_with_a_control_character(api):
    for char in CONTROLS:
        for field in ("description", "address_string"):
            form = {"api_key": api.intake, "service_code": "garbage", **_position(api), field: f"bins{char} overflowing"}
            response = api.client.post(f"{BASE}/requests.xml", data=form)
            assert response.status_code == 400, (char, field, response.data)
            assert ET.fromstring(response.data).find("error/code").text == "400"
    assert api.incident_count() == 0
    _requests_xml(api)


def test_the_native_api_refuses_a_report_with_a_control_character(api):
    lon, lat = api.world.lattice.center(0)
    for field in ("description", "address", "external_id"):
        body = {"category_code": "garbage", "lon": lon, "lat": lat, field: "bins\x02 overflowing"}
        response = api.client.post("/api/v1/incidents", json=body, headers=api.headers())
        assert response.status_code == 400, (field, response.data)
        assert "U+0002" in response.get_json()["error"]["message"]
    assert api.incident_count() == 0


def test_every_intake_path_refuses_it_in_the_data_layer(api, tmp_path):
    # The desk, the simulator and the APIs all report through report_incidents.
    with api.engine.begin() as conn, pytest.raises(ValidationError, match="description .*U\\+0002"):
        report_incidents(
            conn,
            [{"source": "desk", "external_id": "d1", "category_code": "garbage", "description": "a\x02b"}],
            actor="desk",
        )
    # A file import turns the row away (with its reason) and keeps the others.
    path = tmp_path / "cases.csv"
    now = utc_now()
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "time", "lon", "lat", "category", "description", "address"])
        lon, lat = api.world.lattice.center(0)
        at = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        out.writerow(["f1", at, lon, lat, "garbage", "clean", "1 Road"])
        out.writerow(["f2", at, lon, lat, "garbage", "bins\x02 overflowing", "1 Road"])
        out.writerow(["f3", at, lon, lat, "garbage", "clean", "2\x1b Road"])
        out.writerow(["f\x0b4", at, lon, lat, "garbage", "clean", "3 Road"])
    report = import_incident_file(api.engine, path, ColumnMapping(), source="file", crs="EPSG:4326", now=now)
    assert (report.imported, report.rejected) == (1, 3)
    rejects = report.rejects_path.read_text(encoding="utf-8-sig")
    assert "U+0002" in rejects and "U+001B" in rejects and "U+000B" in rejects
    _requests_xml(api)


def test_open311_xml_stays_well_formed_over_rows_stored_before(api):
    with api.engine.begin() as conn:
        incident_id = make_incident(conn, api.world.categories["garbage"], at=api.world.lattice.center(0), reported_at=utc_now())
        # Stored before intake refused them: a report, and a category name an administrator typed.
        conn.execute(
            update(schema.incidents)
            .where(schema.incidents.c.id == incident_id)
            .values(description="bins\x02 overflowing\tnear the gate", address="1\x1b Road")
        )
        conn.execute(
            update(schema.categories)
            .where(schema.categories.c.id == api.world.categories["garbage"])
            .values(name_en="Garbage\x0b")
        )
        assert conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one() == 1
    (request,) = _requests_xml(api).findall("request")
    assert request.find("description").text == "bins overflowing\tnear the gate"
    assert request.find("address").text == "1 Road"
    assert request.find("service_name").text == "Garbage"
    services = ET.fromstring(api.client.get(f"{BASE}/services.xml").data)
    assert "Garbage" in [s.find("service_name").text for s in services.findall("service")]
