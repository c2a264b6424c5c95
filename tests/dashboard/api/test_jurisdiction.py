"""API keys bound to a unit: lists, incidents, feed, KPIs, inbox, actions, intake and Open311 stay inside it; a city key sees all."""

from __future__ import annotations

import orjson
import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text

from data import schema, store
from data.accounts.apikeys import create_key, find_key, hash_key
from data.errors import ValidationError
from data.incidents import dispatch, lifecycle
from tests.api_helpers import build_api_world
from tests.asgi_server import read_whole_stream
from tests.factories import drive_to

# Lattice of make_world: 3 x 2 grids; columns 0-1 are district 0 (grids 0, 1, 3, 4), column 2 district 1 (grids 2, 5).
D0_GRIDS, D1_GRIDS = (0, 1, 3, 4), (2, 5)


def _code(conn, unit_id: int) -> str:
    return conn.execute(select(schema.units.c.code).where(schema.units.c.id == unit_id)).scalar_one()


@pytest.fixture
def api(engine):
    api = build_api_world(engine)
    lattice = api.world.lattice
    with engine.begin() as conn:
        d0 = _code(conn, lattice.district_ids[0])
        api.d0 = create_key(conn, "d0-wall", ["read"], unit_code=d0).secret
        api.d0_intake = create_key(conn, "d0-app", ["intake"], unit_code=d0).secret
        api.d0_cg = create_key(conn, "d0-cg", ["actions", "read"], department_code="cg", unit_code=d0).secret
        api.d1_street = create_key(conn, "d1-street", ["read"], unit_code=_code(conn, lattice.street_ids[1])).secret
    # Reported through the city-wide intake key: two in each district's grids, one without a position.
    body = {"incidents": [_report(api, g) for g in (0, 1, 2, 5)] + [{"category_code": "garbage", "address": "somewhere"}]}
    answer = api.client.post("/api/v1/incidents", json=body, headers=api.headers())
    assert answer.status_code == 201, answer.get_json()
    ids = [r["id"] for r in answer.get_json()["results"]]
    api.inside, api.outside, api.unlocated = ids[:2], ids[2:4], ids[4]
    return api


def _report(api, grid: int, **fields) -> dict:
    lon, lat = api.world.lattice.center(grid)
    return {"category_code": "garbage", "lon": lon, "lat": lat, **fields}


def _get(api, path: str, secret: str, **params):
    return api.client.get(path, query_string=params, headers=api.headers(secret))


def _listed(api, secret: str, **params) -> list[int]:
    response = _get(api, "/api/v1/incidents", secret, **params)
    assert response.status_code == 200, response.get_json()
    return sorted(i["id"] for i in response.get_json()["incidents"])


# --- reads -----------------------------------------------------------------------------------------


def test_a_district_key_lists_only_its_districts_incidents_and_a_city_key_all(api):
    lattice = api.world.lattice
    assert _listed(api, api.d0) == api.inside
    assert _listed(api, api.reader) == sorted([*api.inside, *api.outside, api.unlocated])
    assert _listed(api, api.d1_street) == api.outside  # a street key: its street's incidents
    # Asking for another unit narrows, never widens: nothing from district 1 through the district 0 key.
    assert _listed(api, api.d0, district_id=lattice.district_ids[1]) == []
    assert _listed(api, api.d0, street_id=lattice.street_ids[1]) == []
    assert _listed(api, api.d0, grid_id=lattice.grid_ids[0]) == [api.inside[0]]
    assert _listed(api, api.d0, unlocated="true") == []
    # Pages through a cursor stay inside too.
    first = _get(api, "/api/v1/incidents", api.d0, limit=1).get_json()
    rest = _get(api, "/api/v1/incidents", api.d0, limit=1, cursor=first["next_cursor"]).get_json()
    assert sorted([first["incidents"][0]["id"], rest["incidents"][0]["id"]]) == api.inside


def test_an_incident_outside_the_keys_unit_is_404_exactly_like_a_missing_one(api):
    assert _get(api, f"/api/v1/incidents/{api.inside[0]}", api.d0).status_code == 200
    missing = _get(api, "/api/v1/incidents/999999", api.d0)
    for incident_id in (*api.outside, api.unlocated):
        outside = _get(api, f"/api/v1/incidents/{incident_id}", api.d0)
        assert outside.status_code == missing.status_code == 404
        assert outside.get_json() == {  # the same answer but for the id it names and the request's own id
            "error": {
                **missing.get_json()["error"],
                "message": f"incident {incident_id} does not exist",
                "request_id": outside.headers["X-Request-ID"],
            }
        }
        assert _get(api, f"/api/v1/incidents/{incident_id}", api.reader).status_code == 200


