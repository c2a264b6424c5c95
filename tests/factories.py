"""Test factories: small helpers that put departments, categories, limits, workers, grids and incidents in a store.

Every helper takes a connection inside a transaction (``with engine.begin() as conn``) and
returns the new row's id (or a small dataclass), so tests read as a story:

    with engine.begin() as conn:
        world = make_world(conn)
        incident_id = make_incident(conn, world.categories["garbage"], at=world.lattice.center(0))
        drive_to(conn, incident_id, "acknowledged")

Times default to T0 (a fixed UTC instant, whole seconds) so results never depend on the clock.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import shapely
from shapely.geometry import box
from sqlalchemy import select

from data import schema
from data.geo.locate import GridLocator
from data.incidents import lifecycle
from data.incidents.feed import get_incident, history
from data.incidents.intake import report_incidents
from data.incidents.transitions import ACTION_PARAMS, apply_action

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)

# Acknowledge / handling limits in minutes per priority, used when a test does not give its own.
# Priority 3 has a window over 10 h (near due = last 2 h); priority 1 is short (near due = last 20%).
TEST_LIMITS = {1: (15, 60), 2: (60, 480), 3: (240, 1440)}

_serial = itertools.count(1)


def make_department(
    conn,
    code: str | None = None,
    *,
    name_en: str | None = None,
    name_zh: str | None = None,
    kind: str = "department",
    active: bool = True,
) -> int:
    """A department (城管, 住建, ...); returns its id."""
    code = code or f"dept{next(_serial)}"
    return conn.execute(
        schema.departments.insert()
        .values(code=code, name_en=name_en or code.upper(), name_zh=name_zh or code, kind=kind, active=active)
        .returning(schema.departments.c.id)
    ).scalar_one()


def set_limits(conn, category_id: int, limits: dict[int, tuple[int, int]]) -> None:
    """Replace a category's time limits: {priority: (ack_minutes, handle_minutes)}."""
    lim = schema.category_limits
    conn.execute(lim.delete().where(lim.c.category_id == category_id))
    if limits:
        conn.execute(
            lim.insert(),
            [{"category_id": category_id, "priority": p, "ack_minutes": a, "handle_minutes": h} for p, (a, h) in limits.items()],
        )


def make_category(
    conn,
    code: str,
    department_id: int,
    *,
    sector: str = "livelihood",
    grid_worker_ok: bool = False,
    limits: dict[int, tuple[int, int]] | None = TEST_LIMITS,
    active: bool = True,
) -> int:
    """A category owned by `department_id`, with time limits (TEST_LIMITS unless given; None for none)."""
    category_id = conn.execute(
        schema.categories.insert()
        .values(
            code=code,
            name_en=code.replace("_", " "),
            name_zh=code,
            sector=sector,
            department_id=department_id,
            grid_worker_ok=grid_worker_ok,
            active=active,
        )
        .returning(schema.categories.c.id)
    ).scalar_one()
    if limits:
        set_limits(conn, category_id, limits)
    return category_id


def make_worker(
    conn, grid_id: int, code: str | None = None, *, duties: tuple[int, ...] | list[int] = (), active: bool = True
) -> int:
    """A full-time grid worker of `grid_id` whose duty list (职责清单) holds the `duties` category ids."""
    code = code or f"W{next(_serial)}"
    worker_id = conn.execute(
        schema.workers.insert()
        .values(code=code, name_en=f"Worker {code}", name_zh=f"网格员{code}", grid_id=grid_id, active=active)
        .returning(schema.workers.c.id)
    ).scalar_one()
    if duties:
        conn.execute(schema.worker_duties.insert(), [{"worker_id": worker_id, "category_id": c} for c in duties])
    return worker_id


