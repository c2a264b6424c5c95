"""Administration: audited changes to departments, categories and their time limits, the responsibility list, duty lists, API keys and users.

Every function here takes a connection inside the caller's transaction, checks all of its input
before it writes anything, and records one row in `admin_events` (who, what, the record before and
after) in the same transaction: a refused change stores nothing, an accepted one is never unaudited.
Unknown codes raise NotFound, unusable values ValidationError, duplicates Conflict.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts import apikeys
from data.errors import Conflict, NotFound, ValidationError
from data.incidents import dispatch, notify
from data.incidents.clock import DEFAULT_LIMITS
from data.times import from_db, to_utc, utc_now

D, C, LIM = schema.departments, schema.categories, schema.category_limits
W, DUTY, U = schema.workers, schema.worker_duties, schema.units
RESP, EV = schema.category_district_departments, schema.admin_events

# What an audit row is about (admin_events.entity).
USER, API_KEY, DEPARTMENT, CATEGORY, LIMITS, RESPONSIBILITY, DUTIES = (
    "user",
    "api_key",
    "department",
    "category",
    "category_limits",
    "responsibility",
    "worker_duties",
)
ENTITIES = (USER, API_KEY, DEPARTMENT, CATEGORY, LIMITS, RESPONSIBILITY, DUTIES)

DEPARTMENT_KINDS = ("department", "utility", "worker")
SECTORS = ("party", "economy", "livelihood", "safety")
PRIORITIES = (1, 2, 3)
MAX_LIMIT_MINUTES = 366 * 24 * 60  # a year: anything longer is a typo, not a time limit
CITY_WIDE = "city"  # the responsibility list's key for a category's own, city-wide department
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


# --- the audit log ---------------------------------------------------------------------------


def record(
    conn: Connection,
    actor: str,
    entity: str,
    entity_key: str,
    action: str,
    before: Any,
    after: Any,
    note: str | None = None,
    now: datetime | None = None,
) -> int:
    """Write one audit row and return its id (the functions below call this; so may other admin writers)."""
    if entity not in ENTITIES:
        raise ValidationError(f"unknown audit entity {entity!r}")
    conn_actor = check_actor(actor)
    at = to_utc(now, "now") if now is not None else utc_now()
    return conn.execute(
        EV.insert()
        .values(
            at=at,
            actor=conn_actor,
            entity=entity,
            entity_key=str(entity_key)[:128],
            action=action,
            before=_jsonable(before),
            after=_jsonable(after),
            note=note,
        )
        .returning(EV.c.id)
    ).scalar_one()


def check_actor(actor: str) -> str:
    """The actor as stored ('cli:alice', 'user:bob'); ValidationError when missing, since an unnamed change cannot be audited."""
    actor = actor.strip() if isinstance(actor, str) else ""
    if not actor or len(actor) > 128:
        raise ValidationError("an admin change needs the actor who makes it (1 to 128 characters)")
    return actor


def events(conn: Connection, *, entity: str | None = None, entity_key: str | None = None, limit: int = 200) -> list[dict]:
    """The newest audit rows first, optionally about one entity (and key)."""
    query = select(EV).order_by(EV.c.id.desc()).limit(max(1, min(int(limit), 5000)))
    if entity:
        query = query.where(EV.c.entity == entity)
    if entity_key:
        query = query.where(EV.c.entity_key == entity_key)
    return [{**row._mapping, "at": from_db(row.at)} for row in conn.execute(query)]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return from_db(value).isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return value


# --- shared checks ---------------------------------------------------------------------------


def _code(value: Any, what: str) -> str:
    code = value.strip() if isinstance(value, str) else ""
    if not _CODE.match(code):
        raise ValidationError(f"{what} code {value!r} must be 1 to 64 letters, digits or _ . - (starting with a letter or digit)")
    return code


def _name(value: Any, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > 200:
        raise ValidationError(f"{what} must be 1 to 200 characters")
    return text


def _flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValidationError(f"{what} must be true or false, not {value!r}")


def _minutes(value: Any, what: str) -> int:
    """A whole, positive number of minutes (strings of digits accepted: forms and table cells send text)."""
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a whole number of minutes, not {value!r}")
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(f"{what} must be a whole number of minutes, not {value!r}")
    if value <= 0:
        raise ValidationError(f"{what} must be more than 0 minutes, not {value}")
    if value > MAX_LIMIT_MINUTES:
        raise ValidationError(f"{what} of {value} minutes is over a year")
    return value


def _priority(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or value not in PRIORITIES:
        raise ValidationError(f"priority must be 1 (urgent), 2 (high) or 3 (normal), not {value!r}")
    return int(value)


def _department_row(conn: Connection, code: Any):
    row = conn.execute(select(D).where(D.c.code == (code.strip() if isinstance(code, str) else code))).first()
    if row is None:
        raise NotFound(f"no department with code {code!r}")
    return row


def _active_department(conn: Connection, code: Any):
    row = _department_row(conn, code)
    if not row.active:
        raise ValidationError(f"department {row.code!r} is inactive: reactivate it first")
    return row


def _category_row(conn: Connection, code: Any):
    row = conn.execute(select(C).where(C.c.code == (code.strip() if isinstance(code, str) else code))).first()
    if row is None:
        raise NotFound(f"no category with code {code!r}")
    return row


def _district_row(conn: Connection, code: Any):
    row = conn.execute(
        select(U.c.id, U.c.code, U.c.level).where(U.c.code == (code.strip() if isinstance(code, str) else code))
    ).first()
    if row is None:
        raise NotFound(f"no unit with code {code!r}")
    if row.level != schema.DISTRICT:
        raise ValidationError(f"unit {row.code!r} is not a district: responsibility lists are per district")
    return row


# --- departments -----------------------------------------------------------------------------


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
    conn: Connection, actor: str, code: str, name_en: str, name_zh: str, kind: str = "department", now: datetime | None = None
) -> dict:
    """A new, active department without a webhook."""
    check_actor(actor)
    code = _code(code, "department")
    name_en, name_zh = _name(name_en, "English name"), _name(name_zh, "Chinese name")
    if kind not in DEPARTMENT_KINDS:
        raise ValidationError(f"department kind must be one of {', '.join(DEPARTMENT_KINDS)}, not {kind!r}")
    if conn.execute(select(D.c.id).where(D.c.code == code)).first() is not None:
        raise Conflict(f"a department with code {code!r} already exists")
    conn.execute(D.insert().values(code=code, name_en=name_en, name_zh=name_zh, kind=kind, active=True))
    after = department_snapshot(_department_row(conn, code))
    record(conn, actor, DEPARTMENT, code, "create", None, after, now=now)
    return after


def update_department(
    conn: Connection,
    actor: str,
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
    row = _department_row(conn, code)
    changes: dict[str, Any] = {}
    if name_en is not None:
        changes["name_en"] = _name(name_en, "English name")
    if name_zh is not None:
        changes["name_zh"] = _name(name_zh, "Chinese name")
    if kind is not None:
        if kind not in DEPARTMENT_KINDS:
            raise ValidationError(f"department kind must be one of {', '.join(DEPARTMENT_KINDS)}, not {kind!r}")
        changes["kind"] = kind
    if active is not None:
        changes["active"] = _flag(active, "active")
        if not changes["active"] and row.active:
            _refuse_if_responsible(conn, row)
    before = department_snapshot(row)
    changes = {k: v for k, v in changes.items() if before[k] != v}
    if not changes:
        return before
    conn.execute(D.update().where(D.c.id == row.id).values(**changes))
    after = department_snapshot(_department_row(conn, row.code))
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
    conn: Connection, actor: str, code: str, url: str | None, secret: str | None = None, now: datetime | None = None
) -> str | None:
    """Point a department's webhook at `url` (None: off); returns the signing secret (made up when not given), never audited."""
    check_actor(actor)
    row = _department_row(conn, code)
    before = department_snapshot(row)
    used = notify.set_webhook(conn, row.id, url, secret)
    after = department_snapshot(_department_row(conn, row.code))
    note = "new signing secret" if used is not None else None
    record(conn, actor, DEPARTMENT, row.code, "webhook" if url is not None else "webhook_off", before, after, note=note, now=now)
    return used


