"""Administration (data/accounts/admin/) on SQLite and PostgreSQL: each change does what it says and writes one audit row; bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from data import schema
from data.accounts import apikeys
from data.accounts.admin.audit import events
from data.accounts.admin.categories import create_category, list_categories, set_category_limits, update_category
from data.accounts.admin.departments import create_department, list_departments, set_department_webhook, update_department
from data.accounts.admin.duties import list_workers, set_worker_duties
from data.accounts.admin.keys import create_api_key, revoke_api_key
from data.accounts.admin.responsibility import responsibility_list, set_responsibility
from data.accounts.admin.users import create_user, list_users, reset_password, update_user
from data.accounts.users import authenticate
from data.errors import AuthenticationFailed, Conflict, NotFound, ValidationError
from data.incidents.clock import limits_for
from tests.factories import make_world

ACTOR = "cli:alice"


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def audit(engine) -> list[dict]:
    with engine.connect() as conn:
        return events(conn)


def snapshot(engine) -> dict:
    """Every table an admin change can touch, as plain rows, to show that a refused change stored nothing."""
    tables = (
        schema.departments,
        schema.categories,
        schema.category_limits,
        schema.category_district_departments,
        schema.worker_duties,
        schema.api_keys,
        schema.users,
        schema.admin_events,
    )
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr) for t in tables}


def refused(engine, error, change) -> str:
    """Run `change(conn)` in a transaction, expect `error`, and check nothing was stored; returns the message."""
    before = snapshot(engine)
    with pytest.raises(error) as caught, engine.begin() as conn:
        change(conn)
    assert snapshot(engine) == before
    return str(caught.value)


def worker_code(engine, world) -> str:
    with engine.connect() as conn:
        return conn.execute(select(schema.workers.c.code).where(schema.workers.c.id == world.worker_id)).scalar_one()


def district_code(engine, district_id) -> str:
    with engine.connect() as conn:
        return conn.execute(select(schema.units.c.code).where(schema.units.c.id == district_id)).scalar_one()


# --- departments ---------------------------------------------------------------------------


def test_a_department_is_created_renamed_given_a_webhook_and_deactivated_each_audited(engine, world):
    with engine.begin() as conn:
        created = create_department(conn, ACTOR, "swj", "Water Affairs Bureau", "水务局")
    assert created["active"] and created["webhook_url"] is None
    with engine.begin() as conn:
        update_department(conn, ACTOR, "swj", name_en="Water Bureau")
        secret = set_department_webhook(conn, ACTOR, "swj", "https://example.org/hook")
        update_department(conn, ACTOR, "swj", active=False)
    with engine.connect() as conn:
        row = {d["code"]: d for d in list_departments(conn)}["swj"]
    assert row["name_en"] == "Water Bureau" and row["name_zh"] == "水务局"
    assert row["webhook_url"] == "https://example.org/hook" and not row["active"]

    log = audit(engine)
    assert [(e["entity"], e["entity_key"], e["action"]) for e in reversed(log)] == [
        ("department", "swj", "create"),
        ("department", "swj", "rename"),
        ("department", "swj", "webhook"),
        ("department", "swj", "deactivate"),
    ]
    create, rename, hook, _ = reversed(log)
    assert create["before"] is None and create["after"]["name_en"] == "Water Affairs Bureau"
    assert rename["before"]["name_en"] == "Water Affairs Bureau" and rename["after"]["name_en"] == "Water Bureau"
    assert hook["after"]["webhook_secret_set"] and not hook["before"]["webhook_secret_set"]
    assert all(e["actor"] == ACTOR for e in log)
    # The signing secret is handed back once and never written to the audit log.
    assert secret and all(secret not in repr(e) for e in log)


def test_renaming_to_the_same_name_changes_and_audits_nothing(engine, world):
    with engine.begin() as conn:
        update_department(conn, ACTOR, "cg", name_en="CG")
    assert audit(engine) == []


def test_bad_department_changes_store_nothing(engine, world):
    assert "already exists" in refused(engine, Conflict, lambda c: create_department(c, ACTOR, "cg", "x", "x"))
    refused(engine, ValidationError, lambda c: create_department(c, ACTOR, "bad code!", "x", "x"))
    refused(engine, ValidationError, lambda c: create_department(c, ACTOR, "new", "  ", "x"))
    refused(engine, ValidationError, lambda c: create_department(c, ACTOR, "new", "x", "x", kind="ministry"))
    refused(engine, ValidationError, lambda c: create_department(c, "", "new", "x", "x"))
    refused(engine, NotFound, lambda c: update_department(c, ACTOR, "nope", name_en="x"))
    refused(engine, ValidationError, lambda c: set_department_webhook(c, ACTOR, "cg", "ftp://example.org/x"))
    # A department still named by the responsibility list cannot be switched off.
    message = refused(engine, ValidationError, lambda c: update_department(c, ACTOR, "zj", active=False))
    assert "construction" in message


# --- categories and limits ----------------------------------------------------------------


def test_a_category_time_limit_change_is_used_by_the_next_dispatch_and_audited(engine, world):
    with engine.begin() as conn:
        result = set_category_limits(conn, ACTOR, "garbage", 2, 45, 300)
    assert result["ack_minutes"] == 45 and result["handle_minutes"] == 300
    (event,) = audit(engine)
    assert (event["entity"], event["entity_key"], event["action"]) == ("category_limits", "garbage", "set")
    assert event["before"] == {"priority": 2, "ack_minutes": 60, "handle_minutes": 480, "default": False}
    assert event["after"]["ack_minutes"] == 45

    # Due times of the next dispatch are computed from the limits the clock reads.
    with engine.connect() as conn:
        assert limits_for(conn, world.categories["garbage"], 2) == (45, 300)
    with engine.connect() as conn:
        listed = {c["code"]: c for c in list_categories(conn)}["garbage"]
    assert (listed["ack_2"], listed["handle_2"]) == (45, 300)


def test_limits_of_a_category_without_its_own_start_from_the_defaults(engine, world):
    with engine.begin() as conn:
        set_category_limits(conn, ACTOR, "noise", "1", "20", "90")
    (event,) = audit(engine)
    assert event["before"]["default"] is True and event["after"] == {
        "priority": 1,
        "ack_minutes": 20,
        "handle_minutes": 90,
        "default": False,
    }


@pytest.mark.parametrize(
    ("priority", "ack", "handle", "error", "words"),
    [
        (2, -5, 300, ValidationError, "more than 0"),
        (2, 0, 300, ValidationError, "more than 0"),
        (2, 60, 30, ValidationError, "cannot be longer"),
        (4, 60, 300, ValidationError, "priority"),
        (2, "soon", 300, ValidationError, "whole number"),
        (2, 1.5, 300, ValidationError, "whole number"),
        (2, 60, 10**9, ValidationError, "over a year"),
    ],
)
def test_bad_time_limits_store_nothing(engine, world, priority, ack, handle, error, words):
    message = refused(engine, error, lambda c: set_category_limits(c, ACTOR, "garbage", priority, ack, handle))
    assert words in message


def test_unknown_category_limits_are_not_found(engine, world):
    refused(engine, NotFound, lambda c: set_category_limits(c, ACTOR, "nope", 1, 10, 20))


def test_a_category_is_created_with_limits_and_updated(engine, world):
    with engine.begin() as conn:
        create_category(conn, ACTOR, "potholes", "Potholes", "道路坑洼", "safety", "zj", limits={1: (10, 60)})
        update_category(conn, ACTOR, "potholes", grid_worker_ok=True, name_zh="路面坑洼")
    with engine.connect() as conn:
        row = {c["code"]: c for c in list_categories(conn)}["potholes"]
    assert row["department"] == "zj" and row["grid_worker_ok"] and row["name_zh"] == "路面坑洼"
    assert (row["ack_1"], row["handle_1"]) == (10, 60) and (row["ack_3"], row["handle_3"]) == (120, 4320)
    update, create = audit(engine)
    assert create["action"] == "create" and create["after"]["limits"] == {"1": [10, 60]}
    assert update["before"]["grid_worker_ok"] is False and update["after"]["grid_worker_ok"] is True


def test_bad_categories_store_nothing(engine, world):
    refused(engine, Conflict, lambda c: create_category(c, ACTOR, "garbage", "x", "x", "safety", "zj"))
    refused(engine, NotFound, lambda c: create_category(c, ACTOR, "new", "x", "x", "safety", "nope"))
    refused(engine, ValidationError, lambda c: create_category(c, ACTOR, "new", "x", "x", "sports", "zj"))
    refused(engine, ValidationError, lambda c: create_category(c, ACTOR, "new", "x", "x", "safety", "zj", limits={1: (90, 10)}))
    refused(engine, ValidationError, lambda c: update_category(c, ACTOR, "garbage", active="yes"))


# --- responsibility list -------------------------------------------------------------------


def test_the_responsibility_list_is_set_per_district_and_city_wide(engine, world):
    d0 = district_code(engine, world.lattice.district_ids[0])
    with engine.begin() as conn:
        set_responsibility(conn, ACTOR, "construction", d0, "ga")
        set_responsibility(conn, ACTOR, "garbage", None, "zj")
    with engine.connect() as conn:
        rows = responsibility_list(conn)
    assert {"category": "construction", "district": d0, "department": "ga"} in [
        {k: r[k] for k in ("category", "district", "department")} for r in rows
    ]
    assert {r["department"] for r in rows if r["category"] == "garbage" and r["district"] is None} == {"zj"}
    city, district = audit(engine)
    assert (district["entity_key"], district["before"], district["after"]["department"]) == (f"construction@{d0}", None, "ga")
    assert (city["entity_key"], city["before"]["department"], city["after"]["department"]) == ("garbage@city", "cg", "zj")

    # Cleared: the district falls back to the category's own department, and the clearing is audited.
    with engine.begin() as conn:
        set_responsibility(conn, ACTOR, "construction", d0, None)
    cleared = audit(engine)[0]
    assert cleared["action"] == "clear" and cleared["before"]["department"] == "ga" and cleared["after"] is None
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.category_district_departments)).scalar() == 0


def test_bad_responsibility_entries_store_nothing(engine, world):
    d0 = district_code(engine, world.lattice.district_ids[0])
    with engine.connect() as conn:
        street = conn.execute(select(schema.units.c.code).where(schema.units.c.level == schema.STREET)).scalars().first()
    refused(engine, NotFound, lambda c: set_responsibility(c, ACTOR, "nope", d0, "ga"))
    refused(engine, NotFound, lambda c: set_responsibility(c, ACTOR, "garbage", "nowhere", "ga"))
    refused(engine, NotFound, lambda c: set_responsibility(c, ACTOR, "garbage", d0, "nope"))
    assert "not a district" in refused(engine, ValidationError, lambda c: set_responsibility(c, ACTOR, "garbage", street, "ga"))
    refused(engine, ValidationError, lambda c: set_responsibility(c, ACTOR, "garbage", None, None))
    with engine.begin() as conn:
        conn.execute(schema.departments.update().where(schema.departments.c.code == "ga").values(active=False))
    assert "inactive" in refused(engine, ValidationError, lambda c: set_responsibility(c, ACTOR, "garbage", d0, "ga"))


# --- duty lists ---------------------------------------------------------------------------


def test_a_grid_workers_duty_list_is_replaced_and_audited(engine, world):
    code = worker_code(engine, world)
    with engine.begin() as conn:
        assert set_worker_duties(conn, ACTOR, code, "water, garbage") == ["garbage", "water"]
    with engine.connect() as conn:
        (listed,) = [w for w in list_workers(conn) if w["code"] == code]
        in_scope = list_workers(conn, scope=(schema.DISTRICT, world.lattice.district_ids[0]))
        elsewhere = list_workers(conn, scope=(schema.DISTRICT, world.lattice.district_ids[1]))
    assert listed["duties"] == ["garbage", "water"]
    assert [w["code"] for w in in_scope] == [code] and elsewhere == []
    (event,) = audit(engine)
    assert (event["entity"], event["entity_key"], event["before"], event["after"]) == (
        "worker_duties",
        code,
        ["garbage"],
        ["garbage", "water"],
    )


def test_bad_duty_lists_store_nothing(engine, world):
    code = worker_code(engine, world)
    refused(engine, NotFound, lambda c: set_worker_duties(c, ACTOR, "nobody", ["garbage"]))
    refused(engine, NotFound, lambda c: set_worker_duties(c, ACTOR, code, ["garbage", "nope"]))
    # 清单外事项: a category grid workers may not take is never put on a duty list.
    assert "not for grid workers" in refused(
        engine, ValidationError, lambda c: set_worker_duties(c, ACTOR, code, ["construction"])
    )


# --- API keys -----------------------------------------------------------------------------


def test_api_keys_are_created_and_revoked_with_an_audit_row_each_and_no_secret_in_it(engine, world):
    with engine.begin() as conn:
        new = create_api_key(conn, ACTOR, "zj-system", ["actions", "read"], department_code="zj")
        revoke_api_key(conn, ACTOR, "zj-system")
        revoke_api_key(conn, ACTOR, "zj-system")  # twice: nothing more happens
    revoke, create = audit(engine)
    assert create["after"]["scopes"] == ["actions", "read"] and create["after"]["department"] == "zj"
    assert revoke["before"]["revoked_at"] is None and revoke["after"]["revoked_at"]
    assert new.secret not in repr(create) and apikeys.hash_key(new.secret) not in repr(create)
    refused(engine, ValidationError, lambda c: create_api_key(c, ACTOR, "x", ["actions"]))
    refused(engine, NotFound, lambda c: revoke_api_key(c, ACTOR, "nobody"))


# --- users --------------------------------------------------------------------------------


def test_users_are_created_changed_reset_and_deactivated_each_audited(engine, world):
    d1 = district_code(engine, world.lattice.district_ids[1])
    with engine.begin() as conn:
        create_user(conn, ACTOR, "wang", "correct horse", "dispatcher")
        update_user(conn, ACTOR, "wang", role="department", department_code="zj")
        update_user(conn, ACTOR, "wang", unit_code=d1)
        update_user(conn, ACTOR, "wang", department_code="ga")
        reset_password(conn, ACTOR, "wang", "battery staple")
        update_user(conn, ACTOR, "wang", active=False)
    log = list(reversed(audit(engine)))
    assert [e["action"] for e in log] == ["create", "change_role", "jurisdiction", "department", "reset_password", "deactivate"]
    assert log[1]["before"]["role"] == "dispatcher" and log[1]["after"] == {
        **log[1]["before"],
        "role": "department",
        "department": "zj",
    }
    assert log[2]["after"]["unit"] == d1 and log[3]["after"]["department"] == "ga"
    assert all("correct horse" not in repr(e) and "battery staple" not in repr(e) for e in log)
    with engine.begin() as conn, pytest.raises(AuthenticationFailed):
        authenticate(conn, "wang", "battery staple")  # deactivated


def test_bad_user_changes_store_nothing(engine, world):
    with engine.begin() as conn:
        create_user(conn, ACTOR, "li", "long enough", "viewer")
    refused(engine, ValidationError, lambda c: create_user(c, ACTOR, "li", "long enough", "viewer"))
    refused(engine, ValidationError, lambda c: create_user(c, ACTOR, "zhao", "long enough", "emperor"))
    refused(engine, ValidationError, lambda c: create_user(c, ACTOR, "zhao", "short", "viewer"))
    # A department user needs the department it acts for, and only a department user has one.
    refused(engine, ValidationError, lambda c: create_user(c, ACTOR, "zhao", "long enough", "department"))
    refused(engine, ValidationError, lambda c: update_user(c, ACTOR, "li", department_code="zj"))
    refused(engine, NotFound, lambda c: create_user(c, ACTOR, "zhao", "long enough", "viewer", unit_code="nowhere"))
    refused(engine, NotFound, lambda c: update_user(c, ACTOR, "nobody", role="admin"))
    refused(engine, ValidationError, lambda c: reset_password(c, ACTOR, "li", "short"))


def test_the_audit_log_filters_by_entity_and_key(engine, world):
    with engine.begin() as conn:
        set_category_limits(conn, ACTOR, "garbage", 1, 10, 50)
        set_category_limits(conn, ACTOR, "water", 1, 10, 50)
        create_department(conn, ACTOR, "new", "New", "新")
    with engine.connect() as conn:
        assert [e["entity_key"] for e in events(conn, entity="category_limits")] == ["water", "garbage"]
        assert [e["entity_key"] for e in events(conn, entity="category_limits", entity_key="garbage")] == ["garbage"]
        assert len(events(conn, limit=2)) == 2


def test_the_last_active_administrator_cannot_be_demoted_or_deactivated(engine, world):
    with engine.begin() as conn:
        create_user(conn, ACTOR, "boss", "long enough", "admin")
    assert "last active administrator" in refused(engine, ValidationError, lambda c: update_user(c, ACTOR, "boss", active=False))
    refused(engine, ValidationError, lambda c: update_user(c, ACTOR, "boss", role="viewer"))
    with engine.begin() as conn:
        create_user(conn, ACTOR, "deputy", "long enough", "admin")
        update_user(conn, ACTOR, "boss", role="leader")  # another admin remains: allowed
    with engine.connect() as conn:
        assert {u["username"]: u["role"] for u in list_users(conn)} == {"boss": "leader", "deputy": "admin"}