def test_the_feed_of_a_district_key_leaves_out_events_elsewhere(api):
    city = _get(api, "/api/v1/feed", api.reader, after=0).get_json()
    assert len(city["events"]) == 5
    feed = _get(api, "/api/v1/feed", api.d0, after=0).get_json()
    assert [e["incident_id"] for e in feed["events"]] == api.inside
    # Nothing more inside up to the head: the next poll starts there rather than scanning again.
    assert feed["next_after"] == feed["head"] == city["head"]

    with api.engine.begin() as conn:
        drive_to(conn, api.outside[0], lifecycle.REGISTERED)
    assert _get(api, "/api/v1/feed", api.d0, after=feed["next_after"]).get_json()["events"] == []
    with api.engine.begin() as conn:
        drive_to(conn, api.inside[1], lifecycle.REGISTERED)
    later = _get(api, "/api/v1/feed", api.d0, after=feed["next_after"]).get_json()
    assert [(e["incident_id"], e["action"]) for e in later["events"]] == [(api.inside[1], "register")]

    page = _get(api, "/api/v1/feed", api.d0, after=0, limit=1).get_json()
    assert [e["incident_id"] for e in page["events"]] == [api.inside[0]] and page["next_after"] == page["events"][0]["id"]


@pytest.mark.parametrize("window", [0, 10_000])
def test_a_street_keys_feed_is_the_same_read_either_way(api, monkeypatch, window):
    """Far behind the head a fine unit's feed starts from its incidents, close to it from the events: same answer."""
    from dashboard.api import jurisdiction

    monkeypatch.setattr(jurisdiction, "SHORT_WINDOW", window)
    with api.engine.begin() as conn:
        drive_to(conn, api.outside[1], lifecycle.REGISTERED)
        drive_to(conn, api.inside[0], lifecycle.REGISTERED)
    feed = _get(api, "/api/v1/feed", api.d1_street, after=0).get_json()
    assert [(e["incident_id"], e["action"]) for e in feed["events"]] == [
        (api.outside[0], "report"),
        (api.outside[1], "report"),
        (api.outside[1], "register"),
    ]
    assert feed["next_after"] == feed["head"]
    page = _get(api, "/api/v1/feed", api.d1_street, after=0, limit=2).get_json()
    assert [e["incident_id"] for e in page["events"]] == api.outside and page["next_after"] == page["events"][1]["id"]


def test_the_event_stream_of_a_district_key_leaves_out_events_elsewhere(api):
    api.server.config["CITYBRAIN_SSE_STREAM_SECONDS"] = 0.3
    body = read_whole_stream(api.server, "/api/v1/feed?after=0", api.headers(api.d0, Accept="text/event-stream"))
    messages = [m for m in body.split("\n\n") if m.startswith("id:")]
    assert [orjson.loads(m.split("data: ", 1)[1])["incident_id"] for m in messages] == api.inside


def test_kpis_of_a_district_key_default_to_its_district_and_refuse_another(api):
    lattice = api.world.lattice
    own = _get(api, "/api/v1/kpis", api.d0).get_json()
    assert own["scope"] == {"level": "district", "unit_id": lattice.district_ids[0]}
    assert own["kpis"]["open_backlog"]["value"] == 2
    street = _get(api, "/api/v1/kpis", api.d0, level="street", unit_id=lattice.street_ids[0])
    assert street.status_code == 200 and street.get_json()["kpis"]["open_backlog"]["value"] == 2
    other = _get(api, "/api/v1/kpis", api.d0, level="district", unit_id=lattice.district_ids[1])
    assert other.status_code == 404
    assert _get(api, "/api/v1/kpis", api.reader).get_json()["kpis"]["open_backlog"]["value"] == 5


# --- intake and actions ----------------------------------------------------------------------------


