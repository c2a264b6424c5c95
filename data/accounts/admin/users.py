"""Audited administration of users (the accounts of data/accounts/users.py), and the units a jurisdiction is picked from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts.admin.audit import USER, check_actor, record
from data.accounts.admin.checks import CITY_WIDE, active_department, check_flag, require_record_inside, unit_code_inside
from data.actors import Actor
from data.errors import NotFound, ValidationError

U = schema.units


_UNSET: Any = object()


def user_snapshot(user: dict) -> dict:
    """What the audit log keeps of a user: who, role, jurisdiction and department by code, active; never a password."""
    return {
        "username": user["username"],
        "display_name": user["display_name"],
        "role": user["role"],
        "unit": user["unit_code"],
        "department": user["department_code"],
        "active": bool(user["active"]),
    }


def list_users(conn: Connection) -> list[dict]:
    """Every user (data/accounts/users.list_users), without password hashes."""
    from data.accounts import users as accounts

    return accounts.list_users(conn)


def _unit_id(conn: Connection, unit_code: str | None) -> int | None:
    """A jurisdiction by unit code; None, '' or 'city' is the whole city."""
    code = unit_code.strip() if isinstance(unit_code, str) else unit_code
    if code in (None, "", CITY_WIDE):
        return None
    row = conn.execute(select(U.c.id, U.c.level).where(U.c.code == code)).first()
    if row is None:
        raise NotFound(f"no unit with code {unit_code!r}")
    return None if row.level == schema.CITY else row.id


def _department_id(conn: Connection, department_code: str | None) -> int | None:
    code = department_code.strip() if isinstance(department_code, str) else department_code
    if code in (None, ""):
        return None
    return active_department(conn, code).id


def _user_by_name(conn: Connection, username: str) -> dict:
    from data.accounts import users as accounts

    return accounts.get_user_by_username(conn, username)


def create_user(
    conn: Connection,
    actor: str | Actor,
    username: str,
    password: str,
    role: str,
    *,
    unit_code: str | None = None,
    department_code: str | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> dict:
    """A new user with a role, a jurisdiction (unit code; None = the city) and, for role 'department', its department.

    An administrator limited to a unit makes users inside it only (none asked: its own unit)."""
    from data.accounts import users as accounts

    check_actor(actor)
    user = accounts.create_user(
        conn,
        username,
        password,
        role,
        unit_id=_unit_id(conn, unit_code_inside(conn, actor, unit_code)),
        department_id=_department_id(conn, department_code),
        display_name=display_name,
        now=now,
    )
    record(conn, actor, USER, user["username"], "create", None, user_snapshot(user), now=now)
    return user


def update_user(
    conn: Connection,
    actor: str | Actor,
    username: str,
    *,
    role: str = _UNSET,
    unit_code: str | None = _UNSET,
    department_code: str | None = _UNSET,
    active: bool = _UNSET,
    display_name: str | None = _UNSET,
    now: datetime | None = None,
) -> dict:
    """Change a user's role, jurisdiction, department, display name or active flag (what is given); one audit row.

    An administrator limited to a unit changes only users inside it, and keeps them there."""
    from data.accounts import users as accounts

    check_actor(actor)
    current = _user_by_name(conn, username)
    require_record_inside(conn, actor, current["unit_id"], f"user {username!r}")
    changes: dict[str, Any] = {}
    if role is not _UNSET:
        changes["role"] = role
    if unit_code is not _UNSET:
        changes["unit_id"] = _unit_id(conn, unit_code_inside(conn, actor, unit_code))
    if department_code is not _UNSET:
        changes["department_id"] = _department_id(conn, department_code)
    if active is not _UNSET:
        changes["active"] = check_flag(active, "active")
    if display_name is not _UNSET:
        changes["display_name"] = display_name
    before = user_snapshot(current)
    stays_admin = changes.get("role", current["role"]) == "admin" and changes.get("active", current["active"])
    if current["role"] == "admin" and current["active"] and not stays_admin:
        _refuse_if_last_admin(conn, current)
    user = accounts.update_user(conn, current["id"], now=now, **changes)
    after = user_snapshot(user)
    changed = {k for k in after if after[k] != before[k]}
    if not changed:
        return user
    record(conn, actor, USER, user["username"], _user_action(changed, after), before, after, now=now)
    return user


def _refuse_if_last_admin(conn: Connection, user: dict) -> None:
    users = schema.users
    others = conn.execute(
        select(func.count()).select_from(users).where(users.c.role == "admin", users.c.active.is_(True), users.c.id != user["id"])
    ).scalar_one()
    if not others:
        raise ValidationError(f"{user['username']} is the last active administrator: make another administrator first")


def _user_action(changed: set[str], after: dict) -> str:
    if changed == {"active"}:
        return "activate" if after["active"] else "deactivate"
    if "role" in changed:
        return "change_role"
    if changed == {"unit"}:
        return "jurisdiction"
    if changed == {"department"}:
        return "department"
    return "update"


def reset_password(conn: Connection, actor: str | Actor, username: str, password: str, now: datetime | None = None) -> dict:
    """Give a user a new password (their sessions end and any lockout clears); the password itself is never audited."""
    from data.accounts import users as accounts

    check_actor(actor)
    current = _user_by_name(conn, username)
    require_record_inside(conn, actor, current["unit_id"], f"user {username!r}")
    user = accounts.update_user(conn, current["id"], password=password, now=now)
    snapshot = user_snapshot(user)
    record(
        conn,
        actor,
        USER,
        user["username"],
        "reset_password",
        snapshot,
        snapshot,
        note="new password set; sessions ended",
        now=now,
    )
    return user


def unit_choices(conn: Connection) -> list[dict]:
    """Districts and streets (code, level, names) an admin picks jurisdictions and district lists from, district by district."""
    rows = conn.execute(
        select(U.c.code, U.c.level, U.c.name_en, U.c.name_zh)
        .where(U.c.level.in_((schema.DISTRICT, schema.STREET)))
        .order_by(func.coalesce(U.c.district_id, U.c.id), U.c.level, U.c.code)
    )
    return [dict(r._mapping) for r in rows]
