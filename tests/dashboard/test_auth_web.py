"""Sign-in and enforcement over HTTP: anonymous requests refused everywhere, roles, jurisdiction, CSRF, lockout, kiosk links."""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import orjson
import pytest

from app import create_app
from dashboard import access, auth, ids
from dashboard.settings import Settings
from data.accounts import signins
from data.accounts import users as accounts
from data.incidents import lifecycle
from data.incidents.feed import get_incident, history
from tests.auth_helpers import TEST_PASSWORD, csrf_from, make_user, sign_in, signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import drive_to, make_incident, make_world

# Grids 0, 1, 3, 4 lie in district 0 (one street), grids 2 and 5 in district 1 (make_world's lattice).
MINE, OTHERS = 0, 2


@pytest.fixture
def city(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=engine, testing=True)
    return SimpleNamespace(engine=engine, world=world, app=app, lattice=world.lattice)


def _incident(city, grid: int, state: str | None = None, department: str = "cg", minutes_ago: int = 5) -> int:
    with city.engine.begin() as conn:
        incident_id = make_incident(
            conn,
            city.world.categories["garbage"],
            at=city.lattice.center(grid),
            priority=2,
            reported_at=datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes_ago),
            locator=city.world.locator,
        )
        if state:
            drive_to(conn, incident_id, state, department_id=city.world.departments[department])
    return incident_id


def _json(response):
    body = gzip.decompress(response.data) if response.headers.get("Content-Encoding") == "gzip" else response.data
    return orjson.loads(body)


def fire(app, client, output: str, trigger: tuple, values: dict | None = None):
    """POST the callback writing `output` as Dash's renderer would; `trigger` is (id, property, value)."""
    return fire_callback(app, client, output, trigger, values)


def _desk_action(city, client, incident_id: int, action: str):
    row = get_incident_row(city, incident_id)
    current = {"id": incident_id, "version": row["version"], "state": row["state"]}
    return fire(
        city.app,
        client,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_ACTION, "index": action}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CONFIG: {"lang": "en"}},
    )


def get_incident_row(city, incident_id: int) -> dict:
    with city.engine.connect() as conn:
        return get_incident(conn, incident_id)


# --- every route refuses an anonymous request --------------------------------------------------

# Public by design of the APIs (README, Intake API): the OpenAPI document, and Open311 GeoReport v2
# reads (discovery, services, service requests, tokens), which the standard means to be public.
API_DOCUMENTS = {
    "api_v1.openapi_json",
    "open311.discovery",
    "open311.services",
    "open311.service_definition",
    "open311.get_requests",
    "open311.get_request",
    "open311.get_token",
}
SAMPLE = {"level_name": "district", "which": "league", "fmt": "csv", "path": "wall", "filename": "x.js"}


def _concrete(rule) -> str:
    """A URL the rule matches: sample values for its arguments (the first choice of an any(...))."""
    url = re.sub(r"<any\(([a-z0-9_]+)[^>]*>", lambda m: m.group(1), rule.rule)
    for name in rule.arguments:
        url = re.sub(rf"<(?:[^:<>]+:)?{name}>", SAMPLE.get(name, "1"), url)
    return url


