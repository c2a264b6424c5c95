"""Item 10: odd input answers a clear 400 (or 404 for a path id nobody has), never a 500, and stores nothing.

Before: Unicode digits ('²', '①') passed str.isdigit() and then failed int() in about twenty parameters and
path segments, integers past 2**63 reached SQLite from ?scope=, JSON nested 500 deep and forged Dash
callback bodies raised inside the server: twelve distinct 500s. Now every id and number from outside is
read by data/parse.py, deep JSON is refused before anything walks it, and /_dash-update-component checks
a request's shape before Dash (or the sign-in gate) reads it.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from urllib.parse import quote

import orjson
import pytest
from sqlalchemy import func, select

from app import create_app
from dashboard.settings import Settings
from data import schema, store
from data.accounts.apikeys import create_key
from data.errors import ValidationError
from data.parse import MAX_ID, check_json_depth, id_or_none, parse_event_id, parse_float, parse_id, parse_int
from tests.auth_helpers import make_user, sign_in
from tests.dash_helpers import fire_callback
from tests.factories import drive_to, make_incident, make_world

UNICODE_DIGITS = ["²", "①", "٣", "१२"]
TOO_LARGE = ["9223372036854775808", "99999999999999999999999"]


# --- the one parser ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1, "1", "42", MAX_ID, str(MAX_ID), "007"])
def test_parse_id_takes_plain_whole_numbers(value):
    assert parse_id(value) == int(value)


@pytest.mark.parametrize(
    "value",
    [
        *UNICODE_DIGITS,
        *TOO_LARGE,
        MAX_ID + 1,
        0,
        "0",
        -1,
        "-1",
        " 1",
        "1 ",
        "+1",
        "1.0",
        1.0,
        True,
        "0x10",
        "1_000",
        "",
        None,
        "9" * 5000,
        [1],
        {"id": 1},
        "1\x00",
    ],
)
def test_parse_id_refuses_everything_else(value):
    with pytest.raises(ValidationError):
        parse_id(value)
    assert id_or_none(value) is None


def test_numbers_are_read_in_a_range_and_finite():
    assert parse_int("-3", "n", minimum=-5, maximum=5) == -3
    assert parse_float("2.5", "x", minimum=0, maximum=3) == 2.5 and parse_float(2, "x", minimum=0, maximum=3) == 2.0
    for bad in ("nan", "inf", "1e999", math.nan, math.inf, 10**400, "²", "1,5", " 2", True):
        with pytest.raises(ValidationError):
            parse_float(bad, "x", minimum=-1e9, maximum=1e9)
    with pytest.raises(ValidationError):
        parse_int(6, "n", minimum=-5, maximum=5)
    assert parse_event_id(None, "Last-Event-ID") is None and parse_event_id(" 12 ", "Last-Event-ID") == 12
    with pytest.raises(ValidationError):
        parse_event_id("²", "Last-Event-ID")


def test_json_nested_past_the_limit_is_refused_without_recursion():
    deep: list = []
    for _ in range(100_000):  # far past Python's recursion limit: walked with a stack of its own
        deep = [deep]
    with pytest.raises(ValidationError):
        check_json_depth(deep)
    assert check_json_depth({"a": [[1]]}) == {"a": [[1]]}


# --- through the server ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One app on a SQLite file for the module (every request here is refused, so nothing changes between tests)."""
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('odd') / 'store.db'}")
    store.migrate(engine)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    with engine.begin() as conn:
        world = make_world(conn)
        secrets = {
            name: create_key(conn, name, scopes, department_code=dept, rate_limit="100000/minute").secret
            for name, scopes, dept in (("hotline", ["intake"], None), ("wall", ["read"], None), ("cg", ["actions", "read"], "cg"))
        }
        drive_to(conn, make_incident(conn, world.categories["garbage"], at=world.lattice.center(0)), "dispatched")
    make_user(engine, "admin", username="odd-admin")
    client = app.server.test_client()
    sign_in(client, "odd-admin")
    yield SimpleNamespace(app=app, engine=engine, world=world, client=client, keys=secrets)
    engine.dispose()


def _key(api, name: str = "cg", **extra) -> dict:
    return {"X-API-Key": api.keys[name], **extra}


def _stored(api) -> tuple[int, int, int]:
    with api.engine.connect() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (schema.incidents, schema.incident_events, schema.alerts)
        )


# {} is where the odd value goes; each of these answered 500 before.
ODD_URLS = [
    ("/api/v1/incidents/{}", 404),
    ("/api/v1/incidents?limit={}", 400),
    ("/api/v1/incidents?district_id={}", 400),
    ("/api/v1/incidents?grid_id={}", 400),
    ("/api/v1/feed?after={}", 400),
    ("/api/v1/feed?limit={}", 400),
    ("/api/v1/inbox?limit={}", 400),
    ("/open311/v2/requests/{}.json", 404),
    ("/open311/v2/requests.json?service_request_id={}", 400),
    ("/open311/v2/requests.json?page={}", 400),
    ("/open311/v2/requests.json?page_size={}", 400),
    ("/geo/heat.json?scope={}", 400),
    ("/geo/incidents.json?scope={}", 400),
    ("/trends/brief?period={}", 400),
    ("/trends/brief?scope=district:{}", 400),
    ("/trends/export/league.csv?scope=district:{}", 400),
]


