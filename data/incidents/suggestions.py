"""Whom to send an incident to, and why: the district's responsibility list, the category's department, the grid's duty lists."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from sqlalchemy import case, select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.incidents.feed import get_incident
from data.times import from_db

__all__ = ["Suggestion", "set_responsibility", "suggest"]

EV = schema.incident_events


# Why a department is suggested.
FROM_DISTRICT_LIST = "district_list"  # the district's responsibility list names it for the category
FROM_CATEGORY = "category_list"  # the category's own department (the city-wide list)
# Why the grid worker is (or is not) suggested.
WORKER_ON_LIST = "on_duty_list"
WORKER_CATEGORY_EXCLUDED = "category_not_for_grid_workers"  # 清单外事项: never pushed down to grid workers
WORKER_NOT_ON_LIST = "not_on_duty_list"  # grid workers may take it, but not this grid's worker
WORKER_NO_GRID = "no_grid"
WORKER_NONE = "no_worker"
# Why the one click goes where it goes, when both a department and the grid worker are suggested.
FIRST_URGENT = "urgent"  # an emergency (priority 1): the responsible department first, whatever the matter
FIRST_SAFETY = "high_priority_safety"  # a high-priority (2) safety matter (平安法治): the department first
FIRST_ROUTINE = "routine_on_duty_list"  # a routine matter on the grid worker's duty list: the worker first
URGENT, HIGH = 1, 2  # priorities: 1 urgent, 2 high, 3 normal


@dataclass(frozen=True)
class Suggestion:
    """Whom to send an incident to, and why; `primary` is what one click dispatches to."""

    incident_id: int
    department: dict | None
    department_reason: str
    worker: dict | None
    worker_reason: str
    primary: str  # "worker" or "department"
    primary_reason: str = ""  # FIRST_*: why, when both are suggested
    district: dict | None = None
    returned_by: dict | None = None  # the suggested department already returned this incident once
    candidates: list[dict] = field(default_factory=list)  # the grid's workers, for the reason's wording

    def target(self) -> dict[str, int]:
        """apply_action keyword arguments for the primary suggestion."""
        if self.primary == "worker" and self.worker:
            return {"worker_id": self.worker["id"]}
        return {"department_id": self.department["id"]} if self.department else {}

    def as_dict(self) -> dict:
        return asdict(self)


def set_responsibility(conn: Connection, category_id: int, district_id: int, department_id: int | None) -> None:
    """Name the department that handles a category in a district (None: back to the category's own)."""
    t = schema.category_district_departments
    u, c, d = schema.units, schema.categories, schema.departments
    if conn.execute(select(c.c.id).where(c.c.id == category_id)).first() is None:
        raise ValidationError(f"category {category_id} does not exist")
    level = conn.execute(select(u.c.level).where(u.c.id == district_id)).scalar()
    if level != schema.DISTRICT:
        raise ValidationError(f"unit {district_id} is not a district")
    conn.execute(t.delete().where(t.c.category_id == category_id, t.c.district_id == district_id))
    if department_id is None:
        return
    if conn.execute(select(d.c.id).where(d.c.id == department_id)).first() is None:
        raise ValidationError(f"department {department_id} does not exist")
    conn.execute(t.insert().values(category_id=category_id, district_id=district_id, department_id=department_id))


def _department(conn, department_id) -> dict | None:
    d = schema.departments
    row = conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh, d.c.active).where(d.c.id == department_id)).first()
    return dict(row._mapping) if row else None


def suggest(conn: Connection, incident_id: int) -> Suggestion:
    """The suggested department (district list, else the category's) and grid worker (only for duty-list matters);
    the one click goes to the worker only for routine matters on their list, to the department when it is urgent."""
    incident = get_incident(conn, incident_id)
    c, t, u = schema.categories, schema.category_district_departments, schema.units
    category = conn.execute(
        select(c.c.id, c.c.code, c.c.department_id, c.c.grid_worker_ok, c.c.sector).where(c.c.id == incident["category_id"])
    ).one()

    department, reason, district = None, FROM_CATEGORY, None
    if incident["district_id"] is not None:
        district_row = conn.execute(select(u.c.id, u.c.name_en, u.c.name_zh).where(u.c.id == incident["district_id"])).first()
        district = dict(district_row._mapping) if district_row else None
        listed = conn.execute(
            select(t.c.department_id).where(t.c.category_id == category.id, t.c.district_id == incident["district_id"])
        ).scalar()
        candidate = _department(conn, listed) if listed is not None else None
        if candidate and candidate["active"]:
            department, reason = candidate, FROM_DISTRICT_LIST
    if department is None:
        department = _department(conn, category.department_id)

    worker, worker_reason, candidates = None, WORKER_NO_GRID, []
    if not category.grid_worker_ok:
        worker_reason = WORKER_CATEGORY_EXCLUDED
    elif incident["grid_id"] is not None:
        w, duty = schema.workers, schema.worker_duties
        on_list = select(duty.c.worker_id).where(duty.c.worker_id == w.c.id, duty.c.category_id == category.id).exists()
        rows = conn.execute(
            select(w.c.id, w.c.code, w.c.name_en, w.c.name_zh, w.c.role, on_list.label("on_list"))
            .where(w.c.grid_id == incident["grid_id"], w.c.active.is_(True))
            .order_by(case((w.c.role == "full_time", 0), else_=1), w.c.id)
        ).all()
        candidates = [{k: v for k, v in r._mapping.items() if k != "on_list"} for r in rows]
        eligible = [r for r in rows if r.on_list]
        if eligible:
            worker = {k: v for k, v in eligible[0]._mapping.items() if k != "on_list"}
            worker_reason = WORKER_ON_LIST
        else:
            worker_reason = WORKER_NOT_ON_LIST if rows else WORKER_NONE

    returned_by = None
    if department is not None:
        returned = conn.execute(
            select(EV.c.at, EV.c.data).where(EV.c.incident_id == incident_id, EV.c.action == "return").order_by(EV.c.id.desc())
        ).all()
        for event in returned:
            if (event.data or {}).get("department_id") == department["id"]:
                returned_by = {"department_id": department["id"], "at": from_db(event.at).isoformat()}
                break
    primary, primary_reason = ("worker" if worker else "department"), ""
    if worker and department:
        primary_reason = _first(incident["priority"], category.sector)
        primary = "worker" if primary_reason == FIRST_ROUTINE else "department"
    return Suggestion(
        incident_id=incident_id,
        department=department,
        department_reason=reason,
        worker=worker,
        worker_reason=worker_reason,
        primary=primary,
        primary_reason=primary_reason,
        district=district,
        returned_by=returned_by,
        candidates=candidates,
    )


def _first(priority: int, sector: str) -> str:
    """Which of a department and a grid worker (both able to take the matter) the one click goes to, as FIRST_*."""
    if priority == URGENT:
        return FIRST_URGENT
    if priority == HIGH and sector == "safety":
        return FIRST_SAFETY
    return FIRST_ROUTINE
