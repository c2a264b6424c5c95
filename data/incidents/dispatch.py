"""The dispatcher's desk (一键调度): the queue, the suggested assignee and why, likely duplicates, one-click and batch dispatch, undo.

Every change goes through data.incidents.apply_action (one audited transition each), which tells
the assignee of every dispatch through data.notify in the same transaction, so a dispatch and its
notification are stored together or not at all.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Float, and_, case, func, literal, or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.errors import CityBrainError, Conflict, InvalidTransition, NotFound, ValidationError
from data.incidents import lifecycle, notify
from data.incidents.clock import (
    DEFAULT_LIMITS,
    due_status_expression,
    limit_calendar,
    limits_for,
    near_due_expression,
    overdue_expression,
)
from data.incidents.feed import get_incident, lock_change_feed
from data.incidents.transitions import apply_action
from data.times import epoch_seconds, from_db, to_utc, utc_now

INC, EV = schema.incidents, schema.incident_events

# A dispatch can be taken back this long after it was made, by whoever made it, until acknowledged.
UNDO_SECONDS = 10
# Likely duplicates: the same category, open, this close in space and time.
DUPLICATE_RADIUS_M = 300
DUPLICATE_HOURS = 24
QUEUE_LIMIT = 5000
# The queue's state filter: the states waiting for a dispatcher, and "overdue" (with an assignee, past due).
OVERDUE = "overdue"
QUEUE_STATES = (*sorted(lifecycle.NEEDS_DISPATCHER), OVERDUE)
# Where an incident of each level's unit is found (the unit's own column on incidents).
_AREA_COLUMN = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "grid_id",
}
_EARTH_RADIUS_M = 6_371_008.8


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
    QUEUE_STATES: reported, registered, returned, reopened or 'overdue'). `incident_ids` reads only
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


# --- the suggestion -----------------------------------------------------------------------------

# Why a department is suggested.
FROM_DISTRICT_LIST = "district_list"  # the district's responsibility list names it for the category
FROM_CATEGORY = "category_list"  # the category's own department (the city-wide list)
# Why the grid worker is (or is not) suggested.
WORKER_ON_LIST = "on_duty_list"
WORKER_CATEGORY_EXCLUDED = "category_not_for_grid_workers"  # 清单外事项: never pushed down to grid workers
WORKER_NOT_ON_LIST = "not_on_duty_list"  # grid workers may take it, but not this grid's worker
WORKER_NO_GRID = "no_grid"
WORKER_NONE = "no_worker"


@dataclass(frozen=True)
class Suggestion:
    """Whom to send an incident to, and why; `primary` is what one click dispatches to."""

    incident_id: int
    department: dict | None
    department_reason: str
    worker: dict | None
    worker_reason: str
    primary: str  # "worker" or "department"
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
    """The suggested department (district list, else the category's) and grid worker (only for duty-list matters)."""
    incident = get_incident(conn, incident_id)
    c, t, u = schema.categories, schema.category_district_departments, schema.units
    category = conn.execute(
        select(c.c.id, c.c.code, c.c.department_id, c.c.grid_worker_ok).where(c.c.id == incident["category_id"])
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
    return Suggestion(
        incident_id=incident_id,
        department=department,
        department_reason=reason,
        worker=worker,
        worker_reason=worker_reason,
        primary="worker" if worker else "department",
        district=district,
        returned_by=returned_by,
        candidates=candidates,
    )


# --- likely duplicates --------------------------------------------------------------------------

MERGEABLE = frozenset(lifecycle.TRANSITIONS["merge"])


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance in metres (haversine; plenty for a few hundred metres)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def merge_direction(incident: dict, other: dict) -> tuple[int, int] | None:
    """(merged, kept) for two reports of one matter, or None when neither can be merged.

    The later report joins the earlier one (the case already under way keeps its history); when
    the later one is past the stage where a merge is allowed, the earlier one joins it instead.
    """
    first, second = sorted((incident, other), key=lambda r: (from_db(r["reported_at"]), r["id"]))
    for merged, kept in ((second, first), (first, second)):
        if merged["state"] in MERGEABLE and kept["state"] in lifecycle.OPEN_STATES:
            return merged["id"], kept["id"]
    return None


def likely_duplicates(
    conn: Connection, incident_id: int, *, radius_m: float = DUPLICATE_RADIUS_M, hours: float = DUPLICATE_HOURS, limit: int = 10
) -> list[dict]:
    """Open incidents of the same category within `radius_m` metres and `hours` hours of this one, nearest first.

    Each carries distance_m, hours_apart and `merge` ({merged, kept} ids, or None when neither
    can be merged into the other).
    """
    incident = get_incident(conn, incident_id)
    if not incident["is_open"] or incident["lon"] is None or incident["lat"] is None:
        return []
    lon, lat, reported = incident["lon"], incident["lat"], incident["reported_at"]
    dlat = radius_m / 111_320.0
    dlon = radius_m / (111_320.0 * max(math.cos(math.radians(lat)), 0.01))
    window = timedelta(hours=hours)
    rows = conn.execute(
        select(
            INC.c.id,
            INC.c.version,
            INC.c.state,
            INC.c.priority,
            INC.c.description,
            INC.c.address,
            INC.c.lon,
            INC.c.lat,
            INC.c.reported_at,
            INC.c.source,
        ).where(
            INC.c.category_id == incident["category_id"],
            INC.c.reported_at.between(reported - window, reported + window),
            INC.c.is_open.is_(True),
            INC.c.id != incident_id,
            INC.c.lon.between(lon - dlon, lon + dlon),
            INC.c.lat.between(lat - dlat, lat + dlat),
        )
    ).all()
    found = []
    for r in rows:
        other = {k: from_db(v) for k, v in r._mapping.items()}
        meters = distance_m(lon, lat, other["lon"], other["lat"])
        if meters > radius_m:
            continue
        direction = merge_direction(incident, other)
        other.update(
            distance_m=round(meters, 1),
            hours_apart=round(abs((other["reported_at"] - reported).total_seconds()) / 3600, 2),
            merge={"merged": direction[0], "kept": direction[1]} if direction else None,
            reported_at=other["reported_at"].isoformat(),
        )
        found.append(other)
    found.sort(key=lambda o: (o["distance_m"], o["hours_apart"], o["id"]))
    return found[:limit]


def merge_duplicates(
    conn: Connection, incident_id: int, other_id: int, *, actor: str, expected_versions: dict | None = None
) -> dict:
    """Merge two reports of one matter (一件事一次办) in the direction merge_direction picks; the merged row."""
    incident, other = get_incident(conn, incident_id), get_incident(conn, other_id)
    direction = merge_direction(incident, other)
    if direction is None:
        raise InvalidTransition(
            "merge",
            incident["state"],
            f"neither incident {incident_id} ({incident['state']}) nor "
            f"{other_id} ({other['state']}) can be merged into the other",
        )
    merged, kept = direction
    expected = (expected_versions or {}).get(merged)
    note = f"duplicate of incident {kept}"
    return apply_action(conn, merged, "merge", actor=actor, expected_version=expected, merged_into_id=kept, note=note)


# --- dispatching ----------------------------------------------------------------------------------


def _latest_event(conn: Connection, incident_id: int):
    return conn.execute(select(EV).where(EV.c.incident_id == incident_id).order_by(EV.c.id.desc()).limit(1)).first()


def dispatch(
    conn: Connection,
    incident_id: int,
    *,
    actor: str,
    expected_version: int | None = None,
    department_id: int | None = None,
    worker_id: int | None = None,
    note: str | None = None,
    at: datetime | None = None,
) -> dict:
    """Send an incident to an assignee (the suggestion when none is named) and notify them; the row after.

    A newly reported incident is registered (立案) first, in the same transaction: one click,
    two audited steps. An incident already with an assignee is reassigned instead. Refusals are
    apply_action's: Conflict when `expected_version` is stale, InvalidTransition, ValidationError
    (a grid worker for a matter outside their duty list, an inactive department...).
    """
    if department_id is not None and worker_id is not None:
        raise ValidationError("dispatch to a department or to a grid worker, not both")
    lock_change_feed(conn)
    row = get_incident(conn, incident_id)
    if expected_version is not None and row["version"] != expected_version:
        raise Conflict(
            f"incident {incident_id} changed meanwhile: it is now {row['state']} (version {row['version']})",
            current_state=row["state"],
            current_version=row["version"],
        )
    if department_id is None and worker_id is None:
        target = suggest(conn, incident_id).target()
        if not target:
            raise ValidationError(f"incident {incident_id} has no department to suggest; choose one")
        department_id, worker_id = target.get("department_id"), target.get("worker_id")
    version = row["version"]
    if row["state"] == lifecycle.REPORTED:
        row = apply_action(conn, incident_id, "register", actor=actor, expected_version=version, at=at)
        version = row["version"]
    action = "reassign" if row["state"] in lifecycle.WITH_ASSIGNEE else "dispatch"
    previous = (row["assignee_department_id"], row["assignee_worker_id"])
    if action == "reassign" and previous == (department_id, worker_id):
        # Sending it to the same assignee again would only restart its clocks and hide that it is late.
        raise ValidationError(f"incident {incident_id} is already with that assignee; escalate or extend it instead")
    row = apply_action(
        conn,
        incident_id,
        action,
        actor=actor,
        expected_version=version,
        department_id=department_id,
        worker_id=worker_id,
        note=note,
        at=at,
    )
    # apply_action told the new assignee (and a replaced one) in this transaction.
    row["event_id"] = _latest_event(conn, incident_id).id
    return row


def undo_dispatch(conn: Connection, incident_id: int, *, actor: str, now: datetime | None = None) -> dict:
    """Take back a dispatch (撤回) within UNDO_SECONDS, by the dispatcher who made it, before it was acknowledged.

    The incident goes back to waiting for a dispatcher (registered) through the 'recall'
    transition, audited; the assignee's inbox says so and its webhook is cancelled if it has not
    gone out yet, or followed by a 'recall' webhook if it has.
    """
    lock_change_feed(conn)
    row = get_incident(conn, incident_id)
    last = _latest_event(conn, incident_id)
    if row["state"] != lifecycle.DISPATCHED or last is None or last.action != "dispatch":
        raise InvalidTransition(
            "undo",
            row["state"],
            f"only a dispatch nobody has acted on since can be undone; incident "
            f"{incident_id} is {row['state']}" + (f" after {last.action}" if last is not None else ""),
        )
    if last.actor != actor:
        raise ValidationError(f"only {last.actor}, who dispatched incident {incident_id}, can undo it")
    moment = to_utc(now, "now") if now is not None else utc_now()
    if (moment - from_db(last.at)).total_seconds() > UNDO_SECONDS:
        raise ValidationError(f"the {UNDO_SECONDS} seconds to undo this dispatch have passed; reassign it instead")
    recalled = apply_action(
        conn, incident_id, "recall", actor=actor, expected_version=row["version"], note="dispatch undone", at=now
    )
    recalled["event_id"] = _latest_event(conn, incident_id).id
    return recalled


def act(conn: Connection, incident_id: int, action: str, *, actor: str, expected_version: int | None = None, **kwargs) -> dict:
    """Any loop action from the dispatcher's screen (dispatch and reassign through `dispatch`, recall through undo)."""
    if action in ("dispatch", "reassign"):
        return dispatch(conn, incident_id, actor=actor, expected_version=expected_version, **kwargs)
    if action == "recall":
        return undo_dispatch(conn, incident_id, actor=actor)
    return apply_action(conn, incident_id, action, actor=actor, expected_version=expected_version, **kwargs)


# --- several at once ------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    """What became of one incident of a batch: ok, or why not (and its current state)."""

    incident_id: int
    ok: bool
    state: str | None = None
    version: int | None = None
    error: str | None = None
    kind: str | None = None  # conflict, invalid, rejected, not_found


def _failure(incident_id: int, exc: CityBrainError) -> BatchResult:
    kinds = {Conflict: "conflict", InvalidTransition: "invalid", ValidationError: "rejected", NotFound: "not_found"}
    kind = next((k for cls, k in kinds.items() if isinstance(exc, cls)), "error")
    state = getattr(exc, "current_state", None) or getattr(exc, "state", None)
    return BatchResult(incident_id, False, state=state, version=getattr(exc, "current_version", None), error=str(exc), kind=kind)


def dispatch_many(
    engine: Engine,
    items: list[tuple[int, int | None]] | list[int],
    *,
    actor: str,
    department_id: int | None = None,
    worker_id: int | None = None,
) -> list[BatchResult]:
    """Dispatch several incidents, each in its own transaction, each to the given assignee or its own suggestion.

    `items` are incident ids or (id, expected version) pairs. One refusal (a conflict, a state
    that cannot be dispatched) is reported in its row and does not stop the others.
    """
    results = []
    for item in items:
        incident_id, expected = (item, None) if isinstance(item, int) else item
        try:
            with engine.begin() as conn:
                row = dispatch(
                    conn, incident_id, actor=actor, expected_version=expected, department_id=department_id, worker_id=worker_id
                )
            results.append(BatchResult(incident_id, True, state=row["state"], version=row["version"]))
        except CityBrainError as exc:
            results.append(_failure(incident_id, exc))
    return results


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


def _grid_geometry(conn: Connection, grid_id: int | None) -> dict | None:
    """The incident's grid for the panel's small map: {geometry (GeoJSON), bounds (minx, miny, maxx, maxy)}."""
    if grid_id is None:
        return None
    import shapely
    from shapely.geometry import mapping

    wkb = conn.execute(select(schema.units.c.geom).where(schema.units.c.id == grid_id)).scalar()
    if not wkb:
        return None
    shape = shapely.from_wkb(wkb)
    return {"geometry": mapping(shape), "bounds": list(shape.bounds)}


def panel_facts(conn: Connection, incident_id: int) -> dict[str, Any]:
    """Everything the incident panel shows in one read: the row, names, audit history, suggestion, duplicates, deliveries."""
    from data.incidents.feed import history

    incident = get_incident(conn, incident_id)
    c, d, u, w = schema.categories, schema.departments, schema.units, schema.workers

    def named(table, row_id):
        if row_id is None:
            return None
        found = conn.execute(select(table.c.id, table.c.name_en, table.c.name_zh).where(table.c.id == row_id)).first()
        return dict(found._mapping) if found else None

    open_now = incident["is_open"]
    return {
        "incident": incident,
        "category": named(c, incident["category_id"]),
        "department": named(d, incident["assignee_department_id"]),
        "worker": named(w, incident["assignee_worker_id"]),
        "grid": named(u, incident["grid_id"]),
        "district": named(u, incident["district_id"]),
        "history": history(conn, incident_id),
        "suggestion": suggest(conn, incident_id) if open_now else None,
        "duplicates": likely_duplicates(conn, incident_id) if open_now else [],
        "deliveries": notify.deliveries(conn, incident_id=incident_id, limit=10),
        "allowed": lifecycle.allowed_actions(incident["state"]),
        "grid_shape": _grid_geometry(conn, incident["grid_id"]),
        "dispatch_by": dispatch_target(conn, incident),
        # Whether this incident's limits count working hours (the calendar is on and it is not urgent-on-wall-clock).
        "working_hours": limit_calendar(conn, incident["priority"]) is not None,
    }


__all__ = [
    "DUPLICATE_HOURS",
    "DUPLICATE_RADIUS_M",
    "QUEUE_STATES",
    "UNDO_SECONDS",
    "BatchResult",
    "Suggestion",
    "act",
    "dispatch",
    "dispatch_many",
    "dispatch_target",
    "distance_m",
    "filter_choices",
    "likely_duplicates",
    "merge_direction",
    "merge_duplicates",
    "panel_facts",
    "queue",
    "queue_counts",
    "set_responsibility",
    "suggest",
    "undo_dispatch",
]
