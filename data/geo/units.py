"""Administrative units in the store: rows from geometries, bulk upsert, the units version, ancestors, loading and simplified GeoJSON."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from sqlalchemy import bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from data import schema, store
from data.geo import crs

UNIT_COLUMNS = (
    "code",
    "level",
    "parent_id",
    "name_en",
    "name_zh",
    "geom",
    "centroid_lon",
    "centroid_lat",
    "area_m2",
    "minx",
    "miny",
    "maxx",
    "maxy",
    "district_id",
    "street_id",
    "community_id",
    "updated_at",
)

# The ancestor column each level fills with its own id (a district's district_id is itself),
# so "group by street_id" works the same for streets, communities and grids.
ANCESTOR_COLUMN = {schema.DISTRICT: "district_id", schema.STREET: "street_id", schema.COMMUNITY: "community_id"}
ANCESTOR_COLUMNS = ("district_id", "street_id", "community_id")

# Simplification tolerance per level, in degrees (1e-5 deg is about 1 m): coarse levels are
# drawn zoomed out, so they can lose more detail.
SIMPLIFY_TOLERANCE = {
    schema.CITY: 2e-4,
    schema.DISTRICT: 1e-4,
    schema.STREET: 5e-5,
    schema.COMMUNITY: 2e-5,
    schema.GRID: 1e-5,
    schema.MICRO: 5e-6,
}

IN_CHUNK = 900  # bound parameters per IN list, safely under SQLite's limit
PG_COPY_MIN_ROWS = 100  # from this many rows, PostgreSQL upserts go through COPY


def geometry_columns(geoms: Sequence) -> dict[str, np.ndarray]:
    """WKB, centroid, area (m²) and bounding box for WGS84 geometries, computed in one vectorised pass.

    The centroid is the true centroid when it lies inside the unit, else a point that
    surely does (a C-shaped district's centroid may fall in its neighbour).
    """
    geoms = np.asarray(geoms, dtype=object)
    present = ~shapely.is_missing(geoms) & ~shapely.is_empty(np.where(shapely.is_missing(geoms), None, geoms))
    n = len(geoms)
    out = {
        "geom": np.full(n, None, dtype=object),
        **{k: np.full(n, np.nan) for k in ("centroid_lon", "centroid_lat", "area_m2", "minx", "miny", "maxx", "maxy")},
    }
    if not present.any():
        return out
    g = geoms[present]
    centroids = shapely.centroid(g)
    inside = shapely.contains(g, centroids)
    if not inside.all():
        centroids[~inside] = shapely.point_on_surface(g[~inside])
    out["geom"][present] = shapely.to_wkb(g)
    out["centroid_lon"][present] = shapely.get_x(centroids)
    out["centroid_lat"][present] = shapely.get_y(centroids)
    out["area_m2"][present] = crs.areas_m2(g)
    bounds = shapely.bounds(g)
    for i, key in enumerate(("minx", "miny", "maxx", "maxy")):
        out[key][present] = bounds[:, i]
    return out


def _ancestor_values(ancestors: Mapping | None) -> dict[str, int | None]:
    ancestors = ancestors or {}
    return {col: ancestors.get(col) for col in ANCESTOR_COLUMNS}


def unit_row(code, level, name_en, name_zh, geometry, parent_id=None, ancestors=None, now=None) -> dict:
    """A dict ready for `upsert_units`: WKB geometry, centroid, area in m², bbox, ancestors, updated_at.

    `ancestors` maps any of 'district_id', 'street_id', 'community_id' to ids; missing ones are
    filled from the parent chain by `upsert_units` anyway, so passing the parent is enough.
    """
    return unit_rows([code], [level], [name_en], [name_zh], [geometry], [parent_id], [ancestors], now=now)[0]


def unit_rows(codes, levels, names_en, names_zh, geometries, parent_ids=None, ancestors=None, now=None) -> list[dict]:
    """Many `unit_row`s at once (geometry columns vectorised): the fast path for thousands of units."""
    n = len(codes)
    now = now or datetime.now(UTC)
    cols = geometry_columns(list(geometries))
    parent_ids = parent_ids if parent_ids is not None else [None] * n
    ancestors = ancestors if ancestors is not None else [None] * n
    numbers = {}
    for key in ("centroid_lon", "centroid_lat", "area_m2", "minx", "miny", "maxx", "maxy"):
        values = cols[key]
        missing = np.isnan(values)
        numbers[key] = (
            values.tolist() if not missing.any() else [None if m else v for m, v in zip(missing, values.tolist(), strict=True)]
        )
    geom_wkb = cols["geom"].tolist()
    rows = []
    for i in range(n):
        row = {
            "code": str(codes[i]),
            "level": int(levels[i]),
            "parent_id": None if parent_ids[i] is None else int(parent_ids[i]),
            "name_en": str(names_en[i]),
            "name_zh": str(names_zh[i]),
            "geom": geom_wkb[i],
            "updated_at": now,
        }
        for key, values in numbers.items():
            row[key] = values[i]
        row.update(_ancestor_values(ancestors[i]))
        rows.append(row)
    return rows


def code_ids(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, int]:
    """{code: id} of the given codes (or of every unit) that exist in the store."""
    return {code: id_ for code, (id_, _) in code_levels(conn, codes).items()}


def upsert_units(conn: Connection, rows: list[dict]) -> dict[str, int]:
    """Insert or update units by code in bulk (executemany; COPY on PostgreSQL); returns {code: id}.

    Rows come from `unit_row`/`unit_rows`. Parents must already exist (insert level by level).
    Ancestor columns of every unit are recomputed from the parent chain afterwards, so they
    are always right: a district's district_id is itself, a grid's street_id its street.
    """
    if not rows:
        return {}
    u = schema.units
    existing = code_ids(conn, [r["code"] for r in rows])
    parents = _parent_ancestors(conn, {r["parent_id"] for r in rows if r.get("parent_id") is not None})
    now = datetime.now(UTC)
    values = []
    for row in rows:
        value = {col: row.get(col) for col in UNIT_COLUMNS}
        value["updated_at"] = value["updated_at"] or now
        # Filling ancestors from the parent here keeps the final refresh from rewriting every row.
        value.update(_child_ancestors(parents.get(value["parent_id"]), value["level"], existing.get(row["code"])))
        values.append(value)
    if conn.dialect.name == "postgresql" and len(values) >= PG_COPY_MIN_ROWS:
        _pg_copy_upsert(conn, values)
    else:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        statement = dialect_insert(u)
        # INSERT .. ON CONFLICT DO UPDATE handles new and known codes in one executemany,
        # far faster than separate UPDATEs for a re-import of tens of thousands of units.
        statement = statement.on_conflict_do_update(
            index_elements=[u.c.code], set_={col: statement.excluded[col] for col in UNIT_COLUMNS if col != "code"}
        )
        conn.execute(statement, values)
    refresh_ancestors(conn)
    bump_units_version(conn)
    return code_ids(conn, [r["code"] for r in rows])


UNITS_VERSION_KEY = "units_version"


def units_version(conn: Connection) -> str:
    """A short token that changes whenever the units change: geometry URLs and caches key on it.

    Count and highest id come from the primary key index (no scan of the geometry pages) and
    catch rows added or removed by any means; every write through `upsert_units` (boundary import,
    grid generation, the demo build) also sets a new stamp, so units rewritten in place count too.
    """
    u = schema.units
    count, top = conn.execute(select(func.count(), func.coalesce(func.max(u.c.id), 0)).select_from(u)).one()
    stamp = store.get_meta(conn, UNITS_VERSION_KEY, "")
    return f"{count}.{top}" + (f".{stamp}" if stamp else "")


def bump_units_version(conn: Connection) -> None:
    """A new units version, committed with the units written: open screens fetch their geometry again."""
    store.set_meta(conn, UNITS_VERSION_KEY, uuid.uuid4().hex[:12])


def _pg_copy_upsert(conn: Connection, values: list[dict]) -> None:
    """PostgreSQL: COPY the rows into a temporary table, then one INSERT .. SELECT .. ON CONFLICT.

    psycopg's executemany still sends one statement per row; COPY streams them all at once,
    several times faster for a city's worth of grids.
    """
    columns = ", ".join(UNIT_COLUMNS)
    updates = ", ".join(f"{col} = EXCLUDED.{col}" for col in UNIT_COLUMNS if col != "code")
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS units_load ON COMMIT DROP AS SELECT {columns} FROM units WITH NO DATA")
        cursor.execute("TRUNCATE units_load")
        with cursor.copy(f"COPY units_load ({columns}) FROM STDIN") as copy:
            for value in values:
                copy.write_row([value[col] for col in UNIT_COLUMNS])
        cursor.execute(
            f"INSERT INTO units ({columns}) SELECT {columns} FROM units_load ON CONFLICT (code) DO UPDATE SET {updates}"
        )
    finally:
        cursor.close()


def _parent_ancestors(conn: Connection, parent_ids: set[int]) -> dict[int, tuple]:
    u = schema.units
    found = {}
    ids = sorted(parent_ids)
    for start in range(0, len(ids), IN_CHUNK):
        query = select(u.c.id, u.c.district_id, u.c.street_id, u.c.community_id).where(u.c.id.in_(ids[start : start + IN_CHUNK]))
        found.update({r.id: (r.district_id, r.street_id, r.community_id) for r in conn.execute(query)})
    return found


def _own_level(inherited: tuple, level: int, own_id: int | None) -> tuple:
    """A unit's (district_id, street_id, community_id): its parent's, its own id at its level, None below."""
    values = list(inherited)
    for index, ancestor_level in enumerate((schema.DISTRICT, schema.STREET, schema.COMMUNITY)):
        if ancestor_level == level:
            values[index] = own_id
        elif ancestor_level > level:
            values[index] = None
    return tuple(values)


def _child_ancestors(parent: tuple | None, level: int, own_id: int | None) -> dict[str, int | None]:
    return dict(zip(ANCESTOR_COLUMNS, _own_level(parent or (None, None, None), level, own_id), strict=True))


def refresh_ancestors(conn: Connection) -> int:
    """Recompute district_id/street_id/community_id of every unit from its parent chain; returns rows changed."""
    u = schema.units
    rows = conn.execute(select(u.c.id, u.c.level, u.c.parent_id, u.c.district_id, u.c.street_id, u.c.community_id)).all()
    by_id = {r.id: r for r in rows}
    computed: dict[int, tuple] = {}
    changed = []
    # Parents sit at lower levels, so walking by level computes every parent before its children.
    for row in sorted(rows, key=lambda r: (r.level, r.id)):
        parent = by_id.get(row.parent_id)
        if parent is None or parent.level >= row.level:
            inherited = (None, None, None)
        else:
            inherited = computed.get(parent.id, (parent.district_id, parent.street_id, parent.community_id))
        values = _own_level(inherited, row.level, row.id)
        computed[row.id] = values
        if values != (row.district_id, row.street_id, row.community_id):
            changed.append({"b_id": row.id, **dict(zip(ANCESTOR_COLUMNS, values, strict=True))})
    if changed:
        conn.execute(u.update().where(u.c.id == bindparam("b_id")), changed)
    return len(changed)


def load_units(conn: Connection, level=None, parent_id=None, ids=None) -> gpd.GeoDataFrame:
    """Units as a GeoDataFrame in WGS84: id, code, level, parent_id, names, ancestors, area_m2, geometry."""
    u = schema.units
    query = select(
        u.c.id,
        u.c.code,
        u.c.level,
        u.c.parent_id,
        u.c.name_en,
        u.c.name_zh,
        u.c.district_id,
        u.c.street_id,
        u.c.community_id,
        u.c.area_m2,
        u.c.geom,
    ).order_by(u.c.id)
    if level is not None:
        query = query.where(u.c.level == int(level))
    if parent_id is not None:
        query = query.where(u.c.parent_id == int(parent_id))
    if ids is None:
        rows = conn.execute(query).all()
    else:
        ids = [int(i) for i in ids]
        rows = []
        for start in range(0, len(ids), IN_CHUNK):
            rows.extend(conn.execute(query.where(u.c.id.in_(ids[start : start + IN_CHUNK]))).all())
        rows.sort(key=lambda r: r.id)
    columns = ["id", "code", "level", "parent_id", "name_en", "name_zh", "district_id", "street_id", "community_id", "area_m2"]
    data = {col: [getattr(r, col) for r in rows] for col in columns}
    geometry = shapely.from_wkb([r.geom for r in rows]) if rows else np.array([], dtype=object)
    frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geometry, crs=crs.WGS84), crs=crs.WGS84)
    for col in ("parent_id", "district_id", "street_id", "community_id"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _round_coords(coords: np.ndarray) -> np.ndarray:
    # Six decimals is about 0.1 m: far below what the map shows, and shared vertices stay shared.
    return np.round(coords, 6)


def simplify_coverage(geoms, tolerance: float) -> np.ndarray:
    """Simplify polygons that tile an area without opening gaps or overlaps between neighbours."""
    geoms = np.asarray(geoms, dtype=object)
    if not len(geoms) or tolerance <= 0:
        return geoms
    polygonal = np.isin(shapely.get_type_id(geoms), [3, 6])
    out = geoms.copy()
    # Shared edges are simplified once for both sides, so neighbours keep meeting exactly;
    # a per-polygon simplify would leave slivers between them.
    try:
        simplified = shapely.coverage_simplify(geoms[polygonal], tolerance)
    except shapely.errors.GEOSException:
        # GEOS refuses some coverages (a degenerate ring somewhere): simplify one by one instead.
        simplified = shapely.simplify(geoms[polygonal], tolerance, preserve_topology=True)
    broken = ~shapely.is_valid(simplified) | shapely.is_empty(simplified)
    if broken.any():
        simplified[broken] = shapely.simplify(geoms[polygonal][broken], tolerance, preserve_topology=True)
    out[polygonal] = simplified
    return out


def simplified_geojson(conn: Connection, level, tolerance=None) -> dict:
    """A GeoJSON FeatureCollection of one level's units, simplified for the map (shared borders kept shared)."""
    level = int(level)
    frame = load_units(conn, level=level)
    frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
    tolerance = SIMPLIFY_TOLERANCE.get(level, 1e-5) if tolerance is None else float(tolerance)
    geoms = shapely.transform(simplify_coverage(frame.geometry.values, tolerance), _round_coords)
    features = []
    for row, geom in zip(frame.itertuples(index=False), geoms, strict=True):
        features.append(
            {
                "type": "Feature",
                "id": int(row.id),
                "geometry": geom.__geo_interface__,
                "properties": {
                    "id": int(row.id),
                    "code": row.code,
                    "name_en": row.name_en,
                    "name_zh": row.name_zh,
                    "parent_id": None if pd.isna(row.parent_id) else int(row.parent_id),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def describe_codes(label: str, codes: list[str], show: int = 10) -> str:
    """'label: 3 (A, B, C)', with at most `show` codes named."""
    if not codes:
        return f"{label}: none"
    more = f" and {len(codes) - show} more" if len(codes) > show else ""
    return f"{label}: {len(codes)} ({', '.join(codes[:show])}{more})"


def polygonal_parts(geoms: np.ndarray) -> np.ndarray:
    """Polygons and multipolygons as they are, the polygons inside a collection, None for anything else."""
    geoms = np.asarray(geoms, dtype=object)
    out = np.full(len(geoms), None, dtype=object)
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, [3, 6]) & ~shapely.is_empty(geoms)
    out[polygonal] = geoms[polygonal]
    for i in np.flatnonzero(type_ids == 7):
        parts = [p for p in shapely.get_parts(geoms[i]) if p.geom_type in ("Polygon", "MultiPolygon") and not p.is_empty]
        if parts:
            out[i] = shapely.union_all(parts)
    return out


def code_levels(conn: Connection, codes: Iterable[str] | None = None) -> dict[str, tuple[int, int]]:
    """{code: (id, level)} of the given codes (or of every unit) that exist in the store."""
    u = schema.units
    query = select(u.c.code, u.c.id, u.c.level)
    if codes is None:
        return {r.code: (r.id, r.level) for r in conn.execute(query)}
    codes = list(dict.fromkeys(codes))
    if len(codes) > 5 * IN_CHUNK:
        # One scan beats dozens of IN queries once a good share of the table is asked for.
        wanted = set(codes)
        return {r.code: (r.id, r.level) for r in conn.execute(query) if r.code in wanted}
    found = {}
    for start in range(0, len(codes), IN_CHUNK):
        found.update({r.code: (r.id, r.level) for r in conn.execute(query.where(u.c.code.in_(codes[start : start + IN_CHUNK])))})
    return found


def level_geometries(conn: Connection, levels: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(ids, geometries) of the units of these levels that have a boundary."""
    u = schema.units
    rows = conn.execute(
        select(u.c.id, u.c.geom).where(u.c.level.in_([int(v) for v in levels]), u.c.geom.is_not(None)).order_by(u.c.id)
    ).all()
    ids = np.array([r.id for r in rows], dtype=np.int64)
    geoms = shapely.from_wkb([r.geom for r in rows]) if rows else np.array([], dtype=object)
    return ids, geoms