def test_a_district_intake_key_reports_inside_and_is_refused_outside(api):
    before = api.incident_count()
    inside = api.client.post("/api/v1/incidents", json=_report(api, 3), headers=api.headers(api.d0_intake))
    assert inside.status_code == 201
    unplaced = api.client.post(
        "/api/v1/incidents", json={"category_code": "garbage", "address": "a shop"}, headers=api.headers(api.d0_intake)
    )
    assert unplaced.status_code == 201 and unplaced.get_json()["results"][0]["unlocated"]  # an operator places it

    outside = api.client.post("/api/v1/incidents", json=_report(api, 5), headers=api.headers(api.d0_intake))
    assert outside.status_code == 422
    error = outside.get_json()["error"]
    assert error["code"] == "outside_jurisdiction" and "outside this key's unit" in error["message"]
    # Outside the city altogether: kept and flagged unlocated, as for any key (a report is never lost).
    lon, lat = api.world.lattice.outside()
    beyond = api.client.post(
        "/api/v1/incidents", json={"category_code": "garbage", "lon": lon, "lat": lat}, headers=api.headers(api.d0_intake)
    )
    assert beyond.status_code == 201 and beyond.get_json()["results"][0]["unlocated"]
    batch = {"incidents": [_report(api, 0), _report(api, 2)]}
    refused = api.client.post("/api/v1/incidents", json=batch, headers=api.headers(api.d0_intake))
    assert refused.status_code == 422 and refused.get_json()["error"]["index"] == 1
    assert api.incident_count() == before + 3  # nothing of the refused requests was stored


def _dispatched_to_cg(api, incident_id: int) -> dict:
    with api.engine.begin() as conn:
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with api.engine.begin() as conn:
        dispatch.dispatch(conn, incident_id, actor="dispatcher", department_id=api.world.departments["cg"])
    return _get(api, f"/api/v1/incidents/{incident_id}", api.reader).get_json()["incident"]


def test_a_district_actions_key_acts_and_hears_only_inside(api):
    inside, outside = _dispatched_to_cg(api, api.inside[0]), _dispatched_to_cg(api, api.outside[0])

    def act(row):
        body = {"action": "acknowledge", "version": row["version"]}
        return api.client.post(f"/api/v1/incidents/{row['id']}/actions", json=body, headers=api.headers(api.d0_cg))

    refused = act(outside)
    assert refused.status_code == 404 and refused.get_json()["error"]["message"] == f"incident {outside['id']} does not exist"
    assert act(inside).status_code == 200

    heard = _get(api, "/api/v1/inbox", api.d0_cg).get_json()["notifications"]
    assert {n["incident_id"] for n in heard} == {inside["id"]}
    city = _get(api, "/api/v1/inbox", api.cg).get_json()["notifications"]
    elsewhere = next(n["id"] for n in city if n["incident_id"] == outside["id"])
    assert api.client.post(f"/api/v1/inbox/{elsewhere}/read", headers=api.headers(api.d0_cg)).status_code == 404
    assert _get(api, "/api/v1/inbox", api.cg, unread="true").get_json()["notifications"][0]["id"] == elsewhere


# --- Open311 -----------------------------------------------------------------------------------------


def _open311_ids(api, **params) -> list[int]:
    response = api.client.get("/open311/v2/requests.json", query_string=params)
    assert response.status_code == 200, response.get_json()
    return sorted(int(r["service_request_id"]) for r in response.get_json())


def test_open311_reads_with_a_unit_key_stay_inside_and_without_a_key_are_city_wide(api):
    everything = sorted([*api.inside, *api.outside, api.unlocated])
    assert _open311_ids(api) == everything
    assert _open311_ids(api, api_key=api.d0) == api.inside
    assert _open311_ids(api, api_key=api.d0, service_request_id=",".join(map(str, everything))) == api.inside
    assert _open311_ids(api, api_key=api.reader) == everything
    outside = f"/open311/v2/requests/{api.outside[0]}.json"
    assert api.client.get(outside, query_string={"api_key": api.d0}).status_code == 404
    assert api.client.get(outside).status_code == 200
    assert api.client.get("/open311/v2/requests.json", query_string={"api_key": "cbk_not-a-key"}).status_code == 403


def test_open311_posts_of_a_unit_key_outside_it_are_refused(api):
    def post(grid: int):
        lon, lat = api.world.lattice.center(grid)
        form = {"api_key": api.d0_intake, "service_code": "garbage", "lat": lat, "long": lon}
        return api.client.post("/open311/v2/requests.json", data=form)

    before = api.incident_count()
    refused = post(2)
    assert refused.status_code == 400 and "outside this key's unit" in refused.get_json()[0]["description"]
    assert post(0).status_code == 200
    assert api.incident_count() == before + 1


# --- keys, commands, admin page, migration -------------------------------------------------------------


