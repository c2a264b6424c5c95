"""Fuzz of every id and number that comes from outside: hostile values never get a 5xx and never store anything (issue 13).

Hypothesis sends Unicode digits, huge and negative integers, floats, whitespace, NUL, very long strings and
deep JSON into every id and number parameter, path segment and Last-Event-ID header of /api/v1, /open311,
/geo, /live and the /trends exports, and forged bodies (malformed, or well shaped with hostile ids) to
/_dash-update-component. Generation is derandomised, so CI runs the same examples every time; the whole
module takes about twenty seconds. The schemathesis suite (tests/dashboard/api/test_schemathesis.py) covers
the API's documented operations; this covers what its schema does not describe.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from app import create_app
from dashboard import ids
from dashboard.live.routes import ASGI_KEY
from dashboard.settings import Settings
from data import schema, store
from data.accounts.apikeys import create_key
from data.parse import id_or_none
from tests.auth_helpers import make_user, sign_in
from tests.dash_helpers import fire_callback
from tests.factories import drive_to, make_incident, make_world

FUZZ = settings(max_examples=80, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
STORED = (
    schema.incidents,
    schema.incident_events,
    schema.notifications,
    schema.alerts,
    schema.alert_events,
    schema.admin_events,
)

NAMED = [
    "²", "①", "٣", "१२", "𝟗", " 1", "1 ", "\t1", "+1", "-1", "0", "00", "1.0", "1e5", "0x10", "1_0", "NaN", "inf",
    "\x00", "1\x00", "", " ", str(2**31), str(2**63 - 1), str(2**63), str(-(2**63) - 1), "9" * 30, "9" * 5000,
    "district:²", "district:99999999999999999999", "city", "../1", "%00", "[]", "{}",
]  # fmt: skip
HOSTILE = st.one_of(
    st.sampled_from(NAMED),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats().map(repr),
    st.text(alphabet=st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),  # digits of every script
    st.text(max_size=12),
)
# What an HTTP header can carry at all (a client cannot send a line break or NUL in one).
HEADER_SAFE = HOSTILE.filter(lambda v: not any(c in v for c in "\r\n\x00") and v.isprintable())
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), HOSTILE)
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
)
DEEP = st.integers(min_value=60, max_value=3000).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, '{"a":' * n + "1" + "}" * n])
)


@pytest.fixture(scope="module")
def city(tmp_path_factory):
    """One app on a SQLite file for the module: a small city, an incident of each kind of state, keys and an admin."""
    engine = store.make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'store.db'}")
    store.migrate(engine)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    with engine.begin() as conn:
        world = make_world(conn)
        key = create_key(conn, "fuzz", ["intake", "actions", "read"], department_code="cg", rate_limit="1000000/minute")
        for state in ("reported", "dispatched", "closed"):
            drive_to(conn, make_incident(conn, world.categories["garbage"], at=world.lattice.center(0)), state)
    make_user(engine, "admin", username="fuzz-admin")
    client = app.server.test_client()
    sign_in(client, "fuzz-admin")
    yield SimpleNamespace(app=app, engine=engine, client=client, key=key.secret, token=key.secret)
    engine.dispose()


def _stored(city) -> tuple[int, ...]:
    with city.engine.connect() as conn:
        return tuple(conn.execute(select(func.count()).select_from(t)).scalar_one() for t in STORED)


def _no_server_error(response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.get_data(as_text=True)[:300]}"


# {} is where the hostile value goes (quoted as a browser or a client library would send it).
GET_TARGETS = [
    "/api/v1/incidents/{}",
    "/api/v1/incidents?limit={}",
    "/api/v1/incidents?district_id={}",
    "/api/v1/incidents?street_id={}",
    "/api/v1/incidents?community_id={}",
    "/api/v1/incidents?grid_id={}",
    "/api/v1/incidents?cursor={}",
    "/api/v1/incidents?reported_after={}",
    "/api/v1/feed?after={}",
    "/api/v1/feed?limit={}",
    "/api/v1/inbox?limit={}",
    "/api/v1/inbox?cursor={}",
    "/api/v1/kpis?level=district&unit_id={}",
    "/api/v1/kpis?level={}&unit_id=1",
    "/open311/v2/requests/{}.json",
    "/open311/v2/requests/{}.xml",
    "/open311/v2/requests.json?service_request_id={}",
    "/open311/v2/requests.json?service_request_id=1,{}",
    "/open311/v2/requests.json?page={}",
    "/open311/v2/requests.xml?page_size={}",
    "/open311/v2/requests.json?start_date={}",
    "/open311/v2/tokens/{}.json",
    "/open311/v2/services/{}.json",
    "/geo/heat.json?scope={}",
    "/geo/heat.json?cell={}",
    "/geo/heat.json?window={}",
    "/geo/incidents.json?scope={}",
    "/geo/incidents.json?bbox={}",
    "/geo/incidents.json?bbox=106,29,{},30",
    "/geo/units/grid.json?bbox={}",
    "/geo/units/{}.json",
    "/live/events?after={}",
    "/live/head?after={}",
    "/trends/export/league.csv?period={}",
    "/trends/export/league.csv?scope=district:{}",
    "/trends/export/league.csv?scope={}",
    "/trends/export/league.csv?period=custom&from={}&to=2025-01-01",
    "/?scope={}",
    "/dispatch?incident={}",
]


def test_no_hostile_id_or_number_in_a_url_gets_a_server_error(city):
    before = _stored(city)

    @settings(FUZZ, max_examples=240)
    @given(target=st.sampled_from(GET_TARGETS), value=HOSTILE)
    def run(target, value):
        url = target.format(quote(value, safe=""))
        # As served in production, where /live/events is handed to the async layer once admitted.
        response = city.client.get(url, headers={"X-API-Key": city.key}, environ_overrides={ASGI_KEY: True})
        _no_server_error(response, url)

    run()
    assert _stored(city) == before


def test_no_hostile_last_event_id_gets_a_server_error(city):
    @FUZZ
    @given(path=st.sampled_from(["/live/events", "/api/v1/feed"]), value=HEADER_SAFE)
    def run(path, value):
        headers = {"X-API-Key": city.key, "Accept": "text/event-stream", "Last-Event-ID": value}
        response = city.client.get(path, headers=headers, environ_overrides={ASGI_KEY: True})
        _no_server_error(response, f"{path} Last-Event-ID {value!r}")

    run()


def test_no_hostile_json_body_or_path_id_gets_a_server_error_or_stores_anything(city):
    before = _stored(city)

    @FUZZ
    @given(
        target=st.sampled_from(["/api/v1/incidents", "/api/v1/incidents/{}/actions", "/api/v1/inbox/{}/read"]),
        segment=HOSTILE,
        body=st.one_of(JSON_VALUE.map(json.dumps), DEEP, HOSTILE),
    )
    def run(target, segment, body):
        url = target.format(quote(segment, safe=""))
        response = city.client.post(url, data=body, headers={"X-API-Key": city.key, "Content-Type": "application/json"})
        _no_server_error(response, url)

    run()
    assert _stored(city) == before


def test_no_hostile_open311_form_field_gets_a_server_error(city):
    before = _stored(city)

    @FUZZ
    @given(field=st.sampled_from(["lat", "long", "service_code", "attribute[depth]", "address_string"]), value=HOSTILE)
    def run(field, value):
        form = {"api_key": city.key, "service_code": "nothing-such", "lat": "29.5", "long": "106.5", field: value}
        _no_server_error(city.client.post("/open311/v2/requests.json", data=form), f"open311 {field}={value!r}")

    run()
    assert _stored(city) == before


# --- Dash callbacks ------------------------------------------------------------------------------------------


ENTRY = st.fixed_dictionaries(
    {"id": st.one_of(st.text(max_size=20), JSON_VALUE), "property": st.one_of(st.text(max_size=10), JSON_VALUE)},
    optional={"value": JSON_VALUE},
)
FORGED_BODY = st.one_of(
    JSON_VALUE,
    DEEP,
    st.fixed_dictionaries(
        {},
        optional={
            "output": st.one_of(st.text(max_size=40), JSON_VALUE),
            "outputs": st.one_of(ENTRY, st.lists(st.one_of(ENTRY, st.lists(ENTRY, max_size=2)), max_size=3), JSON_VALUE),
            "inputs": st.one_of(st.lists(st.one_of(ENTRY, st.lists(ENTRY, max_size=2)), max_size=3), JSON_VALUE),
            "state": st.one_of(st.lists(ENTRY, max_size=3), JSON_VALUE),
            "changedPropIds": st.one_of(st.lists(st.text(max_size=20), max_size=2), JSON_VALUE),
        },
    ),
)


def test_no_forged_callback_body_gets_a_server_error(city):
    before = _stored(city)

    @FUZZ
    @given(body=FORGED_BODY, real_output=st.booleans())
    def run(body, real_output):
        if real_output and isinstance(body, dict):  # past the shape check: a callback that exists, wrong inputs
            body["output"] = "shell-page.children"
        raw = body if isinstance(body, str) and body.startswith(("[[", '{"a"')) else json.dumps(body)
        response = city.client.post("/_dash-update-component", data=raw, content_type="application/json")
        _no_server_error(response, f"callback {str(body)[:200]}")

    run()
    assert _stored(city) == before


NOT_AN_ID = HOSTILE.filter(lambda v: id_or_none(v) is None)  # a real id could act for real: the admin may
CLICK = lambda v: 1  # noqa: E731  (a button's n_clicks)
CALLBACK_CASES = [
    # (output, (trigger id, property), the trigger's value, the states to fill), each given the hostile value v
    ("dispatch-message.children", ({"type": ids.DISPATCH_ACTION, "index": "acknowledge"}, "n_clicks"), CLICK,
     lambda v: {ids.DISPATCH_CURRENT: {"id": v, "version": v}}),
    ("dispatch-message.children", (ids.DISPATCH_BATCH, "n_clicks"), CLICK, lambda v: {ids.DISPATCH_GRID: [{"id": v, "version": 1}]}),
    ("dispatch-message.children", (ids.DISPATCH_UNDO, "n_clicks"), CLICK, lambda v: {ids.DISPATCH_UNDO_STATE: {"incident_id": v}}),
    ("dispatch-message.children", ({"type": ids.DISPATCH_RATE, "index": 4}, "n_clicks"), CLICK,
     lambda v: {ids.DISPATCH_CURRENT: {"id": v, "version": 1}}),
    ("dispatch-message.children", ({"type": ids.DISPATCH_TO, "index": "department:1"}, "n_clicks"), CLICK,
     lambda v: {ids.DISPATCH_CURRENT: {"id": 1, "version": v}}),
    ("dispatch-selected.data", (ids.DISPATCH_GRID, "cellClicked"), lambda v: {"rowId": v}, lambda v: {}),
    ("dispatch-panel.children", (ids.DISPATCH_SELECTED, "data"), lambda v: {"id": v}, lambda v: {}),
    ("alerts-message.children", (ids.ALERTS_PROMPT_OK, "n_clicks"), CLICK, lambda v: {ids.ALERTS_PENDING: {"id": v}, ids.ALERTS_REASON: "x"}),
    ("overview-state.data", (ids.OVERVIEW_UNITS, "clickData"), lambda v: {"properties": {"id": v}}, lambda v: {}),
    ("overview-kpis.children", (ids.OVERVIEW_STATE, "data"), lambda v: {"scope": v, "variant": "desk"}, lambda v: {}),
    ("overview-card-body.children", (ids.OVERVIEW_MARKERS, "clickData"), lambda v: {"properties": {"id": v}}, lambda v: {}),
    ("shell-page.children", ("shell-location", "pathname"), lambda v: "/dispatch",
     lambda v: {"shell-location": f"?scope={quote(v)}&incident={quote(v)}&area={quote(v)}"}),
]  # fmt: skip


def test_no_hostile_id_in_a_real_callback_gets_a_server_error_or_changes_anything(city):
    before = _stored(city)

    @FUZZ
    @given(case=st.sampled_from(CALLBACK_CASES), value=NOT_AN_ID)
    def run(case, value):
        output, (component, prop), trigger_value, states = case
        response = fire_callback(city.app, city.client, output, (component, prop, trigger_value(value)), states(value))
        _no_server_error(response, f"{output} <- {value!r}")

    run()
    assert _stored(city) == before
