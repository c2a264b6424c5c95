"""Open311 GeoReport v2 over HTTP: discovery, services, definitions, POST and GET requests, tokens, JSON and XML, the standard's errors."""

from __future__ import annotations

from datetime import datetime
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest

from data import schema
from data.accounts.apikeys import revoke_key
from tests.api_helpers import build_api_world
from tests.factories import drive_to

REQUEST_FIELDS = [
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
]
SERVICE_FIELDS = ["service_code", "service_name", "description", "metadata", "type", "keywords", "group"]
BASE = "/open311/v2"


@pytest.fixture
def api(engine):
    api = build_api_world(engine)
    with engine.begin() as conn:
        conn.execute(
            schema.category_attributes.insert(),
            [
                {
                    "category_id": api.world.categories["water"],
                    "code": "depth",
                    "datatype": "number",
                    "required": True,
                    "description": "How deep is the water (cm)?",
                    "position": 1,
                    "value_list": None,
                },
                {
                    "category_id": api.world.categories["water"],
                    "code": "where",
                    "datatype": "multivaluelist",
                    "required": False,
                    "description": "Where is it?",
                    "position": 2,
                    "value_list": [{"key": "road", "name": "Road"}, {"key": "pavement", "name": "Pavement"}],
                },
            ],
        )
    return api


def _post(api, fmt="json", **fields):
    form = {"api_key": api.intake, "service_code": "garbage", **fields}
    return api.client.post(f"{BASE}/requests.{fmt}", data=form)


def _at(api, index=0) -> dict:
    lon, lat = api.world.lattice.center(index)
    return {"lat": str(lat), "long": str(lon)}


def _errors(response) -> list[dict]:
    if response.mimetype == "application/json":
        return response.get_json()
    root = ET.fromstring(response.data)
    assert root.tag == "errors"
    return [{"code": int(e.findtext("code")), "description": e.findtext("description")} for e in root]


def test_discovery_names_the_endpoint_in_both_formats(api):
    body = api.client.get(f"{BASE}/discovery.json").get_json()
    (endpoint,) = body["endpoints"]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"].endswith("/open311/v2") and set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert {"changeset", "contact", "key_service"} <= set(body)
    xml = ET.fromstring(api.client.get(f"{BASE}/discovery.xml").data)
    assert [f.text for f in xml.find("endpoints/endpoint/formats")] == endpoint["formats"]


def test_services_list_every_category_grouped_by_sector(api):
    services = api.client.get(f"{BASE}/services.json").get_json()
    assert [s["service_code"] for s in services] == sorted(api.world.categories)
    assert all(list(s) == SERVICE_FIELDS for s in services)
    by_code = {s["service_code"]: s for s in services}
    assert by_code["construction"]["group"] == "safety" and by_code["garbage"]["group"] == "livelihood"
    assert by_code["water"]["metadata"] is True and by_code["garbage"]["metadata"] is False

    response = api.client.get(f"{BASE}/services.xml")
    assert response.mimetype == "text/xml" and response.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    xml = ET.fromstring(response.data)
    assert xml.tag == "services" and [s.findtext("service_code") for s in xml] == sorted(api.world.categories)
    assert xml.find("service/metadata").text in ("true", "false")


def test_a_service_definition_lists_its_attributes(api):
    definition = api.client.get(f"{BASE}/services/water.json").get_json()
    assert definition["service_code"] == "water"
    depth, where = definition["attributes"]
    assert (depth["code"], depth["datatype"], depth["required"], depth["order"]) == ("depth", "number", True, 1)
    assert where["values"] == [{"key": "road", "name": "Road"}, {"key": "pavement", "name": "Pavement"}]
    assert {"variable", "datatype_description", "description"} <= set(depth)
    xml = ET.fromstring(api.client.get(f"{BASE}/services/water.xml").data)
    assert [v.findtext("key") for v in xml.findall("attributes/attribute/values/value")] == ["road", "pavement"]
    assert api.client.get(f"{BASE}/services/garbage.json").get_json()["attributes"] == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_service_is_404_in_the_standards_error_format(api, fmt):
    response = api.client.get(f"{BASE}/services/potholes.{fmt}")
    assert response.status_code == 404
    assert _errors(response) == [{"code": 404, "description": "service_code 'potholes' not found"}]