@pytest.mark.parametrize("url, status", ODD_URLS, ids=[u for u, _ in ODD_URLS])
@pytest.mark.parametrize("value", UNICODE_DIGITS[:2] + TOO_LARGE[:1])
def test_an_odd_number_in_a_parameter_or_path_answers_a_clear_4xx(api, url, status, value):
    before = _stored(api)
    response = api.client.get(url.format(quote(value)), headers=_key(api))
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    if url.startswith(("/api/", "/geo/")):
        assert response.is_json and response.get_json()["error"]
    if url.startswith("/open311/"):
        assert response.get_json()[0]["code"] == status
    assert _stored(api) == before


@pytest.mark.parametrize("value", [*UNICODE_DIGITS[:2], *TOO_LARGE[:1], "-1", "1.0"])
def test_an_odd_last_event_id_is_a_400_on_both_streams(api, value):
    live = api.client.get("/live/events", headers={"Last-Event-ID": value})
    assert live.status_code == 400 and live.get_json()["error"] == "invalid"
    feed = api.client.get("/api/v1/feed", headers=_key(api, "wall", **{"Last-Event-ID": value, "Accept": "text/event-stream"}))
    assert feed.status_code == 400 and feed.get_json()["error"]["code"] == "invalid"


DEEP = "[" * 500 + "]" * 500
DEEP_OBJECT = '{"a":' * 500 + "1" + "}" * 500
DEEPER = "[" * 100_000 + "]" * 100_000  # past Python's own JSON parser's recursion (the sign-in gate's)


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, DEEPER], ids=["list", "object", "past-recursion"])
@pytest.mark.parametrize("path", ["/api/v1/incidents", "/api/v1/incidents/1/actions", "/_dash-update-component"])
def test_json_nested_500_deep_is_refused_before_use(api, path, body):
    before = _stored(api)
    response = api.client.post(path, data=body, headers=_key(api, **{"Content-Type": "application/json"}))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert _stored(api) == before


FORGED_CALLBACKS = [
    {},
    [],
    "x",
    None,
    {"output": 1},
    {"output": "x", "outputs": 5, "inputs": 3},
    {"output": "a.b", "outputs": {"id": "a", "property": "b"}, "inputs": [1]},
    {"output": "a.b", "outputs": {"id": "a", "property": "b"}, "inputs": [{"id": "x"}]},
    {"output": "a.b", "outputs": {"id": "a", "property": "b"}, "inputs": [{"id": {"type": ["x"]}, "property": "p"}]},
    {"output": "..overview-state.data..", "outputs": [], "inputs": [], "state": []},
    {"output": "a.b", "outputs": {"id": "a", "property": "b"}, "inputs": [], "changedPropIds": ["nothing.sent"]},
]


def test_a_callback_body_too_deep_is_a_400_even_before_sign_in(api):
    stranger = api.app.server.test_client()
    for body in (DEEP, DEEPER):
        assert stranger.post("/_dash-update-component", data=body, content_type="application/json").status_code == 400
    # Any other malformed body is first refused by the sign-in gate: a stranger learns nothing from it.
    assert stranger.post("/_dash-update-component", json={"output": 1}).status_code == 401


@pytest.mark.parametrize("body", FORGED_CALLBACKS, ids=[str(i) for i in range(len(FORGED_CALLBACKS))])
def test_a_forged_dash_callback_body_is_a_400(api, body):
    response = api.client.post("/_dash-update-component", data=orjson.dumps(body), content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


def test_a_real_callback_with_the_wrong_number_of_inputs_is_a_400(api):
    key = "shell-page.children"
    assert len(api.app.callback_map[key]["inputs"]) == 2
    body = {
        "output": key,
        "outputs": {"id": "shell-page", "property": "children"},
        "inputs": [{"id": "shell-location", "property": "pathname", "value": "/"}],
        "state": [],
    }
    assert api.client.post("/_dash-update-component", json=body).status_code == 400


@pytest.mark.parametrize("priority", ["²", "①"])
def test_a_report_with_a_unicode_digit_priority_is_a_400_and_stores_nothing(api, priority):
    before = _stored(api)
    lon, lat = api.world.lattice.center(0)
    report = {
        "category_code": "garbage",
        "lon": lon,
        "lat": lat,
        "description": "odd",
        "external_id": f"odd-{priority}",
        "priority": priority,
    }
    response = api.client.post("/api/v1/incidents", json=report, headers=_key(api, "hotline"))
    assert response.status_code == 400 and "priority" in response.get_json()["error"]["message"]
    assert _stored(api) == before


@pytest.mark.parametrize("search", ["?scope=²", "?scope=99999999999999999999999", "?scope=-1"])
def test_a_screens_odd_address_shows_the_page_instead_of_failing(api, search):
    response = fire_callback(
        api.app, api.client, "shell-page.children", ("shell-location", "pathname", "/"), {"shell-location": search}
    )
    assert response.status_code == 200