def test_every_route_and_callback_refuses_an_anonymous_request(city):
    """Enumerates the live url_map and callback_map, so a route added later is checked too."""
    server = city.app.server
    client = server.test_client()
    _incident(city, MINE, lifecycle.DISPATCHED)
    checked = 0
    for rule in server.url_map.iter_rules():
        permission = auth.endpoint_permission_for(server, rule.endpoint)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_concrete(rule), method=method)
            body = response.get_data()[:300].decode("utf-8", "replace")
            if permission == access.PUBLIC:
                continue
            checked += 1
            if permission == access.API:  # the API's own key checks: refused (or the body refused first), never data
                if response.status_code == 200:  # only the published descriptions of the APIs themselves
                    assert rule.endpoint in API_DOCUMENTS, (rule.rule, method)
                    continue
                assert 400 <= response.status_code < 500, (rule.rule, method, response.status_code, body[:200])
                continue
            assert response.status_code == 401, (rule.rule, method, response.status_code)
            assert response.headers.get(auth.SIGNED_OUT_HEADER) == "1"
            if rule.rule.startswith("/geo/"):  # map layers read `features` even from a refusal
                assert response.get_json()["features"] == [], rule.rule
    assert checked > 20
    for key in city.app.callback_map:
        first = key.strip(".").split("...")[0]
        component = first.rpartition(".")[0]
        response = client.post(
            "/_dash-update-component", json={"output": key, "outputs": {"id": component, "property": "x"}, "inputs": []}
        )
        assert response.status_code == 401, key
    # A browser asking for a page is sent to the sign-in page, which (and its styles) loads anonymously.
    page = client.get("/dispatch?incident=1", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login?next=/dispatch")
    assert client.get("/login").status_code == 200 and client.get("/assets/login.css").status_code == 200
    assert client.get("/healthz").get_json()["status"] == "ok"


def test_everything_unlisted_needs_an_administrator(city):
    """Deny by default: a route, page or callback area nobody declared a permission for is admin-only."""
    server = city.app.server

    @server.get("/undeclared-report")
    def undeclared():
        return "secret"

    dispatcher = signed_in_client(city.app, "dispatcher")
    assert dispatcher.get("/undeclared-report").status_code == 403
    assert signed_in_client(city.app, "admin").get("/undeclared-report").get_data(as_text=True) == "secret"
    assert auth.callback_permissions({"outputs": {"id": "brandnew-thing", "property": "children"}}) == {access.ADMIN}
    assert auth.callback_permissions({"outputs": {"id": {"type": "dispatch-action", "index": 1}, "property": "x"}}) == {
        access.DESK
    }


def test_the_gate_knows_every_page_the_shell_routes():
    """A page's path is listed where the gate reads it, so a page nobody declared stays admin-only."""
    from dashboard.pages import PAGES

    assert set(PAGES) == access.PAGE_PATHS


# --- sign-in, sign-out, cookies, CSRF, lockout -------------------------------------------------


def test_sign_in_sets_a_secure_session_and_sign_out_ends_it(city):
    user = make_user(city.engine, "viewer", username="ops")
    client = city.app.server.test_client()
    response = sign_in(client, "OPS")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    session_cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("citybrain_session="))
    assert "HttpOnly" in session_cookie and "SameSite=Lax" in session_cookie
    assert client.get("/_dash-layout").status_code == 200
    assert client.get("/logout").status_code == 200  # asks only
    assert client.get("/_dash-layout").status_code == 200
    assert client.post("/logout", data={"csrf_token": csrf_from(client)}).status_code == 302
    assert client.get("/_dash-layout").status_code == 401
    with city.engine.connect() as conn:
        assert accounts.get_user(conn, user["id"])["last_login_at"] is not None


def test_the_session_cookie_is_not_resent_with_every_answer_but_slides_hourly(city, monkeypatch):
    """Cached geometry and bundles stay cached (their answers Vary on the cookie); a wall stays signed in."""
    make_user(city.engine, "viewer", username="wall-ops")
    client = city.app.server.test_client()
    sign_in(client, "wall-ops")

    def session_cookies(response) -> list[str]:
        return [h for h in response.headers.getlist("Set-Cookie") if h.startswith("citybrain_session=")]

    first = client.get("/_dash-layout")
    assert first.status_code == 200
    assert [session_cookies(client.get(path)) for path in ("/_dash-layout", "/geo/units/district.json")] == [[], []]
    # An hour later the next request moves the expiry on (one new cookie), and the session is still good.
    later = time.time() + auth.SESSION_REFRESH_S + 60
    monkeypatch.setattr(auth.time, "time", lambda: later)
    slid = client.get("/_dash-layout")
    assert slid.status_code == 200 and len(session_cookies(slid)) == 1
    assert session_cookies(client.get("/_dash-layout")) == []


def test_cookies_are_https_only_when_configured(engine):
    with engine.begin() as conn:
        make_world(conn)
    app = create_app(Settings.from_env({}, live=False, build_demo=False, secure_cookies=True), engine=engine, testing=True)
    make_user(engine, "viewer", username="ops")
    client = app.server.test_client()
    response = sign_in(client, "ops")
    assert all("Secure" in h for h in response.headers.getlist("Set-Cookie"))


def test_next_never_leaves_the_site(city):
    make_user(city.engine, "viewer", username="ops")
    client = city.app.server.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").get_data(as_text=True)).group(1)
    for target, landing in (("/wall?lang=zh", "/wall?lang=zh"), ("//evil.example/x", "/"), ("https://evil.example", "/")):
        response = client.post("/login", data={"username": "ops", "password": TEST_PASSWORD, "csrf_token": token, "next": target})
        assert response.headers["Location"] == landing
        token = client.get_cookie("_csrf_token").value


