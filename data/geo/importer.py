"""Boundary import: read GeoJSON/Shapefile/GeoPackage, convert to WGS84, repair, find parents, store in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyogrio.errors
import pyproj
import shapely
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

from data import schema
from data.errors import ValidationError
from data.geo import crs
from data.geo import grid as geo_grid
from data.geo.units import (
    code_levels,
    describe_codes,
    geometry_columns,
    level_geometries,
    polygonal_parts,
    unit_row,
    unit_rows,
    upsert_units,
)
from data.parse import ascii_digits

LEVEL_ALIASES = {
    **{name: level for name, level in schema.LEVELS.items()},
    "county": schema.DISTRICT,
    "town": schema.STREET,
    "village": schema.COMMUNITY,
    "microgrid": schema.MICRO,
    "市": schema.CITY,
    "区": schema.DISTRICT,
    "区县": schema.DISTRICT,
    "街道": schema.STREET,
    "镇": schema.STREET,
    "社区": schema.COMMUNITY,
    "村": schema.COMMUNITY,
    "网格": schema.GRID,
    "微网格": schema.MICRO,
}
CITY_ROOT_CODE = "CITY"
_READ_ERRORS = (
    pyogrio.errors.DataSourceError,
    pyogrio.errors.DataLayerError,
    pyogrio.errors.FeatureError,
    pyogrio.errors.FieldError,
    pyogrio.errors.GeometryError,
    pyogrio.errors.CRSError,
    OSError,
    ValueError,
)


def parse_level(value) -> int:
    """A level number from 0-5, '2', 'street', 'town' or '街道'."""
    text = str(value).strip().lower()
    if ascii_digits(text) and int(text) in schema.LEVEL_NAMES:
        return int(text)
    if text in LEVEL_ALIASES:
        return LEVEL_ALIASES[text]
    names = ", ".join(schema.LEVEL_NAMES.values())
    raise ValidationError(f"unknown level {value!r}: use one of {names} (or 0-5)")


@dataclass
class ImportReport:
    """What an import did, for the command's summary and for tests."""

    level: int
    source: str | None = None
    source_crs: str | None = None
    features: int = 0
    inserted: int = 0
    updated: int = 0
    repaired: list[str] = field(default_factory=list)
    parent_by_code: int = 0
    parent_by_overlap: int = 0
    parent_is_root: int = 0
    unmatched: list[str] = field(default_factory=list)
    created_city_root: bool = False
    notes: list[str] = field(default_factory=list)
    grid_cells: int = 0
    grid_parents: int = 0
    slivers_merged: int = 0
    stale_cells_removed: int = 0
    seconds: float = 0.0

    def summary_lines(self) -> list[str]:
        """Human-readable lines for the command line."""
        lines = []
        level_name = schema.LEVEL_NAMES[self.level]
        if self.source is not None:
            lines.append(f"{self.source}: {self.features} {level_name} units read (CRS {self.source_crs})")
            lines.append(f"inserted {self.inserted}, updated {self.updated}")
            lines.append(describe_codes("repaired invalid polygons", self.repaired))
            lines.append(
                f"parents: {self.parent_by_code} by code, {self.parent_by_overlap} by overlap, {self.parent_is_root} city root"
            )
            lines.append(describe_codes("unmatched (placed under the city root)", self.unmatched))
            if self.created_city_root:
                lines.append(f"created the city root unit '{CITY_ROOT_CODE}'")
        if self.grid_cells:
            lines.append(
                f"generated {self.grid_cells} grid cells in {self.grid_parents} {level_name} units; "
                f"{self.slivers_merged} slivers under 5% of a cell merged into a neighbour"
            )
            if self.stale_cells_removed:
                lines.append(f"removed {self.stale_cells_removed} generated cells no longer needed")
        lines.extend(self.notes)
        lines.append(f"took {self.seconds:.2f} s")
        return lines


