"""Jurisdiction: every scope a signed-in user asks for is clamped to their unit; incidents outside it are not found.

A user's unit (a district, street, community or grid; None for the whole city) bounds everything
they see. A request without a scope gets the user's unit; a scope inside it is kept; a scope
outside it is refused (`strict`, for routes: NotFound -> 404) or replaced by the user's unit (for
screens, which then show what the user may see rather than an error).

Outside a request (the CLI, plain-function tests) nothing is clamped: the gate in dashboard/auth.py
lets no request through without a principal, so "no principal" only happens off the web.
"""

from __future__ import annotations

from flask import has_request_context
from sqlalchemy import select
from sqlalchemy.engine import Connection

from dashboard import access
from data import schema
from data.actors import incident_reachable, unit_within
from data.errors import NotFound
from layers.scope import UNIT_ANCESTOR_COLUMN, resolve_scope

OUTSIDE = "outside your jurisdiction"


def unit() -> int | None:
    """The current principal's unit (None: the whole city, or no request)."""
    if not has_request_context():
        return None
    return access.current().unit_id


def department() -> int | None:
    """The department a 'department' user acts for (None for every other role and off the web)."""
    if not has_request_context():
        return None
    who = access.current()
    return who.department_id if who.role == "department" else None


def clamp_unit(conn: Connection, unit_id: int | None, *, strict: bool = False) -> int | None:
    """The unit to show for a requested `unit_id` (None/0 = the city).

    Within the jurisdiction: as asked. Nothing asked: the jurisdiction. Outside it: NotFound when
    `strict`, else the jurisdiction itself.
    """
    mine = unit()
    if mine is None:
        return unit_id or None
    if not unit_id:
        return mine
    if unit_within(conn, int(unit_id), mine):
        return int(unit_id)
    if strict:
        raise NotFound(f"unit {unit_id} is {OUTSIDE}")
    return mine


def clamp_scope(conn: Connection, scope: tuple[int, int] | None, *, strict: bool = False) -> tuple[int, int] | None:
    """clamp_unit for a metrics scope: None (the city) or (level, unit id)."""
    wanted = None if scope is None else scope[1]
    chosen = clamp_unit(conn, wanted, strict=strict)
    if chosen is None:
        return None
    if scope is not None and chosen == scope[1]:
        return scope
    level = conn.execute(select(schema.units.c.level).where(schema.units.c.id == chosen)).scalar()
    return None if level is None else (level, chosen)


def incident_visible(conn: Connection, incident_id: int) -> bool:
    """Whether the current principal may see this incident: inside their unit and, for a department
    user, assigned to their department (data.actors.incident_reachable, the check every write makes)."""
    if not restricted():
        return True
    row = conn.execute(select(schema.incidents).where(schema.incidents.c.id == incident_id)).first()
    return row is not None and incident_reachable(conn, access.acting(), dict(row._mapping))


def require_incident(conn: Connection, incident_id: int) -> None:
    """NotFound (never 'forbidden': an id outside says nothing) unless the incident is visible."""
    if not incident_visible(conn, incident_id):
        raise NotFound(f"no incident {incident_id}")


def units_within(conn: Connection, level: int) -> set[int] | None:
    """Ids of the units of `level` inside the jurisdiction (None: no limit)."""
    mine = unit()
    if mine is None:
        return None
    scope = resolve_scope(conn, mine)
    u = schema.units
    if level < scope.level:
        return set()  # a coarser unit holds other places' incidents too
    if level == scope.level:
        return {mine}
    column = UNIT_ANCESTOR_COLUMN.get(scope.level)
    if column is None:
        return set()
    return set(conn.execute(select(u.c.id).where(u.c.level == level, u.c[column] == mine)).scalars())


def restricted() -> bool:
    """Whether the current principal sees less than the whole city (a unit or one department)."""
    return unit() is not None or department() is not None


def clamp_choice(engine, choice, *, strict: bool = False):
    """A trends Choice (dashboard/pages/trends.py) with its scope clamped to the jurisdiction."""
    from dataclasses import replace

    from data import store

    if unit() is None:
        return choice
    with store.reading(engine) as conn:
        return replace(choice, scope=clamp_scope(conn, choice.scope, strict=strict))


def jurisdiction_scope(conn: Connection):
    """The current principal's unit as a layers.scope.Scope, None for the whole city."""
    mine = unit()
    return None if mine is None else resolve_scope(conn, mine)


def scope_tuple() -> tuple[int, int] | None:
    """The current principal's jurisdiction as a metrics scope: None (city, or off the web) or (level, unit id)."""
    if not has_request_context():
        return None
    return access.current().scope


def visible_areas(conn: Connection, areas: list[dict]) -> list[dict]:
    """The area choices (units with an `id`) that lie inside the jurisdiction."""
    mine = unit()
    if mine is None:
        return areas
    return [a for a in areas if unit_within(conn, a["id"], mine)]
