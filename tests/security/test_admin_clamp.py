"""Item 5: an administrator limited to a district cannot change what the whole city shares, nor another district's lists.

Before: users and keys were clamped on the admin page, but a district's administrator could create and rename
departments and point a department's webhook at their own listener (it then received other districts'
incidents, validly signed), change categories and their time limits, and edit other districts' responsibility
lists. The checks live in data/accounts/admin/, whoever calls it.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app import create_app
from callbacks import admin as callbacks
from dashboard.settings import Settings
from data import schema
from data.accounts.admin import categories, departments, duties, keys, responsibility
from data.accounts.admin.audit import events
from data.accounts.apikeys import list_keys
from data.actors import Actor
from data.errors import NotFound, PermissionDenied, ValidationError
from data.warnings import sensitivity
from tests.auth_helpers import signed_in_client
from tests.callbacks.test_admin import press
from tests.factories import make_department, make_worker, make_world

LISTENER = "https://listener.example/hook"


@pytest.fixture
def city(engine):
    with engine.begin() as conn:
        world = make_world(conn)
        codes = dict(conn.execute(select(schema.units.c.id, schema.units.c.code)).all())
        far_worker = make_worker(conn, world.lattice.grid_ids[2], code="W-far", duties=[world.categories["garbage"]])
        near_worker = conn.execute(select(schema.workers.c.code).where(schema.workers.c.id == world.worker_id)).scalar()
        keys.create_api_key(conn, "root", "city-wall", ["read"])
        make_department(conn, "spare")  # handles nothing: may be deactivated
    d0, d1 = (codes[d] for d in world.lattice.district_ids[:2])
    district_admin = Actor("d0-admin", unit_id=world.lattice.district_ids[0])
    return SimpleNamespace(engine=engine, world=world, d0=d0, d1=d1, admin=district_admin, near=near_worker, far=far_worker)


def _audit(engine) -> list[dict]:
    with engine.connect() as conn:
        return events(conn)


CITY_WIDE_CHANGES = [
    ("create a department", lambda c, a: departments.create_department(c, a, "mine", "Mine", "我的")),
    ("rename a department", lambda c, a: departments.update_department(c, a, "cg", name_en="Renamed")),
    ("deactivate a department", lambda c, a: departments.update_department(c, a, "spare", active=False)),
    ("point a webhook", lambda c, a: departments.set_department_webhook(c, a, "cg", LISTENER)),
    ("create a category", lambda c, a: categories.create_category(c, a, "mine", "Mine", "我的", "livelihood", "cg")),
    ("change a category", lambda c, a: categories.update_category(c, a, "garbage", grid_worker_ok=False)),
    ("change time limits", lambda c, a: categories.set_category_limits(c, a, "garbage", 1, 5000, 10000)),
    ("change the city-wide department", lambda c, a: responsibility.set_responsibility(c, a, "garbage", None, "zj")),
]


@pytest.mark.parametrize("label, change", CITY_WIDE_CHANGES, ids=[label for label, _ in CITY_WIDE_CHANGES])
def test_a_district_administrator_cannot_change_a_city_wide_record(city, label, change):
    with pytest.raises(PermissionDenied, match="city-wide administrator"), city.engine.begin() as conn:
        change(conn, city.admin)
    assert _audit(city.engine)[:-1] == []  # only the key made by the fixture
    with city.engine.begin() as conn:  # a city-wide administrator (or the CLI, a plain name) may
        change(conn, Actor("root"))


def test_a_district_administrator_edits_only_its_own_districts_list_and_workers(city):
    engine, admin = city.engine, city.admin
    with pytest.raises(NotFound), engine.begin() as conn:
        responsibility.set_responsibility(conn, admin, "garbage", city.d1, "zj")
    with pytest.raises(NotFound), engine.begin() as conn:
        duties.set_worker_duties(conn, admin, "W-far", [])
    with pytest.raises(ValidationError, match="outside your jurisdiction"), engine.begin() as conn:
        keys.revoke_api_key(conn, admin, "city-wall")
    with pytest.raises(PermissionDenied), engine.begin() as conn:
        sensitivity.set_sensitivity(conn, city.world.categories["garbage"], 2.0, True, admin)
    with engine.connect() as conn:
        assert duties.worker_duties(conn, "W-far") == ["garbage"]
        assert all(k.revoked_at is None for k in list_keys(conn))
    with engine.begin() as conn:
        assert responsibility.set_responsibility(conn, admin, "garbage", city.d0, "zj")["department"] == "zj"
        assert duties.set_worker_duties(conn, admin, city.near, []) == []


def test_the_admin_page_refuses_a_district_administrators_webhook(city):
    app = create_app(Settings.from_env({}, live=False, build_demo=False), engine=city.engine, testing=True)
    client = signed_in_client(app, "admin", unit_id=city.world.lattice.district_ids[0])
    answer = press(client, app, "departments", "webhook", {"code": "cg", "webhook": LISTENER})
    assert answer.status_code == 200 and "city-wide administrator" in answer.get_data(as_text=True)
    answer = press(client, app, "categories", "limits", {"code": "garbage", "priority": 1, "ack": 5000, "handle": 10000})
    assert "city-wide administrator" in answer.get_data(as_text=True)
    answer = press(client, app, "responsibility", "save", {"category": "garbage", "district": city.d1, "department": "zj"})
    assert f"Not saved: no unit with code {city.d1!r}" in answer.get_data(as_text=True)  # another district: not found
    with city.engine.connect() as conn:
        assert conn.execute(select(schema.departments.c.webhook_url).where(schema.departments.c.code == "cg")).scalar() is None
        overrides = conn.execute(select(schema.category_district_departments)).all()
    assert overrides == []
    assert [e["entity"] for e in _audit(city.engine)] == ["api_key"]  # nothing but the fixture's key
    # The city's administrator still may.
    root = signed_in_client(app, "admin")
    assert "city-wide" not in press(root, app, "departments", "webhook", {"code": "cg", "webhook": LISTENER}).get_data(
        as_text=True
    )
    assert callbacks.perform(
        city.engine,
        "responsibility",
        "save",
        {"category": "garbage", "district": city.d1, "department": "zj"},
        "en",
        actor="root",
    ).ok