def import_boundaries(
    engine: Engine,
    path,
    level,
    *,
    code_field: str = "code",
    name_field: str = "name",
    name_zh_field: str | None = None,
    parent_field: str | None = None,
    source_crs=None,
    generate_grid: str | None = None,
    cell_size: float | None = None,
) -> ImportReport:
    """Import boundaries from a GeoJSON, zipped Shapefile or GeoPackage, and/or tile a level with grid cells.

    Everything is checked before writing and written in one transaction: a bad file raises
    ValidationError with a one-line message and leaves the store as it was.
    """
    started = time.perf_counter()
    level = parse_level(level)
    report = ImportReport(level=level)
    if path is None and generate_grid is None:
        raise ValidationError("nothing to do: give a boundary file, --generate-grid, or both")
    if generate_grid is not None:
        geo_grid.check_grid_options(level, generate_grid, cell_size)
    frame = None
    if path is not None:
        frame = read_boundaries(
            path,
            code_field=code_field,
            name_field=name_field,
            name_zh_field=name_zh_field,
            parent_field=parent_field,
            source_crs=source_crs,
            report=report,
        )
    with engine.begin() as conn:
        if frame is not None:
            store_boundaries(conn, frame, level, report)
        if generate_grid is not None:
            codes = None if frame is None else list(frame["code"])
            grid = geo_grid.generate_grid_cells(conn, level, generate_grid, float(cell_size), parent_codes=codes)
            report.grid_cells, report.grid_parents = len(grid.ids), grid.parents
            report.slivers_merged, report.stale_cells_removed = grid.slivers_merged, grid.stale_removed
            if grid.updated:
                report.notes.append(f"{grid.updated} generated cells already existed and were updated in place")
    report.seconds = time.perf_counter() - started
    return report


def read_boundaries(
    path,
    *,
    code_field: str,
    name_field: str,
    name_zh_field: str | None = None,
    parent_field: str | None = None,
    source_crs=None,
    report: ImportReport | None = None,
) -> gpd.GeoDataFrame:
    """The file's polygons in WGS84, repaired, one row per code: code, name_en, name_zh, parent_code, geometry."""
    report = report or ImportReport(level=schema.GRID)
    path = Path(path)
    label = path.name
    report.source = label
    raw = _read_file(path, label, report)
    fields = [code_field, name_field, name_zh_field, parent_field]
    missing = [f for f in fields if f is not None and f not in raw.columns]
    if missing:
        available = ", ".join(str(c) for c in raw.columns if c != raw.geometry.name) or "none"
        raise ValidationError(f"{label} has no field '{missing[0]}'; available fields: {available}")

    geoms = polygonal_parts(raw.geometry.values)
    kept = ~shapely.is_missing(geoms)
    if not kept.any():
        found = raw.geometry.geom_type.fillna("empty").value_counts()
        kinds = ", ".join(f"{kind} x{count}" for kind, count in found.items())
        raise ValidationError(f"{label} has no polygons (found {kinds})")
    if not kept.all():
        report.notes.append(f"skipped {int((~kept).sum())} features without a polygon")
    raw = raw[kept]
    geoms = geoms[kept]

    codes = _text_column(raw[code_field])
    blank = codes.isna()
    if blank.any():
        raise ValidationError(f"{label}: {int(blank.sum())} features have no value in the code field '{code_field}'")
    too_long = codes[codes.str.len() > 64]
    if len(too_long):
        raise ValidationError(f"{label}: codes must be at most 64 characters ({too_long.iloc[0][:70]}...)")
    names_en = _text_column(raw[name_field]).fillna(codes)
    names_zh = _text_column(raw[name_zh_field]).fillna(names_en) if name_zh_field else names_en
    parents = _text_column(raw[parent_field]) if parent_field else pd.Series([None] * len(raw), index=raw.index)
    for names, fname in ((names_en, name_field), (names_zh, name_zh_field)):
        if (names.str.len() > 200).any():
            raise ValidationError(f"{label}: names in '{fname}' must be at most 200 characters")

    geoms = _to_wgs84(geoms, raw.crs, source_crs, label, report)
    frame = gpd.GeoDataFrame(
        {"code": codes.values, "name_en": names_en.values, "name_zh": names_zh.values, "parent_code": parents.values},
        geometry=gpd.GeoSeries(geoms, crs=crs.WGS84),
        crs=crs.WGS84,
    )
    frame = _repair(frame, report)
    frame = _merge_duplicate_codes(frame, report)
    report.features = len(frame)
    return frame


