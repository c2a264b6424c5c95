"""A department's inbox (一键智达) over the JSON API: what a dispatch tells it, marking read, pages, and other departments kept out."""

from __future__ import annotations

import pytest

from data.incidents import dispatch, lifecycle
from tests.api_helpers import build_api_world
from tests.factories import drive_to, make_incident


@pytest.fixture
def api(engine):
    return build_api_world(engine)


def _dispatched(api, category: str = "construction", **kwargs) -> int:
    """A registered case of `category` dispatched (to its suggested department unless told); its id."""
    world = api.world
    with api.engine.begin() as conn:
        incident_id = make_incident(conn, world.categories[category], at=world.lattice.center(0), locator=world.locator)
        drive_to(conn, incident_id, lifecycle.REGISTERED)
    with api.engine.begin() as conn:
        dispatch.dispatch(conn, incident_id, actor="dispatcher", **kwargs)
    return incident_id


def _inbox(api, secret: str, **params):
    response = api.client.get("/api/v1/inbox", query_string=params, headers=api.headers(secret))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _mark_read(api, secret: str, notification_id):
    return api.client.post(f"/api/v1/inbox/{notification_id}/read", headers=api.headers(secret))


def test_a_dispatch_reaches_the_department_which_marks_it_read(api):
    incident_id = _dispatched(api)  # construction: 住建 (zj)

    (note,) = _inbox(api, api.zj, unread="true")["notifications"]
    assert (note["kind"], note["incident_id"], note["read_at"]) == ("dispatch", incident_id, None)
    assert note["department_id"] == api.world.departments["zj"]
    assert note["incident"]["state"] == "dispatched" and note["incident"]["department_code"] == "zj"

    marked = _mark_read(api, api.zj, note["id"])
    assert marked.status_code == 200
    read_at = marked.get_json()["notification"]["read_at"]
    assert read_at is not None
    assert _inbox(api, api.zj, unread="true")["notifications"] == []
    (still_listed,) = _inbox(api, api.zj)["notifications"]
    assert still_listed["read_at"] == read_at

    again = _mark_read(api, api.zj, note["id"])  # marking twice changes nothing
    assert again.status_code == 200 and again.get_json()["notification"]["read_at"] == read_at


def test_another_department_neither_sees_nor_can_mark_the_notification(api):
    _dispatched(api)
    (note,) = _inbox(api, api.zj)["notifications"]

    assert _inbox(api, api.cg) == {"notifications": [], "next_cursor": None}
    foreign = _mark_read(api, api.cg, note["id"])
    absent = _mark_read(api, api.cg, note["id"] + 1000)
    # Someone else's notification answers exactly like one that does not exist.
    assert foreign.status_code == absent.status_code == 404
    assert foreign.get_json()["error"]["code"] == absent.get_json()["error"]["code"] == "not_found"
    assert _inbox(api, api.zj, unread="true")["notifications"][0]["id"] == note["id"]  # still unread


def test_a_reassignment_tells_the_new_department_and_withdraws_it_from_the_old(api):
    incident_id = _dispatched(api, "garbage", department_id=api.world.departments["cg"])
    with api.engine.begin() as conn:
        dispatch.dispatch(conn, incident_id, actor="dispatcher", department_id=api.world.departments["zj"])

    assert [n["kind"] for n in _inbox(api, api.cg)["notifications"]] == ["withdrawn", "dispatch"]
    (note,) = _inbox(api, api.zj)["notifications"]
    assert note["kind"] == "reassign" and note["incident"]["department_code"] == "zj"


def test_the_inbox_comes_newest_first_a_page_at_a_time(api):
    incident_ids = [_dispatched(api) for _ in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = _inbox(api, api.zj, **params)
        seen += [n["incident_id"] for n in page["notifications"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == incident_ids[::-1]
    assert pages == 3


def test_the_inbox_refuses_keys_without_a_department_and_bad_parameters(api):
    no_key = api.client.get("/api/v1/inbox")
    assert no_key.status_code == 403 and no_key.get_json()["error"]["code"] == "missing_key"
    reader = api.client.get("/api/v1/inbox", headers=api.headers(api.reader))
    assert reader.status_code == 403 and reader.get_json()["error"]["code"] == "insufficient_scope"
    assert _mark_read(api, api.reader, 1).status_code == 403
    for params in ({"unread": "maybe"}, {"cursor": "not-ours"}, {"limit": "0"}, {"folder": "x"}):
        bad = api.client.get("/api/v1/inbox", query_string=params, headers=api.headers(api.zj))
        assert bad.status_code == 400, params
    assert _mark_read(api, api.zj, "abc").status_code == 404