def test_a_state_changing_request_without_the_csrf_token_is_refused(city):
    incident_id = _incident(city, MINE, lifecycle.REGISTERED)
    client = signed_in_client(city.app, "dispatcher")
    token = client.environ_base.pop("HTTP_X_CSRFTOKEN")
    refused = _desk_action(city, client, incident_id, "reject")
    assert refused.status_code == 403 and "CSRF" in refused.get_json()["message"]
    client.environ_base["HTTP_X_CSRFTOKEN"] = "forged"
    assert _desk_action(city, client, incident_id, "reject").status_code == 403
    assert get_incident_row(city, incident_id)["state"] == lifecycle.REGISTERED
    client.environ_base["HTTP_X_CSRFTOKEN"] = token
    assert _desk_action(city, client, incident_id, "note").status_code == 200  # the prompt opens: allowed
    # The sign-in form itself carries a token: a forged cross-site sign-in is refused.
    make_user(city.engine, "viewer", username="ops")
    fresh = city.app.server.test_client()
    forged = fresh.post("/login", data={"username": "ops", "password": TEST_PASSWORD})
    assert forged.status_code == 400 and "expired" in forged.get_data(as_text=True)


def test_the_api_keeps_its_keys_and_needs_no_csrf(city):
    from data.accounts.apikeys import create_key

    with city.engine.begin() as conn:
        secret = create_key(conn, "reader", "read").secret
    client = city.app.server.test_client()
    assert client.get("/api/v1/kpis").status_code == 403
    assert client.get("/api/v1/kpis", headers={"X-API-Key": secret}).status_code == 200
    assert client.post("/api/v1/incidents", json=[], headers={"X-API-Key": secret}).status_code == 403  # no intake scope


def test_five_wrong_passwords_throttle_the_sign_in_with_a_clear_message(city):
    make_user(city.engine, "dispatcher", username="ops")
    client = city.app.server.test_client()
    for _ in range(signins.MAX_FAILURES - 1):
        wrong = sign_in(client, "ops", "not the password")
        assert wrong.status_code == 401 and "Wrong user name or password." in wrong.get_data(as_text=True)
    throttled = sign_in(client, "ops", "not the password")
    assert throttled.status_code == 429 and "try again in 15 minute(s)" in throttled.get_data(as_text=True)
    still = sign_in(client, "ops")  # the right password, from the same address, meanwhile
    assert still.status_code == 429
    zh = client.get("/login?lang=zh").get_data(as_text=True)
    assert "用户名" in zh and "密码" in zh


def test_a_new_password_or_deactivation_ends_open_sessions(city):
    client = signed_in_client(city.app, "dispatcher")
    assert client.get("/_dash-layout").status_code == 200
    with city.engine.begin() as conn:
        accounts.update_user(conn, client.user["id"], password="another password")
    assert client.get("/_dash-layout").status_code == 401
    other = signed_in_client(city.app, "viewer")
    with city.engine.begin() as conn:
        accounts.update_user(conn, other.user["id"], active=False)
    assert other.get("/_dash-layout").status_code == 401


# --- roles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("viewer", ["/", "/wall"], ["/dispatch", "/trends", "/inbox", "/trends/export/league.csv"]),
        ("dispatcher", ["/", "/wall", "/dispatch", "/inbox"], ["/trends", "/trends/export/league.csv"]),
        ("department", ["/", "/dispatch", "/inbox"], ["/trends", "/trends/export/league.csv"]),
        ("leader", ["/", "/dispatch", "/trends", "/trends/export/league.csv"], []),
        ("admin", ["/", "/dispatch", "/trends", "/inbox", "/trends/export/league.csv"], []),
    ],
)
def test_each_role_opens_its_pages_and_is_refused_the_others(city, role, allowed, refused):
    kwargs = {"department_id": city.world.departments["cg"]} if role == "department" else {}
    client = signed_in_client(city.app, role, **kwargs)
    for path in allowed:
        assert client.get(path).status_code == 200, (role, path)
    for path in refused:
        assert client.get(path).status_code == 403, (role, path)