def _read_file(path: Path, label: str, report: ImportReport) -> gpd.GeoDataFrame:
    if not path.exists():
        raise ValidationError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise ValidationError(f"{label} is empty")
    layer = None
    try:
        layers = pyogrio.list_layers(path)
        if len(layers) > 1:
            layer = layers[0][0]
            report.notes.append(f"read layer '{layer}' of {len(layers)} in {label}")
        raw = gpd.read_file(path, layer=layer, engine="pyogrio")
    except _READ_ERRORS as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValidationError(f"cannot read {label} as GeoJSON, zipped Shapefile or GeoPackage: {reason[:200]}") from None
    if not len(raw):
        raise ValidationError(f"{label} has no features")
    if not isinstance(raw, gpd.GeoDataFrame) or raw.geometry.isna().all():
        raise ValidationError(f"{label} has no polygons (no geometry at all)")
    return raw


def _text_column(values: pd.Series) -> pd.Series:
    """Field values as stripped strings (None when blank); 110101.0 read from a Shapefile becomes '110101'."""

    def as_text(value):
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        return text or None

    return pd.Series([as_text(v) for v in values], index=values.index, dtype=object)


def _looks_like_lonlat(geoms: np.ndarray) -> bool:
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    return bool(-180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90)


def _to_wgs84(geoms: np.ndarray, file_crs, source_crs, label: str, report: ImportReport) -> np.ndarray:
    chosen = crs.parse_crs(source_crs) if source_crs is not None else None
    if chosen == crs.GCJ02:
        if not _looks_like_lonlat(geoms):
            raise ValidationError(f"{label}: GCJ-02 coordinates must be lon/lat degrees, but these are not")
        report.source_crs = "GCJ-02"
        converted = crs.geometries_gcj02_to_wgs84(geoms)
    else:
        if chosen is None and file_crs is None:
            if not _looks_like_lonlat(geoms):
                raise ValidationError(f"{label} has no CRS and its coordinates are not lon/lat: pass --crs EPSG:xxxx")
            report.notes.append(f"{label} has no CRS; its coordinates look like lon/lat and were read as WGS84")
            chosen = crs.WGS84
        chosen = chosen or pyproj.CRS.from_user_input(file_crs)
        report.source_crs = chosen.to_string()
        converted = geoms if chosen == crs.WGS84 else crs.to_crs(geoms, chosen.to_wkt(), "EPSG:4326")
    bounds = shapely.bounds(converted)
    if not np.isfinite(bounds).all() or not _looks_like_lonlat(converted):
        raise ValidationError(
            f"{label}: coordinates do not convert to valid lon/lat from {report.source_crs}; is the CRS right? (--crs)"
        )
    return converted


def _repair(frame: gpd.GeoDataFrame, report: ImportReport) -> gpd.GeoDataFrame:
    """Invalid polygons made valid (self-intersections split, not dropped), keeping only their polygonal parts."""
    geoms = np.asarray(frame.geometry.values, dtype=object)
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return frame
    fixed = polygonal_parts(shapely.make_valid(geoms[invalid]))
    geoms = geoms.copy()
    geoms[invalid] = fixed
    report.repaired.extend(frame["code"].values[invalid].tolist())
    lost = shapely.is_missing(geoms) | shapely.is_empty(np.where(shapely.is_missing(geoms), shapely.Polygon(), geoms))
    frame = frame.set_geometry(gpd.GeoSeries(geoms, index=frame.index, crs=frame.crs))
    if lost.any():
        dropped = frame["code"].values[lost].tolist()
        report.notes.append(describe_codes("dropped: no area left after repair", dropped))
        frame = frame[~lost]
    return frame


