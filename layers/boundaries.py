"""Administrative boundaries layer: prepared unit geometry -> a bbox-searchable index; level of detail by zoom.

Geometry is simplified and serialised once per (units version, level) and stored
(data.geo.prepared); a FeatureIndex holds it in memory as ready-serialised features plus
their bounding boxes, so a request for "the grids in view" is a numpy mask and a byte join,
not a query and a re-serialisation.
"""

from __future__ import annotations

import gzip
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import func, select

from data import schema
from data.errors import ValidationError
from data.geo import prepared
from data.geo.units import units_version  # noqa: F401  (the screens key geometry URLs on it: re-exported)
from data.parse import parse_float, shown

# Levels the map can show, coarsest first (the city itself is the map's frame, not a layer).
MAP_LEVELS = (schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID)

# The zoom from which each level is drawn (the map shows the finest level its zoom reaches).
LEVEL_MIN_ZOOM = {schema.DISTRICT: 0, schema.STREET: 11, schema.COMMUNITY: 12, schema.GRID: 14}

# Levels fetched only for the area in view: there are too many of them to send the whole city.
BBOX_LEVELS = frozenset({schema.COMMUNITY, schema.GRID})


def level_from_name(name: str) -> int:
    """The schema level for a URL name ('district', 'street', 'community', 'grid')."""
    level = schema.LEVELS.get(str(name).lower())
    if level not in MAP_LEVELS:
        known = ", ".join(schema.LEVEL_NAMES[level] for level in MAP_LEVELS)
        raise ValidationError(f"unknown map level {name!r}; use one of {known}")
    return level


def level_for_zoom(zoom: float | None) -> int:
    """The level the map shows at `zoom`: districts when zoomed out, grids when zoomed in."""
    if zoom is None:
        return schema.DISTRICT
    chosen = schema.DISTRICT
    for level in MAP_LEVELS:
        if zoom >= LEVEL_MIN_ZOOM[level]:
            chosen = level
    return chosen


# How far below its usual zoom a level is still drawn when the screen is scoped to its parent:
# drilling into a district shows its streets even if the district, framed, needs a lower zoom.
DRILL_ALLOWANCE = {schema.STREET: 2, schema.COMMUNITY: 2, schema.GRID: 1}


def level_for_view(zoom: float | None, scope_level: int | None = None) -> int:
    """The level to draw: the zoom's level, or the scope's children when the zoom is close enough to them."""
    level = level_for_zoom(zoom)
    if scope_level is None or scope_level < schema.DISTRICT or zoom is None:
        return level
    children = min(scope_level + 1, schema.GRID)
    if children > level and zoom >= LEVEL_MIN_ZOOM[children] - DRILL_ALLOWANCE[children]:
        return children
    return level


def parse_bbox(text: str | None) -> tuple[float, float, float, float] | None:
    """'minlon,minlat,maxlon,maxlat' -> a tuple, None when absent; ValidationError on anything else."""
    if text is None or text.strip() == "":
        return None
    parts = text.split(",")
    if len(parts) != 4:
        raise ValidationError(f"bbox must be minlon,minlat,maxlon,maxlat (got {shown(text)})")
    try:
        minx, miny, maxx, maxy = (parse_float(p, "bbox", minimum=-1e9, maximum=1e9) for p in parts)
    except ValidationError:
        raise ValidationError(f"bbox must be four numbers, each finite (got {shown(text)})") from None
    if not (-180 <= minx < maxx <= 180 and -90 <= miny < maxy <= 90):
        raise ValidationError(f"bbox must have min < max within lon -180..180 and lat -90..90 (got {shown(text)})")
    return minx, miny, maxx, maxy


def snap_bbox(bounds: Sequence[float], step: float = 0.02) -> tuple[float, float, float, float]:
    """The bbox grown outwards to multiples of `step` degrees (about 2 km).

    Small pans then ask for the same URL, so the browser's cache and the server's answer
    it instead of a new query; the extra margin also pre-loads what is about to scroll in.
    """
    minx, miny, maxx, maxy = bounds
    snapped = (
        math.floor(minx / step) * step,
        math.floor(miny / step) * step,
        math.ceil(maxx / step) * step,
        math.ceil(maxy / step) * step,
    )
    # Rounding keeps the URL free of floating noise (0.30000000000000004).
    minx, miny, maxx, maxy = (round(v, 6) for v in snapped)
    return max(minx, -180.0), max(miny, -90.0), min(maxx, 180.0), min(maxy, 90.0)


def leaflet_bounds_to_bbox(bounds) -> tuple[float, float, float, float] | None:
    """dash-leaflet's [[south, west], [north, east]] -> (minlon, minlat, maxlon, maxlat)."""
    if not bounds or len(bounds) != 2:
        return None
    (south, west), (north, east) = bounds
    return min(west, east), min(south, north), max(west, east), max(south, north)


@dataclass(frozen=True)
class FeatureIndex:
    """Every unit of one level as a serialised GeoJSON feature, with bounding boxes for bbox selection."""

    level: int
    ids: np.ndarray
    bboxes: np.ndarray  # (n, 4): minx, miny, maxx, maxy
    fragments: list[bytes]

    def __len__(self) -> int:
        return len(self.fragments)

    def ids_in(self, bbox: Sequence[float] | None = None) -> np.ndarray:
        """The ids of the units whose bounding box meets `bbox` (all when bbox is None)."""
        if bbox is None or not len(self.ids):
            return self.ids
        return self.ids[self._hits(bbox)]

    def _hits(self, bbox: Sequence[float]) -> np.ndarray:
        minx, miny, maxx, maxy = bbox
        b = self.bboxes
        return (b[:, 0] <= maxx) & (b[:, 2] >= minx) & (b[:, 1] <= maxy) & (b[:, 3] >= miny)

    def select(self, bbox: Sequence[float] | None = None) -> list[bytes]:
        """The features whose bounding box meets `bbox` (all of them when bbox is None)."""
        if bbox is None or not len(self.fragments):
            return self.fragments
        return [self.fragments[i] for i in np.flatnonzero(self._hits(bbox))]

    @classmethod
    def of(cls, level: prepared.PreparedLevel) -> FeatureIndex:
        """The index of a level's prepared geometry (data.geo.prepared.prepared_level)."""
        return cls(level.level, level.ids, level.bboxes, level.fragments)


def feature_collection(fragments: Sequence[bytes]) -> bytes:
    """A GeoJSON FeatureCollection from serialised features."""
    return b'{"type":"FeatureCollection","features":[' + b",".join(fragments) + b"]}"


def gzipped(body: bytes) -> bytes:
    """`body` gzip-compressed at a level that is quick to make and still small (6)."""
    return gzip.compress(body, compresslevel=6, mtime=0)


def extent(conn, level: int = schema.DISTRICT) -> tuple[float, float, float, float] | None:
    """The bounding box of every unit of `level` (the city's frame), None when there are none."""
    u = schema.units
    row = conn.execute(
        select(func.min(u.c.minx), func.min(u.c.miny), func.max(u.c.maxx), func.max(u.c.maxy)).where(u.c.level == level)
    ).one()
    return None if row[0] is None else tuple(float(v) for v in row)
