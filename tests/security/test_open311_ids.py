"""Item 14: Open311 answers ids and tokens as strings in JSON, on every route, and still takes them in either form.

Before: service_request_id was a JSON number; Open311 client libraries with typed models (and the big city
servers, and the FIWARE Open311 data model) read it as a string, and one of them refused the whole answer.
"""

from __future__ import annotations

import pytest

from tests.api_helpers import build_api_world

BASE = "/open311/v2"


@pytest.fixture
def api(sqlite_engine):
    return build_api_world(sqlite_engine)


def _report(api) -> dict:
    lon, lat = api.world.lattice.center(0)
    response = api.client.post(
        f"{BASE}/requests.json", data={"api_key": api.intake, "service_code": "garbage", "lat": str(lat), "long": str(lon)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    (created,) = response.get_json()
    return created


def test_every_route_sends_ids_and_tokens_as_strings(api):
    created = _report(api)
    assert isinstance(created["service_request_id"], str) and isinstance(created["token"], str)
    number = created["service_request_id"]
    assert number.isascii() and number.isdigit()

    (one,) = api.client.get(f"{BASE}/requests/{number}.json").get_json()
    listed = api.client.get(f"{BASE}/requests.json").get_json()
    searched = api.client.get(f"{BASE}/requests.json", query_string={"service_request_id": number}).get_json()
    (by_token,) = api.client.get(f"{BASE}/tokens/{created['token']}.json").get_json()
    for answer in (one, *listed, *searched, by_token):
        assert answer["service_request_id"] == number, answer
    assert by_token["token"] == created["token"]


def test_ids_are_still_taken_as_written_in_a_path_or_a_list(api):
    first, second = _report(api)["service_request_id"], _report(api)["service_request_id"]
    both = api.client.get(f"{BASE}/requests.json", query_string={"service_request_id": f"{first},{second}"}).get_json()
    assert sorted(r["service_request_id"] for r in both) == sorted([first, second])
    assert api.client.get(f"{BASE}/requests/{int(first)}.xml").status_code == 200
    assert api.client.get(f"{BASE}/requests/0{first}.json").get_json()[0]["service_request_id"] == first
