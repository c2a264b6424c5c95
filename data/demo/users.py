"""The demo's users: one per role, and a street's dispatcher to show jurisdiction (passwords are in the README)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts import users as accounts

# (user name, password, role, display name, department code). Demo passwords: never use them for real.
# Display names are people (or, for a department's account, the department): the nav shows the name
# beside the role, so a name that repeated the role read "Administrator · 管理员 · administrator".
DEMO_USERS = (
    ("viewer", "viewer-demo", "viewer", "Zhao Min · 赵敏", None),
    ("dispatcher", "dispatcher-demo", "dispatcher", "Li Wei · 李伟", None),
    ("department", "department-demo", "department", "City Management Bureau · 城市管理局", "cgj"),
    ("leader", "leader-demo", "leader", "Chen Jing · 陈静", None),
    ("admin", "admin-demo", "admin", "Sun Hao · 孙浩", None),
)
# A dispatcher whose jurisdiction is one street: sees and acts for that street only.
STREET_USER = ("street", "street-demo", "dispatcher")


def create_demo_users(conn: Connection) -> list[dict]:
    """Create the demo users that do not exist yet; the users created."""
    existing = {u["username"] for u in accounts.list_users(conn)}
    d, u = schema.departments, schema.units
    made = []
    for username, password, role, display_name, department_code in DEMO_USERS:
        if username in existing:
            continue
        department_id = None
        if department_code is not None:
            department_id = conn.execute(select(d.c.id).where(d.c.code == department_code)).scalar()
            if department_id is None:  # a store without the demo catalogue: no department user
                continue
        made.append(accounts.create_user(conn, username, password, role, department_id=department_id, display_name=display_name))
    street = conn.execute(
        select(u.c.id, u.c.name_en, u.c.name_zh).where(u.c.level == schema.STREET).order_by(u.c.code).limit(1)
    ).first()
    username, password, role = STREET_USER
    if street is not None and username not in existing:
        display = f"Wu Lei, {street.name_en} · 吴磊（{street.name_zh}）"
        made.append(accounts.create_user(conn, username, password, role, unit_id=street.id, display_name=display))
    return made


def ensure_demo_users(engine) -> list[dict]:
    """On a demo store without any user, create the demo users (a store built before sign-in existed)."""
    from data import store

    with store.reading(engine) as conn:
        if accounts.count_users(conn) or store.get_meta(conn, "demo_built_at") is None:
            return []
    with engine.begin() as conn:
        return create_demo_users(conn)
