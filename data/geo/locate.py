"""Point -> grid lookup: a shapely STRtree over the grid polygons, vectorised over many points."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema


@dataclass(frozen=True)
class Location:
    """Where a point falls: its grid and the grid's ancestors (all None when unlocated)."""

    grid_id: int | None
    community_id: int | None
    street_id: int | None
    district_id: int | None

    @property
    def unlocated(self) -> bool:
        return self.grid_id is None


UNLOCATED = Location(None, None, None, None)


class GridLocator:
    """Finds the grid of each point; built once from the store and reused for every lookup."""

    def __init__(self, ids: np.ndarray, geoms: np.ndarray, ancestors: np.ndarray):
        self.ids = ids
        self.geoms = geoms
        self.ancestors = ancestors  # rows of (community_id, street_id, district_id)
        self.tree = shapely.STRtree(geoms)
        shapely.prepare(geoms)

    @classmethod
    def from_conn(cls, conn: Connection, level: int = schema.GRID) -> GridLocator:
        """A locator over every unit of `level` (grids by default) in the store."""
        u = schema.units
        rows = conn.execute(
            select(u.c.id, u.c.geom, u.c.community_id, u.c.street_id, u.c.district_id)
            .where(u.c.level == level, u.c.geom.is_not(None))
            .order_by(u.c.id)
        ).all()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        geoms = shapely.from_wkb([r.geom for r in rows]) if rows else np.array([], dtype=object)
        ancestors = np.array([(r.community_id, r.street_id, r.district_id) for r in rows], dtype=object).reshape(-1, 3)
        return cls(ids, geoms, ancestors)

    def __len__(self) -> int:
        return len(self.ids)

    def grid_index(self, lons, lats) -> np.ndarray:
        """Index into self.ids of the grid holding each point, -1 where none does (or the point is not a number)."""
        lons = np.asarray(lons, dtype=float)
        lats = np.asarray(lats, dtype=float)
        result = np.full(lons.shape, -1, dtype=np.int64)
        finite = np.isfinite(lons) & np.isfinite(lats)
        if not len(self.ids) or not finite.any():
            return result
        points = shapely.points(lons[finite], lats[finite])
        # 'intersects' keeps points on a shared edge; the lowest grid index wins so a point
        # on a border always lands in the same grid.
        point_idx, geom_idx = self.tree.query(points, predicate="intersects")
        found = np.full(len(points), -1, dtype=np.int64)
        order = np.lexsort((geom_idx, point_idx))[::-1]
        found[point_idx[order]] = geom_idx[order]
        result[np.flatnonzero(finite)] = found
        return result

    def locate_many(self, lons, lats) -> list[Location]:
        """The Location of each point, UNLOCATED where no grid holds it."""
        out = []
        for i in self.grid_index(lons, lats):
            if i < 0:
                out.append(UNLOCATED)
            else:
                community_id, street_id, district_id = self.ancestors[i]
                out.append(Location(int(self.ids[i]), community_id, street_id, district_id))
        return out

    def locate(self, lon: float | None, lat: float | None) -> Location:
        """The Location of one point."""
        if lon is None or lat is None:
            return UNLOCATED
        return self.locate_many([lon], [lat])[0]
