"""Boundary import: CRS conversion (projected, GCJ-02), repair, parents, re-import, grid generation, bad files, CLI."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import fast_geocn.coord as reference_gcj
import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import func, select

from data import schema, store
from data.errors import ValidationError
from data.geo import crs
from data.geo import grid as geo_grid
from data.geo import importer as geo_import
from data.geo import units as geo

# A small city near Chongqing (lon 106.5, lat 29.5): three districts meeting along jagged borders.
WEST = shapely.Polygon([(106.40, 29.45), (106.50, 29.45), (106.51, 29.50), (106.49, 29.55), (106.40, 29.55)])
EAST = shapely.Polygon([(106.50, 29.45), (106.60, 29.45), (106.60, 29.50), (106.51, 29.50)])
NORTH_EAST = shapely.Polygon([(106.51, 29.50), (106.60, 29.50), (106.60, 29.55), (106.49, 29.55)])
DISTRICTS = gpd.GeoDataFrame(
    {"code": ["D01", "D02", "D03"], "name": ["West", "East", "North East"], "name_zh": ["西区", "东区", "东北区"]},
    geometry=[WEST, EAST, NORTH_EAST],
    crs="EPSG:4326",
)


def metres_apart(a, b) -> float:
    """Hausdorff distance in metres between two WGS84 geometries."""
    metric = crs.local_metric_crs(106.5, 29.5)
    pa, pb = crs.to_crs([a, b], "EPSG:4326", metric)
    return float(shapely.hausdorff_distance(pa, pb))


def write(frame: gpd.GeoDataFrame, folder: Path, fmt: str) -> Path:
    """Write a frame as GeoJSON, zipped Shapefile or GeoPackage and return the file to import."""
    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "geojson":
        path = folder / "units.geojson"
        frame.to_file(path, driver="GeoJSON")
    elif fmt == "gpkg":
        path = folder / "units.gpkg"
        frame.to_file(path, driver="GPKG", layer="units")
    else:
        shp_dir = folder / "shp"
        shp_dir.mkdir()
        frame.to_file(shp_dir / "units.shp", driver="ESRI Shapefile", encoding="utf-8")
        path = folder / "units.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for part in shp_dir.iterdir():
                archive.write(part, part.name)
    return path


def unit_count(engine) -> int:
    with store.reading(engine) as conn:
        return conn.execute(select(func.count()).select_from(schema.units)).scalar_one()


def units_by_code(engine, level=None) -> dict:
    with store.reading(engine) as conn:
        frame = geo.load_units(conn, level=level)
    return {row.code: row for row in frame.itertuples()}


def import_districts(engine, tmp_path, frame=DISTRICTS, **kwargs):
    path = write(frame, tmp_path / "districts", "geojson")
    options = {"code_field": "code", "name_field": "name", "name_zh_field": "name_zh"} | kwargs
    return geo_import.import_boundaries(engine, path, "district", **options)


@pytest.mark.parametrize(
    ("fmt", "epsg"),
    [("geojson", 32648), ("shp", 4547), ("gpkg", 32648)],
    ids=["geojson-utm48n", "shapefile-cgcs2000", "gpkg-utm48n"],
)
def test_projected_districts_land_within_a_metre_of_their_wgs84_position(engine, tmp_path, fmt, epsg):
    path = write(DISTRICTS.to_crs(epsg=epsg), tmp_path, fmt)
    report = geo_import.import_boundaries(engine, path, "district", code_field="code", name_field="name", name_zh_field="name_zh")

    assert (report.inserted, report.updated, report.features) == (3, 0, 3)
    assert report.created_city_root and report.parent_is_root == 3
    units = units_by_code(engine)
    for code, expected in zip(DISTRICTS["code"], DISTRICTS.geometry, strict=True):
        assert metres_apart(units[code].geometry, expected) < 1.0
    assert units["D02"].name_zh == "东区"
    # The city root is created and takes the districts' outline; districts are their own district_id.
    root = units[geo_import.CITY_ROOT_CODE]
    assert {units[c].parent_id for c in ("D01", "D02", "D03")} == {root.id}
    assert all(units[c].district_id == units[c].id for c in ("D01", "D02", "D03"))
    assert root.geometry.area == pytest.approx(shapely.union_all(DISTRICTS.geometry).area, rel=1e-6)


def test_a_point_on_the_utm_central_meridian_comes_back_on_it(engine, tmp_path):
    # UTM zone 48N has its central meridian at 105°E, where easting is exactly 500,000 m.
    square = shapely.box(500_000, 3_260_000, 502_000, 3_262_000)
    frame = gpd.GeoDataFrame({"code": ["CM"], "name": ["on the meridian"]}, geometry=[square], crs="EPSG:32648")
    geo_import.import_boundaries(engine, write(frame, tmp_path, "geojson"), "district", code_field="code", name_field="name")
    minx = units_by_code(engine)["CM"].geometry.bounds[0]
    assert minx == pytest.approx(105.0, abs=1e-8)
    assert units_by_code(engine)["CM"].area_m2 == pytest.approx(4_000_000, rel=2e-3)  # UTM scale is 0.9996 here


def test_gcj02_round_trip_is_within_half_a_metre_and_matches_the_reference_formula():
    rng = np.random.default_rng(7)
    lon, lat = rng.uniform(75, 134, 2000), rng.uniform(18, 53, 2000)
    gcj_lon, gcj_lat = crs.wgs84_to_gcj02(lon, lat)
    back_lon, back_lat = crs.gcj02_to_wgs84(gcj_lon, gcj_lat)
    error_m = np.hypot((back_lon - lon) * 111_320 * np.cos(np.radians(lat)), (back_lat - lat) * 110_574)
    assert error_m.max() < 0.5
    # The offset itself is tens to hundreds of metres, so the round trip is not passing trivially.
    shift_m = np.hypot((gcj_lon - lon) * 111_320 * np.cos(np.radians(lat)), (gcj_lat - lat) * 110_574)
    assert shift_m.min() > 10 and np.median(shift_m) > 200
    for i in range(0, 2000, 250):
        assert (gcj_lon[i], gcj_lat[i]) == pytest.approx(reference_gcj.wgs84_to_gcj02(lon[i], lat[i]), abs=1e-9)
    # Outside China nothing moves.
    assert crs.wgs84_to_gcj02(np.array([2.35]), np.array([48.85]))[0][0] == 2.35


def test_a_gcj02_file_is_shifted_back_to_wgs84(engine, tmp_path):
    shifted = DISTRICTS.copy()
    shifted.geometry = gpd.GeoSeries(crs.geometries_wgs84_to_gcj02(DISTRICTS.geometry.values), crs="EPSG:4326")
    assert metres_apart(shifted.geometry[0], WEST) > 100
    report = import_districts(engine, tmp_path, shifted, source_crs="gcj02")
    assert report.source_crs == "GCJ-02"
    assert metres_apart(units_by_code(engine)["D01"].geometry, WEST) < 0.5


def test_a_bow_tie_polygon_is_repaired_and_reported(engine, tmp_path):
    bow_tie = shapely.Polygon([(106.40, 29.45), (106.45, 29.50), (106.45, 29.45), (106.40, 29.50)])
    frame = gpd.GeoDataFrame({"code": ["BT", "OK"], "name": ["bow tie", "fine"]}, geometry=[bow_tie, EAST], crs=4326)
    report = import_districts(engine, tmp_path, frame, name_zh_field=None)
    assert report.repaired == ["BT"]
    assert any("repaired invalid polygons: 1 (BT)" in line for line in report.summary_lines())
    repaired = units_by_code(engine)["BT"].geometry
    assert repaired.is_valid and repaired.geom_type == "MultiPolygon"
    assert repaired.area == pytest.approx(0.05 * 0.05 / 2, rel=1e-9)  # both triangles kept


def test_unit_rows_upsert_by_code_with_true_areas_inside_centroids_and_ancestors(engine):
    # A C-shaped street: its true centroid falls in the notch, outside the street itself.
    c_shape = shapely.Polygon([(106.40, 29.45), (106.43, 29.45), (106.43, 29.46), (106.41, 29.46), (106.41, 29.49),
                               (106.43, 29.49), (106.43, 29.50), (106.40, 29.50)])  # fmt: skip
    assert not c_shape.contains(c_shape.centroid)
    with engine.begin() as conn:
        city = geo.upsert_units(conn, [geo.unit_row("C", schema.CITY, "City", "市", None)])["C"]
        district = geo.upsert_units(conn, [geo.unit_row("D", schema.DISTRICT, "D", "区", WEST, city)])["D"]
        ids = geo.upsert_units(conn, [geo.unit_row("S", schema.STREET, "S", "街", c_shape, district)])
        geo.upsert_units(conn, [geo.unit_row("S", schema.STREET, "S renamed", "街", c_shape, district)])
        row = conn.execute(select(schema.units).where(schema.units.c.code == "S")).one()
    assert row.id == ids["S"] and row.name_en == "S renamed" and unit_count(engine) == 3
    assert (row.district_id, row.street_id, row.community_id) == (district, row.id, None)
    assert c_shape.contains(shapely.Point(row.centroid_lon, row.centroid_lat))
    geodesic_area = abs(pyproj.Geod(ellps="WGS84").geometry_area_perimeter(c_shape)[0])
    assert row.area_m2 == pytest.approx(geodesic_area, rel=1e-4)
    assert (row.minx, row.miny, row.maxx, row.maxy) == pytest.approx(c_shape.bounds)


def street_frame(parent_codes):
    # Four streets: two in West, one in East, one in North East.
    geoms = [
        shapely.box(106.40, 29.45, 106.45, 29.55),
        shapely.box(106.45, 29.45, 106.49, 29.55),
        shapely.box(106.52, 29.45, 106.60, 29.49),
        shapely.box(106.52, 29.51, 106.60, 29.55),
    ]
    return gpd.GeoDataFrame(
        {"code": ["S1", "S2", "S3", "S4"], "name": ["s1", "s2", "s3", "s4"], "parent": parent_codes}, geometry=geoms, crs=4326
    )


def test_parents_are_found_by_code_else_by_largest_overlap_and_ancestors_filled(engine, tmp_path):
    import_districts(engine, tmp_path)
    # S1 names its parent; S2's parent code is unknown and S3/S4 give none: those go by overlap.
    streets = street_frame(["D01", "NOPE", None, None])
    report = geo_import.import_boundaries(
        engine,
        write(streets, tmp_path / "streets", "gpkg"),
        "street",
        code_field="code",
        name_field="name",
        parent_field="parent",
    )
    assert (report.parent_by_code, report.parent_by_overlap, report.unmatched) == (1, 3, [])
    assert any("parent codes not found" in note and "NOPE" in note for note in report.notes)
    units = units_by_code(engine)
    assert [units[s].parent_id for s in ("S1", "S2", "S3", "S4")] == [units[d].id for d in ("D01", "D01", "D02", "D03")]
    assert units["S3"].district_id == units["D02"].id and units["S3"].street_id == units["S3"].id

    # Grids with no communities in the store climb to the street they lie in; ancestors follow.
    grids = gpd.GeoDataFrame(
        {"code": ["G1", "FAR"], "name": ["g1", "far away"]},
        geometry=[shapely.box(106.53, 29.46, 106.54, 29.47), shapely.box(106.70, 29.46, 106.71, 29.47)],
        crs=4326,
    )
    report = geo_import.import_boundaries(
        engine, write(grids, tmp_path / "grids", "geojson"), "grid", code_field="code", name_field="name"
    )
    assert report.parent_by_overlap == 1 and report.unmatched == ["FAR"]
    units = units_by_code(engine)
    g1 = units["G1"]
    assert (g1.parent_id, g1.street_id, g1.district_id) == (units["S3"].id, units["S3"].id, units["D02"].id)
    assert pd.isna(g1.community_id)
    assert units["FAR"].parent_id == units[geo_import.CITY_ROOT_CODE].id


def test_moving_a_street_to_another_district_updates_its_grids_ancestors(engine, tmp_path):
    import_districts(engine, tmp_path)
    geo_import.import_boundaries(
        engine,
        write(street_frame(["D01", "D01", "D02", "D03"]), tmp_path / "s", "geojson"),
        "street",
        code_field="code",
        name_field="name",
        parent_field="parent",
    )
    with engine.begin() as conn:
        s3 = geo.code_ids(conn, ["S3"])["S3"]
        geo.upsert_units(conn, [geo.unit_row("G9", schema.GRID, "g9", "格9", shapely.box(106.53, 29.46, 106.54, 29.47), s3)])
    geo_import.import_boundaries(
        engine,
        write(street_frame(["D01", "D01", "D03", "D03"]), tmp_path / "s2", "geojson"),
        "street",
        code_field="code",
        name_field="name",
        parent_field="parent",
    )
    units = units_by_code(engine)
    assert units["G9"].district_id == units["D03"].id


def test_reimport_updates_names_by_code_without_duplicating(engine, tmp_path):
    import_districts(engine, tmp_path)
    before = units_by_code(engine)
    renamed = DISTRICTS.assign(name=["West New", "East New", "North East New"])
    report = import_districts(engine, tmp_path / "again", renamed)
    assert (report.inserted, report.updated, report.created_city_root) == (0, 3, False)
    after = units_by_code(engine)
    assert len(after) == len(before) == 4
    assert after["D01"].name_en == "West New" and after["D01"].id == before["D01"].id


@pytest.mark.parametrize("kind", ["square", "hex"])
def test_generated_grid_covers_each_parent_exactly_without_overlaps(engine, tmp_path, kind):
    report = import_districts(engine, tmp_path, generate_grid=kind, cell_size=800)
    assert report.grid_parents == 3 and report.grid_cells > 50
    assert report.slivers_merged > 0  # jagged borders leave slivers, which are merged, not lost
    with store.reading(engine) as conn:
        cells = geo.load_units(conn, level=schema.GRID)
        districts = geo.load_units(conn, level=schema.DISTRICT).set_index("id")
    assert len(cells) == report.grid_cells
    for district_id, group in cells.groupby("parent_id"):
        parent = districts.loc[district_id]
        assert group["area_m2"].sum() == pytest.approx(parent["area_m2"], rel=0.01)
        assert all(code.startswith(f"{parent['code']}-G") for code in group["code"])
        assert set(group["district_id"]) == {district_id}
    whole = geo_grid.cell_area(kind, 800)
    assert cells["area_m2"].min() >= 0.05 * whole
    assert (np.isclose(cells["area_m2"], whole, rtol=0.005)).sum() > 20  # interior cells are full-size
    geoms = np.asarray(cells.geometry.values, dtype=object)
    left, right = shapely.STRtree(geoms).query(geoms, predicate="intersects")
    pairs = left < right
    overlap = shapely.area(shapely.intersection(geoms[left[pairs]], geoms[right[pairs]]))
    assert overlap.max() < 1e-12  # degrees²: shared edges only


def test_regenerating_with_another_cell_size_replaces_the_cells(engine, tmp_path):
    import_districts(engine, tmp_path, generate_grid="square", cell_size=800)
    first = len(units_by_code(engine, level=schema.GRID))
    report = geo_import.import_boundaries(engine, None, "district", generate_grid="square", cell_size=1600)
    cells = units_by_code(engine, level=schema.GRID)
    assert len(cells) == report.grid_cells < first
    assert report.stale_cells_removed == first - report.grid_cells  # every old cell beyond the new numbering is gone
    assert all(cell.name_en.startswith(("West grid", "East grid", "North East grid")) for cell in cells.values())


def test_regenerating_refuses_to_drop_cells_a_worker_is_assigned_to(engine, tmp_path):
    import_districts(engine, tmp_path, generate_grid="square", cell_size=800)
    before = units_by_code(engine)
    last_cell = max(code for code in before if code.startswith("D01-G"))
    with engine.begin() as conn:
        conn.execute(schema.workers.insert().values(code="W1", name_en="Wang", name_zh="王", grid_id=before[last_cell].id))
    with pytest.raises(ValidationError, match=f"{last_cell} still has workers, incidents or micro-grids"):
        geo_import.import_boundaries(engine, None, "district", generate_grid="square", cell_size=1600)
    after = units_by_code(engine)
    assert after.keys() == before.keys()
    assert all(after[code].geometry.equals(before[code].geometry) for code in before)


def _points(tmp_path) -> Path:
    points = gpd.GeoDataFrame({"code": ["P"], "name": ["p"]}, geometry=[shapely.Point(106.5, 29.5)], crs=4326)
    return write(points, tmp_path / "points", "geojson")


def _garbage(tmp_path) -> Path:
    path = tmp_path / "garbage.geojson"
    path.write_text("this is not geojson", encoding="utf-8")
    return path


def _empty(tmp_path) -> Path:
    path = tmp_path / "empty.geojson"
    path.write_bytes(b"")
    return path


def _no_features(tmp_path) -> Path:
    path = tmp_path / "none.geojson"
    path.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    return path


def _no_crs_projected(tmp_path) -> Path:
    projected = DISTRICTS.to_crs(epsg=32648).set_crs(None, allow_override=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="'crs' was not provided")  # exactly the point here
        return write(projected, tmp_path / "nocrs", "shp")


def _beijing(tmp_path) -> Path:
    frame = DISTRICTS.copy()
    frame.geometry = DISTRICTS.geometry.translate(xoff=10.0, yoff=10.4)
    frame["code"] = ["B1", "B2", "B3"]
    return write(frame, tmp_path / "beijing", "geojson")


BAD_FILES = {
    "not-readable": (_garbage, {}, "cannot read garbage.geojson as GeoJSON, zipped Shapefile or GeoPackage"),
    "missing-file": (lambda tmp: tmp / "nowhere.geojson", {}, "no such file"),
    "empty-file": (_empty, {}, "empty.geojson is empty"),
    "no-features": (_no_features, {}, "has no features"),
    "no-polygons": (_points, {}, "has no polygons (found Point x1)"),
    "missing-field": (
        lambda tmp: write(DISTRICTS, tmp / "f", "geojson"),
        {"name_field": "NAME_EN"},
        "has no field 'NAME_EN'; available fields: code, name, name_zh",
    ),
    "unknown-crs": (lambda tmp: write(DISTRICTS, tmp / "f", "geojson"), {"source_crs": "EPSG:999999"}, "unknown CRS"),
    "no-crs-not-lonlat": (_no_crs_projected, {}, "has no CRS and its coordinates are not lon/lat"),
    "outside-the-city": (_beijing, {}, "none of its 3 units overlap the city"),
    "grid-too-fine": (
        lambda tmp: write(street_frame([None] * 4), tmp / "s", "geojson"),
        {"generate_grid": "square", "cell_size": 10},
        "--cell-size 10 m would make about",
    ),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_a_bad_file_gives_one_clear_line_and_changes_nothing(engine, tmp_path, case):
    import_districts(engine, tmp_path / "good")
    before = units_by_code(engine)
    make, options, message = BAD_FILES[case]
    path = make(tmp_path)
    kwargs = {"code_field": "code", "name_field": "name"} | options
    with pytest.raises(ValidationError) as caught:
        # 'grid-too-fine' writes the districts first and fails after: the transaction undoes it.
        geo_import.import_boundaries(engine, path, "street" if case == "grid-too-fine" else "district", **kwargs)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    after = units_by_code(engine)
    assert after.keys() == before.keys()
    assert [u.name_en for u in after.values()] == [u.name_en for u in before.values()]


def test_simplified_geojson_keeps_neighbours_meeting_and_carries_properties(engine, tmp_path):
    # Extra vertices along straight borders are what simplification should drop.
    detailed = DISTRICTS.set_geometry(DISTRICTS.geometry.segmentize(0.002))
    import_districts(engine, tmp_path, detailed, generate_grid="hex", cell_size=700)
    with store.reading(engine) as conn:
        collection = geo.simplified_geojson(conn, schema.DISTRICT)
        grids = geo.simplified_geojson(conn, schema.GRID)
    assert [f["properties"]["code"] for f in collection["features"]] == ["D01", "D02", "D03"]
    assert collection["features"][0]["properties"]["name_zh"] == "西区"
    shapes = [shapely.geometry.shape(f["geometry"]) for f in collection["features"]]
    assert (
        sum(len(shapely.get_coordinates(s)) for s in shapes) < sum(len(shapely.get_coordinates(g)) for g in detailed.geometry) / 3
    )
    assert shapely.area(shapely.intersection(shapes[0], shapes[1])) < 1e-12
    # No gaps or overlaps opened between neighbours: the pieces still add up to the whole.
    assert sum(s.area for s in shapes) == pytest.approx(shapely.union_all(shapes).area, rel=1e-9)
    assert shapely.union_all(shapes).area == pytest.approx(shapely.union_all(DISTRICTS.geometry).area, rel=0.02)
    assert len(grids["features"]) > 50 and all(f["properties"]["parent_id"] for f in grids["features"])


def test_cli_imports_and_prints_a_summary(tmp_path):
    from app import cli

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    path = write(DISTRICTS.to_crs(epsg=4547), tmp_path, "gpkg")
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "import-boundaries",
            str(path),
            "--level",
            "区县",
            "--name-zh-field",
            "name_zh",
            "--generate-grid",
            "square",
            "--cell-size",
            "1000",
        ],
        env={"CITYBRAIN_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    assert "inserted 3, updated 0" in result.output
    assert "generated" in result.output and "grid cells in 3 district units" in result.output

    result = runner.invoke(
        cli, ["import-boundaries", str(path), "--level", "street", "--code-field", "CODE"], env={"CITYBRAIN_DATABASE_URL": url}
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == ["Error: units.gpkg has no field 'CODE'; available fields: code, name, name_zh"]
    engine = store.make_engine(url)
    try:
        assert unit_count(engine) == 4 + len(units_by_code(engine, level=schema.GRID))
    finally:
        engine.dispose()
