"""The dispatch desk's parts without a browser: queue rows and their diffs, the panel for every state, the page, action outcomes."""

from __future__ import annotations

import json
from datetime import timedelta

import plotly
import pytest

from callbacks.dispatch_actions import Outcome
from dashboard import ids
from dashboard.components import dispatch_panel, dispatch_queue
from dashboard.pages import dispatch as page
from dashboard.settings import Settings
from data.incidents import dispatch, lifecycle, queue
from data.incidents.feed import get_incident
from data.times import utc_now
from tests.factories import T0, drive_to, make_incident, make_world


@pytest.fixture
def world(sqlite_engine):
    with sqlite_engine.begin() as conn:
        return make_world(conn)


def _texts(component) -> list[str]:
    """Every string inside a component tree."""
    found = []

    def walk(node):
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
        elif node is not None and hasattr(node, "children"):
            walk(node.children)

    walk(component)
    return found


def _walk(node):
    """Every component inside a component tree (the tree itself first)."""
    if isinstance(node, (list, tuple)):
        for child in node:
            yield from _walk(child)
    elif node is not None and not isinstance(node, str) and hasattr(node, "to_plotly_json"):
        yield node
        yield from _walk(getattr(node, "children", None))


def _ids(component, kind: str) -> list:
    """The index of every pattern-id element of `kind` inside a component tree."""
    found = []

    def walk(node):
        if isinstance(node, (list, tuple)):
            for child in node:
                walk(child)
            return
        if node is None or isinstance(node, str):
            return
        node_id = getattr(node, "id", None)
        if isinstance(node_id, dict) and node_id.get("type") == kind:
            found.append(node_id["index"])
        walk(getattr(node, "children", None))

    walk(component)
    return found


def test_row_changes_send_only_what_changed():
    def row(rid, version, due=None):
        return {"rid": str(rid), "version": version, "due_status": due, "late": False, "priority_label": "Urgent"}

    before = [row(1, 1), row(2, 1), row(3, 1)]
    old = dispatch_queue.stamps(before)
    after = [row(1, 1), row(2, 2), row(4, 1), row(3, 1, "overdue")]
    changes, new = dispatch_queue.row_changes(old, after)
    assert [r["rid"] for r in changes["add"]] == ["4"]
    assert sorted(r["rid"] for r in changes["update"]) == ["2", "3"]  # a new version, a clock turning red
    assert changes["remove"] == []
    changes, _ = dispatch_queue.row_changes(new, [row(1, 1)])
    assert sorted(r["rid"] for r in changes["remove"]) == ["2", "3", "4"] and not changes["add"] and not changes["update"]


def test_table_rows_speak_the_chosen_language(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        located = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), priority=1)
        nowhere = make_incident(conn, world.categories["garbage"], at=None)
        rows = queue.queue(conn, T0 + timedelta(hours=1))
    en = {r["id"]: r for r in dispatch_queue.table_rows(rows, "en", "Asia/Shanghai")}
    zh = {r["id"]: r for r in dispatch_queue.table_rows(rows, "zh", "Asia/Shanghai")}
    assert (en[located]["priority_label"], zh[located]["priority_label"]) == ("Urgent", "紧急")
    assert (en[located]["state_label"], zh[located]["state_label"]) == ("Reported", "上报")
    assert en[located]["area"].endswith("Grid 0") and en[nowhere]["area"] == "Unlocated" and zh[nowhere]["area"] == "未定位"
    assert en[located]["reported"] == "03-03 16:00"  # T0 is 08:00 UTC, 16:00 in Shanghai
    assert en[located]["rid"] == str(located) and isinstance(en[located]["deadline_ms"], int)


@pytest.mark.parametrize("state", lifecycle.STATES)
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_panel_offers_exactly_the_actions_the_state_allows(sqlite_engine, world, state, lang):
    with sqlite_engine.begin() as conn:
        target = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
        drive_to(conn, incident_id, state, merged_into_id=target)
        facts = dispatch.panel_facts(conn, incident_id)
        departments = queue.filter_choices(conn)["departments"]
    children = dispatch_panel.panel(facts, lang, "Asia/Shanghai", utc_now(), departments)
    json.dumps(children, cls=plotly.utils.PlotlyJSONEncoder)  # the page can send it
    buttons = _ids(children, "dispatch-action")
    assert buttons == [a for a in lifecycle.allowed_actions(state) if a not in dispatch_panel.NOT_AS_BUTTONS]
    sends = _ids(children, "dispatch-to")
    if state in lifecycle.WITH_ASSIGNEE:
        assert sends == []  # already with the suggested department: only "another department" is offered
        assert _ids(children, "dispatch-other-go") == [incident_id]
    elif state in dispatch_panel.DISPATCHABLE or state == lifecycle.REPORTED:
        assert sends == [f"department:{world.departments['zj']}"]
        # Construction never goes to grid workers, and the panel says why.
        assert any("清单外事项下派过滤" in text for text in _texts(children))
    else:
        assert sends == []


def test_the_panel_puts_the_grid_worker_first_for_matters_on_their_list(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        twin = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), reported_at=T0 + timedelta(hours=1))
        facts = dispatch.panel_facts(conn, incident_id)
    children = dispatch_panel.panel(facts, "en", "Asia/Shanghai", utc_now(), [])
    assert _ids(children, "dispatch-to") == [f"worker:{world.worker_id}", f"department:{world.departments['cg']}"]
    assert _ids(children, "dispatch-merge") == [twin]
    assert f"Merge #{twin} into #{incident_id}" in _texts(children)
    assert f"Register and dispatch to Worker {facts['suggestion'].worker['code']}" in _texts(children)
    assert "Routine matter on the grid worker's duty list: the grid worker first." in _texts(children)


