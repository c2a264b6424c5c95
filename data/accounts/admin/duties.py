"""Audited administration of grid workers' duty lists: the categories the centre may push down to each worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts.admin.audit import DUTIES, check_actor, record
from data.actors import Actor, require_unit
from data.errors import NotFound, ValidationError

C = schema.categories
W, DUTY, U = schema.workers, schema.worker_duties, schema.units


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


def set_worker_duties(
    conn: Connection, actor: str | Actor, worker_code: str, category_codes, now: datetime | None = None
) -> list[str]:
    """Replace a grid worker's duty list (职责清单) with these categories, each one grid workers may take.

    An administrator limited to a unit reaches only the workers whose grid lies in it (others are not found)."""
    check_actor(actor)
    worker = conn.execute(
        select(W.c.id, W.c.code, W.c.grid_id).where(
            W.c.code == (worker_code.strip() if isinstance(worker_code, str) else worker_code)
        )
    ).first()
    if worker is None:
        raise NotFound(f"no grid worker with code {worker_code!r}")
    require_unit(conn, actor, worker.grid_id, f"no grid worker with code {worker_code!r}")
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