@dataclass
class GridLattice:
    """A rectangle of square grids, row-major from the south-west corner, with their ancestor units."""

    cols: int
    rows: int
    origin: tuple[float, float]
    cell: float
    grid_ids: list[int] = field(default_factory=list)
    district_ids: list[int] = field(default_factory=list)
    street_ids: list[int] = field(default_factory=list)
    community_ids: list[int] = field(default_factory=list)

    def center(self, index: int) -> tuple[float, float]:
        """(lon, lat) of the middle of grid number `index` (0-based, row-major)."""
        col, row = index % self.cols, index // self.cols
        return self.origin[0] + (col + 0.5) * self.cell, self.origin[1] + (row + 0.5) * self.cell

    def ancestors_of(self, index: int) -> tuple[int, int, int]:
        """(district_id, street_id, community_id) of grid number `index`."""
        d = (index % self.cols) * len(self.district_ids) // self.cols
        return self.district_ids[d], self.street_ids[d], self.community_ids[d]

    def outside(self) -> tuple[float, float]:
        """(lon, lat) of a point in no grid."""
        return self.origin[0] - 1.0, self.origin[1] - 1.0

    def locator(self, conn) -> GridLocator:
        """A point -> grid locator over the store's grids."""
        return GridLocator.from_conn(conn)


def make_grids(
    conn, cols: int, rows: int, *, origin: tuple[float, float] = (106.5, 29.5), cell: float = 0.01, districts: int = 1
) -> GridLattice:
    """A city of cols x rows square grids split by column into `districts` districts (one street and
    one community each), inserted in bulk so thousands of grids take well under a second."""
    u = schema.units
    now = T0
    serial = next(_serial)
    lattice = GridLattice(cols, rows, origin, cell)
    city_id = conn.execute(
        u.insert()
        .values(code=f"C{serial}", level=schema.CITY, name_en="Test city", name_zh="测试市", updated_at=now)
        .returning(u.c.id)
    ).scalar_one()

    def unit(level: int, code: str, parent: int, **ancestors) -> int:
        return conn.execute(
            u.insert()
            .values(code=code, level=level, parent_id=parent, name_en=code, name_zh=code, updated_at=now, **ancestors)
            .returning(u.c.id)
        ).scalar_one()

    for d in range(districts):
        district = unit(schema.DISTRICT, f"C{serial}-D{d}", city_id)
        street = unit(schema.STREET, f"C{serial}-D{d}-S", district, district_id=district)
        community = unit(schema.COMMUNITY, f"C{serial}-D{d}-S-C", street, district_id=district, street_id=street)
        lattice.district_ids.append(district)
        lattice.street_ids.append(street)
        lattice.community_ids.append(community)

    grids = []
    for index in range(cols * rows):
        col, row = index % cols, index // cols
        district_id, street_id, community_id = lattice.ancestors_of(index)
        minx, miny = origin[0] + col * cell, origin[1] + row * cell
        grids.append(
            {
                "code": f"C{serial}-G{index}",
                "level": schema.GRID,
                "parent_id": community_id,
                "name_en": f"Grid {index}",
                "name_zh": f"网格{index}",
                "geom": shapely.to_wkb(box(minx, miny, minx + cell, miny + cell)),
                "centroid_lon": minx + cell / 2,
                "centroid_lat": miny + cell / 2,
                "minx": minx,
                "miny": miny,
                "maxx": minx + cell,
                "maxy": miny + cell,
                "district_id": district_id,
                "street_id": street_id,
                "community_id": community_id,
                "updated_at": now,
            }
        )
    conn.execute(u.insert(), grids)
    codes = {g["code"]: i for i, g in enumerate(grids)}
    found = conn.execute(select(u.c.id, u.c.code).where(u.c.level == schema.GRID, u.c.code.in_(list(codes)))).all()
    lattice.grid_ids = [0] * len(grids)
    for row in found:
        lattice.grid_ids[codes[row.code]] = row.id
    return lattice


@dataclass
class World:
    """A small ready-made city: departments and categories by code, a 3 x 2 lattice in two districts,
    and one grid worker whose duty list holds "garbage" only.

    Categories: garbage (城管, grid workers may take it), water (城管, grid workers may take it but
    it is not on the worker's list), construction (住建, never to grid workers), noise (公安, no
    time limits configured: DEFAULT_LIMITS apply).
    """

    departments: dict[str, int]
    categories: dict[str, int]
    lattice: GridLattice
    worker_id: int
    locator: GridLocator


