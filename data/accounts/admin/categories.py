"""Audited administration of categories and their acknowledge and handling limits per priority."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts.admin.audit import CATEGORY, LIMITS, check_actor, record
from data.accounts.admin.checks import (
    PRIORITIES,
    active_department,
    category_row,
    check_code,
    check_flag,
    check_minutes,
    check_name,
    check_priority,
)
from data.actors import Actor, require_city_wide
from data.errors import Conflict, ValidationError
from data.incidents.clock import DEFAULT_LIMITS

D, C, LIM = schema.departments, schema.categories, schema.category_limits


SECTORS = ("party", "economy", "livelihood", "safety")


def category_snapshot(conn: Connection, row) -> dict:
    """What the audit log keeps of a category: its fields, with its department by code."""
    return {
        "code": row.code,
        "name_en": row.name_en,
        "name_zh": row.name_zh,
        "sector": row.sector,
        "department": conn.execute(select(D.c.code).where(D.c.id == row.department_id)).scalar(),
        "grid_worker_ok": bool(row.grid_worker_ok),
        "active": bool(row.active),
    }


def category_limits(conn: Connection, category_id: int) -> dict[int, dict]:
    """{priority: {ack_minutes, handle_minutes, default}} for all three priorities (default=True: DEFAULT_LIMITS applies)."""
    stored = {
        r.priority: (r.ack_minutes, r.handle_minutes) for r in conn.execute(select(LIM).where(LIM.c.category_id == category_id))
    }
    return {
        p: {
            "ack_minutes": stored.get(p, DEFAULT_LIMITS[p])[0],
            "handle_minutes": stored.get(p, DEFAULT_LIMITS[p])[1],
            "default": p not in stored,
        }
        for p in PRIORITIES
    }


def list_categories(conn: Connection) -> list[dict]:
    """Every category with its department and its limits per priority (flattened: ack_1, handle_1, ... ack_3, handle_3)."""
    rows = conn.execute(
        select(C, D.c.code.label("department")).select_from(C.join(D, C.c.department_id == D.c.id)).order_by(C.c.sector, C.c.code)
    ).all()
    stored: dict[int, dict[int, tuple[int, int]]] = {}
    for r in conn.execute(select(LIM)):
        stored.setdefault(r.category_id, {})[r.priority] = (r.ack_minutes, r.handle_minutes)
    out = []
    for r in rows:
        item = {
            "id": r.id,
            "code": r.code,
            "name_en": r.name_en,
            "name_zh": r.name_zh,
            "sector": r.sector,
            "department": r.department,
            "grid_worker_ok": bool(r.grid_worker_ok),
            "active": bool(r.active),
        }
        for p in PRIORITIES:
            ack, handle = stored.get(r.id, {}).get(p, DEFAULT_LIMITS[p])
            item[f"ack_{p}"], item[f"handle_{p}"] = ack, handle
        out.append(item)
    return out


def _check_limit_pair(ack: Any, handle: Any, priority: int) -> tuple[int, int]:
    ack = check_minutes(ack, f"acknowledge limit (priority {priority})")
    handle = check_minutes(handle, f"handling limit (priority {priority})")
    if ack > handle:
        raise ValidationError(
            f"priority {priority}: the acknowledge limit ({ack} min) cannot be longer than the handling limit ({handle} min)"
        )
    return ack, handle


def create_category(
    conn: Connection,
    actor: str | Actor,
    code: str,
    name_en: str,
    name_zh: str,
    sector: str,
    department_code: str,
    *,
    grid_worker_ok: bool = False,
    limits: dict[int, tuple[int, int]] | None = None,
    now: datetime | None = None,
) -> dict:
    """A new active category handled city-wide by `department_code`, with optional limits {priority: (ack, handle)}."""
    check_actor(actor)
    require_city_wide(actor, "a category")
    code = check_code(code, "category")
    name_en, name_zh = check_name(name_en, "English name"), check_name(name_zh, "Chinese name")
    if sector not in SECTORS:
        raise ValidationError(f"sector must be one of {', '.join(SECTORS)}, not {sector!r}")
    department = active_department(conn, department_code)
    grid_worker_ok = check_flag(grid_worker_ok, "grid_worker_ok")
    checked = {check_priority(p): _check_limit_pair(a, h, check_priority(p)) for p, (a, h) in (limits or {}).items()}
    if conn.execute(select(C.c.id).where(C.c.code == code)).first() is not None:
        raise Conflict(f"a category with code {code!r} already exists")
    category_id = conn.execute(
        C.insert()
        .values(
            code=code,
            name_en=name_en,
            name_zh=name_zh,
            sector=sector,
            department_id=department.id,
            grid_worker_ok=grid_worker_ok,
            active=True,
        )
        .returning(C.c.id)
    ).scalar_one()
    if checked:
        conn.execute(
            LIM.insert(),
            [{"category_id": category_id, "priority": p, "ack_minutes": a, "handle_minutes": h} for p, (a, h) in checked.items()],
        )
    after = {**category_snapshot(conn, category_row(conn, code)), "limits": {p: list(v) for p, v in sorted(checked.items())}}
    record(conn, actor, CATEGORY, code, "create", None, after, now=now)
    return after


def update_category(
    conn: Connection,
    actor: str | Actor,
    code: str,
    *,
    name_en: str | None = None,
    name_zh: str | None = None,
    sector: str | None = None,
    grid_worker_ok: bool | None = None,
    active: bool | None = None,
    now: datetime | None = None,
) -> dict:
    """Rename a category, move it to another sector, allow or bar grid workers, (de)activate it. Its department: set_responsibility."""
    check_actor(actor)
    require_city_wide(actor, "a category")
    row = category_row(conn, code)
    changes: dict[str, Any] = {}
    if name_en is not None:
        changes["name_en"] = check_name(name_en, "English name")
    if name_zh is not None:
        changes["name_zh"] = check_name(name_zh, "Chinese name")
    if sector is not None:
        if sector not in SECTORS:
            raise ValidationError(f"sector must be one of {', '.join(SECTORS)}, not {sector!r}")
        changes["sector"] = sector
    if grid_worker_ok is not None:
        changes["grid_worker_ok"] = check_flag(grid_worker_ok, "grid_worker_ok")
    if active is not None:
        changes["active"] = check_flag(active, "active")
    before = category_snapshot(conn, row)
    changes = {k: v for k, v in changes.items() if before[k] != v}
    if not changes:
        return before
    conn.execute(C.update().where(C.c.id == row.id).values(**changes))
    after = category_snapshot(conn, category_row(conn, row.code))
    action = "rename" if set(changes) <= {"name_en", "name_zh"} else "update"
    record(conn, actor, CATEGORY, row.code, action, before, after, now=now)
    return after


def set_category_limits(
    conn: Connection,
    actor: str | Actor,
    code: str,
    priority: Any,
    ack_minutes: Any,
    handle_minutes: Any,
    now: datetime | None = None,
) -> dict:
    """Set a category's acknowledge and handling limits at one priority; applies to incidents dispatched from now on."""
    check_actor(actor)
    require_city_wide(actor, "a category's time limits")
    row = category_row(conn, code)
    priority = check_priority(priority)
    ack, handle = _check_limit_pair(ack_minutes, handle_minutes, priority)
    current = category_limits(conn, row.id)[priority]
    before = {"priority": priority, **current}
    after = {"priority": priority, "ack_minutes": ack, "handle_minutes": handle, "default": False}
    if before == after:
        return after
    conn.execute(LIM.delete().where(LIM.c.category_id == row.id, LIM.c.priority == priority))
    conn.execute(LIM.insert().values(category_id=row.id, priority=priority, ack_minutes=ack, handle_minutes=handle))
    record(conn, actor, LIMITS, row.code, "set", before, after, now=now)
    return after
