"""Who acts and how far their reach goes: the Actor a write is given, and the checks of the rows it touches against it.

Every write records who made it (留痕). A plain name (the CLI, background jobs, the simulator) acts for
the whole city with every action. A signed-in user or an API key acts as an Actor carrying its
jurisdiction (a unit; None for the city), its department (a department user acts only on incidents
assigned to it) and the incident actions its role allows. The data layer checks these on the rows the
ids resolve to, in the transaction that changes them, so no screen or route can forget a check or check
another id than the one used. A row outside the reach is not found (an id outside says nothing); an
action the role does not allow is PermissionDenied.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import NotFound, PermissionDenied, ValidationError
from data.metrics.scope import SCOPE_COLUMNS

OUTSIDE = "outside your jurisdiction"


@dataclass(frozen=True)
class Actor:
    """Who acts: the audit log's name, and the reach of the user or key behind it."""

    name: str
    unit_id: int | None = None  # the jurisdiction: a district, street, community or grid; None = the whole city
    department_id: int | None = None  # set for a department's user or key: only its own incidents
    actions: frozenset[str] | None = None  # the incident actions allowed; None = every action

    @property
    def city_wide(self) -> bool:
        return self.unit_id is None


def as_actor(actor: str | Actor) -> Actor:
    """An Actor for `actor` (a plain name is the whole city, every action); ValidationError when unnamed (留痕)."""
    if isinstance(actor, Actor):
        return Actor(actor_name(actor.name), actor.unit_id, actor.department_id, actor.actions)
    return Actor(actor_name(actor))


def actor_name(actor: str | Actor) -> str:
    """The name the audit log records, stripped; ValidationError when blank or longer than 128 characters."""
    name = actor.name if isinstance(actor, Actor) else actor
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("actor is required: who is doing this (留痕)")
    if len(name.strip()) > 128:
        raise ValidationError("actor is longer than 128 characters")
    return name.strip()


# --- units ------------------------------------------------------------------------------------------


def unit_within(conn: Connection, unit_id: int, jurisdiction_id: int) -> bool:
    """Whether `unit_id` is `jurisdiction_id` or lies inside it."""
    if unit_id == jurisdiction_id:
        return True
    u = schema.units
    row = conn.execute(select(u.c.district_id, u.c.street_id, u.c.community_id, u.c.parent_id).where(u.c.id == unit_id)).first()
    if row is None:
        return False
    if jurisdiction_id in (row.district_id, row.street_id, row.community_id):
        return True
    # Units imported without denormalised ancestors: walk up the parents.
    seen: set[int] = set()
    current = row.parent_id
    while current is not None and current not in seen:
        if current == jurisdiction_id:
            return True
        seen.add(current)
        current = conn.execute(select(u.c.parent_id).where(u.c.id == current)).scalar()
    return False


def unit_reachable(conn: Connection, actor: str | Actor, unit_id: int | None) -> bool:
    """Whether a row placed in `unit_id` (None: placed nowhere, or city-wide) lies in the actor's jurisdiction."""
    if not isinstance(actor, Actor) or actor.city_wide:
        return True
    return unit_id is not None and unit_within(conn, unit_id, actor.unit_id)


def require_unit(conn: Connection, actor: str | Actor, unit_id: int | None, missing: str) -> None:
    """NotFound with the message of a missing row (`missing`) unless `unit_id` lies in the actor's jurisdiction."""
    if not unit_reachable(conn, actor, unit_id):
        raise NotFound(missing)


def require_city_wide(actor: str | Actor, what: str) -> None:
    """PermissionDenied unless the actor acts for the whole city: `what` is a record every district shares."""
    if isinstance(actor, Actor) and not actor.city_wide:
        raise PermissionDenied(f"{what} is shared by the whole city: only a city-wide administrator may change it")


# --- incidents --------------------------------------------------------------------------------------


def incident_reachable(conn: Connection, actor: str | Actor, incident: dict) -> bool:
    """Whether the incident row lies in the actor's jurisdiction and, for a department, is assigned to it.

    Inside a unit means the incident's column for that unit's level holds it (the definition the
    screens and the API use); an unlocated incident belongs to no unit.
    """
    if not isinstance(actor, Actor):
        return True
    if actor.department_id is not None and incident.get("assignee_department_id") != actor.department_id:
        return False
    if actor.city_wide:
        return True
    level = conn.execute(select(schema.units.c.level).where(schema.units.c.id == actor.unit_id)).scalar()
    column = SCOPE_COLUMNS.get(level)
    return column is not None and incident.get(column) == actor.unit_id


def require_incident(conn: Connection, actor: str | Actor, incident: dict, action: str | None = None) -> None:
    """NotFound unless the incident is within the actor's reach; PermissionDenied when its role may not take `action`."""
    if not incident_reachable(conn, actor, incident):
        raise NotFound(f"incident {incident['id']} does not exist")
    if action is not None and isinstance(actor, Actor) and actor.actions is not None and action not in actor.actions:
        raise PermissionDenied(f"your role may not {action} incidents")