def make_world(conn) -> World:
    """Create the World described above; returns it."""
    departments = {code: make_department(conn, code) for code in ("cg", "zj", "ga")}
    categories = {
        "garbage": make_category(conn, "garbage", departments["cg"], grid_worker_ok=True),
        "water": make_category(conn, "water", departments["cg"], grid_worker_ok=True),
        "construction": make_category(conn, "construction", departments["zj"], sector="safety"),
        "noise": make_category(conn, "noise", departments["ga"], sector="safety", limits=None),
    }
    lattice = make_grids(conn, 3, 2, districts=2)
    worker_id = make_worker(conn, lattice.grid_ids[0], duties=[categories["garbage"]])
    return World(departments, categories, lattice, worker_id, GridLocator.from_conn(conn))


def make_incident(
    conn,
    category_id: int,
    *,
    at: tuple[float, float] | None = None,
    priority: int = 3,
    reported_at: datetime = T0,
    source: str = "test",
    external_id: str | None = None,
    actor: str = "reporter",
    locator: GridLocator | None = None,
    **fields,
) -> int:
    """Report one incident at point `at` (lon, lat; None for no position); returns its id."""
    row = {
        "source": source,
        "external_id": external_id or f"ext-{next(_serial)}",
        "category_id": category_id,
        "priority": priority,
        "reported_at": reported_at,
        **fields,
    }
    if at is not None:
        row["lon"], row["lat"] = at
    (result,) = report_incidents(conn, [row], actor=actor, locator=locator, now=reported_at)
    return result.incident_id


# The usual road from "reported" to each state.
PATHS = {
    lifecycle.REPORTED: [],
    lifecycle.REGISTERED: ["register"],
    lifecycle.REJECTED: ["reject"],
    lifecycle.MERGED: ["merge"],
    lifecycle.DISPATCHED: ["register", "dispatch"],
    lifecycle.ACKNOWLEDGED: ["register", "dispatch", "acknowledge"],
    lifecycle.RETURNED: ["register", "dispatch", "return"],
    lifecycle.RESOLVED: ["register", "dispatch", "acknowledge", "resolve"],
    lifecycle.REOPENED: ["register", "dispatch", "acknowledge", "resolve", "verify_fail"],
    lifecycle.CLOSED: ["register", "dispatch", "acknowledge", "resolve", "verify_pass"],
}


def default_kwargs(action: str) -> dict:
    """Arguments that make `action` acceptable on its own: a note where one is needed, a score, minutes."""
    kwargs: dict = {}
    if action in lifecycle.NEEDS_NOTE or action == "note":
        kwargs["note"] = f"test {action}"
    if action == "extend":
        kwargs["extend_minutes"] = 60
    if action == "rate":
        kwargs["satisfaction"] = 5
    return kwargs


def drive(
    conn, incident_id: int, actions: list[str], *, step: timedelta = timedelta(minutes=10), actor: str = "dispatcher", **kwargs
) -> dict:
    """Apply `actions` one after another, each `step` after the incident's latest event; the row after.

    Extra keyword arguments go to every action that takes them (e.g. merged_into_id for "merge",
    department_id or worker_id for "dispatch").
    """
    row = None
    for action in actions:
        at = history(conn, incident_id)[-1]["at"] + step
        params = default_kwargs(action)
        params.update({name: value for name, value in kwargs.items() if name in ACTION_PARAMS.get(action, ())})
        row = apply_action(conn, incident_id, action, actor=actor, at=at, **params)
    return row if row is not None else get_incident(conn, incident_id)


def drive_to(conn, incident_id: int, state: str, **kwargs) -> dict:
    """Take a freshly reported incident to `state` by the usual road (PATHS); the row after.

    "merged" needs merged_into_id=<an open incident>.
    """
    return drive(conn, incident_id, PATHS[state], **kwargs)
