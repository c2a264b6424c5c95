"""Audited administration of departments: create, rename, (de)activate, and point their webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts.admin.audit import DEPARTMENT, check_actor, record
from data.accounts.admin.checks import check_code, check_flag, check_name, department_row
from data.actors import Actor, require_city_wide
from data.errors import Conflict, ValidationError
from data.incidents import webhooks
from data.incidents.webhook_targets import PUBLIC_ONLY, WebhookTargets

D, C = schema.departments, schema.categories
U = schema.units
RESP = schema.category_district_departments


DEPARTMENT_KINDS = ("department", "utility", "worker")


def department_snapshot(row) -> dict:
    """What the audit log keeps of a department (never its webhook secret, only whether it has one)."""
    return {
        "code": row.code,
        "name_en": row.name_en,
        "name_zh": row.name_zh,
        "kind": row.kind,
        "active": bool(row.active),
        "webhook_url": row.webhook_url,
        "webhook_secret_set": row.webhook_secret is not None,
    }


def list_departments(conn: Connection) -> list[dict]:
    """Every department, active or not, by code."""
    return [{"id": r.id, **department_snapshot(r)} for r in conn.execute(select(D).order_by(D.c.code))]


def create_department(
    conn: Connection,
    actor: str | Actor,
    code: str,
    name_en: str,
    name_zh: str,
    kind: str = "department",
    now: datetime | None = None,
) -> dict:
    """A new, active department without a webhook."""
    check_actor(actor)
    require_city_wide(actor, "a department")
    code = check_code(code, "department")
    name_en, name_zh = check_name(name_en, "English name"), check_name(name_zh, "Chinese name")
    if kind not in DEPARTMENT_KINDS:
        raise ValidationError(f"department kind must be one of {', '.join(DEPARTMENT_KINDS)}, not {kind!r}")
    if conn.execute(select(D.c.id).where(D.c.code == code)).first() is not None:
        raise Conflict(f"a department with code {code!r} already exists")
    conn.execute(D.insert().values(code=code, name_en=name_en, name_zh=name_zh, kind=kind, active=True))
    after = department_snapshot(department_row(conn, code))
    record(conn, actor, DEPARTMENT, code, "create", None, after, now=now)
    return after


def update_department(
    conn: Connection,
    actor: str | Actor,
    code: str,
    *,
    name_en: str | None = None,
    name_zh: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    now: datetime | None = None,
) -> dict:
    """Rename a department, change its kind, or (de)activate it; a department still on the responsibility list cannot be deactivated."""
    check_actor(actor)
    require_city_wide(actor, "a department")
    row = department_row(conn, code)
    changes: dict[str, Any] = {}
    if name_en is not None:
        changes["name_en"] = check_name(name_en, "English name")
    if name_zh is not None:
        changes["name_zh"] = check_name(name_zh, "Chinese name")
    if kind is not None:
        if kind not in DEPARTMENT_KINDS:
            raise ValidationError(f"department kind must be one of {', '.join(DEPARTMENT_KINDS)}, not {kind!r}")
        changes["kind"] = kind
    if active is not None:
        changes["active"] = check_flag(active, "active")
        if not changes["active"] and row.active:
            _refuse_if_responsible(conn, row)
    before = department_snapshot(row)
    changes = {k: v for k, v in changes.items() if before[k] != v}
    if not changes:
        return before
    conn.execute(D.update().where(D.c.id == row.id).values(**changes))
    after = department_snapshot(department_row(conn, row.code))
    action = (
        "rename" if set(changes) <= {"name_en", "name_zh"} else ("deactivate" if changes.get("active") is False else "update")
    )
    if changes.get("active") is True:
        action = "activate"
    record(conn, actor, DEPARTMENT, row.code, action, before, after, now=now)
    return after


def _refuse_if_responsible(conn: Connection, department) -> None:
    owned = (
        conn.execute(select(C.c.code).where(C.c.department_id == department.id, C.c.active.is_(True)).order_by(C.c.code))
        .scalars()
        .all()
    )
    listed = conn.execute(
        select(C.c.code, U.c.code.label("district"))
        .select_from(RESP.join(C, RESP.c.category_id == C.c.id).join(U, RESP.c.district_id == U.c.id))
        .where(RESP.c.department_id == department.id)
        .order_by(C.c.code)
    ).all()
    if owned or listed:
        named = [*owned, *(f"{r.code} in {r.district}" for r in listed)]
        shown = ", ".join(named[:8]) + (f" and {len(named) - 8} more" if len(named) > 8 else "")
        raise ValidationError(f"department {department.code!r} still handles {shown}: move them to another department first")


def set_department_webhook(
    conn: Connection,
    actor: str | Actor,
    code: str,
    url: str | None,
    secret: str | None = None,
    now: datetime | None = None,
    targets: WebhookTargets = PUBLIC_ONLY,
) -> str | None:
    """Point a department's webhook at `url` (None: off); returns the signing secret (made up when not given), never audited.

    City-wide only: a department's webhook receives its incidents from every district."""
    check_actor(actor)
    require_city_wide(actor, "a department's webhook")
    row = department_row(conn, code)
    before = department_snapshot(row)
    used = webhooks.set_webhook(conn, row.id, url, secret, targets)
    after = department_snapshot(department_row(conn, row.code))
    note = "new signing secret" if used is not None else None
    record(conn, actor, DEPARTMENT, row.code, "webhook" if url is not None else "webhook_off", before, after, note=note, now=now)
    return used
