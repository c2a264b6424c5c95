"""The administration page (/admin): its buttons change the store through data/accounts/admin/ as the signed-in admin; others are refused."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import create_app
from callbacks import admin as callbacks
from dashboard.pages import admin as page
from dashboard.pages import admin_audit
from dashboard.settings import Settings
from data import schema
from data.accounts.admin.audit import events
from data.accounts.admin.users import list_users
from data.incidents.clock import limits_for
from tests.auth_helpers import signed_in_client
from tests.factories import make_world


@pytest.fixture
def deps(engine):
    with engine.begin() as conn:
        world = make_world(conn)
    return SimpleNamespace(engine=engine, settings=Settings.from_env({}, live=False, build_demo=False), world=world)


@pytest.fixture
def app(deps):
    return create_app(deps.settings, engine=deps.engine, testing=True)


def audit(engine) -> list[dict]:
    with engine.connect() as conn:
        return events(conn)


def _walk(node):
    yield node
    children = getattr(node, "children", None)
    for child in children if isinstance(children, list | tuple) else [children]:
        if child is not None and not isinstance(child, str | int | float):
            yield from _walk(child)


def press(client, app, tab: str, action: str, form: dict, lang: str = "en"):
    """POST the Dash callback a tab's button fires, as the browser's renderer would."""
    key = next(k for k in app.callback_map if k.startswith(f"..{page.message_id(tab)}.children"))
    outputs = []
    for part in key.strip(".").split("..."):
        component, _, prop = part.partition(".")
        outputs.append({"id": component, "property": prop})
    button = {"type": page.act_type(tab), "index": action}
    body = {
        "output": key,
        "outputs": outputs,
        "inputs": [[{"id": button, "property": "n_clicks", "value": 1}]],
        "state": [{"id": page.field_id(tab, f), "property": "value", "value": form.get(f)} for f in page.FIELDS[tab]]
        + [{"id": page.LANG, "property": "data", "value": lang}],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }
    return client.post("/_dash-update-component", json=body)


LIMITS = {"code": "garbage", "priority": 2, "ack": 45, "handle": 300}


def test_an_admin_changes_a_time_limit_through_the_page_and_the_audit_log_names_them(deps, app):
    client = signed_in_client(app, "admin")
    answer = press(client, app, "categories", "limits", LIMITS)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    response = answer.get_json()["response"]
    assert response[page.message_id("categories")]["children"]["props"]["children"] == "Saved: garbage P2."
    garbage = next(r for r in response[page.grid_id("categories")]["rowData"] if r["code"] == "garbage")
    assert (garbage["ack_2"], garbage["handle_2"]) == (45, 300)
    with deps.engine.connect() as conn:
        assert limits_for(conn, deps.world.categories["garbage"], 2) == (45, 300)
    (event,) = audit(deps.engine)
    assert event["actor"] == client.user["username"] and event["entity"] == "category_limits"
    assert event["before"]["ack_minutes"] == 60 and event["after"]["ack_minutes"] == 45


def test_a_refused_change_shows_why_in_the_chosen_language_and_stores_nothing(deps, app):
    client = signed_in_client(app, "admin")
    answer = press(client, app, "categories", "limits", {**LIMITS, "ack": -5}, lang="zh")
    message = answer.get_json()["response"][page.message_id("categories")]["children"]["props"]
    assert message["className"] == "cb-admin-error" and message["children"].startswith("未保存：")
    assert "more than 0" in message["children"]
    assert audit(deps.engine) == []
    with deps.engine.connect() as conn:
        assert limits_for(conn, deps.world.categories["garbage"], 2) == (60, 480)


@pytest.mark.parametrize("role", ["viewer", "dispatcher", "department", "leader"])
def test_other_roles_are_refused_the_page_and_its_callbacks(deps, app, role):
    extra = {"department_id": deps.world.departments["cg"]} if role == "department" else {}
    client = signed_in_client(app, role, **extra)
    assert press(client, app, "categories", "limits", LIMITS).status_code == 403
    assert client.get("/admin").status_code == 403
    assert audit(deps.engine) == []


def test_an_anonymous_request_is_refused(deps, app):
    client = app.server.test_client()
    assert press(client, app, "categories", "limits", LIMITS).status_code in (401, 403)
    assert client.get("/admin", headers={"Accept": "text/html"}).status_code in (302, 401)
    assert audit(deps.engine) == []


def test_without_an_admin_signed_in_perform_refuses(deps, app):
    with app.server.test_request_context("/"):
        outcome = callbacks.perform(deps.engine, "categories", "limits", LIMITS, "en")
    assert not outcome.ok and outcome.message == "Only administrators may change this."
    assert audit(deps.engine) == []


# --- every tab's buttons, through the plain function behind them ---------------------------------


def do(deps, tab, action, lang="en", **form):
    return callbacks.perform(deps.engine, tab, action, form, lang, actor="page-admin")


def test_users_tab_creates_changes_resets_and_deactivates(deps):
    assert do(deps, "users", "create", username="wang", password="long enough", role="dispatcher").ok
    changed = do(deps, "users", "save", username="wang", role="department", department="zj", unit="city")
    assert changed.ok and changed.message == "Saved: wang."
    assert do(deps, "users", "reset_password", username="wang", password="another one").ok
    assert do(deps, "users", "deactivate", username="wang").ok
    assert [e["action"] for e in reversed(audit(deps.engine))] == ["create", "change_role", "reset_password", "deactivate"]
    # A department user without a department is refused, with the reason.
    refused = do(deps, "users", "create", username="li", password="long enough", role="department")
    assert not refused.ok and "needs the department" in refused.message


def test_saving_a_user_with_blank_fields_keeps_their_jurisdiction_and_department(deps):
    with deps.engine.connect() as conn:
        district = conn.execute(
            select(schema.units.c.code).where(schema.units.c.id == deps.world.lattice.district_ids[0])
        ).scalar()
    assert do(
        deps, "users", "create", username="zhou", password="long enough", role="department", unit=district, department="zj"
    ).ok
    assert do(deps, "users", "save", username="zhou", role="department", display_name="Zhou Min").ok
    with deps.engine.connect() as conn:
        user = {u["username"]: u for u in list_users(conn)}["zhou"]
    assert (user["unit_code"], user["department_code"], user["display_name"]) == (district, "zj", "Zhou Min")
    assert do(deps, "users", "save", username="zhou", role="viewer").ok  # leaving the department role drops the department
    with deps.engine.connect() as conn:
        user = {u["username"]: u for u in list_users(conn)}["zhou"]
    assert (user["role"], user["unit_code"], user["department_code"]) == ("viewer", district, None)


def test_missing_fields_are_named_before_anything_runs(deps):
    outcome = do(deps, "users", "create", lang="zh", username="zhao")
    assert not outcome.ok and outcome.message == "请填写：密码（新建、重设）, 角色"
    assert audit(deps.engine) == []


def test_keys_and_webhooks_show_their_secret_once_and_never_audit_it(deps):
    created = do(deps, "keys", "create", name="hotline", scopes=["intake"], source="12345")
    assert created.ok and created.secret.startswith("cbk_") and "hotline" in created.secret_label
    hook = do(deps, "departments", "webhook", code="zj", webhook="https://example.org/hook")
    assert hook.ok and len(hook.secret) >= 16
    assert all(created.secret not in repr(e) and hook.secret not in repr(e) for e in audit(deps.engine))
    assert do(deps, "keys", "revoke", name="hotline").ok


def test_departments_responsibility_and_duty_tabs(deps):
    assert do(deps, "departments", "create", code="swj", name_en="Water", name_zh="水务局", kind="department").ok
    assert do(deps, "departments", "save", code="swj", name_en="Water Bureau").ok
    assert do(deps, "departments", "create", code="power", name_en="Power", name_zh="电力", kind="utility").ok
    assert do(deps, "departments", "save", code="power", name_zh="国网电力").ok  # a blank kind keeps it
    with deps.engine.connect() as conn:
        district = conn.execute(
            select(schema.units.c.code).where(schema.units.c.id == deps.world.lattice.district_ids[0])
        ).scalar()
        worker = conn.execute(select(schema.workers.c.code).where(schema.workers.c.id == deps.world.worker_id)).scalar()
    assert do(deps, "responsibility", "save", category="construction", district=district, department="swj").ok
    assert do(deps, "responsibility", "save", category="garbage", district="city", department="zj").ok
    assert do(deps, "duties", "save", worker=worker, categories=["garbage", "water"]).ok
    assert do(deps, "duties", "save", worker=worker, categories=["garbage", "water"]).message == "Nothing changed."
    assert do(
        deps, "categories", "create", new_code="potholes", name_en="Potholes", name_zh="坑洼", sector="safety", department="zj"
    ).ok
    assert do(deps, "categories", "save", code="potholes", name_en="Road potholes", grid_worker_ok=["yes"]).ok
    actions = [(e["entity"], e["action"]) for e in reversed(audit(deps.engine))]
    assert actions == [
        ("department", "create"),
        ("department", "rename"),
        ("department", "create"),
        ("department", "rename"),
        ("responsibility", "set"),
        ("responsibility", "set"),
        ("worker_duties", "set"),
        ("category", "create"),
        ("category", "update"),
    ]
    refused = do(deps, "duties", "save", worker=worker, categories=["construction"])
    assert not refused.ok and "not for grid workers" in refused.message


def test_a_selected_row_fills_the_form(deps):
    assert callbacks.row_to_form(
        "users", {"username": "wang", "display_name": "W", "role": "viewer", "unit": "", "department": ""}
    ) == [
        "wang",
        "W",
        "viewer",
        "city",
        "",
    ]
    assert callbacks.row_to_form("duties", {"code": "W1", "duties": "garbage water"}) == ["W1", ["garbage", "water"]]
    form = callbacks.category_form(deps.engine, "garbage", 3)
    assert (form["ack"], form["handle"], form["department"], form["grid_worker_ok"]) == (240, 1440, "cg", ["yes"])
    assert callbacks.category_form(deps.engine, "nope", 1) == {}


def test_the_page_shows_every_tab_and_the_audit_log_in_both_languages(deps, app):
    do(deps, "categories", "limits", **LIMITS)
    for lang, words in (
        ("en", ("Users", "Audit log", "Categories & time limits")),
        ("zh", ("用户", "管理日志", "事项类别与时限")),
    ):
        with app.server.test_request_context("/admin"):
            shown = page.layout(deps, {"tab": "audit"}, lang)
        labels = [n.label for n in _walk(shown) if getattr(n, "label", None)]
        assert all(w in labels for w in words), labels
        (audit_grid,) = [n for n in _walk(shown) if getattr(n, "id", None) == page.grid_id("audit")]
        assert audit_grid.rowData[0]["actor"] == "page-admin" and '"ack_minutes": 45' in audit_grid.rowData[0]["after"]
    rows = admin_audit.rows(deps.engine, "audit", "zh", "Asia/Shanghai", None, None, "category_limits")
    assert rows[0]["entity"] == "处置时限" and rows[0]["action"] == "设置"  # the action in words, not its code
    assert admin_audit._action("reset_password", "en") == "password reset"
    assert admin_audit._action("some_new_action", "zh") == "some_new_action"  # a code without a text shows as itself


def test_selecting_a_row_fills_the_form_through_the_callback(deps, app):
    client = signed_in_client(app, "admin")
    for tab, row, field, value in (
        ("keys", {"name": "hotline"}, "name", "hotline"),
        ("categories", {"code": "garbage"}, "code", "garbage"),
    ):
        key = next(k for k in app.callback_map if k.startswith(f"{page.field_id(tab, field)}.value"))
        component, _, prop = key.partition(".")
        answer = client.post(
            "/_dash-update-component",
            json={
                "output": key,
                "outputs": {"id": component, "property": prop},
                "inputs": [{"id": page.grid_id(tab), "property": "selectedRows", "value": [row]}],
                "changedPropIds": [f"{page.grid_id(tab)}.selectedRows"],
            },
        )
        assert answer.get_json()["response"][component]["value"] == value


def _route(client, path: str) -> str:
    """The page the shell routes `path` to, as the browser receives it (JSON text)."""
    answer = client.post(
        "/_dash-update-component",
        json={
            "output": "shell-page.children",
            "outputs": {"id": "shell-page", "property": "children"},
            "inputs": [
                {"id": "shell-location", "property": "pathname", "value": path},
                {"id": "shell-lang", "property": "data", "value": "en"},
            ],
            "state": [
                {"id": "shell-location", "property": "search", "value": ""},
                {"id": "shell-carry", "property": "data", "value": None},
            ],
            "changedPropIds": ["shell-location.pathname"],
        },
    )
    assert answer.status_code == 200
    return json.dumps(answer.get_json(), separators=(",", ":"), ensure_ascii=False)


def test_only_administrators_see_the_admin_link_and_page(deps, app):
    admin_client = signed_in_client(app, "admin")
    assert '"href":"/admin"' in _route(admin_client, "/inbox")
    assert page.grid_id("users") in _route(admin_client, "/admin")
    dispatcher = signed_in_client(app, "dispatcher")
    assert '"href":"/admin"' not in _route(dispatcher, "/inbox")
    refused = _route(dispatcher, "/admin")
    assert page.grid_id("users") not in refused and "auth-refused" in refused


def test_a_district_administrator_cannot_reach_beyond_their_district(deps, app):
    """No widening through the admin page: users they create stay inside, users outside cannot be touched."""
    lattice = deps.world.lattice
    with deps.engine.connect() as conn:
        d0, d1 = (
            conn.execute(select(schema.units.c.code).where(schema.units.c.id == unit)).scalar()
            for unit in lattice.district_ids[:2]
        )
    assert callbacks.perform(
        deps.engine, "users", "create", {"username": "boss", "password": "long enough", "role": "admin"}, "en", actor="root"
    ).ok
    client = signed_in_client(app, "admin", unit_id=lattice.district_ids[0])
    assert (
        press(
            client, app, "users", "create", {"username": "mine", "password": "long enough", "role": "dispatcher", "unit": "city"}
        ).status_code
        == 200
    )
    refused = press(
        client, app, "users", "create", {"username": "theirs", "password": "long enough", "role": "viewer", "unit": d1}
    )
    assert "outside your jurisdiction" in refused.get_data(as_text=True)
    # The city administrator is outside a district: no password reset, demotion or deactivation from there.
    for action, form in (
        ("reset_password", {"password": "taken over!"}),
        ("save", {"role": "viewer"}),
        ("deactivate", {}),
    ):
        answer = press(client, app, "users", action, {"username": "boss", **form})
        assert "outside your jurisdiction" in answer.get_data(as_text=True), action
    with deps.engine.connect() as conn:
        users = {u["username"]: u for u in list_users(conn)}
    assert users["mine"]["unit_code"] == d0 and "theirs" not in users
    assert users["boss"]["role"] == "admin" and users["boss"]["active"] and users["boss"]["unit_code"] is None
    # Inside the district it works as before.
    assert "outside" not in press(client, app, "users", "save", {"username": "mine", "role": "viewer"}).get_data(as_text=True)