def test_the_panel_puts_the_department_first_for_an_urgent_matter_and_says_why(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), priority=1)
        facts = dispatch.panel_facts(conn, incident_id)
    children = dispatch_panel.panel(facts, "zh", "Asia/Shanghai", utc_now(), [])
    assert _ids(children, "dispatch-to") == [f"department:{world.departments['cg']}", f"worker:{world.worker_id}"]
    assert "紧急事项：先派职责部门，网格员见下方备选。" in _texts(children)


def test_the_page_reads_its_filters_from_the_url(sqlite_engine, world):
    assert page.chosen_filters({"area": "7", "priority": "9", "state": "closed", "category": "x"}) == {
        "area": 7,
        "category": None,
        "priority": None,
        "state": None,
    }
    with sqlite_engine.begin() as conn:
        make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        make_incident(conn, world.categories["garbage"], at=world.lattice.center(2))
    now = utc_now()
    rows, counts = page.read_queue(sqlite_engine, {"area": world.lattice.district_ids[1]}, now)
    assert len(rows) == 1 and counts["waiting"] == 1
    rows, counts = page.read_queue(sqlite_engine, {"area": 999_999}, now)  # a vanished area: everywhere
    assert len(rows) == 2 and counts["waiting"] == 2


def _deps(engine):
    class Deps:
        settings = Settings.from_env({}, live=False, build_demo=False)

    deps = Deps()
    deps.engine = engine
    return deps


def test_the_page_renders_with_an_incident_open(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
    layout = page.layout(_deps(sqlite_engine), {"incident": str(incident_id)}, "zh")
    text = json.dumps(layout, cls=plotly.utils.PlotlyJSONEncoder, ensure_ascii=False)
    assert f"#{incident_id}" in text and "一键调度" in text
    children, current = page.read_panel(sqlite_engine, 987_654, "en", _deps(sqlite_engine).settings, [])
    assert current is None and "no longer exists" in _texts(children)[0]


def test_the_desk_opens_on_the_cases_awaiting_dispatch_unless_the_url_says_otherwise(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        waiting = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        held = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0), reported_at=T0)
        drive_to(conn, held, lifecycle.ACKNOWLEDGED)  # long overdue by now: in the whole queue, not awaiting

    def opened(query: dict) -> tuple[str | None, set[int]]:
        layout = page.layout(_deps(sqlite_engine), query, "en")
        nodes = list(_walk(layout))
        state = next(n.value for n in nodes if getattr(n, "id", None) == ids.DISPATCH_FILTER_STATE)
        grid = next(n for n in nodes if getattr(n, "id", None) == ids.DISPATCH_GRID)
        return state, {r["id"] for r in grid.rowData}

    assert opened({}) == ("awaiting", {waiting})
    assert opened({"state": "all"}) == (None, {waiting, held})
    assert opened({"state": "overdue"}) == ("overdue", {held})


def test_outcomes_word_conflicts_with_the_current_state_and_batches_per_row(sqlite_engine, world):
    with sqlite_engine.begin() as conn:
        first, second, third = (make_incident(conn, world.categories["construction"], at=world.lattice.center(0)) for _ in "123")
        drive_to(conn, second, lifecycle.REJECTED)
    out = Outcome("en", utc_now())  # clicked a moment ago
    message, css, *_ = out.send(sqlite_engine, first, 1, {"department_id": world.departments["zj"]}, "alice")
    assert css.endswith("ok") and message == f"#{first} dispatched to ZJ."
    message, css, *_ = out.send(sqlite_engine, first, 1, {"department_id": world.departments["ga"]}, "bob")
    assert "conflict" in css and "Dispatched" in message and "version 3" in message
    rows = [{"id": first, "version": 3}, {"id": second, "version": 2}, {"id": third, "version": 1}]
    message, css, *_ = out.batch(sqlite_engine, rows, "alice")
    # The first is already with its suggestion (sending it again would only restart its clocks); the second is rejected.
    assert message.startswith("1 dispatched, 2 not.") and "Rejected" in message and "already with" in message
    with sqlite_engine.connect() as conn:
        assert get_incident(conn, first)["version"] == 3 and get_incident(conn, third)["state"] == "dispatched"


def test_the_webhook_commands_set_show_and_refuse(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from app import cli
    from data import store
    from data.incidents import webhooks

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", url)
    engine = store.make_engine(url)
    store.migrate(engine)
    with engine.begin() as conn:
        world = make_world(conn)
    runner = CliRunner()
    result = runner.invoke(cli, ["webhook", "set", "zj", "https://example.org/hook", "--secret", "x" * 20])
    assert result.exit_code == 0, result.output
    assert "x" * 20 in result.output
    with engine.begin() as conn:
        incident_id = make_incident(conn, world.categories["construction"], at=world.lattice.center(0))
        dispatch.dispatch(conn, incident_id, actor="cli-test")
    result = runner.invoke(cli, ["webhook", "log", "--department", "zj"])
    assert result.exit_code == 0 and f"dispatch incident {incident_id} -> https://example.org/hook: pending" in result.output
    result = runner.invoke(cli, ["webhook", "set", "nope", "https://example.org/hook"])
    assert result.exit_code != 0 and "no department with code 'nope'" in result.output
    result = runner.invoke(cli, ["webhook", "set", "zj", "ftp://example.org/hook"])
    assert result.exit_code != 0 and "http" in result.output
    with engine.connect() as conn:
        assert webhooks.deliveries(conn)[0]["url"] == "https://example.org/hook"  # the refused change changed nothing
    engine.dispose()
