"""The desk's side of the loop through its Dash callbacks: rating a closed incident, the centre's badge and list of departments' answers, the working-hours hint."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from app import create_app
from dashboard import ids
from dashboard.components import dispatch_panel, dispatch_queue
from dashboard.pages import dispatch as page
from dashboard.settings import Settings
from data.incidents import calendar as work_calendar
from data.incidents import dispatch, lifecycle, notify
from data.incidents.calendar import WorkCalendar
from data.incidents.feed import get_incident, history
from tests.auth_helpers import signed_in_client
from tests.dash_helpers import fire_callback
from tests.factories import T0, drive, drive_to, make_incident, make_world


@pytest.fixture
def desk(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    settings = Settings.from_env({}, live=False, build_demo=False)
    app = create_app(settings, engine=engine, testing=True)
    return SimpleNamespace(engine=engine, settings=settings, world=world, app=app, client=signed_in_client(app))


def _incident(desk, state, category="garbage", grid=0):
    with desk.engine.begin() as conn:
        incident_id = make_incident(conn, desk.world.categories[category], at=desk.world.lattice.center(grid))
        return drive_to(conn, incident_id, state)


def _key(app, output: str) -> str:
    return next(k for k in app.callback_map if output in k)


def _fire(desk, output: str, trigger: tuple, values: dict):
    """POST a desk callback as the renderer would: `trigger` is (id, property, value); `values` fills other inputs/states."""
    answer = fire_callback(desk.app, desk.client, output, trigger, values)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_json()["response"]


CONFIG = {"lang": "en", "actor": "dispatcher-test"}


# --- satisfaction (评价) ---------------------------------------------------------------------------


def test_a_closed_incident_is_rated_with_one_click_and_the_rating_shows_in_the_history(desk):
    row = _incident(desk, lifecycle.CLOSED)
    with desk.engine.connect() as conn:
        facts = dispatch.panel_facts(conn, row["id"])
    drawn = str(dispatch_panel.panel(facts, "en", "Asia/Shanghai", T0, []))
    assert "dispatch-rate" in drawn and "Record the citizen" in drawn

    current = {"id": row["id"], "version": row["version"], "state": row["state"]}
    response = _fire(
        desk,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_RATE, "index": 4}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CONFIG: CONFIG},
    )
    assert response[ids.DISPATCH_MESSAGE]["children"] == f"#{row['id']} rated 4/5."
    with desk.engine.connect() as conn:
        assert get_incident(conn, row["id"])["satisfaction"] == 4
        last = history(conn, row["id"])[-1]
        # Audited as the signed-in user, not as anything the page sent.
        assert (last["action"], last["actor"], last["data"]) == ("rate", desk.client.user["username"], {"satisfaction": 4})
        facts = dispatch.panel_facts(conn, row["id"])
    drawn = str(dispatch_panel.panel(facts, "zh", "Asia/Shanghai", T0, []))
    assert "已评价 ★★★★☆（4/5）" in drawn and "dispatch-rate" not in drawn  # the buttons go once it is rated
    assert "★★★★☆ 4/5" in drawn  # the timeline shows the score

    # A stale panel (someone rated or changed it meanwhile) is a conflict, not a second rating.
    again = _fire(
        desk,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_RATE, "index": 1}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CONFIG: CONFIG},
    )
    assert "Someone else acted first" in again[ids.DISPATCH_MESSAGE]["children"]
    with desk.engine.connect() as conn:
        assert get_incident(conn, row["id"])["satisfaction"] == 4


def test_an_open_incident_offers_no_rating(desk):
    row = _incident(desk, lifecycle.RESOLVED)
    with desk.engine.connect() as conn:
        facts = dispatch.panel_facts(conn, row["id"])
    assert "dispatch-rate" not in str(dispatch_panel.panel(facts, "en", "Asia/Shanghai", T0, []))


# --- the centre's inbox of departments' answers ------------------------------------------------------


def test_a_departments_return_lights_the_badge_and_lists_the_reason_until_read(desk):
    row = _incident(desk, lifecycle.DISPATCHED, category="construction")
    with desk.engine.connect() as conn:
        unread, _ = page.read_centre(desk.engine, "en", desk.settings)
    assert unread["total"] == 0
    # An acknowledgement is listed but does not light the badge: it needs nobody at the desk.
    taken = _incident(desk, lifecycle.DISPATCHED, category="construction")
    with desk.engine.begin() as conn:
        drive(conn, taken["id"], ["acknowledge"], actor="api:zj-system")
    response = _fire(
        desk, "dispatch-centre-badge.children", (ids.DISPATCH_REFRESH, "data", {"head": 98}), {ids.DISPATCH_CONFIG: CONFIG}
    )
    badge = response[ids.DISPATCH_CENTRE_BADGE]
    assert "cb-centre-unread" not in badge["className"] and badge["children"][1]["props"]["hidden"] is True
    assert f"acknowledged #{taken['id']}" in json.dumps(response[ids.DISPATCH_CENTRE_LIST]["children"], ensure_ascii=False)
    with desk.engine.begin() as conn:
        drive(conn, row["id"], ["return"], actor="api:zj-system")  # the note factories give: "test return"

    response = _fire(
        desk, "dispatch-centre-badge.children", (ids.DISPATCH_REFRESH, "data", {"head": 99}), {ids.DISPATCH_CONFIG: CONFIG}
    )
    badge = response[ids.DISPATCH_CENTRE_BADGE]
    assert "cb-centre-unread" in badge["className"] and "cb-centre-returned" in badge["className"]
    assert badge["children"][1]["props"]["children"] == "1"  # the count of unread answers
    listed = json.dumps(response[ids.DISPATCH_CENTRE_LIST]["children"], ensure_ascii=False)
    assert f"returned #{row['id']}" in listed and "test return" in listed

    # The badge opens the list; "mark all read" zeroes the count but keeps the list.
    assert (
        _fire(desk, "dispatch-centre.hidden", (ids.DISPATCH_CENTRE_BADGE, "n_clicks", 1), {ids.DISPATCH_CENTRE: True})[
            ids.DISPATCH_CENTRE
        ]["hidden"]
        is False
    )
    seen = _fire(desk, "dispatch-centre-seen.data", (ids.DISPATCH_CENTRE_READ, "n_clicks", 1), {ids.DISPATCH_CONFIG: CONFIG})
    assert seen[ids.DISPATCH_CENTRE_SEEN]["data"]["changed"] == 2  # the acknowledgement and the return
    with desk.engine.connect() as conn:
        assert notify.centre_unread(conn)["total"] == 0
        told = notify.centre_inbox(conn)
        assert told[0]["read_by"] == desk.client.user["username"]
    after = _fire(
        desk, "dispatch-centre-badge.children", (ids.DISPATCH_CENTRE_SEEN, "data", {"at": 1}), {ids.DISPATCH_CONFIG: CONFIG}
    )
    assert "cb-centre-unread" not in after[ids.DISPATCH_CENTRE_BADGE]["className"]
    assert f"#{row['id']}" in json.dumps(after[ids.DISPATCH_CENTRE_LIST]["children"])

    # A click on the answer opens its incident in the panel.
    opened = _fire(
        desk,
        "dispatch-selected.data",
        ({"type": ids.DISPATCH_CENTRE_ITEM, "index": f"{told[0]['id']}:{row['id']}"}, "n_clicks", 1),
        {ids.DISPATCH_SELECTED: None},
    )
    assert opened[ids.DISPATCH_SELECTED]["data"] == {"id": row["id"]}


def test_the_desk_page_draws_the_badge_with_the_unread_count(desk):
    row = _incident(desk, lifecycle.DISPATCHED, category="construction")
    with desk.engine.begin() as conn:
        drive(conn, row["id"], ["acknowledge", "resolve"], actor="api:zj-system")
    layout = str(page.layout(SimpleNamespace(engine=desk.engine, settings=desk.settings), {}, "zh"))
    assert "部门报到" in layout and "已办结" in layout and "已签收" in layout
    # Two answers about one incident: each line keeps its own component id (Dash refuses duplicates).
    _, children = page.read_centre(desk.engine, "en", desk.settings)
    item_ids = [li.children.id["index"] for li in children[0].children]
    assert len(item_ids) == 2 and len(set(item_ids)) == 2 and all(i.endswith(f":{row['id']}") for i in item_ids)
    assert desk.client.get("/dispatch").status_code == 200


# --- working hours -----------------------------------------------------------------------------------


def test_the_panel_says_when_clocks_count_working_hours(desk):
    row = _incident(desk, lifecycle.DISPATCHED)
    with desk.engine.connect() as conn:
        assert "working hours" not in str(dispatch_panel.panel(dispatch.panel_facts(conn, row["id"]), "en", "UTC", T0, []))
    with desk.engine.begin() as conn:
        work_calendar.save(conn, WorkCalendar())
    with desk.engine.connect() as conn:
        drawn = str(dispatch_panel.panel(dispatch.panel_facts(conn, row["id"]), "zh", "UTC", T0, []))
    assert "按工作时间计算" in drawn


# --- who may: roles and jurisdiction -----------------------------------------------------------------


def test_a_district_dispatcher_sees_and_clears_only_their_districts_answers(desk):
    here = _incident(desk, lifecycle.DISPATCHED, category="construction", grid=0)
    far = _incident(desk, lifecycle.DISPATCHED, category="construction", grid=5)
    assert here["district_id"] != far["district_id"]
    with desk.engine.begin() as conn:
        drive(conn, here["id"], ["return"], actor="api:zj-system")
        drive(conn, far["id"], ["return"], actor="api:zj-system")
    desk.client = signed_in_client(desk.app, "dispatcher", unit_id=here["district_id"])
    response = _fire(
        desk, "dispatch-centre-badge.children", (ids.DISPATCH_REFRESH, "data", {"head": 1}), {ids.DISPATCH_CONFIG: CONFIG}
    )
    listed = json.dumps(response[ids.DISPATCH_CENTRE_LIST]["children"])
    assert f"#{here['id']}" in listed and f"#{far['id']}" not in listed
    assert response[ids.DISPATCH_CENTRE_BADGE]["children"][1]["props"]["children"] == "1"
    seen = _fire(desk, "dispatch-centre-seen.data", (ids.DISPATCH_CENTRE_READ, "n_clicks", 1), {ids.DISPATCH_CONFIG: CONFIG})
    assert seen[ids.DISPATCH_CENTRE_SEEN]["data"]["changed"] == 1
    with desk.engine.connect() as conn:
        assert [r["incident_id"] for r in notify.centre_inbox(conn, unread_only=True)] == [far["id"]]


def test_a_department_user_cannot_rate_or_clear_the_centres_answers(desk):
    row = _incident(desk, lifecycle.CLOSED)
    other = _incident(desk, lifecycle.DISPATCHED, category="construction")
    with desk.engine.begin() as conn:
        drive(conn, other["id"], ["return"], actor="api:zj-system")
    with desk.engine.connect() as conn:
        unread = notify.centre_unread(conn)["total"]
    assert unread >= 1
    desk.client = signed_in_client(desk.app, "department", department_id=desk.world.departments["cg"])
    current = {"id": row["id"], "version": row["version"], "state": row["state"]}
    answer = _fire(
        desk,
        "dispatch-message.children",
        ({"type": ids.DISPATCH_RATE, "index": 5}, "n_clicks", 1),
        {ids.DISPATCH_CURRENT: current, ids.DISPATCH_CONFIG: CONFIG},
    )
    assert "Not done" in answer[ids.DISPATCH_MESSAGE]["children"]
    with desk.engine.connect() as conn:
        assert get_incident(conn, row["id"])["satisfaction"] is None
    key = _key(desk.app, "dispatch-centre-seen.data")
    body = {
        "output": key,
        "outputs": {"id": ids.DISPATCH_CENTRE_SEEN, "property": "data"},
        "inputs": [{"id": ids.DISPATCH_CENTRE_READ, "property": "n_clicks", "value": 1}],
        "state": [{"id": ids.DISPATCH_CONFIG, "property": "data", "value": CONFIG}],
        "changedPropIds": [f"{ids.DISPATCH_CENTRE_READ}.n_clicks"],
    }
    assert desk.client.post("/_dash-update-component", json=body).status_code in (200, 204)
    with desk.engine.connect() as conn:
        assert notify.centre_unread(conn)["total"] == unread  # nothing was marked read


def test_a_headline_card_opens_its_view_of_the_queue(desk):
    """Clicking "Awaiting dispatch" sets the state filter to every case waiting for a dispatcher (the queue follows
    the filter); a card that is no view (near due) and a redrawn strip change nothing."""
    for card, view in (("waiting", "awaiting"), ("overdue", "overdue"), ("returned", "returned")):
        answer = _fire(desk, "dispatch-filter-state.value", ({"type": ids.DISPATCH_KPI, "index": card}, "n_clicks", 1), {})
        assert answer[ids.DISPATCH_FILTER_STATE]["value"] == view
    for card, clicks in (("near_due", 1), ("waiting", 0)):
        answer = fire_callback(
            desk.app, desk.client, "dispatch-filter-state.value", ({"type": ids.DISPATCH_KPI, "index": card}, "n_clicks", clicks)
        )
        # No update: Dash answers 204, or 200 with nothing for the filter.
        assert answer.status_code == 204 or ids.DISPATCH_FILTER_STATE not in answer.get_json()["response"], (card, clicks)
    # The cards that open a view are buttons (reachable by Tab), named for what they open.
    strip = dispatch_queue.kpi_strip({"waiting": 3, "near_due": 1}, "zh")
    kinds = {card.id["index"]: (type(card).__name__, getattr(card, "title", None)) for card in strip}
    assert kinds["waiting"] == ("Button", "只看待派遣的案件") and kinds["near_due"][0] == "Div"