def test_a_viewer_calling_the_dispatch_callback_directly_is_refused(city):
    incident_id = _incident(city, MINE, lifecycle.REGISTERED)
    viewer = signed_in_client(city.app, "viewer")
    row = get_incident_row(city, incident_id)
    response = fire(
        city.app,
        viewer,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_TO, "index": f"department:{city.world.departments['cg']}"}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: {"id": incident_id, "version": row["version"], "state": row["state"]}},
    )
    assert response.status_code == 403
    assert get_incident_row(city, incident_id)["state"] == lifecycle.REGISTERED
    # The same click by a dispatcher dispatches, audited under the dispatcher's own name.
    dispatcher = signed_in_client(city.app, "dispatcher", username="wang.dispatch")
    response = fire(
        city.app,
        dispatcher,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_TO, "index": f"department:{city.world.departments['cg']}"}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: {"id": incident_id, "version": row["version"], "state": row["state"]}},
    )
    assert response.status_code == 200
    assert get_incident_row(city, incident_id)["state"] == lifecycle.DISPATCHED
    with city.engine.connect() as conn:
        assert history(conn, incident_id)[-1]["actor"] == "wang.dispatch"


def test_a_department_acts_on_its_own_incidents_only(city):
    own = _incident(city, MINE, lifecycle.DISPATCHED, department="cg")
    theirs = _incident(city, MINE, lifecycle.DISPATCHED, department="zj")
    client = signed_in_client(city.app, "department", username="cg.duty", department_id=city.world.departments["cg"])

    done = _desk_action(city, client, own, "acknowledge")
    assert done.status_code == 200
    assert get_incident_row(city, own)["state"] == lifecycle.ACKNOWLEDGED
    with city.engine.connect() as conn:
        assert history(conn, own)[-1]["actor"] == "cg.duty"

    other = _desk_action(city, client, theirs, "acknowledge")
    assert "outside your jurisdiction" in json.dumps(other.get_json())
    assert get_incident_row(city, theirs)["state"] == lifecycle.DISPATCHED
    # Dispatching work is the dispatchers' job, even on its own incident.
    refused = _desk_action(city, client, own, "escalate")
    assert "may not do this" in json.dumps(refused.get_json())
    assert get_incident_row(city, own)["escalation_level"] == 0
    # Its panel shows its own incidents; another department's is as if it did not exist.
    assert client.get(f"/dispatch?incident={own}").status_code == 200
    with _signed_request(city, client):
        from dashboard.pages.dispatch import read_panel

        _children, current = read_panel(city.engine, theirs, "en", Settings.from_env({}), [])
        assert current is None
        children, current = read_panel(city.engine, own, "en", Settings.from_env({}), [])
        assert current["id"] == own
        shown = set(re.findall(r"'type': 'dispatch-action', 'index': '([a-z_]+)'", str(children)))
        assert shown and shown <= access.DEPARTMENT_ACTIONS  # only its own four actions are offered
        assert "dispatch-to" not in str(children) and "dispatch-merge" not in str(children)


def test_a_leader_reads_everything_but_cannot_act(city):
    incident_id = _incident(city, MINE, lifecycle.REGISTERED)
    leader = signed_in_client(city.app, "leader")
    response = _desk_action(city, leader, incident_id, "reject")
    assert "may not do this" in json.dumps(response.get_json())
    assert get_incident_row(city, incident_id)["state"] == lifecycle.REGISTERED


# --- jurisdiction ----------------------------------------------------------------------------------


def _signed_request(city, client):
    """A request context signed in as `client`'s user, for calling page functions directly."""
    from flask_login import login_user

    context = city.app.server.test_request_context("/")

    class _Ctx:
        def __enter__(self):
            context.__enter__()
            with city.engine.connect() as conn:
                login_user(access.principal_for_user(accounts.get_user(conn, client.user["id"])))

        def __exit__(self, *exc):
            return context.__exit__(*exc)

    return _Ctx()


