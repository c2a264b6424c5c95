"""The administrative ladder's levels, the units table with geometry and bounding box, and the map geometry prepared per units version."""

from __future__ import annotations

from sqlalchemy import Column, Float, ForeignKey, Index, Integer, LargeBinary, SmallInteger, String, Table

from data.schema.base import TS, metadata

# Levels of the administrative ladder (五级贯通).
CITY, DISTRICT, STREET, COMMUNITY, GRID, MICRO = 0, 1, 2, 3, 4, 5
LEVEL_NAMES = {CITY: "city", DISTRICT: "district", STREET: "street", COMMUNITY: "community", GRID: "grid", MICRO: "micro"}
LEVELS = {name: level for level, name in LEVEL_NAMES.items()}

units = Table(
    "units",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("code", String(64), nullable=False, unique=True),
    Column("level", SmallInteger, nullable=False),
    Column("parent_id", Integer, ForeignKey("units.id"), nullable=True),
    Column("name_en", String(200), nullable=False),
    Column("name_zh", String(200), nullable=False),
    Column("geom", LargeBinary, nullable=True),  # WKB, WGS84
    Column("centroid_lon", Float),
    Column("centroid_lat", Float),
    Column("area_m2", Float),
    Column("minx", Float),
    Column("miny", Float),
    Column("maxx", Float),
    Column("maxy", Float),
    # Ancestors, denormalised so roll-ups never walk the tree.
    Column("district_id", Integer, nullable=True),
    Column("street_id", Integer, nullable=True),
    Column("community_id", Integer, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_units_level_parent", "level", "parent_id"),
    Index("ix_units_level_bbox", "level", "minx", "maxx", "miny", "maxy"),
    # Early warning (migration 0006) reads every grid's ancestors and centroid without touching geometry.
    Index("ix_units_grid_cover", "level", "id", "community_id", "street_id", "centroid_lon", "centroid_lat", "area_m2"),
)

# One map level's units simplified and serialised for the screens (data/geo/prepared.py), built by the
# first process that needs it and read by every other: a start loads it instead of simplifying again.
prepared_geometry = Table(
    "prepared_geometry",
    metadata,
    Column("units_version", String(80), primary_key=True),  # data.geo.units.units_version when it was built
    Column("level", SmallInteger, primary_key=True),
    Column("detail", String(40), primary_key=True),  # level of detail: simplification tolerance and payload format
    Column("payload", LargeBinary),  # ids, bounding boxes and GeoJSON features, packed; None while being built
    Column("features", Integer, nullable=False),
    Column("builder", String(120), nullable=False),  # host:pid of the process that built it (or is building it)
    Column("built_at", TS, nullable=False),  # when it was stored (while payload is None: when the build was claimed)
    Column("build_ms", Integer),
)