# --- categories and their time limits --------------------------------------------------------


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
    ack = _minutes(ack, f"acknowledge limit (priority {priority})")
    handle = _minutes(handle, f"handling limit (priority {priority})")
    if ack > handle:
        raise ValidationError(
            f"priority {priority}: the acknowledge limit ({ack} min) cannot be longer than the handling limit ({handle} min)"
        )
    return ack, handle


def create_category(
    conn: Connection,
    actor: str,
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
    code = _code(code, "category")
    name_en, name_zh = _name(name_en, "English name"), _name(name_zh, "Chinese name")
    if sector not in SECTORS:
        raise ValidationError(f"sector must be one of {', '.join(SECTORS)}, not {sector!r}")
    department = _active_department(conn, department_code)
    grid_worker_ok = _flag(grid_worker_ok, "grid_worker_ok")
    checked = {_priority(p): _check_limit_pair(a, h, _priority(p)) for p, (a, h) in (limits or {}).items()}
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
    after = {**category_snapshot(conn, _category_row(conn, code)), "limits": {p: list(v) for p, v in sorted(checked.items())}}
    record(conn, actor, CATEGORY, code, "create", None, after, now=now)
    return after


def update_category(
    conn: Connection,
    actor: str,
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
    row = _category_row(conn, code)
    changes: dict[str, Any] = {}
    if name_en is not None:
        changes["name_en"] = _name(name_en, "English name")
    if name_zh is not None:
        changes["name_zh"] = _name(name_zh, "Chinese name")
    if sector is not None:
        if sector not in SECTORS:
            raise ValidationError(f"sector must be one of {', '.join(SECTORS)}, not {sector!r}")
        changes["sector"] = sector
    if grid_worker_ok is not None:
        changes["grid_worker_ok"] = _flag(grid_worker_ok, "grid_worker_ok")
    if active is not None:
        changes["active"] = _flag(active, "active")
    before = category_snapshot(conn, row)
    changes = {k: v for k, v in changes.items() if before[k] != v}
    if not changes:
        return before
    conn.execute(C.update().where(C.c.id == row.id).values(**changes))
    after = category_snapshot(conn, _category_row(conn, row.code))
    action = "rename" if set(changes) <= {"name_en", "name_zh"} else "update"
    record(conn, actor, CATEGORY, row.code, action, before, after, now=now)
    return after


def set_category_limits(
    conn: Connection, actor: str, code: str, priority: Any, ack_minutes: Any, handle_minutes: Any, now: datetime | None = None
) -> dict:
    """Set a category's acknowledge and handling limits at one priority; applies to incidents dispatched from now on."""
    check_actor(actor)
    row = _category_row(conn, code)
    priority = _priority(priority)
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


# --- the responsibility list -----------------------------------------------------------------


def responsibility_list(conn: Connection) -> list[dict]:
    """One row per category (its city-wide department) and per district override: category, district (None = city-wide), department."""
    city = conn.execute(
        select(C.c.code.label("category"), C.c.name_en, C.c.name_zh, D.c.code.label("department"))
        .select_from(C.join(D, C.c.department_id == D.c.id))
        .order_by(C.c.code)
    ).all()
    overrides = conn.execute(
        select(
            C.c.code.label("category"),
            U.c.code.label("district"),
            U.c.name_en.label("district_en"),
            U.c.name_zh.label("district_zh"),
            D.c.code.label("department"),
        )
        .select_from(
            RESP.join(C, RESP.c.category_id == C.c.id)
            .join(U, RESP.c.district_id == U.c.id)
            .join(D, RESP.c.department_id == D.c.id)
        )
        .order_by(C.c.code, U.c.code)
    ).all()
    by_category: dict[str, list[dict]] = {}
    for r in overrides:
        by_category.setdefault(r.category, []).append(dict(r._mapping))
    out = []
    for r in city:
        out.append(
            {
                "category": r.category,
                "name_en": r.name_en,
                "name_zh": r.name_zh,
                "district": None,
                "district_en": None,
                "district_zh": None,
                "department": r.department,
            }
        )
        for o in by_category.get(r.category, []):
            out.append(
                {
                    "category": r.category,
                    "name_en": r.name_en,
                    "name_zh": r.name_zh,
                    **{k: o[k] for k in ("district", "district_en", "district_zh", "department")},
                }
            )
    return out


def set_responsibility(
    conn: Connection,
    actor: str,
    category_code: str,
    district_code: str | None,
    department_code: str | None,
    now: datetime | None = None,
) -> dict:
    """Name who handles a category: city-wide (district None; a department is required) or in one district (None: back to the city-wide one)."""
    check_actor(actor)
    category = _category_row(conn, category_code)
    district = _district_row(conn, district_code) if district_code else None
    department = _active_department(conn, department_code) if department_code else None
    if district is None and department is None:
        raise ValidationError("a category always has a city-wide department: name one (only a district entry can be cleared)")
    key = f"{category.code}@{district.code if district else CITY_WIDE}"
    if district is None:
        before_code = conn.execute(select(D.c.code).where(D.c.id == category.department_id)).scalar()
    else:
        before_code = conn.execute(
            select(D.c.code)
            .select_from(RESP.join(D, RESP.c.department_id == D.c.id))
            .where(RESP.c.category_id == category.id, RESP.c.district_id == district.id)
        ).scalar()
    after_code = department.code if department else None
    before = {"category": category.code, "district": district.code if district else None, "department": before_code}
    after = {**before, "department": after_code}
    if before_code == after_code:
        return after
    if district is None:
        conn.execute(C.update().where(C.c.id == category.id).values(department_id=department.id))
    else:
        dispatch.set_responsibility(conn, category.id, district.id, department.id if department else None)
    record(
        conn,
        actor,
        RESPONSIBILITY,
        key,
        "set" if after_code else "clear",
        before if before_code else None,
        after if after_code else None,
        now=now,
    )
    return after


# --- grid workers' duty lists ----------------------------------------------------------------


def list_workers(
    conn: Connection, scope: tuple[int, int] | None = None, search: str | None = None, limit: int = 500
) -> list[dict]:
    """Grid workers (in `scope`: None = city, else (level, unit id)), with their grid and duty list (category codes)."""
    query = (
        select(
            W.c.id,
            W.c.code,
            W.c.name_en,
            W.c.name_zh,
            W.c.role,
            W.c.active,
            U.c.code.label("grid"),
            U.c.name_en.label("grid_en"),
            U.c.name_zh.label("grid_zh"),
        )
        .select_from(W.join(U, W.c.grid_id == U.c.id))
        .order_by(W.c.code)
        .limit(max(1, min(int(limit), 5000)))
    )
    if scope is not None:
        level, unit_id = scope
        column = {
            schema.DISTRICT: U.c.district_id,
            schema.STREET: U.c.street_id,
            schema.COMMUNITY: U.c.community_id,
            schema.GRID: U.c.id,
        }.get(level)
        if column is not None:
            query = query.where(column == unit_id)
    if search:
        pattern = f"%{search.strip().lower()}%"
        query = query.where(
            func.lower(W.c.code).like(pattern)
            | func.lower(W.c.name_en).like(pattern)
            | W.c.name_zh.like(pattern)
            | func.lower(U.c.code).like(pattern)
        )
    rows = [dict(r._mapping) for r in conn.execute(query)]
    duties: dict[int, list[str]] = {}
    if rows:
        for r in conn.execute(
            select(DUTY.c.worker_id, C.c.code)
            .select_from(DUTY.join(C, DUTY.c.category_id == C.c.id))
            .where(DUTY.c.worker_id.in_([r["id"] for r in rows]))
            .order_by(C.c.code)
        ):
            duties.setdefault(r.worker_id, []).append(r.code)
    for r in rows:
        r["duties"] = duties.get(r["id"], [])
    return rows


def worker_duties(conn: Connection, worker_code: str) -> list[str]:
    """The category codes on a worker's duty list."""
    worker = conn.execute(select(W.c.id).where(W.c.code == worker_code)).scalar()
    if worker is None:
        raise NotFound(f"no grid worker with code {worker_code!r}")
    return list(
        conn.execute(
            select(C.c.code)
            .select_from(DUTY.join(C, DUTY.c.category_id == C.c.id))
            .where(DUTY.c.worker_id == worker)
            .order_by(C.c.code)
        ).scalars()
    )


def set_worker_duties(conn: Connection, actor: str, worker_code: str, category_codes, now: datetime | None = None) -> list[str]:
    """Replace a grid worker's duty list (职责清单) with these categories, each one grid workers may take."""
    check_actor(actor)
    worker = conn.execute(
        select(W.c.id, W.c.code).where(W.c.code == (worker_code.strip() if isinstance(worker_code, str) else worker_code))
    ).first()
    if worker is None:
        raise NotFound(f"no grid worker with code {worker_code!r}")
    if isinstance(category_codes, str):
        category_codes = category_codes.replace(",", " ").split()
    wanted = sorted({c.strip() for c in category_codes or () if isinstance(c, str) and c.strip()})
    found = (
        {r.code: r for r in conn.execute(select(C.c.id, C.c.code, C.c.grid_worker_ok, C.c.active).where(C.c.code.in_(wanted)))}
        if wanted
        else {}
    )
    unknown = [c for c in wanted if c not in found]
    if unknown:
        raise NotFound(f"no category with code {', '.join(map(repr, unknown))}")
    barred = [c for c in wanted if not found[c].grid_worker_ok]
    if barred:
        raise ValidationError(
            f"{', '.join(barred)} {'is' if len(barred) == 1 else 'are'} not for grid workers (清单外事项): allow grid workers on the category first"
        )
    before = worker_duties(conn, worker.code)
    if before == wanted:
        return wanted
    conn.execute(DUTY.delete().where(DUTY.c.worker_id == worker.id))
    if wanted:
        conn.execute(DUTY.insert(), [{"worker_id": worker.id, "category_id": found[c].id} for c in wanted])
    record(conn, actor, DUTIES, worker.code, "set", before, wanted, now=now)
    return wanted


# --- API keys --------------------------------------------------------------------------------


def key_snapshot(key: apikeys.ApiKey) -> dict:
    """What the audit log keeps of an API key: never its secret or hash."""
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.prefix,
        "scopes": sorted(key.scopes),
        "source": key.source,
        "department": key.department_code,
        "rate_limit": key.rate_limit,
        "unit": key.unit_code,
        "revoked_at": key.revoked_at,
    }


def create_api_key(
    conn: Connection,
    actor: str,
    name: str,
    scopes,
    *,
    source: str | None = None,
    department_code: str | None = None,
    rate_limit: str | None = None,
    unit_code: str | None = None,
    now: datetime | None = None,
) -> apikeys.NewKey:
    """A new API key (see data/apikeys.create_key); the secret is in the answer only, never in the audit log.

    `unit_code` is its jurisdiction; None, '' or CITY_WIDE is the whole city.
    """
    check_actor(actor)
    new = apikeys.create_key(
        conn,
        name,
        scopes,
        source=source or None,
        department_code=department_code or None,
        rate_limit=rate_limit or None,
        unit_code=None if unit_code in (None, "", CITY_WIDE) else unit_code,
        now=now,
    )
    record(conn, actor, API_KEY, new.key.name, "create", None, key_snapshot(new.key), now=now)
    return new


def revoke_api_key(conn: Connection, actor: str, name_or_id: str | int, now: datetime | None = None) -> apikeys.ApiKey:
    """Revoke a key by name, id or shown prefix; revoking a revoked key changes and audits nothing."""
    check_actor(actor)
    earlier = {k.id: k for k in apikeys.list_keys(conn)}
    key = apikeys.revoke_key(conn, name_or_id, now=now)
    before = earlier.get(key.id)
    if before is not None and before.revoked_at is None:
        record(conn, actor, API_KEY, key.name, "revoke", key_snapshot(before), key_snapshot(key), now=now)
    return key


# --- users (the accounts of data/accounts/users.py) ------------------------------------------------

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
    """Every user (data/accounts.list_users), without password hashes."""
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
    return _active_department(conn, code).id


def _user_by_name(conn: Connection, username: str) -> dict:
    from data.accounts import users as accounts

    return accounts.get_user_by_username(conn, username)


def create_user(
    conn: Connection,
    actor: str,
    username: str,
    password: str,
    role: str,
    *,
    unit_code: str | None = None,
    department_code: str | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> dict:
    """A new user with a role, a jurisdiction (unit code; None = the city) and, for role 'department', its department."""
    from data.accounts import users as accounts

    check_actor(actor)
    user = accounts.create_user(
        conn,
        username,
        password,
        role,
        unit_id=_unit_id(conn, unit_code),
        department_id=_department_id(conn, department_code),
        display_name=display_name,
        now=now,
    )
    record(conn, actor, USER, user["username"], "create", None, user_snapshot(user), now=now)
    return user


def update_user(
    conn: Connection,
    actor: str,
    username: str,
    *,
    role: str = _UNSET,
    unit_code: str | None = _UNSET,
    department_code: str | None = _UNSET,
    active: bool = _UNSET,
    display_name: str | None = _UNSET,
    now: datetime | None = None,
) -> dict:
    """Change a user's role, jurisdiction, department, display name or active flag (what is given); one audit row."""
    from data.accounts import users as accounts

    check_actor(actor)
    current = _user_by_name(conn, username)
    changes: dict[str, Any] = {}
    if role is not _UNSET:
        changes["role"] = role
    if unit_code is not _UNSET:
        changes["unit_id"] = _unit_id(conn, unit_code)
    if department_code is not _UNSET:
        changes["department_id"] = _department_id(conn, department_code)
    if active is not _UNSET:
        changes["active"] = _flag(active, "active")
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


def reset_password(conn: Connection, actor: str, username: str, password: str, now: datetime | None = None) -> dict:
    """Give a user a new password (their sessions end and any lockout clears); the password itself is never audited."""
    from data.accounts import users as accounts

    check_actor(actor)
    current = _user_by_name(conn, username)
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
