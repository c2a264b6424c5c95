"""The inbox page (/inbox): a chosen department's notifications with unread marks, redrawn when the feed moves."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app import create_app
from dashboard import pages
from dashboard.pages import inbox as page
from dashboard.settings import Settings
from data.incidents import dispatch, lifecycle, notify
from tests.auth_helpers import signed_in_client
from tests.factories import drive_to, make_incident, make_world


@pytest.fixture
def deps(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    return SimpleNamespace(engine=engine, settings=Settings.from_env({}, live=False, build_demo=False), world=world)


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list) else [children]:
        if child is not None and not isinstance(child, str | int):
            yield from _walk(child)


def _texts(node) -> list[str]:
    out = []
    for n in _walk(node):
        if isinstance(getattr(n, "children", None), str):
            out.append(n.children)
    return out


def _unread_items(node) -> list:
    return [n for n in _walk(node) if "cb-inbox-unread" in (getattr(n, "className", None) or "").split()]


def _dispatch_construction(deps) -> int:
    world = deps.world
    with deps.engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0), locator=world.locator)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
        dispatch.dispatch(conn, incident_id, actor="dispatcher")  # to 住建 (zj)
    return incident_id


def test_the_page_lists_the_chosen_departments_notifications_with_unread_marks(deps):
    incident_id = _dispatch_construction(deps)
    shown = pages.render(deps, "/inbox", "?department=zj", "en")
    texts = _texts(shown)
    assert "1 unread" in texts and "New case dispatched" in texts and f"#{incident_id}" in texts
    assert len(_unread_items(shown)) == 1

    with deps.engine.begin() as conn:
        (note,) = notify.inbox(conn, department_id=deps.world.departments["zj"])
        notify.mark_read(conn, [note["id"]], department_id=deps.world.departments["zj"])
    redrawn = page.inbox_list(page.read_inbox(deps.engine, "zj"), "zh", deps.settings.timezone)
    assert "未读 0 条" in _texts(redrawn) and f"#{incident_id}" in _texts(redrawn)
    assert _unread_items(redrawn) == []


def test_other_departments_and_no_choice_show_no_notifications(deps):
    _dispatch_construction(deps)
    assert _texts(pages.render(deps, "/inbox", "?department=cg", "en")).count("No notifications yet.") == 1
    for search in ("", "?department=nosuch"):
        shown = pages.render(deps, "/inbox", search, "en")
        assert "Choose a department to see its notifications." in _texts(shown)
        assert _unread_items(shown) == []


def test_the_list_is_redrawn_by_the_department_picker_and_the_live_feed(deps):
    app = create_app(deps.settings, engine=deps.engine, testing=True)
    inputs = {(i["id"], i["property"]) for i in app.callback_map[f"{page.LIST}.children"]["inputs"]}
    assert inputs == {(page.DEPARTMENT, "value"), (page.REFRESH, "data")}
    client = signed_in_client(app)
    assert client.get("/inbox").status_code == 200

    incident_id = _dispatch_construction(deps)  # arrives after the page was drawn: the feed's bump redraws
    answer = client.post(
        "/_dash-update-component",
        json={
            "output": f"{page.LIST}.children",
            "outputs": {"id": page.LIST, "property": "children"},
            "inputs": [
                {"id": page.DEPARTMENT, "property": "value", "value": "zj"},
                {"id": page.REFRESH, "property": "data", "value": {"head": 99}},
            ],
            "state": [{"id": page.LANG, "property": "data", "value": "en"}],
            "changedPropIds": [f"{page.REFRESH}.data"],
        },
    )
    assert answer.status_code == 200
    assert f"#{incident_id}" in answer.get_data(as_text=True) and "1 unread" in answer.get_data(as_text=True)