def test_a_street_user_sees_nothing_outside_its_street(city):
    mine = [_incident(city, MINE, lifecycle.REGISTERED), _incident(city, 3, lifecycle.REGISTERED)]
    theirs = _incident(city, OTHERS, lifecycle.REGISTERED)
    street, other_district = city.lattice.street_ids[0], city.lattice.district_ids[1]
    client = signed_in_client(city.app, "dispatcher", unit_id=street)
    whole_city = ",".join(str(v) for v in (106.0, 29.0, 107.0, 30.0))

    # Map data: markers and heat keep to the street; asking for another district is not found.
    markers = _json(client.get(f"/geo/incidents.json?bbox={whole_city}"))
    assert sorted(f["properties"]["id"] for f in markers["features"]) == sorted(mine)
    assert client.get(f"/geo/incidents.json?bbox={whole_city}&scope={other_district}").status_code == 404
    assert client.get(f"/geo/heat.json?window=1h&scope={other_district}").status_code == 404
    heat = _json(client.get("/geo/heat.json?window=1h&cell=0.001"))
    assert sum(p[2] for p in heat["points"]) == pytest.approx(2 * 2.0)  # two priority-2 incidents, weight 2 each

    # Exports: another district is not found; the default is the street's own figures.
    assert client.get(f"/trends/export/units.csv?scope=district:{other_district}").status_code in (403, 404)

    with _signed_request(city, client):
        from dashboard.components.incident_card import incident_card
        from dashboard.pages import overview_model
        from dashboard.pages.dispatch import read_panel, read_queue

        # The overview's scope, KPIs and queue are clamped to the street, whatever was asked.
        assert overview_model.scope_of(city.engine, None).id == street
        assert overview_model.scope_of(city.engine, other_district).id == street
        rows, counts = read_queue(city.engine, {"area": other_district}, datetime.now(UTC))
        assert sorted(r["id"] for r in rows) == sorted(mine)
        # An incident outside, fetched by id, is not found.
        assert "no longer exists" in str(incident_card(city.engine, theirs, "en", "Asia/Shanghai"))
        assert read_panel(city.engine, theirs, "en", Settings.from_env({}), [])[1] is None
        assert read_panel(city.engine, mine[0], "en", Settings.from_env({}), [])[1]["id"] == mine[0]

    # Acting on an incident outside is refused and changes nothing.
    refused = _desk_action(city, client, theirs, "reject")
    assert "outside your jurisdiction" in json.dumps(refused.get_json())
    assert get_incident_row(city, theirs)["state"] == lifecycle.REGISTERED


def test_a_district_leaders_exports_hold_only_its_district(city):
    _incident(city, MINE, lifecycle.REGISTERED)
    _incident(city, OTHERS, lifecycle.REGISTERED)
    district = city.lattice.district_ids[0]
    leader = signed_in_client(city.app, "leader", unit_id=district)
    everyone = signed_in_client(city.app, "leader")

    def received(client, query=""):
        rows = list(csv.reader(io.StringIO(client.get(f"/trends/export/series.csv?period=7{query}").data.decode("utf-8-sig"))))
        return sum(int(r[1]) for r in rows[1:])

    assert received(everyone) == 2
    assert received(leader) == 1  # no scope asked: the district's own
    assert received(leader, f"&scope=district:{district}") == 1
    assert leader.get(f"/trends/export/series.csv?scope=district:{city.lattice.district_ids[1]}").status_code == 404
    assert leader.get("/trends/brief").status_code == 200


def test_the_live_feed_does_not_name_incidents_to_a_restricted_user(city):
    from dashboard.live import wire

    message = b'id: 9\ndata: {"type":"changes","head":9,"count":1,"events":[{"id":9,"incident_id":4}]}\n\n'
    redacted = wire.redacted(message)
    assert b"incident_id" not in redacted and b'"count":1' in redacted and redacted.startswith(b"id: 9\n")


# --- kiosk links -------------------------------------------------------------------------------------


def test_a_kiosk_link_signs_the_wall_in_read_only_until_revoked(city):
    street = city.lattice.street_ids[0]
    with city.engine.begin() as conn:
        token, row = accounts.create_kiosk_token(conn, "wall, room 3", street, "cli:test")
    wall = city.app.server.test_client()
    signed = wall.get(f"/kiosk/{token}")
    assert signed.status_code == 302 and signed.headers["Location"] == "/wall"
    assert wall.get("/wall").status_code == 200
    assert wall.get("/geo/incidents.json?bbox=106,29,107,30").status_code == 200
    assert wall.get("/dispatch").status_code == 403  # read-only: no desk
    assert wall.get(f"/geo/heat.json?scope={city.lattice.district_ids[1]}").status_code == 404
    # The token in a /wall?kiosk= link works the same way and leaves the address bar.
    assert city.app.server.test_client().get(f"/wall?kiosk={token}").headers["Location"].startswith("/kiosk/")

    with city.engine.begin() as conn:
        accounts.revoke_kiosk_token(conn, row["id"])
    ended = wall.get("/_dash-layout")
    assert ended.status_code == 401 and ended.headers[auth.SIGNED_OUT_HEADER] == "1"
    shown = wall.get("/wall", headers={"Accept": "text/html"})
    assert shown.status_code == 302 and "/login" in shown.headers["Location"]
    again = city.app.server.test_client().get(f"/kiosk/{token}")
    assert again.status_code == 403 and "revoked" in again.get_data(as_text=True)
