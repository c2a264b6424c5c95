"""The native JSON API over HTTP: intake (single, batch, idempotent), lists, history, department actions, KPIs, feed, errors, limits."""

from __future__ import annotations

import math
import re
import threading
import time
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select
from werkzeug.routing import Rule

from dashboard.api import openapi, v1_params
from dashboard.api.context import api_context
from data import schema
from data.accounts.apikeys import revoke_key
from data.errors import ValidationError
from data.geo.crs import gcj02_to_wgs84
from data.incidents import api_store, lifecycle
from data.times import from_db, utc_now
from tests.api_helpers import build_api_world
from tests.asgi_server import read_whole_stream
from tests.factories import drive_to, make_grids, make_incident


@pytest.fixture
def api(engine):
    return build_api_world(engine)


def _post(api, body, secret=None, **headers):
    return api.client.post("/api/v1/incidents", json=body, headers=api.headers(secret, **headers))


def _incident(api, lon_lat=None, **fields) -> dict:
    lon, lat = lon_lat or api.world.lattice.center(0)
    return {"category_code": "garbage", "lon": lon, "lat": lat, **fields}


# --- intake ------------------------------------------------------------------------------------


def test_a_single_report_is_stored_located_and_audited(api):
    response = _post(api, _incident(api, external_id="A-1", description="overflowing bin", priority=2))
    assert response.status_code == 201
    (result,) = response.get_json()["results"]
    assert result["created"] and not result["unlocated"] and result["external_id"] == "A-1"

    detail = api.client.get(f"/api/v1/incidents/{result['id']}", headers=api.headers(api.reader)).get_json()
    incident = detail["incident"]
    assert incident["source"] == "hotline" and incident["category_code"] == "garbage"
    assert incident["grid_id"] == api.world.lattice.grid_ids[0] and incident["priority"] == 2
    assert [e["action"] for e in detail["history"]] == ["report"]
    assert detail["history"][0]["actor"] == "api:hotline"


def test_sending_the_same_external_id_again_stores_nothing_new(api):
    first = _post(api, _incident(api, external_id="dup")).get_json()["results"][0]
    again = _post(api, _incident(api, external_id="dup", description="changed"))
    assert again.status_code == 200
    assert again.get_json()["results"][0] == {**first, "created": False}
    assert api.incident_count() == 1


def test_a_batch_is_stored_whole_with_one_result_per_incident(api):
    batch = [_incident(api, api.world.lattice.center(i % 6), external_id=f"b{i}") for i in range(1000)]
    response = _post(api, {"incidents": batch})
    assert response.status_code == 201
    body = response.get_json()
    assert body["created"] == 1000 and [r["index"] for r in body["results"]] == list(range(1000))
    assert api.incident_count() == 1000


def test_a_batch_with_one_bad_incident_stores_nothing(api):
    batch = [_incident(api, external_id=f"ok{i}") for i in range(5)] + [_incident(api, external_id="bad", priority=9)]
    response = _post(api, {"incidents": batch})
    assert response.status_code == 400
    assert "row 5" in response.get_json()["error"]["message"]
    assert api.incident_count() == 0


def test_a_batch_over_the_limit_is_refused(api):
    batch = [_incident(api, external_id=f"x{i}") for i in range(v1_params.MAX_BATCH + 1)]
    response = _post(api, {"incidents": batch})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "batch_too_large"
    assert api.incident_count() == 0


