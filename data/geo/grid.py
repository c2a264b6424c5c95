"""Grid generation: tile units with square or hexagonal cells built in metres, clipped to them, slivers merged."""

from __future__ import annotations

import re
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.geo import crs
from data.geo.units import IN_CHUNK, code_levels, describe_codes, load_units, polygonal_parts, unit_rows, upsert_units

GRID_KINDS = ("square", "hex")
MAX_GRID_CELLS = 500_000
SLIVER_FRACTION = 0.05
GRID_PRECISION_M = 0.001
MIN_CELL_SIZE_M = 10


def cell_area(kind: str, size: float) -> float:
    """Area in m² of one whole cell: a square of side `size`, or a hexagon `size` across its flats."""
    return size * size if kind == "square" else np.sqrt(3) / 2 * size * size


def check_grid_options(level: int, kind: str, cell_size) -> None:
    """Raise ValidationError unless `kind`, `cell_size` and the level to tile make sense."""
    if kind not in GRID_KINDS:
        raise ValidationError(f"unknown grid kind {kind!r}: use square or hex")
    if level >= schema.GRID:
        raise ValidationError(f"grid cells tile a city, districts, streets or communities, not {schema.LEVEL_NAMES[level]}s")
    # Cell corners sit on whole metres, so very small cells would be visibly misshapen.
    if cell_size is None or not np.isfinite(float(cell_size)) or float(cell_size) < MIN_CELL_SIZE_M:
        raise ValidationError(f"--cell-size must be given in metres (at least {MIN_CELL_SIZE_M})")