def test_a_posted_request_can_be_read_back_with_every_field(api):
    response = _post(api, description="bins overflowing", media_url="https://img.example/1.jpg", **_at(api))
    assert response.status_code == 200
    (created,) = response.get_json()
    assert set(created) == {"service_request_id", "token", "service_notice", "account_id"}
    assert created["service_notice"] is None

    (request,) = api.client.get(f"{BASE}/requests/{created['service_request_id']}.json").get_json()
    assert list(request) == REQUEST_FIELDS
    assert request["status"] == "open" and request["service_code"] == "garbage"
    assert request["description"] == "bins overflowing" and request["media_url"] == "https://img.example/1.jpg"
    assert request["address_id"] is None and request["zipcode"] is None and request["agency_responsible"] is None
    requested = datetime.fromisoformat(request["requested_datetime"])
    assert requested.utcoffset() == datetime.now(ZoneInfo("Asia/Shanghai")).utcoffset()

    xml = ET.fromstring(api.client.get(f"{BASE}/requests/{created['service_request_id']}.xml").data)
    assert xml.tag == "service_requests"
    assert [child.tag for child in xml.find("request")] == REQUEST_FIELDS

    token = api.client.get(f"{BASE}/tokens/{created['token']}.json").get_json()
    assert token == [{"service_request_id": created["service_request_id"], "token": created["token"]}]
    assert api.client.get(f"{BASE}/tokens/o311-unknown.json").status_code == 404


def test_an_address_without_a_position_is_accepted_unlocated(api):
    (created,) = _post(api, address_string="解放碑步行街 8 号", account_id="citizen-42").get_json()
    assert created["service_notice"] and created["account_id"] == "citizen-42"
    (request,) = api.client.get(f"{BASE}/requests/{created['service_request_id']}.json").get_json()
    assert request["address"] == "解放碑步行街 8 号" and request["lat"] is None
    outside = _post(api, lat="10.0", long="10.0").get_json()[0]
    assert outside["service_notice"]  # outside the city: kept, flagged


def test_attributes_are_checked_against_the_definition(api):
    def post_water(**attributes):
        return _post(api, service_code="water", **_at(api), **attributes)

    missing = post_water()
    assert missing.status_code == 400 and "depth is required" in _errors(missing)[0]["description"]
    assert post_water(**{"attribute[depth]": "deep"}).status_code == 400
    assert post_water(**{"attribute[depth]": "20", "attribute[where][]": "sky"}).status_code == 400
    assert post_water(**{"attribute[depth]": "20", "attribute[colour]": "red"}).status_code == 400
    assert api.incident_count() == 0

    ok = api.client.post(
        f"{BASE}/requests.json",
        data={
            "api_key": api.intake,
            "service_code": "water",
            **_at(api),
            "attribute[depth]": "20",
            "attribute[where][]": ["road", "pavement"],
        },
    )
    assert ok.status_code == 200
    incident_id = ok.get_json()[0]["service_request_id"]
    detail = api.client.get(f"/api/v1/incidents/{incident_id}", headers=api.headers(api.reader)).get_json()["incident"]
    assert detail["attributes"] == {"depth": 20.0, "where": ["road", "pavement"]}


BAD_POSTS = [
    ({"service_code": ""}, "service_code is required"),
    ({"service_code": "potholes", "lat": "29.5", "long": "106.5"}, "valid codes: construction, garbage, noise, water"),
    ({}, "a location is required"),
    ({"lat": "29.5"}, "give both longitude and latitude"),
    ({"lat": "north", "long": "106.5"}, "must be numbers"),
    ({"lat": "95", "long": "106.5"}, "not a position on the Earth"),
    ({"address_string": "x", "media_url": "ftp://x/y.jpg"}, "media_url must be an http(s) link"),
    ({"address_string": "x", "description": "d" * 4001}, "description is longer than 4000"),
]


def test_bad_posts_get_400_with_a_description_and_store_nothing(api):
    for fields, message in BAD_POSTS:
        for fmt in ("json", "xml"):
            response = _post(api, fmt, **fields)
            assert response.status_code == 400, fields
            (error,) = _errors(response)
            assert error["code"] == 400 and message in error["description"], error
    assert api.incident_count() == 0


def test_a_json_body_instead_of_a_form_is_400(api):
    response = api.client.post(f"{BASE}/requests.json?api_key={api.intake}", json={"service_code": "garbage"})
    assert response.status_code == 400 and "form-encoded" in _errors(response)[0]["description"]


def test_a_body_over_the_limit_is_413(api):
    api.server.config["CITYBRAIN_API_MAX_BYTES"] = 5_000
    response = _post(api, description="d" * 6_000, address_string="x")
    assert response.status_code == 413 and _errors(response)[0]["code"] == 413
    assert api.incident_count() == 0


