"""Audited administration of the responsibility list (职责清单): who handles a category, city-wide or in one district."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts.admin.audit import RESPONSIBILITY, check_actor, record
from data.accounts.admin.checks import CITY_WIDE, active_department, category_row
from data.actors import Actor, require_city_wide, require_unit
from data.errors import NotFound, ValidationError
from data.incidents import suggestions

D, C = schema.departments, schema.categories
U = schema.units
RESP = schema.category_district_departments


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
    actor: str | Actor,
    category_code: str,
    district_code: str | None,
    department_code: str | None,
    now: datetime | None = None,
) -> dict:
    """Name who handles a category: city-wide (district None; a department is required) or in one district (None: back to the city-wide one).

    The city-wide entry needs a city-wide administrator; a district's entry, an administrator whose
    jurisdiction holds that district (another district's list is not found)."""
    check_actor(actor)
    category = category_row(conn, category_code)
    district = _district_row(conn, district_code) if district_code else None
    if district is None:
        require_city_wide(actor, "a category's city-wide department")
    else:
        require_unit(conn, actor, district.id, f"no unit with code {district_code!r}")
    department = active_department(conn, department_code) if department_code else None
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
        suggestions.set_responsibility(conn, category.id, district.id, department.id if department else None)
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


def _district_row(conn: Connection, code: Any):
    row = conn.execute(
        select(U.c.id, U.c.code, U.c.level).where(U.c.code == (code.strip() if isinstance(code, str) else code))
    ).first()
    if row is None:
        raise NotFound(f"no unit with code {code!r}")
    if row.level != schema.DISTRICT:
        raise ValidationError(f"unit {row.code!r} is not a district: responsibility lists are per district")
    return row
