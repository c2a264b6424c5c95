"""The dispatcher's queue: incidents waiting for a dispatcher or overdue, most urgent first; its counts and filters."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Float, and_, case, func, literal, or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.incidents import lifecycle
from data.incidents.clock import DEFAULT_LIMITS, due_status_expression, limits_for, near_due_expression, overdue_expression
from data.times import epoch_seconds, from_db, to_utc, utc_now

__all__ = ["QUEUE_LIMIT", "QUEUE_STATES", "check_area", "dispatch_target", "filter_choices", "queue", "queue_counts"]

INC = schema.incidents

QUEUE_LIMIT = 5000
# The queue's state filter: "awaiting" (every state waiting for a dispatcher), each of those states, and
# "overdue" (with an assignee, past due).
AWAITING = "awaiting"
OVERDUE = "overdue"
QUEUE_STATES = (AWAITING, *sorted(lifecycle.NEEDS_DISPATCHER), OVERDUE)
# Where an incident of each level's unit is found (the unit's own column on incidents).
_AREA_COLUMN = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "grid_id",
}


# --- the queue ------------------------------------------------------------------------------------


def check_area(conn: Connection, area_id: int | None) -> None:
    """ValidationError when the area (a unit id) does not exist."""
    _area_clause(conn, area_id)


def _area_clause(conn: Connection, area_id: int | None):
    """Incidents inside a unit (any level; the city or None means everywhere)."""
    if not area_id:
        return true()
    u = schema.units
    level = conn.execute(select(u.c.level).where(u.c.id == area_id)).scalar()
    if level is None:
        raise ValidationError(f"area {area_id} does not exist")
    if level not in _AREA_COLUMN:
        return true()
    return INC.c[_AREA_COLUMN[level]] == area_id


def _default_ack_minutes():
    return case(
        *((INC.c.priority == p, literal(a)) for p, (a, _h) in DEFAULT_LIMITS.items()), else_=literal(DEFAULT_LIMITS[3][0])
    )


def _deadline_seconds(limits):
    """SQL: the epoch second an incident in the queue should be acted on by.

    With an assignee the running clock's due time; waiting for a dispatcher, the acknowledge limit
    of its category and priority counted from when it started waiting (reported, returned or
    reopened): a dispatcher gets no longer to send a case than a department gets to take it.
    """
    waiting_since = case(
        (INC.c.state == lifecycle.RETURNED, INC.c.returned_at),
        (INC.c.state == lifecycle.REOPENED, INC.c.updated_at),
        else_=INC.c.reported_at,
    )
    ack_minutes = func.coalesce(limits.c.ack_minutes, _default_ack_minutes())
    return case(
        (INC.c.state == lifecycle.DISPATCHED, epoch_seconds(INC.c.ack_due_at)),
        (INC.c.state == lifecycle.ACKNOWLEDGED, epoch_seconds(INC.c.handle_due_at)),
        else_=epoch_seconds(waiting_since) + ack_minutes * literal(60.0, Float),
    )


def queue_condition(now: datetime):
    """SQL: the incident needs a dispatcher (new, returned, reopened) or is overdue with its assignee."""
    # `is_open = 1`, not `IS 1`: only the equality lets SQLite read the open incidents' covering partial index.
    return and_(INC.c.is_open == true(), or_(INC.c.state.in_(sorted(lifecycle.NEEDS_DISPATCHER)), overdue_expression(now)))


def queue(
    conn: Connection,
    now: datetime | None = None,
    *,
    area_id: int | None = None,
    category_id: int | None = None,
    priority: int | None = None,
    state: str | None = None,
    limit: int = QUEUE_LIMIT,
    incident_ids: list[int] | None = None,
) -> list[dict]:
    """The dispatch queue, most urgent first (priority, then least time left); each row ready for the table.

    Filters: `area_id` (a unit of any level), `category_id`, `priority` (1-3) and `state` (one of
    QUEUE_STATES: 'awaiting' (any of the next four), reported, registered, returned, reopened or 'overdue'). `incident_ids` reads only
    those incidents (the ones a change touched), by primary key: a live screen updates its rows
    without reading the whole queue again.
    """
    now = to_utc(now, "now") if now is not None else utc_now()
    if state is not None and state not in QUEUE_STATES:
        raise ValidationError(f"state filter must be one of {', '.join(QUEUE_STATES)}; got {state!r}")
    if priority is not None and priority not in lifecycle.PRIORITIES:
        raise ValidationError(f"priority filter must be 1, 2 or 3; got {priority!r}")
    c, d, lim = schema.categories, schema.departments, schema.category_limits
    grid, district = schema.units.alias("grid"), schema.units.alias("district")
    deadline = _deadline_seconds(lim).label("deadline_s")
    stmt = (
        select(
            INC.c.id,
            INC.c.version,
            INC.c.state,
            INC.c.priority,
            INC.c.category_id,
            c.c.code.label("category_code"),
            c.c.name_en.label("category_en"),
            c.c.name_zh.label("category_zh"),
            c.c.sector,
            INC.c.description,
            INC.c.address,
            INC.c.lon,
            INC.c.lat,
            INC.c.unlocated,
            INC.c.grid_id,
            grid.c.name_en.label("grid_en"),
            grid.c.name_zh.label("grid_zh"),
            INC.c.district_id,
            district.c.name_en.label("district_en"),
            district.c.name_zh.label("district_zh"),
            INC.c.reported_at,
            INC.c.assignee_department_id,
            d.c.name_en.label("department_en"),
            d.c.name_zh.label("department_zh"),
            INC.c.reopen_count,
            INC.c.escalation_level,
            due_status_expression(now).label("due_status"),
            deadline,
        )
        .join_from(INC, c, INC.c.category_id == c.c.id)
        .outerjoin(lim, and_(lim.c.category_id == INC.c.category_id, lim.c.priority == INC.c.priority))
        .outerjoin(d, d.c.id == INC.c.assignee_department_id)
        .outerjoin(grid, grid.c.id == INC.c.grid_id)
        .outerjoin(district, district.c.id == INC.c.district_id)
        .where(queue_condition(now), _area_clause(conn, area_id))
        .order_by(INC.c.priority, deadline, INC.c.id)
        .limit(max(1, min(int(limit), QUEUE_LIMIT)))
    )
    if incident_ids is not None:
        stmt = stmt.where(INC.c.id.in_(sorted({int(i) for i in incident_ids})))
    if category_id is not None:
        stmt = stmt.where(INC.c.category_id == category_id)
    if priority is not None:
        stmt = stmt.where(INC.c.priority == priority)
    if state == OVERDUE:
        stmt = stmt.where(overdue_expression(now))
    elif state == AWAITING:
        stmt = stmt.where(INC.c.state.in_(sorted(lifecycle.NEEDS_DISPATCHER)))
    elif state is not None:
        stmt = stmt.where(INC.c.state == state)
    now_s = now.timestamp()
    rows = []
    for r in conn.execute(stmt):
        row = dict(r._mapping)
        row["reported_at"] = from_db(row["reported_at"]).isoformat()
        row["unlocated"] = bool(row["unlocated"])
        row["time_left_s"] = round(row["deadline_s"] - now_s)
        row["deadline_ms"] = int(row.pop("deadline_s") * 1000)
        # Waiting past its dispatch target is as late as a department past its due time.
        row["late"] = row["time_left_s"] < 0
        description = row["description"] or ""
        row["description"] = description if len(description) <= 140 else description[:139] + "…"
        rows.append(row)
    return rows


def queue_counts(conn: Connection, now: datetime | None = None, *, area_id: int | None = None) -> dict[str, int]:
    """The dispatcher's headline numbers: waiting in each state, overdue and near due, and the queue's size."""
    now = to_utc(now, "now") if now is not None else utc_now()

    def count(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    figures = {state: count(INC.c.state == state) for state in sorted(lifecycle.NEEDS_DISPATCHER)}
    figures[OVERDUE] = count(overdue_expression(now))
    figures["near_due"] = count(near_due_expression(now))
    figures["queue"] = count(queue_condition(now))
    row = conn.execute(
        select(*(expr.label(key) for key, expr in figures.items())).where(INC.c.is_open == true(), _area_clause(conn, area_id))
    ).one()
    counts = {key: int(getattr(row, key)) for key in figures}
    counts["waiting"] = sum(counts[s] for s in lifecycle.NEEDS_DISPATCHER)
    return counts


# --- the desk's filters and the dispatch target -----------------------------------------------------


def filter_choices(conn: Connection) -> dict[str, list[dict]]:
    """What the desk's filters and assignee picker offer: districts and streets, active categories and departments."""
    u, c, d = schema.units, schema.categories, schema.departments
    areas = conn.execute(
        select(u.c.id, u.c.level, u.c.name_en, u.c.name_zh, u.c.district_id)
        .where(u.c.level.in_((schema.DISTRICT, schema.STREET)))
        .order_by(func.coalesce(u.c.district_id, u.c.id), u.c.level, u.c.name_en)
    )
    categories = conn.execute(
        select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh, c.c.sector).where(c.c.active.is_(True)).order_by(c.c.sector, c.c.code)
    )
    departments = conn.execute(select(d.c.id, d.c.code, d.c.name_en, d.c.name_zh).where(d.c.active.is_(True)).order_by(d.c.code))
    return {
        "areas": [dict(r._mapping) for r in areas],
        "categories": [dict(r._mapping) for r in categories],
        "departments": [dict(r._mapping) for r in departments],
    }


def dispatch_target(conn: Connection, incident: dict) -> datetime | None:
    """When a case waiting for a dispatcher should be sent by (the queue's deadline, in Python); None otherwise."""
    if incident["state"] not in lifecycle.NEEDS_DISPATCHER:
        return None
    since = {lifecycle.RETURNED: incident["returned_at"], lifecycle.REOPENED: incident["updated_at"]}.get(
        incident["state"], incident["reported_at"]
    )
    ack_minutes, _ = limits_for(conn, incident["category_id"], incident["priority"])
    return from_db(since) + timedelta(minutes=ack_minutes)