def test_an_idempotency_key_replays_the_first_answer(api):
    batch = {"incidents": [_incident(api), _incident(api)]}  # no external ids: only the key protects a retry
    first = _post(api, batch, **{"Idempotency-Key": "retry-1"})
    again = _post(api, batch, **{"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json() and again.headers["Idempotent-Replayed"] == "true"
    assert api.incident_count() == 2

    other_body = _post(api, {"incidents": [_incident(api)]}, **{"Idempotency-Key": "retry-1"})
    assert other_body.status_code == 422 and other_body.get_json()["error"]["code"] == "idempotency_key_reused"
    assert api.incident_count() == 2


def test_an_idempotency_key_expires_after_a_day_and_its_record_is_pruned(api):
    first = _post(api, {"incidents": [_incident(api)]}, **{"Idempotency-Key": "retry-2"})
    assert first.status_code == 201
    with api.engine.begin() as conn:  # a day and a bit later
        conn.execute(
            schema.api_idempotency.update().values(created_at=utc_now() - api_store.IDEMPOTENCY_TTL - timedelta(minutes=1))
        )
    # The old answer is no longer replayed: the key is free again, for a different body too.
    reused = _post(api, {"incidents": [_incident(api), _incident(api)]}, **{"Idempotency-Key": "retry-2"})
    assert reused.status_code == 201 and "Idempotent-Replayed" not in reused.headers
    assert api.incident_count() == 3
    with api.engine.connect() as conn:
        kept = conn.execute(select(schema.api_idempotency.c.created_at)).scalars().all()
    assert len(kept) == 1 and from_db(kept[0]) > utc_now() - timedelta(minutes=1)  # only the fresh record is left


def test_an_unknown_category_is_refused_with_the_valid_codes(api):
    response = _post(api, _incident(api, category_code="potholes"))
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "unknown_category"
    assert error["valid_codes"] == sorted(api.world.categories)
    assert all(code in error["message"] for code in api.world.categories)
    assert api.incident_count() == 0


def test_a_position_outside_the_city_is_kept_and_flagged_unlocated(api):
    response = _post(api, _incident(api, api.world.lattice.outside(), external_id="far"))
    assert response.status_code == 201
    result = response.get_json()["results"][0]
    assert result["unlocated"] is True
    incident = api.client.get(f"/api/v1/incidents/{result['id']}", headers=api.headers(api.reader)).get_json()["incident"]
    assert incident["unlocated"] is True and incident["grid_id"] is None and incident["lon"] is not None


def test_gcj02_positions_are_stored_as_wgs84(api):
    lon, lat = api.world.lattice.center(4)
    result = _post(api, _incident(api, (lon, lat), crs="gcj02")).get_json()["results"][0]
    incident = api.client.get(f"/api/v1/incidents/{result['id']}", headers=api.headers(api.reader)).get_json()["incident"]
    expected = gcj02_to_wgs84([lon], [lat])
    assert math.isclose(incident["lon"], expected[0][0], abs_tol=1e-9) and math.isclose(
        incident["lat"], expected[1][0], abs_tol=1e-9
    )
    assert incident["lon"] != lon  # the offset (hundreds of metres in China) was removed


MALFORMED = [
    (b'{"category_code": "garbage",', "application/json", 400, "malformed_json"),
    (b"", "application/json", 400, "malformed_json"),
    (b"[1, 2]", "application/json", 400, "invalid"),
    (b'{"category_code": "garbage", "colour": "red"}', "application/json", 400, "invalid"),
    (b'{"category_code": "garbage", "description": "a\\u0000b"}', "application/json", 400, "invalid"),
    (b'{"category_code": "garbage", "lon": 500, "lat": 10}', "application/json", 400, "invalid"),
    (b'{"category_code": "garbage", "lon": 106.5}', "application/json", 400, "invalid"),
    (b'{"category_code": "garbage", "reported_at": "2025-03-03T08:00:00"}', "application/json", 400, "invalid"),
    (b"category_code=garbage", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
]


def test_malformed_bodies_are_refused_and_store_nothing(api):
    for body, content_type, status, code in MALFORMED:
        response = api.client.post("/api/v1/incidents", data=body, content_type=content_type, headers=api.headers())
        assert (response.status_code, response.get_json()["error"]["code"]) == (status, code), body
    assert api.incident_count() == 0


def test_a_body_over_the_limit_is_refused_with_413(api):
    api.server.config["CITYBRAIN_API_MAX_BYTES"] = 10_000
    batch = {"incidents": [_incident(api, description="x" * 500) for _ in range(30)]}
    response = _post(api, batch)
    assert response.status_code == 413 and response.get_json()["error"]["code"] == "too_large"
    assert api.incident_count() == 0


def test_missing_unknown_revoked_and_wrong_scope_keys_get_403(api):
    body = orjson.dumps(_incident(api))
    post = api.client.post
    assert post("/api/v1/incidents", data=body, content_type="application/json").get_json()["error"]["code"] == "missing_key"
    unknown = post("/api/v1/incidents", data=body, content_type="application/json", headers={"X-API-Key": "cbk_nope"})
    assert unknown.status_code == 403 and unknown.get_json()["error"]["code"] == "invalid_key"
    wrong_scope = _post(api, _incident(api), api.reader)
    assert wrong_scope.status_code == 403 and wrong_scope.get_json()["error"]["code"] == "insufficient_scope"
    bearer = post(
        "/api/v1/incidents", data=body, content_type="application/json", headers={"Authorization": f"Bearer {api.intake}"}
    )
    assert bearer.status_code == 201

    with api.engine.begin() as conn:
        revoke_key(conn, "hotline")
    revoked = _post(api, _incident(api))
    assert revoked.status_code == 403 and revoked.get_json()["error"]["code"] == "revoked_key"
    assert api.incident_count() == 1


# --- reads -------------------------------------------------------------------------------------


def _ids(api, query: str, secret=None) -> tuple[list[int], str | None]:
    body = api.client.get(f"/api/v1/incidents?{query}", headers=api.headers(secret or api.reader)).get_json()
    return [i["id"] for i in body["incidents"]], body["next_cursor"]


def test_the_list_pages_newest_first_with_a_cursor_and_filters(api):
    lattice = api.world.lattice
    codes = ["garbage", "water", "garbage", "noise", "garbage"]
    batch = [_incident(api, lattice.center(i), category_code=c) for i, c in enumerate(codes)]
    batch.append(_incident(api, lattice.outside()))
    ids = [r["id"] for r in _post(api, {"incidents": batch}).get_json()["results"]]

    seen, cursor = [], None
    while True:
        page, cursor = _ids(api, "limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += page
        if cursor is None:
            break
    assert seen == sorted(ids, reverse=True)

    garbage, _ = _ids(api, "category=garbage")
    assert garbage == sorted([ids[0], ids[2], ids[4], ids[5]], reverse=True)
    assert _ids(api, "unlocated=true")[0] == [ids[5]]
    assert _ids(api, "category=water,noise&status=open")[0] == [ids[3], ids[1]]
    district = lattice.district_ids[0]
    in_district = [ids[i] for i in range(5) if lattice.ancestors_of(i)[0] == district]
    assert 0 < len(in_district) < 5
    assert _ids(api, f"district_id={district}")[0] == sorted(in_district, reverse=True)
    assert _ids(api, "status=closed")[0] == []


@pytest.mark.parametrize(
    "query",
    [
        "cursor=bm9wZQ",
        "limit=0",
        "limit=501",
        "colour=red",
        "status=maybe",
        "state=lost",
        "category=potholes",
        "reported_after=yesterday",
    ],
)
def test_bad_list_parameters_get_400(api, query):
    response = api.client.get(f"/api/v1/incidents?{query}", headers=api.headers(api.reader))
    assert response.status_code == 400
    assert response.get_json()["error"]["message"]


def test_an_unknown_incident_is_404(api):
    for path in ("/api/v1/incidents/999", "/api/v1/incidents/abc", f"/api/v1/incidents/{2**70}"):
        response = api.client.get(path, headers=api.headers(api.reader))
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


# --- department actions -------------------------------------------------------------------------


def _dispatched(api, state=lifecycle.DISPATCHED, category="garbage") -> dict:
    with api.engine.begin() as conn:
        incident_id = make_incident(conn, api.world.categories[category], at=api.world.lattice.center(0))
        return drive_to(conn, incident_id, state)


def _act(api, incident_id, secret, **body):
    return api.client.post(f"/api/v1/incidents/{incident_id}/actions", json=body, headers=api.headers(secret))


def test_a_department_acknowledges_then_resolves_with_a_note_and_photo(api):
    row = _dispatched(api)
    ack = _act(api, row["id"], api.cg, action="acknowledge", version=row["version"])
    assert ack.status_code == 200
    incident = ack.get_json()["incident"]
    assert incident["state"] == "acknowledged" and incident["version"] == row["version"] + 1
    assert ack.get_json()["department_actions"] == ["return", "resolve", "note"]

    resolved = _act(
        api,
        row["id"],
        api.cg,
        action="resolve",
        version=incident["version"],
        note="bins emptied",
        photo_url="https://img.example/1.jpg",
    )
    assert resolved.status_code == 200 and resolved.get_json()["incident"]["state"] == "resolved"
    history = api.client.get(f"/api/v1/incidents/{row['id']}", headers=api.headers(api.cg)).get_json()["history"]
    last = history[-1]
    assert (last["action"], last["note"], last["actor"]) == ("resolve", "bins emptied", "api:cg-system")
    assert last["data"] == {"photo_url": "https://img.example/1.jpg"}


def test_an_action_invalid_for_the_state_is_409_with_the_current_state(api):
    row = _dispatched(api)
    response = _act(api, row["id"], api.cg, action="resolve", version=row["version"])
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "invalid_transition" and error["current_state"] == "dispatched"
    assert error["current_version"] == row["version"] and error["allowed_actions"] == ["acknowledge", "return", "note"]


def test_a_stale_version_is_409_and_changes_nothing(api):
    row = _dispatched(api)
    response = _act(api, row["id"], api.cg, action="acknowledge", version=row["version"] - 1)
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "version_conflict" and error["current_version"] == row["version"]
    state = api.client.get(f"/api/v1/incidents/{row['id']}", headers=api.headers(api.cg)).get_json()["incident"]["state"]
    assert state == "dispatched"


def test_a_department_may_only_act_on_its_own_incidents(api):
    row = _dispatched(api)  # garbage belongs to cg
    response = _act(api, row["id"], api.zj, action="acknowledge", version=row["version"])
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "not_assigned"
    intake_key = _act(api, row["id"], api.intake, action="acknowledge", version=row["version"])
    assert intake_key.status_code == 403 and intake_key.get_json()["error"]["code"] == "insufficient_scope"
    assert _act(api, 10**6, api.cg, action="acknowledge", version=1).status_code == 404


BAD_ACTIONS = [
    {"action": "dispatch", "version": 1},
    {"action": "acknowledge"},
    {"action": "acknowledge", "version": "1"},
    {"action": "return", "version": 3},  # a return needs a note saying why
    {"action": "acknowledge", "version": 3, "photo_url": "https://x/1.jpg"},
    {"action": "acknowledge", "version": 3, "by": "me"},
]


def test_bad_action_requests_get_400_and_change_nothing(api):
    row = _dispatched(api)
    for body in BAD_ACTIONS:
        assert _act(api, row["id"], api.cg, **body).status_code == 400, body
    detail = api.client.get(f"/api/v1/incidents/{row['id']}", headers=api.headers(api.cg)).get_json()
    assert detail["incident"]["version"] == row["version"] and len(detail["history"]) == 3


# --- KPIs and feed -----------------------------------------------------------------------------


def test_kpis_count_what_was_reported_for_the_city_and_a_district(api):
    lattice = api.world.lattice
    _post(api, {"incidents": [_incident(api, lattice.center(i)) for i in range(3)]})  # centres 0 and 1: district 0
    city = api.client.get("/api/v1/kpis", headers=api.headers(api.reader)).get_json()
    assert city["scope"] is None and city["kpis"]["open_backlog"]["value"] == 3
    assert city["kpis"]["new_today"]["value"] == 3
    district = api.client.get(f"/api/v1/kpis?level=district&unit_id={lattice.district_ids[0]}", headers=api.headers(api.reader))
    assert district.get_json()["kpis"]["open_backlog"]["value"] == 2
    assert api.client.get("/api/v1/kpis?level=district&unit_id=99999", headers=api.headers(api.reader)).status_code == 404
    assert api.client.get("/api/v1/kpis?level=district", headers=api.headers(api.reader)).status_code == 400


def test_the_feed_returns_events_after_an_id_in_order(api):
    ids = [r["id"] for r in _post(api, {"incidents": [_incident(api) for _ in range(3)]}).get_json()["results"]]
    feed = api.client.get("/api/v1/feed?after=0", headers=api.headers(api.reader)).get_json()
    assert [e["incident_id"] for e in feed["events"]] == ids
    assert feed["events"][0]["incident"]["state"] == "reported"
    first = feed["events"][0]["id"]
    rest = api.client.get(f"/api/v1/feed?after={first}&limit=1", headers=api.headers(api.reader)).get_json()
    assert [e["id"] for e in rest["events"]] == [first + 1] and rest["next_after"] == first + 1
    assert rest["head"] == feed["events"][-1]["id"]


def test_the_feed_streams_server_sent_events_that_resume(api):
    api.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 0.3
    ids = [r["id"] for r in _post(api, {"incidents": [_incident(api) for _ in range(3)]}).get_json()["results"]]
    headers = api.headers(api.reader, Accept="text/event-stream")
    messages = [m for m in read_whole_stream(api.server, "/api/v1/feed?after=0", headers).split("\n\n") if m.startswith("id:")]
    events = [orjson.loads(m.split("data: ", 1)[1]) for m in messages]
    assert [e["incident_id"] for e in events] == ids
    assert [int(m.split("\n")[0][4:]) for m in messages] == [e["id"] for e in events]

    resumed = read_whole_stream(api.server, "/api/v1/feed", {**headers, "Last-Event-ID": str(events[1]["id"])})
    later = [orjson.loads(m.split("data: ", 1)[1]) for m in resumed.split("\n\n") if "data: " in m]
    assert [e["incident_id"] for e in later if "incident_id" in e] == [ids[2]]


# --- limits, routing, locator, document --------------------------------------------------------


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(api):
    api.server.config["CITYBRAIN_API_KEY_LIMIT"] = "3/minute"
    statuses = [api.client.get("/api/v1/categories", headers=api.headers(api.reader)).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = api.client.get("/api/v1/categories", headers=api.headers(api.reader))
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # Another key has its own allowance.
    assert api.client.get("/api/v1/categories", headers=api.headers(api.cg)).status_code == 200


def test_unknown_paths_and_methods_answer_in_json(api):
    missing = api.client.get("/api/v1/nothing/here", headers=api.headers(api.reader))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong_method = api.client.delete("/api/v1/incidents", headers=api.headers(api.reader))
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["status"] == 405


def test_the_locator_is_built_once_and_rebuilt_when_grids_change(api):
    with api.server.app_context():
        locators = api_context().locators
    locators.check_seconds = 0.0
    for _ in range(3):
        assert _post(api, _incident(api)).status_code == 201
    assert locators.builds == 1

    far = (120.0, 35.0)
    assert _post(api, _incident(api, far)).get_json()["results"][0]["unlocated"] is True
    with api.engine.begin() as conn:
        make_grids(conn, 1, 1, origin=(119.99, 34.99), cell=0.02)
    assert _post(api, _incident(api, far)).get_json()["results"][0]["unlocated"] is False
    assert locators.builds == 2


def _flask_routes(server) -> set[tuple[str, str]]:
    routes = set()
    for rule in server.url_map.iter_rules():
        assert isinstance(rule, Rule)
        if rule.endpoint.startswith("api_v1.") and rule.endpoint != "api_v1.unknown_path":
            path = re.sub(r"<(\w+)>", r"{\1}", rule.rule)
            routes |= {(path, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return routes


def test_the_openapi_document_describes_exactly_the_routes_and_parameters(api):
    document = api.client.get("/api/v1/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == _flask_routes(api.server)
    list_params = {p["name"] for p in document["paths"]["/api/v1/incidents"]["get"]["parameters"]}
    assert list_params == v1_params.LIST_PARAMS
    incident = document["components"]["schemas"]["Incident"]["properties"]
    assert set(incident) == {c.name for c in schema.incidents.c} | {"category_code", "department_code"}
    assert openapi.openapi_document() == document


@pytest.mark.parametrize("bad", [None, 3])
def test_concurrent_reports_share_one_transaction_and_a_bad_one_fails_alone(api, bad):
    with api.server.app_context():
        context = api_context()
    writer, original_get = context.writer, context.locators.get
    gate = threading.Event()

    def slow_get(conn):  # holds the first transaction open while the others queue
        gate.wait(10)
        return original_get(conn)

    context.locators.get = slow_get
    lon, lat = api.world.lattice.center(0)
    outcomes: dict = {}

    def report(i: int) -> None:
        row = {"source": "t", "external_id": f"g{i}", "category_id": api.world.categories["garbage"], "lon": lon, "lat": lat}
        row["priority"] = 9 if i == bad else 3
        try:
            outcomes[i] = writer.submit([row], "api:test")
        except ValidationError as exc:
            outcomes[i] = exc

    first = threading.Thread(target=report, args=(0,))
    first.start()
    _wait_for(lambda: writer._writing)
    others = [threading.Thread(target=report, args=(i,)) for i in range(1, 6)]
    for thread in others:
        thread.start()
    _wait_for(lambda: len(writer._queue) == 5)
    gate.set()
    for thread in (first, *others):
        thread.join(10)

    good = [i for i in range(6) if i != bad]
    assert all(outcomes[i][0].created for i in good)
    assert len({outcomes[i][0].incident_id for i in good}) == len(good) == api.incident_count()
    if bad is None:
        assert writer.transactions == 2  # the first alone, then the five queued behind it together
    else:
        assert isinstance(outcomes[bad], ValidationError) and "priority" in str(outcomes[bad])
        assert writer.transactions == 1 + 4  # the shared one failed; each good request was written on its own


def _wait_for(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)
