"""A tiny hand-made city for the overview tests: 2 districts > 2 streets > 2 communities > 4 grids, all rectangles."""

from __future__ import annotations

from datetime import UTC, datetime

import shapely
from sqlalchemy import insert, text

from data import schema

ORIGIN = (106.40, 29.40)  # south-west corner, in Chongqing
DISTRICT_SIZE = 0.5  # degrees: the two districts fill a desk map at zoom 10


def _split(box, parts_x: int, parts_y: int):
    minx, miny, maxx, maxy = box
    w, h = (maxx - minx) / parts_x, (maxy - miny) / parts_y
    return [(minx + i * w, miny + j * h, minx + (i + 1) * w, miny + (j + 1) * h) for j in range(parts_y) for i in range(parts_x)]


def build_tiny_city(engine) -> dict[str, list[dict]]:
    """Insert the city's units; returns the inserted rows by level name (with their boxes)."""
    now = datetime.now(UTC)
    rows: list[dict] = []
    by_level: dict[str, list[dict]] = {"district": [], "street": [], "community": [], "grid": []}
    next_id = iter(range(1, 10_000))

    def add(level: int, box, parent: dict | None, code: str, en: str, zh: str) -> dict:
        geom = shapely.box(*box)
        row = {
            "id": next(next_id),
            "code": code,
            "level": level,
            "parent_id": parent["id"] if parent else None,
            "name_en": en,
            "name_zh": zh,
            "geom": shapely.to_wkb(geom),
            "centroid_lon": geom.centroid.x,
            "centroid_lat": geom.centroid.y,
            "area_m2": 1.0,
            "minx": box[0],
            "miny": box[1],
            "maxx": box[2],
            "maxy": box[3],
            "district_id": None,
            "street_id": None,
            "community_id": None,
            "updated_at": now,
        }
        if parent:
            for key in ("district_id", "street_id", "community_id"):
                row[key] = parent[key]
            row[
                {schema.DISTRICT: "district_id", schema.STREET: "street_id", schema.COMMUNITY: "community_id"}[parent["level"]]
            ] = parent["id"]
        own = {schema.DISTRICT: "district_id", schema.STREET: "street_id", schema.COMMUNITY: "community_id"}.get(level)
        if own:  # as data/geo/units.py keeps them: a district's district_id is itself
            row[own] = row["id"]
        rows.append(row)
        by_level[schema.LEVEL_NAMES[level]].append({**row, "box": box})
        return row

    for d in range(2):
        dbox = (ORIGIN[0] + d * DISTRICT_SIZE, ORIGIN[1], ORIGIN[0] + (d + 1) * DISTRICT_SIZE, ORIGIN[1] + DISTRICT_SIZE)
        district = add(schema.DISTRICT, dbox, None, f"D{d}", f"District {d}", f"第{d}区")
        for s, sbox in enumerate(_split(dbox, 2, 1)):
            street = add(schema.STREET, sbox, district, f"D{d}S{s}", f"Street {d}.{s}", f"第{d}.{s}街道")
            for c, cbox in enumerate(_split(sbox, 1, 2)):
                community = add(schema.COMMUNITY, cbox, street, f"D{d}S{s}C{c}", f"Community {d}.{s}.{c}", f"社区{d}.{s}.{c}")
                for g, gbox in enumerate(_split(cbox, 2, 2)):
                    add(schema.GRID, gbox, community, f"D{d}S{s}C{c}G{g}", f"Grid {d}.{s}.{c}.{g}", f"网格{d}.{s}.{c}.{g}")
    with engine.begin() as conn:
        conn.execute(insert(schema.units), rows)
        if conn.dialect.name == "postgresql":
            # Explicit ids leave the serial behind; later inserts without an id must not collide.
            conn.execute(text("SELECT setval(pg_get_serial_sequence('units', 'id'), (SELECT max(id) FROM units))"))
    return by_level