def test_missing_unknown_revoked_or_read_only_keys_get_403(api):
    for fmt in ("json", "xml"):
        _check_refused_keys(api, fmt)
    with api.engine.begin() as conn:
        revoke_key(conn, "hotline")
    for fmt in ("json", "xml"):
        revoked = _post(api, fmt, **_at(api))
        assert revoked.status_code == 403 and "revoked" in _errors(revoked)[0]["description"]
    assert api.incident_count() == 0


def _check_refused_keys(api, fmt):
    no_key = api.client.post(f"{BASE}/requests.{fmt}", data={"service_code": "garbage", **_at(api)})
    assert no_key.status_code == 403 and "api_key" in _errors(no_key)[0]["description"]
    assert _post(api, fmt, api_key="cbk_guess", **_at(api)).status_code == 403
    assert _post(api, fmt, api_key=api.reader, **_at(api)).status_code == 403


def test_status_maps_the_lifecycle_to_open_and_closed_with_notes(api):
    ids = [int(_post(api, **_at(api)).get_json()[0]["service_request_id"]) for _ in range(3)]
    with api.engine.begin() as conn:
        drive_to(conn, ids[1], "acknowledged")
        drive_to(conn, ids[2], "closed")
    got = {int(r["service_request_id"]): r for r in api.client.get(f"{BASE}/requests.json").get_json()}
    assert got[ids[0]]["status"] == "open" and got[ids[0]]["agency_responsible"] is None
    handling = got[ids[1]]
    assert handling["status"] == "open" and handling["agency_responsible"] == "CG"
    assert handling["status_notes"] == "Being handled by CG"
    detail = api.client.get(f"/api/v1/incidents/{ids[1]}", headers=api.headers(api.reader)).get_json()["incident"]
    expected = datetime.fromisoformat(handling["expected_datetime"]) - datetime.fromisoformat(detail["handle_due_at"])
    assert abs(expected.total_seconds()) < 1  # the same instant, to the second
    assert got[ids[2]]["status"] == "closed" and got[ids[2]]["status_notes"].startswith("Closed")

    chinese = api.client.get(f"{BASE}/requests/{ids[1]}.json?lang=zh").get_json()[0]
    assert chinese["status_notes"] == "cg已签收，正在处置"


def test_get_requests_filters_and_pages(api):
    garbage = [int(_post(api, **_at(api)).get_json()[0]["service_request_id"]) for _ in range(3)]
    noise = int(_post(api, service_code="noise", **_at(api)).get_json()[0]["service_request_id"])
    with api.engine.begin() as conn:
        drive_to(conn, garbage[0], "closed")

    def ids(query: str) -> list[int]:
        response = api.client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 200, response.data
        return [int(r["service_request_id"]) for r in response.get_json()]  # sent as strings (Open311 clients' type)

    assert ids("") == sorted([*garbage, noise], reverse=True)
    assert ids("service_code=noise") == [noise]
    assert ids("status=closed") == [garbage[0]]
    assert ids("service_code=garbage&status=open") == sorted(garbage[1:], reverse=True)
    assert ids(f"service_request_id={noise},{garbage[0]}&status=open") == [noise, garbage[0]]
    assert ids("page_size=2") + ids("page_size=2&page=2") == ids("")
    assert ids("start_date=2000-01-01T00:00:00Z&end_date=2000-02-01T00:00:00Z") == []
    for bad in ("status=lost", "page=0", "page_size=5000", "start_date=yesterday", "service_code=potholes"):
        response = api.client.get(f"{BASE}/requests.xml?{bad}")
        assert response.status_code == 400 and _errors(response)[0]["code"] == 400


def test_an_unknown_request_or_path_is_404(api):
    assert _errors(api.client.get(f"{BASE}/requests/999.json"))[0]["code"] == 404
    assert api.client.get(f"{BASE}/requests/abc.xml").status_code == 404
    assert api.client.get(f"{BASE}/nothing.json").status_code == 404


def test_open311_posts_count_against_the_keys_rate_limit(api):
    api.server.config["CITYBRAIN_API_KEY_LIMIT"] = "2/minute"
    statuses = [_post(api, **_at(api)).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    limited = _post(api, "xml", **_at(api))
    assert _errors(limited)[0]["code"] == 429 and int(limited.headers["Retry-After"]) >= 1
    assert api.incident_count() == 2