def _merge_duplicate_codes(frame: gpd.GeoDataFrame, report: ImportReport) -> gpd.GeoDataFrame:
    duplicated = frame["code"].duplicated(keep=False)
    if not duplicated.any():
        return frame
    # A multipart unit is often stored as one feature per part: join the parts under the code.
    codes = sorted(frame.loc[duplicated, "code"].unique())
    report.notes.append(describe_codes("features sharing a code were merged into one unit", codes))
    merged = frame.groupby("code", sort=False).agg(
        {"name_en": "first", "name_zh": "first", "parent_code": "first", "geometry": lambda g: shapely.union_all(g.values)}
    )
    return gpd.GeoDataFrame(merged.reset_index(), geometry="geometry", crs=frame.crs)


def largest_overlap(geoms, candidates) -> np.ndarray:
    """For each geometry, the index of the candidate it shares most area with (-1 when none)."""
    geoms = np.asarray(geoms, dtype=object)
    candidates = np.asarray(candidates, dtype=object)
    result = np.full(len(geoms), -1, dtype=np.int64)
    if not len(geoms) or not len(candidates):
        return result
    left, right = shapely.STRtree(candidates).query(geoms, predicate="intersects")
    if not len(left):
        return result
    shapely.prepare(candidates)
    # Most units lie wholly inside their parent: a prepared 'contains' settles those without
    # computing an intersection, which is what keeps 60,000 grids fast.
    inside = shapely.contains(candidates[right], geoms[left])
    shared = np.empty(len(left))
    shared[inside] = shapely.area(geoms[left[inside]])
    border = ~inside
    shared[border] = shapely.area(shapely.intersection(geoms[left[border]], candidates[right[border]]))
    real = shared > shapely.area(geoms)[left] * 1e-6  # touching along an edge is not overlapping
    left, right, shared = left[real], right[real], shared[real]
    order = np.lexsort((-shared, left))
    left, right = left[order], right[order]
    first = np.unique(left, return_index=True)[1]
    result[left[first]] = right[first]
    return result


def _ensure_city_root(conn: Connection, report: ImportReport) -> int:
    """The id of the city root (the first city unit), created as 'CITY' when the store has none."""
    u = schema.units
    root = conn.execute(select(u.c.id).where(u.c.level == schema.CITY).order_by(u.c.id).limit(1)).scalar()
    if root is not None:
        return root
    report.created_city_root = True
    row = unit_row(CITY_ROOT_CODE, schema.CITY, "City", "全市", None)
    return upsert_units(conn, [row])[CITY_ROOT_CODE]


def _check_inside_city(conn: Connection, geoms: np.ndarray, report: ImportReport) -> None:
    _, city = level_geometries(conn, [schema.CITY, schema.DISTRICT])
    if not len(city):
        return
    hits, _ = shapely.STRtree(city).query(geoms, predicate="intersects")
    if not len(hits):
        minx, miny, maxx, maxy = shapely.total_bounds(city)
        raise ValidationError(
            f"{report.source}: none of its {len(geoms)} units overlap the city (lon {minx:.3f}..{maxx:.3f}, "
            f"lat {miny:.3f}..{maxy:.3f}); is the CRS right, or is this another city's file?"
        )