def _lattice(bounds: np.ndarray, kind: str, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every lattice cell touching each bounding box: (owner index, column i, row j), vectorised.

    The lattice is anchored at the projection origin, so neighbouring units share cell edges.
    """
    minx, miny, maxx, maxy = bounds.T
    if kind == "square":
        i0, i1 = np.floor(minx / size), np.ceil(maxx / size)
        j0, j1 = np.floor(miny / size), np.ceil(maxy / size)
    else:
        radius = size / np.sqrt(3)
        i0, i1 = np.floor(minx / size) - 1, np.ceil(maxx / size) + 1
        j0, j1 = np.floor((miny - radius) / (1.5 * radius)), np.ceil((maxy + radius) / (1.5 * radius)) + 1
    ni = np.maximum(i1 - i0, 1).astype(np.int64)
    nj = np.maximum(j1 - j0, 1).astype(np.int64)
    counts = ni * nj
    owner = np.repeat(np.arange(len(bounds)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    i = i0.astype(np.int64)[owner] + local % ni[owner]
    j = j0.astype(np.int64)[owner] + local // ni[owner]
    return owner, i, j


# Corner offsets on the lattice of vertex positions: whole cells for squares; for pointy-top
# hexagons, half a cell across (x) and half a circumradius (y).
_SQUARE_CORNERS = np.array([(0, 0), (1, 0), (1, 1), (0, 1), (0, 0)])
_HEX_CORNERS = np.array([(1, 1), (0, 2), (-1, 1), (-1, -1), (0, -2), (1, -1), (1, 1)])


def _cell_polygons(i: np.ndarray, j: np.ndarray, kind: str, size: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cells, centre x, centre y) of lattice cells (i, j).

    Vertices are computed from integer vertex indices and rounded to whole metres, so a corner
    shared by neighbours is bit-for-bit the same number in both, and stays so through the
    millimetre snapping of clipped cells.
    """
    if kind == "square":
        unit_x = unit_y = size
        a, b = i, j
        corners = _SQUARE_CORNERS
        cx, cy = (i + 0.5) * size, (j + 0.5) * size
    else:
        unit_x, unit_y = size / 2, size / np.sqrt(3) / 2
        # Odd rows shift half a cell east.
        a, b = 2 * i + (j % 2), 3 * j
        corners = _HEX_CORNERS
        cx, cy = a * unit_x, b * unit_y
    xs = np.round((a[:, None] + corners[None, :, 0]) * unit_x)
    ys = np.round((b[:, None] + corners[None, :, 1]) * unit_y)
    return shapely.polygons(np.stack([xs, ys], axis=-1)), cx, cy


@dataclass
class Tiling:
    """Cells clipped to their units (metric coordinates), the unit index of each, and slivers merged."""

    cells: np.ndarray
    owner: np.ndarray
    slivers_merged: int


def tile_polygons(polygons, kind: str, size: float, sliver_fraction: float = SLIVER_FRACTION) -> Tiling:
    """Tile polygons in a metric CRS with square or hex cells clipped to them, slivers merged into a neighbour.

    Cells come out per polygon in reading order (north to south, west to east); their areas
    add up to each polygon's area, and they never overlap.
    """
    polygons = np.asarray(polygons, dtype=object)
    owner, i, j = _lattice(shapely.bounds(polygons), kind, size)
    cells, cx, cy = _cell_polygons(i, j, kind, size)
    shapely.prepare(polygons)
    hit = shapely.intersects(polygons[owner], cells)
    owner, cx, cy, cells = owner[hit], cx[hit], cy[hit], cells[hit]
    inside = shapely.contains_properly(polygons[owner], cells)
    border = np.flatnonzero(~inside)
    clipped = shapely.intersection(cells[border], polygons[owner[border]])
    # Snapping clipped cells to a millimetre grid makes neighbours across a boundary share
    # vertices bit for bit and removes needle-thin slivers where a cell edge runs (almost) along
    # a boundary, which would otherwise turn invalid once converted back to degrees.
    cells[border] = polygonal_parts(shapely.set_precision(clipped, GRID_PRECISION_M))
    present = ~shapely.is_missing(cells)
    present[present] = shapely.area(cells[present]) > 0
    owner, cx, cy, cells = owner[present], cx[present], cy[present], cells[present]
    order = np.lexsort((cx, -cy, owner))
    owner, cells = owner[order], cells[order]
    cells, owner, merged = _merge_slivers(cells, owner, cell_area(kind, size) * sliver_fraction)
    return Tiling(cells=cells, owner=owner, slivers_merged=merged)


def _merge_slivers(cells: np.ndarray, owner: np.ndarray, min_area: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Join each cell smaller than `min_area` to the neighbour of the same unit it shares most border with."""
    areas = shapely.area(cells)
    sliver = areas < min_area
    if not sliver.any():
        return cells, owner, 0
    sliver_idx = np.flatnonzero(sliver)
    target = np.full(len(cells), -1, dtype=np.int64)
    tree = shapely.STRtree(cells)
    left, right = tree.query(cells[sliver_idx], predicate="intersects")
    left = sliver_idx[left]
    ok = (owner[left] == owner[right]) & ~sliver[right]
    left, right = left[ok], right[ok]
    if len(left):
        shared = shapely.length(shapely.intersection(cells[left], cells[right]))
        edge = shared > 0
        left, right, shared = left[edge], right[edge], shared[edge]
        order = np.lexsort((-shared, left))
        left, right = left[order], right[order]
        first = np.unique(left, return_index=True)[1]
        target[left[first]] = right[first]
    for i in sliver_idx[target[sliver_idx] < 0]:
        # An outlying fragment (an island of the unit): join it to the nearest whole cell of
        # the same unit; if the unit has none, its largest piece absorbs the rest.
        same = np.flatnonzero((owner == owner[i]) & ~sliver)
        if len(same):
            target[i] = same[np.argmin(shapely.distance(cells[same], cells[i]))]
        else:
            pieces = np.flatnonzero(owner == owner[i])
            biggest = pieces[np.argmax(areas[pieces])]
            target[i] = biggest if biggest != i else -1
    merged = 0
    cells = cells.copy()
    absorbed = np.zeros(len(cells), dtype=bool)
    for t in np.unique(target[target >= 0]):
        parts = np.flatnonzero(target == t)
        cells[t] = shapely.union_all(np.concatenate([[cells[t]], cells[parts]]))
        absorbed[parts] = True
        merged += len(parts)
    keep = ~absorbed
    return cells[keep], owner[keep], merged


@dataclass
class GridResult:
    """What a grid generation wrote: {code: id} of the cells and the counts the summary reports."""

    ids: dict[str, int]
    parents: int
    inserted: int
    updated: int
    slivers_merged: int
    stale_removed: int


def generate_grid_cells(
    conn: Connection, level: int, kind: str, cell_size: float, parent_codes: list[str] | None = None
) -> GridResult:
    """Tile the units of `level` (or just `parent_codes`) with GRID units coded '<parent>-G0001'.

    Cells keep their code when regenerated (so incidents and workers stay attached); cells the
    new tiling no longer has are deleted, unless something still uses them.
    """
    check_grid_options(level, kind, cell_size)
    parents = load_units(conn, level=level)
    if parent_codes is not None:
        parents = parents[parents["code"].isin(set(parent_codes))]
    parents = parents[parents.geometry.notna() & ~parents.geometry.is_empty]
    level_name = schema.LEVEL_NAMES[level]
    if parents.empty:
        raise ValidationError(f"no {level_name} units with boundaries to tile; import them first")
    minx, miny, maxx, maxy = parents.total_bounds
    metric = crs.local_metric_crs((minx + maxx) / 2, (miny + maxy) / 2)
    projected = crs.to_crs(np.asarray(parents.geometry.values, dtype=object), "EPSG:4326", metric)
    estimate = float(shapely.area(projected).sum()) / cell_area(kind, cell_size)
    if estimate > MAX_GRID_CELLS:
        raise ValidationError(f"--cell-size {cell_size:g} m would make about {estimate:,.0f} cells; choose a larger size")
    tiling = tile_polygons(projected, kind, cell_size)
    cells = crs.to_crs(tiling.cells, metric, "EPSG:4326")
    invalid = ~shapely.is_valid(cells)
    if invalid.any():
        cells[invalid] = polygonal_parts(shapely.make_valid(cells[invalid]))

    parent_codes_arr = parents["code"].to_numpy()[tiling.owner]
    number = _rank_within(tiling.owner)
    codes = [f"{code}-G{k:04d}" for code, k in zip(parent_codes_arr, number, strict=True)]
    names_en = [f"{name} grid {k}" for name, k in zip(parents["name_en"].to_numpy()[tiling.owner], number, strict=True)]
    names_zh = [f"{name}第{k}网格" for name, k in zip(parents["name_zh"].to_numpy()[tiling.owner], number, strict=True)]
    parent_ids = parents["id"].to_numpy()[tiling.owner].tolist()

    existing = code_levels(conn, codes)
    clash = sorted(code for code, (_, other) in existing.items() if other != schema.GRID)
    if clash:
        raise ValidationError(describe_codes("grid codes already used by units of another level", clash, 5))
    stale_removed = _remove_stale_cells(conn, parents, set(codes))
    rows = unit_rows(codes, [schema.GRID] * len(codes), names_en, names_zh, cells, parent_ids)
    ids = upsert_units(conn, rows)
    return GridResult(
        ids=ids,
        parents=len(parents),
        inserted=len(codes) - len(existing),
        updated=len(existing),
        slivers_merged=tiling.slivers_merged,
        stale_removed=stale_removed,
    )


def _rank_within(owner: np.ndarray) -> np.ndarray:
    """1, 2, 3... within each run of equal owners (cells come sorted by owner)."""
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]
    run_start = np.repeat(starts, np.diff(np.r_[starts, len(owner)]))
    return np.arange(len(owner)) - run_start + 1


def _remove_stale_cells(conn: Connection, parents: gpd.GeoDataFrame, new_codes: set[str]) -> int:
    """Delete generated cells of these parents that the new tiling no longer has (refusing if anything uses them)."""
    u, w, i = schema.units, schema.workers, schema.incidents
    patterns = {
        int(pid): re.compile(rf"^{re.escape(code)}-G\d+$") for pid, code in zip(parents["id"], parents["code"], strict=True)
    }
    stale = []
    pids = list(patterns)
    for start in range(0, len(pids), IN_CHUNK):
        query = select(u.c.id, u.c.code, u.c.parent_id).where(
            u.c.level == schema.GRID, u.c.parent_id.in_(pids[start : start + IN_CHUNK])
        )
        for row in conn.execute(query):
            if row.code not in new_codes and patterns[row.parent_id].match(row.code):
                stale.append((row.id, row.code))
    if not stale:
        return 0
    stale_ids = [sid for sid, _ in stale]
    for start in range(0, len(stale_ids), IN_CHUNK):
        chunk = stale_ids[start : start + IN_CHUNK]
        used = conn.execute(
            select(u.c.parent_id.label("id"))
            .where(u.c.parent_id.in_(chunk))
            .union_all(select(w.c.grid_id).where(w.c.grid_id.in_(chunk)), select(i.c.grid_id).where(i.c.grid_id.in_(chunk)))
            .limit(1)
        ).scalar()
        if used is not None:
            code = dict(stale)[used]
            raise ValidationError(
                f"cannot drop {len(stale)} generated cells the new tiling no longer has: {code} still has "
                "workers, incidents or micro-grids; keep the old --cell-size or reassign them first"
            )
    for start in range(0, len(stale_ids), IN_CHUNK):
        conn.execute(u.delete().where(u.c.id.in_(stale_ids[start : start + IN_CHUNK])))
    return len(stale)
