"""The alerts panel (overview, wall) and the /warnings page: rows -> map features, the list as read, the three
actions (acknowledge, dismiss with a reason, open a case) and sensitivity edits, on SQLite and PostgreSQL."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from dash import html
from flask_login import login_user

from app import create_app
from callbacks import alerts as alert_callbacks
from callbacks import warnings as warning_callbacks
from dashboard import access, ids, pages
from dashboard.components import alerts_panel
from dashboard.settings import Settings
from data.incidents.feed import get_incident
from data.warnings import alerts as warnings
from data.warnings import sensitivity
from tests.auth_helpers import make_user, signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import make_world

NOW = datetime.now(UTC).replace(microsecond=0)


# --- helpers -------------------------------------------------------------------------------------


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from _walk(child)


def _texts(node) -> str:
    out = []
    for n in _walk(node) if not isinstance(node, list) else (m for c in node for m in _walk(c)):
        children = getattr(n, "children", None)
        if isinstance(children, str):
            out.append(children)
        elif isinstance(children, list):
            out.extend(c for c in children if isinstance(c, str))
    return " | ".join(out)


def _of_type(node, kind: str) -> list:
    nodes = node if isinstance(node, list) else [node]
    return [n for root in nodes for n in _walk(root) if isinstance(getattr(n, "id", None), dict) and n.id.get("type") == kind]


def _row(alert_id=1, kind="surge", status="open", lon=106.51, lat=29.51, **extra) -> dict:
    return {
        "id": alert_id,
        "kind": kind,
        "status": status,
        "lon": lon,
        "lat": lat,
        "score": 9.5,
        "observed": 12.0,
        "expected": 2.25,
        "reason_en": "12 garbage reports in Grid 0 in 6 h; 2.3 expected",
        "reason_zh": "网格0 六小时内垃圾问题12件，预期2.3件",
        "unit_name_en": "Grid 0",
        "unit_name_zh": "网格0",
        "unit_level": 4,
        "unit_id": 7,
        "category_name_en": "Exposed garbage",
        "category_name_zh": "暴露垃圾",
        "incident_id": None,
        "first_seen_at": NOW - timedelta(minutes=12),
        **extra,
    }


def _finding(world, grid_index=0, category="garbage", observed=12.0, kind="surge", score=None) -> dict:
    grid_id = world.lattice.grid_ids[grid_index]
    lon, lat = world.lattice.center(grid_index)
    return {
        "kind": kind,
        "condition_key": f"{kind}:grid:{grid_id}:{world.categories[category]}",
        "score": score if score is not None else observed - 2.0,
        "observed": observed,
        "expected": 2.0,
        "unit_id": grid_id,
        "category_id": world.categories[category],
        "lon": lon,
        "lat": lat,
        "reason_en": f"{observed:g} {category} reports in Grid {grid_index}; 2 expected",
        "reason_zh": f"网格{grid_index} {category} {observed:g}件，预期2件",
        "details": {"window_h": 6},
    }


@pytest.fixture
def deps(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    return SimpleNamespace(engine=engine, settings=Settings.from_env({}, live=False, build_demo=False), world=world)


def _seed(deps, findings) -> list[dict]:
    with deps.engine.begin() as conn:
        warnings.record_findings(conn, findings, ("surge", "hotspot", "chronic"), NOW)
    with deps.engine.connect() as conn:
        return warnings.list_alerts(conn, statuses=None)


@pytest.fixture
def app(deps):
    return create_app(deps.settings, engine=deps.engine, testing=True)


@contextmanager
def signed_in(app, role="admin", **user):
    """A request of `app` by a new user of `role` (pages and reads see them as the signed-in user)."""
    made = make_user(app.server.extensions["citybrain"].engine, role, **user)
    with app.server.test_request_context("/"):
        login_user(access.principal_for_user(made))
        yield made


def _alert(deps, alert_id) -> dict:
    with deps.engine.connect() as conn:
        return warnings.get_alert(conn, alert_id)


def _head(deps) -> int:
    with deps.engine.connect() as conn:
        return warnings.alerts_head(conn)


# --- the list ------------------------------------------------------------------------------------


def test_the_desk_list_says_what_where_why_how_much_and_since_when_with_three_buttons():
    shown = alerts_panel.alerts_list([_row(1), _row(2, "chronic", status="acknowledged")], "en", NOW)
    text = _texts(shown)
    for expected in ("▲ Surge", "Grid · Grid 0", "Exposed garbage", "12 garbage reports in Grid 0", "12 seen, 2.2 expected"):
        assert expected in text
    assert "12 min ago" in text and "Acknowledged" in text
    assert alerts_panel.numbers_text(_row(expected=0.01, observed=8), "zh") == "实际 8，预期 <0.1"
    # The acknowledged alert cannot be acknowledged again; both can be dismissed or turned into a case.
    assert [b.id["index"] for b in _of_type(shown, ids.ALERTS_ACK)] == [1]
    assert [b.id["index"] for b in _of_type(shown, ids.ALERTS_DISMISS)] == [1, 2]
    assert [b.id["index"] for b in _of_type(shown, ids.ALERTS_CASE)] == [1, 2]
    assert [b.id["index"] for b in _of_type(shown, ids.ALERTS_FOCUS)] == [1, 2]


def test_a_deadline_alert_says_its_chance_and_time_left_and_links_to_its_incident():
    row = _row(4, "deadline", incident_id=321, observed=0.734, expected=3.46)
    shown = alerts_panel.alerts_list([row], "en", NOW)
    links = [n for root in shown for n in _walk(root) if isinstance(n, html.A)]
    assert [(a.href, a.children) for a in links] == [("/dispatch?incident=321", "Incident #321 on the dispatch desk")]
    assert "◷ Deadline at risk" in _texts(shown) and "73% likely to miss · 3.5 h left" in _texts(shown)
    assert alerts_panel.numbers_text(row, "zh") == "超期可能性73% · 剩余3.5小时"


def test_the_wall_list_is_read_only_shows_the_top_two_and_counts_the_rest_in_chinese():
    rows = [_row(i) for i in range(1, 9)]
    shown = alerts_panel.alerts_list(rows, "zh", NOW, wall=True)
    items = [n for root in shown for n in _walk(root) if isinstance(n, html.Li)]
    assert len(items) == alerts_panel.WALL_ROWS == 2
    for kind in (ids.ALERTS_ACK, ids.ALERTS_DISMISS, ids.ALERTS_CASE, ids.ALERTS_FOCUS):
        assert not _of_type(shown, kind)
    text = _texts(shown)
    assert "激增" in text and "网格 · 网格0" in text and "实际 12，预期 2.2" in text and "12分钟前" in text
    assert "另有 6 条（6 × 激增），见预警页" in text


def test_the_wall_puts_places_before_deadlines_so_a_surge_is_not_hidden():
    # Ranked by score, many deadline alerts come first; the wall still shows the surge and the hotspot.
    rows = [_row(i, "deadline", incident_id=100 + i) for i in range(1, 6)] + [_row(6, "surge"), _row(7, "hotspot")]
    assert [r["id"] for r in alerts_panel.wall_rows(rows)] == [6, 7]
    text = _texts(alerts_panel.alerts_list(rows, "en", NOW, wall=True))
    assert "5 more on the warnings page: 5 × Deadline at risk" in text
    # The desk keeps the ranked order (its operators act on deadlines).
    desk = [n for root in alerts_panel.alerts_list(rows, "en", NOW) for n in _walk(root) if isinstance(n, html.Li)]
    assert "Deadline at risk" in _texts(desk[0])


def test_an_empty_list_says_so_and_ages_read_in_minutes_hours_and_days():
    assert "No early warnings here now." in _texts(alerts_panel.alerts_list([], "en", NOW))
    assert alerts_panel.age_text(NOW - timedelta(seconds=30), NOW, "zh") == "刚刚"
    assert alerts_panel.age_text(NOW - timedelta(minutes=59), NOW, "en") == "59 min ago"
    assert alerts_panel.age_text(NOW - timedelta(hours=5), NOW, "zh") == "5小时前"
    assert alerts_panel.age_text((NOW - timedelta(days=3)).replace(tzinfo=None), NOW, "en") == "3 d ago"


# --- reading by scope ------------------------------------------------------------------------------


def test_the_panel_follows_the_overviews_scope(deps):
    world = deps.world
    # Grid 0 is in the first district, grid 2 in the second (columns split the lattice).
    _seed(deps, [_finding(world, 0, observed=20), _finding(world, 2, "water", observed=8)])
    city = alert_callbacks.read_view(deps.engine, {"scope": None, "variant": "desk"}, "en")
    assert city["count"] == "2"
    assert [f["properties"]["rank"] for f in city["layer"]["features"]] == [1, 2]
    first_district = world.lattice.district_ids[0]
    scoped = alert_callbacks.read_view(deps.engine, {"scope": first_district, "variant": "desk"}, "en")
    assert scoped["count"] == "1" and "Grid 0" in _texts(scoped["list"]) and "Grid 2" not in _texts(scoped["list"])
    assert len(scoped["points"]) == 1


# --- the three actions -------------------------------------------------------------------------------


def test_dismiss_without_a_reason_says_so_keeps_the_prompt_and_changes_nothing(deps):
    (alert,) = _seed(deps, [_finding(deps.world)])
    head = _head(deps)
    opened = alert_callbacks.on_click(deps.engine, {"type": ids.ALERTS_DISMISS, "index": alert["id"]}, None, None, "en", "op-ann")
    message, _css, pending, hidden, label, reason, _refresh = opened
    assert pending == {"id": alert["id"]} and hidden is False and f"#{alert['id']}" in label and reason == ""
    assert _alert(deps, alert["id"])["status"] == "open"  # opening the prompt acts on nothing

    for blank in ("", "   ", None):
        message, css, *_ = alert_callbacks.on_click(deps.engine, ids.ALERTS_PROMPT_OK, blank, pending, "en", "op-ann")
        assert message == ["A reason is required to dismiss an alert; nothing was changed."]
        assert "refused" in css
    zh_message, *_ = alert_callbacks.on_click(deps.engine, ids.ALERTS_PROMPT_OK, "", pending, "zh", "op-ann")
    assert zh_message == ["忽略预警必须填写原因，未做任何更改。"]
    assert _alert(deps, alert["id"])["status"] == "open" and _head(deps) == head


def test_dismiss_with_a_reason_is_audited_with_the_actor_and_leaves_the_list(deps):
    (alert,) = _seed(deps, [_finding(deps.world)])
    out = alert_callbacks.on_click(
        deps.engine, ids.ALERTS_PROMPT_OK, "  market day, expected crowd ", {"id": alert["id"]}, "en", "op-ann"
    )
    message, css, pending, hidden, *_rest, refresh = out
    assert message == [f"Alert #{alert['id']} dismissed: market day, expected crowd"] and "ok" in css
    assert pending is None and hidden is True and refresh
    stored = _alert(deps, alert["id"])
    assert (stored["status"], stored["acted_by"], stored["act_note"]) == ("dismissed", "op-ann", "market day, expected crowd")
    assert alert_callbacks.read_view(deps.engine, {"variant": "desk"}, "en")["count"] == "0"


def test_acknowledge_once_then_a_second_click_is_refused_and_the_alert_stays_listed(deps):
    (alert,) = _seed(deps, [_finding(deps.world)])
    button = {"type": ids.ALERTS_ACK, "index": alert["id"]}
    message, css, *_ = alert_callbacks.on_click(deps.engine, button, None, None, "en", "op-bo")
    assert message == [f"Alert #{alert['id']} acknowledged."] and "ok" in css
    assert _alert(deps, alert["id"])["status"] == "acknowledged"
    message, css, *_ = alert_callbacks.on_click(deps.engine, button, None, None, "en", "op-cy")
    assert "Not done" in message[0] and "refused" in css
    assert _alert(deps, alert["id"])["acted_by"] == "op-bo"
    view = alert_callbacks.read_view(deps.engine, {"variant": "desk"}, "en")
    assert view["count"] == "1" and "Acknowledged" in _texts(view["list"])


def test_a_case_files_an_incident_and_links_to_the_dispatch_desk(deps):
    (alert,) = _seed(deps, [_finding(deps.world)])
    message, css, *_ = alert_callbacks.on_click(
        deps.engine, {"type": ids.ALERTS_CASE, "index": alert["id"]}, None, None, "zh", "op-ann"
    )
    stored = _alert(deps, alert["id"])
    incident_id = stored["case_incident_id"]
    assert stored["status"] == "cased" and incident_id
    text, link = message
    assert text == f"预警 #{alert['id']} 已转为案件 #{incident_id}。" and "ok" in css
    assert link.href == f"/dispatch?incident={incident_id}" and link.children == "前往派遣"
    with deps.engine.connect() as conn:
        incident = get_incident(conn, incident_id)
    assert incident["category_id"] == deps.world.categories["garbage"] and incident["is_open"]


def test_an_alert_that_does_not_exist_is_reported_as_gone(deps):
    message, css, *_ = alert_callbacks.on_click(deps.engine, {"type": ids.ALERTS_ACK, "index": 9999}, None, None, "en", "op")
    assert message == ["Alert #9999 no longer exists."] and "refused" in css


# --- the /warnings page ------------------------------------------------------------------------------


def _rows_shown(page) -> list[str]:
    return [
        n.to_plotly_json()["props"]["data-alert"] for n in _walk(page) if "cb-alert-row" in (getattr(n, "className", "") or "")
    ]


def test_the_warnings_page_lists_every_status_filters_by_kind_and_status(deps, app):
    world = deps.world
    first, second = _seed(deps, [_finding(world, 0, observed=20), _finding(world, 2, "water", observed=8, kind="hotspot")])
    with deps.engine.begin() as conn:
        warnings.act_on_alert(conn, first["id"], "dismiss", "op-ann", note="duplicate of a known works site")
    with signed_in(app, "viewer"):
        page = pages.render(deps, "/warnings", "", "en")
        hotspots = pages.render(deps, "/warnings", "?kind=hotspot", "en")
        dismissed = pages.render(deps, "/warnings", "?status=dismissed", "zh")
    text = _texts(page)
    assert "Dismissed" in text and "op-ann · duplicate of a known works site" in text and "Open" in text
    assert _rows_shown(hotspots) == [str(second["id"])]
    assert _rows_shown(dismissed) == [str(first["id"])] and "已忽略" in _texts(dismissed)
    # A viewer reads the settings but cannot edit them.
    grid = next(n for n in _walk(page) if getattr(n, "id", None) == ids.WARNINGS_SETTINGS)
    assert not any(c.get("editable") for c in grid.columnDefs)


def test_a_streets_user_sees_only_the_alerts_of_their_street(deps, app):
    world = deps.world
    _seed(deps, [_finding(world, 0, observed=20), _finding(world, 2, "water", observed=8)])
    street = world.lattice.street_ids[1]  # grid 2's street
    with signed_in(app, "viewer", unit_id=street):
        shown = _rows_shown(pages.render(deps, "/warnings", "", "en"))
        city_view = alert_callbacks.read_view(deps.engine, {"scope": None, "variant": "desk"}, "en")
        other_street = alert_callbacks.read_view(deps.engine, {"scope": world.lattice.street_ids[0], "variant": "wall"}, "en")
    assert len(shown) == 1
    assert city_view["count"] == "1" and "Grid 2" in _texts(city_view["list"])
    assert other_street["count"] == "1" and "Grid 2" in _texts(other_street["list"])


def test_a_sensitivity_edit_is_stored_as_the_user_and_a_bad_one_changes_nothing(deps):
    garbage = deps.world.categories["garbage"]
    tz = "Asia/Shanghai"
    row = {"category_id": garbage, "sensitivity": 2.0, "enabled": False}
    message, css, rows = warning_callbacks.save_setting(deps.engine, row, "op-ann", "en", tz)
    assert message == "garbage: sensitivity 2, off." and "ok" in css
    shown = next(r for r in rows if r["category_id"] == garbage)
    assert (shown["sensitivity"], shown["enabled"], shown["updated_by"]) == (2.0, False, "op-ann")

    head = _head(deps)
    message, css, rows = warning_callbacks.save_setting(
        deps.engine, {**row, "sensitivity": 9.0, "enabled": True}, "op-bo", "zh", tz
    )
    assert message.startswith("未保存：") and "refused" in css
    shown = next(r for r in rows if r["category_id"] == garbage)
    assert (shown["sensitivity"], shown["enabled"], shown["updated_by"]) == (2.0, False, "op-ann")
    assert _head(deps) == head
    message, css, _ = warning_callbacks.save_setting(deps.engine, {**row, "sensitivity": "lots"}, "op-bo", "en", tz)
    assert message.startswith("Not saved:")


# --- the overview page and the head route ---------------------------------------------------------


def test_the_overview_and_the_wall_carry_the_panel_and_the_rings_and_the_head_route_moves(deps, app):
    (alert,) = _seed(deps, [_finding(deps.world)])
    assert app.server.test_client().get("/alerts/head").status_code == 401  # signed out: nothing
    client = signed_in_client(app, "viewer")
    before = client.get("/alerts/head").get_json()["head"]
    with signed_in(app, "dispatcher"):
        desk = pages.render(deps, "/", "", "en")
        wall = pages.render(deps, "/wall", "", "zh")
    with signed_in(app, "viewer"):
        viewers_desk = pages.render(deps, "/", "", "en")
    layer = next(n for n in _walk(desk) if getattr(n, "id", None) == ids.ALERTS_LAYER)
    assert [f["properties"]["id"] for f in layer.data["features"]] == [alert["id"]]
    assert _of_type(desk, ids.ALERTS_DISMISS) and not _of_type(wall, ids.ALERTS_DISMISS)
    assert not _of_type(viewers_desk, ids.ALERTS_DISMISS)  # a viewer reads the alerts, only dispatchers act
    assert "预测预警" in _texts(wall) and "12 garbage reports in Grid 0" in _texts(desk)
    with deps.engine.begin() as conn:
        warnings.act_on_alert(conn, alert["id"], "acknowledge", "op-ann")
    response = client.get("/alerts/head")
    assert response.get_json()["head"] > before and response.headers["Cache-Control"] == "no-store"


# --- through Dash's callback endpoint, signed in -------------------------------------------------------


def _fire(client, app, output: str, trigger: tuple, values: dict) -> tuple[int, dict]:
    """POST the callback writing `output` as the renderer would: (status, the response's outputs)."""
    answer = fire_callback(app, client, output, trigger, values)
    return answer.status_code, (answer.get_json() or {}).get("response", {}) if answer.status_code == 200 else {}


def test_a_dispatcher_acts_as_themselves_and_a_viewer_is_refused_through_the_callback(deps, app):
    (alert,) = _seed(deps, [_finding(deps.world)])
    button = ({"type": ids.ALERTS_ACK, "index": alert["id"]}, "n_clicks", 1)
    config = {ids.OVERVIEW_CLOCK_CONFIG: {"lang": "en"}}

    viewer = signed_in_client(app, "viewer")
    status, response = _fire(viewer, app, ids.ALERTS_MESSAGE, button, config)
    assert status == 200 and response[ids.ALERTS_MESSAGE]["children"] == "Your role may not act on alerts."
    assert _alert(deps, alert["id"])["status"] == "open"

    dispatcher = signed_in_client(app, "dispatcher")
    status, response = _fire(dispatcher, app, ids.ALERTS_MESSAGE, button, config)
    assert status == 200 and response[ids.ALERTS_MESSAGE]["children"] == [f"Alert #{alert['id']} acknowledged."]
    assert _alert(deps, alert["id"])["acted_by"] == dispatcher.user["username"]


def test_only_an_administrator_changes_sensitivity_through_the_page(deps, app):
    garbage = deps.world.categories["garbage"]
    edit = (ids.WARNINGS_SETTINGS, "cellValueChanged", [{"data": {"category_id": garbage, "sensitivity": 0.5, "enabled": True}}])
    config = {ids.WARNINGS_CONFIG: {"lang": "en"}}

    dispatcher = signed_in_client(app, "dispatcher")
    status, response = _fire(dispatcher, app, ids.WARNINGS_MESSAGE, edit, config)
    assert response[ids.WARNINGS_MESSAGE]["children"] == "Only an administrator may change sensitivity."
    with deps.engine.connect() as conn:
        assert next(s for s in sensitivity.get_settings(conn) if s["category_id"] == garbage)["sensitivity"] == 1.0

    admin = signed_in_client(app, "admin")
    status, response = _fire(admin, app, ids.WARNINGS_MESSAGE, edit, config)
    assert status == 200 and response[ids.WARNINGS_MESSAGE]["children"] == "garbage: sensitivity 0.5, on."
    with deps.engine.connect() as conn:
        setting = next(s for s in sensitivity.get_settings(conn) if s["category_id"] == garbage)
    assert (setting["sensitivity"], setting["updated_by"]) == (0.5, admin.user["username"])