def store_boundaries(conn: Connection, frame: gpd.GeoDataFrame, level: int, report: ImportReport) -> dict[str, int]:
    """Write prepared boundaries (from read_boundaries) as units of `level`, with parents; returns {code: id}."""
    codes = frame["code"].tolist()
    existing = code_levels(conn, codes)
    clash = sorted(code for code, (_, other) in existing.items() if other != level)
    if clash:
        raise ValidationError(describe_codes(f"{report.source}: codes already used by units of another level", clash, 5))
    geoms = np.asarray(frame.geometry.values, dtype=object)
    _check_inside_city(conn, geoms, report)
    parent_ids = _find_parents(conn, frame, geoms, level, report)
    rows = unit_rows(codes, [level] * len(codes), frame["name_en"].tolist(), frame["name_zh"].tolist(), geoms, parent_ids)
    ids = upsert_units(conn, rows)
    report.inserted += len(codes) - len(existing)
    report.updated += len(existing)
    if level == schema.DISTRICT:
        _refresh_city_root_boundary(conn)
    return ids


def _find_parents(conn: Connection, frame: gpd.GeoDataFrame, geoms: np.ndarray, level: int, report: ImportReport) -> list:
    n = len(frame)
    parent_ids: list[int | None] = [None] * n
    if level == schema.CITY:
        return parent_ids
    root_id = _ensure_city_root(conn, report)
    # pandas may hold a missing code as NaN rather than None: only strings are codes.
    parent_codes = [code if isinstance(code, str) else None for code in frame["parent_code"].tolist()]
    wanted = [c for c in parent_codes if c is not None]
    if wanted:
        known = code_levels(conn, wanted)
        not_found = []
        for i, code in enumerate(parent_codes):
            if code in known and known[code][1] < level:
                parent_ids[i] = known[code][0]
                report.parent_by_code += 1
            elif code is not None:
                not_found.append(code)
        if not_found:
            label = "parent codes not found at a higher level (parents found by overlap instead)"
            report.notes.append(describe_codes(label, sorted(set(not_found))))
    remaining = np.array([i for i in range(n) if parent_ids[i] is None], dtype=np.int64)
    if level == schema.DISTRICT:
        city_ids, city_geoms = level_geometries(conn, [schema.CITY])
        several_cities = (
            conn.execute(select(func.count()).select_from(schema.units).where(schema.units.c.level == schema.CITY)).scalar_one()
            > 1
        )
        if several_cities and len(remaining):
            found = largest_overlap(geoms[remaining], city_geoms)
            for i, idx in zip(remaining, found, strict=True):
                if idx >= 0:
                    parent_ids[i] = int(city_ids[idx])
                    report.parent_by_overlap += 1
            remaining = remaining[found < 0]
        else:
            # One city: every district belongs to it, whatever its drawn boundary says.
            for i in remaining:
                parent_ids[i] = root_id
            report.parent_is_root += len(remaining)
            remaining = remaining[:0]
    # Look one level up first; where that level has no unit here, climb (grids straight under a street).
    for candidate_level in range(level - 1, schema.DISTRICT - 1, -1):
        if not len(remaining):
            break
        cand_ids, cand_geoms = level_geometries(conn, [candidate_level])
        found = largest_overlap(geoms[remaining], cand_geoms)
        for i, idx in zip(remaining, found, strict=True):
            if idx >= 0:
                parent_ids[i] = int(cand_ids[idx])
        report.parent_by_overlap += int((found >= 0).sum())
        remaining = remaining[found < 0]
    for i in remaining:
        parent_ids[i] = root_id
    report.unmatched.extend(frame["code"].values[remaining].tolist())
    return parent_ids


def _refresh_city_root_boundary(conn: Connection) -> None:
    """The auto-created city root takes the union of its districts as its boundary."""
    u = schema.units
    root = conn.execute(select(u.c.id).where(u.c.code == CITY_ROOT_CODE, u.c.level == schema.CITY)).scalar()
    if root is None:
        return
    rows = conn.execute(select(u.c.geom).where(u.c.parent_id == root, u.c.geom.is_not(None))).all()
    if not rows:
        return
    union = shapely.union_all(shapely.from_wkb([r.geom for r in rows]))
    cols = geometry_columns([union])
    values = {key: (cols[key][0] if key == "geom" else float(cols[key][0])) for key in cols}
    conn.execute(u.update().where(u.c.id == root).values(**values, updated_at=datetime.now(UTC)))