def test_keys_are_bound_by_unit_code_and_an_unknown_code_is_refused(api):
    lattice = api.world.lattice
    with api.engine.begin() as conn:
        with pytest.raises(ValidationError, match="unit 'nowhere' does not exist"):
            create_key(conn, "lost", ["read"], unit_code="nowhere")
        city_code = conn.execute(select(schema.units.c.code).where(schema.units.c.level == schema.CITY)).scalar_one()
        assert create_key(conn, "whole", ["read"], unit_code=city_code).key.unit_id is None
        key = find_key(conn, api.d0)
        assert (key.unit_id, key.unit_level, key.scope) == (
            lattice.district_ids[0],
            schema.DISTRICT,
            (schema.DISTRICT, lattice.district_ids[0]),
        )
        assert find_key(conn, api.reader).unit_id is None


def test_the_api_key_command_takes_and_lists_a_unit(tmp_path, monkeypatch):
    from app import cli
    from tests.factories import make_grids

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", url)
    engine = store.make_engine(url)
    store.migrate(engine)
    with engine.begin() as conn:
        lattice = make_grids(conn, 2, 1)
        street = _code(conn, lattice.street_ids[0])
    runner = CliRunner()
    created = runner.invoke(cli, ["api-key", "create", "--name", "street-wall", "--scope", "read", "--unit", street])
    assert created.exit_code == 0, created.output
    assert f"unit {street}" in created.stderr
    listed = runner.invoke(cli, ["api-key", "list"]).output
    assert "unit" in listed.splitlines()[0] and street in listed
    refused = runner.invoke(cli, ["api-key", "create", "--name", "lost", "--scope", "read", "--unit", "nowhere"])
    assert refused.exit_code != 0 and "nowhere" in refused.output
    engine.dispose()


def test_the_admin_page_binds_a_key_to_a_unit_inside_the_admins_own(api):
    from app import create_app
    from callbacks import admin as callbacks
    from dashboard.settings import Settings
    from data.accounts.apikeys import list_keys
    from tests.auth_helpers import signed_in_client
    from tests.callbacks.test_admin import press

    lattice = api.world.lattice
    with api.engine.begin() as conn:
        d0, d1 = _code(conn, lattice.district_ids[0]), _code(conn, lattice.district_ids[1])
    made = callbacks.perform(api.engine, "keys", "create", {"name": "p1", "scopes": ["read"], "unit": d1}, "en", actor="root")
    assert made.ok
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=api.engine, testing=True)
    client = signed_in_client(app, "admin", unit_id=lattice.district_ids[0])
    assert press(client, app, "keys", "create", {"name": "p2", "scopes": ["read"], "unit": "city"}).status_code == 200
    refused = press(client, app, "keys", "create", {"name": "p3", "scopes": ["read"], "unit": d1})
    assert refused.status_code == 200 and "outside your jurisdiction" in refused.get_data(as_text=True)
    with api.engine.connect() as conn:
        units = {k.name: k.unit_code for k in list_keys(conn)}
    # A district's administrator cannot mint a city-wide key, nor one for another district.
    assert units["p1"] == d1 and units["p2"] == d0 and "p3" not in units
    rows = {r["name"]: r for r in callbacks.page.rows(api.engine, "keys", "en", "UTC")}
    assert rows["p1"]["unit_text"] == d1 and rows["wall"]["unit_text"] == "City-wide"


def test_migration_0011_adds_the_unit_to_keys_already_in_use(engine):
    cfg = store.alembic_config(engine)
    command.downgrade(cfg, "0010")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (name, prefix, key_hash, scopes, created_at) "
                "VALUES ('old', 'cbk_old', :h, 'read', CURRENT_TIMESTAMP)"
            ),
            {"h": hash_key("cbk_old-secret")},
        )
        key_id = conn.execute(text("SELECT id FROM api_keys WHERE name = 'old'")).scalar_one()
        conn.execute(
            text(
                "INSERT INTO api_idempotency (api_key_id, idem_key, request_hash, status, response, created_at) "
                "VALUES (:k, 'i', 'h', 200, '{}', CURRENT_TIMESTAMP)"
            ),
            {"k": key_id},
        )
    store.migrate(engine)
    with engine.connect() as conn:
        key = find_key(conn, "cbk_old-secret")
        assert key.name == "old" and key.unit_id is None and key.active
        assert conn.execute(text("SELECT count(*) FROM api_idempotency")).scalar_one() == 1
