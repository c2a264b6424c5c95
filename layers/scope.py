"""The unit a screen is scoped to (city, district, street, community or grid): its chain for the breadcrumb and its filter."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import NotFound

# The incidents column that holds each level's unit id.
INCIDENT_COLUMN = {
    schema.DISTRICT: "district_id",
    schema.STREET: "street_id",
    schema.COMMUNITY: "community_id",
    schema.GRID: "grid_id",
}
# The units column that holds each level's ancestor id (a district's district_id is itself).
UNIT_ANCESTOR_COLUMN = {schema.DISTRICT: "district_id", schema.STREET: "street_id", schema.COMMUNITY: "community_id"}


@dataclass(frozen=True)
class Scope:
    """Where the screen looks: the whole city (id None) or one unit, with its ancestors from the top."""

    id: int | None = None
    level: int = schema.CITY
    name_en: str = ""
    name_zh: str = ""
    bbox: tuple[float, float, float, float] | None = None
    chain: tuple[dict, ...] = field(default_factory=tuple)  # ancestors then the unit itself, coarsest first

    @property
    def is_city(self) -> bool:
        return self.id is None

    @property
    def incident_column(self) -> str | None:
        """The incidents column to filter on, None for the whole city."""
        return INCIDENT_COLUMN.get(self.level) if self.id is not None else None

    def incident_filter(self, table=schema.incidents):
        """SQL condition keeping this scope's incidents (None: keep all)."""
        column = self.incident_column
        return None if column is None else table.c[column] == self.id

    def unit_filter(self, table=schema.units):
        """SQL condition keeping the units inside this scope, the unit itself included (None: keep all)."""
        if self.id is None:
            return None
        column = UNIT_ANCESTOR_COLUMN.get(self.level)
        if column is None:  # a grid holds no smaller units
            return table.c.id == self.id
        return (table.c[column] == self.id) | (table.c.id == self.id)


CITY = Scope()


def resolve_scope(conn: Connection, unit_id: int | None) -> Scope:
    """The Scope of `unit_id` (None or 0: the city); NotFound when the unit does not exist."""
    if not unit_id:
        return CITY
    u = schema.units
    chain: list[dict] = []
    current: int | None = int(unit_id)
    seen: set[int] = set()
    while current is not None and current not in seen:
        seen.add(current)
        row = conn.execute(
            select(u.c.id, u.c.level, u.c.parent_id, u.c.name_en, u.c.name_zh, u.c.minx, u.c.miny, u.c.maxx, u.c.maxy).where(
                u.c.id == current
            )
        ).first()
        if row is None:
            if not chain:
                raise NotFound(f"unit {unit_id} does not exist")
            break
        if row.level > schema.CITY:  # the city row, if any, is the breadcrumb's fixed first step
            chain.append(dict(row._mapping))
        current = row.parent_id
    chain.reverse()
    unit = chain[-1] if chain else None
    if unit is None:  # the id named the city row itself
        return CITY
    bbox = None if unit["minx"] is None else (unit["minx"], unit["miny"], unit["maxx"], unit["maxy"])
    return Scope(
        id=unit["id"],
        level=unit["level"],
        name_en=unit["name_en"],
        name_zh=unit["name_zh"],
        bbox=bbox,
        chain=tuple({k: c[k] for k in ("id", "level", "name_en", "name_zh")} for c in chain),
    )
