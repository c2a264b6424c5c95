"""Importing incident files: a messy CSV (GCJ-02, local times, bad rows), GeoJSON, re-imports and fatal errors."""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from data import schema
from data.errors import ValidationError
from data.geo import crs
from data.incidents import file_import as intake_files
from data.incidents.file_import import import_incident_file
from data.incidents.file_reading import ColumnMapping, read_category_map
from data.times import from_db
from tests.factories import make_world

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
BASE = datetime(2025, 3, 3, 0, 0, tzinfo=UTC)  # 08:00 in Shanghai
SHANGHAI = timedelta(hours=8)
COLUMNS = ["case_no", "上报时间", "x", "y", "类型", "描述", "priority", "address"]
MAPPING = ColumnMapping(id="case_no", time="上报时间", lon="x", lat="y", category="类型", description="描述")

# What a bad row is rejected for, as the reason starts.
BAD_KINDS = {
    "blank_id": "missing id",
    "duplicate": "duplicate id",
    "unknown_category": "unknown category",
    "bad_time": "bad time",
    "future": "time",
    "bad_priority": "bad priority",
    "bad_coordinate": "bad coordinate",
}


def _time_text(at: datetime, style: int) -> str:
    """The same instant written five ways a real export might: naive local, slashes, offset, Z, epoch ms."""
    local = at + SHANGHAI
    return [
        local.strftime("%Y-%m-%d %H:%M:%S"),
        f"{local.year}/{local.month}/{local.day} {local.hour}:{local.minute:02d}",
        local.strftime("%Y-%m-%dT%H:%M:%S+08:00"),
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        str(int(at.timestamp() * 1000)),
    ][style % 5]


def messy_file(path: Path, world, n: int = 3000, seed: int = 11) -> list[dict]:
    """Write a CSV of n rows and return, per row, what should become of it ('ok', 'unlocated' or a BAD_KINDS key)."""
    rng = random.Random(seed)
    lattice = world.lattice
    categories = ["garbage", "Water", "暴露垃圾", "积水", "construction"]
    rows, expected, ok_ids = [], [], []
    for i in range(n):
        at = BASE + timedelta(minutes=i)
        grid = rng.randrange(len(lattice.grid_ids))
        cx, cy = lattice.center(grid)
        wgs = (cx + rng.uniform(-0.003, 0.003), cy + rng.uniform(-0.003, 0.003))
        gx, gy = crs.wgs84_to_gcj02(wgs[0], wgs[1])
        row = {
            "case_no": f"12345-{i:05d}",
            "上报时间": _time_text(at, i),
            "x": f"{float(gx):.7f}",
            "y": f"{float(gy):.7f}",
            "类型": rng.choice(categories),
            "描述": rng.choice(["路边垃圾堆积", "积水严重, 请尽快处理", 'quoted "text", with comma', ""]),
            "priority": rng.choice(["1", "2", "3", "", "urgent", "普通"]),
            "address": rng.choice(["", "渝中区解放碑"]),
        }
        kind = "ok"
        u = rng.random()
        if u < 0.03:
            row["case_no"], kind = "  ", "blank_id"
        elif u < 0.06 and ok_ids:
            row["case_no"], kind = rng.choice(ok_ids), "duplicate"
        elif u < 0.09:
            row["类型"], kind = "飞碟", "unknown_category"
        elif u < 0.11:
            row["上报时间"], kind = rng.choice(["someday", "2025-13-45 10:00", "32/01/2025"]), "bad_time"
        elif u < 0.12:
            row["上报时间"], kind = _time_text(NOW + timedelta(days=2), i), "future"
        elif u < 0.14:
            row["priority"], kind = rng.choice(["9", "high!"]), "bad_priority"
        elif u < 0.15:
            row["x"], kind = "abc", "bad_coordinate"
        elif u < 0.19:
            row["x"], row["y"], kind = "116.4074", "39.9042", "unlocated"  # Beijing: on Earth, outside the city
        elif u < 0.21:
            row["x"], row["y"], kind = "", "", "unlocated"
        if kind in ("ok", "unlocated"):
            ok_ids.append(row["case_no"])
        rows.append(row)
        expected.append({"kind": kind, "at": at, "wgs": wgs, "grid_id": lattice.grid_ids[grid], "id": row["case_no"]})
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return expected


@pytest.fixture
def world(engine):
    with engine.begin() as conn:
        return make_world(conn)


def _incident_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.incidents)).scalar_one()


def _category_map(tmp_path) -> dict[str, str]:
    map_file = tmp_path / "categories.csv"
    map_file.write_text("source,code\n积水,water\n", encoding="utf-8")
    return read_category_map(map_file, ["暴露垃圾=garbage"])


def _import(engine, path, **kwargs):
    kwargs.setdefault("category_map", _category_map(path.parent))
    return import_incident_file(engine, path, MAPPING, tz="Asia/Shanghai", crs="gcj02", now=NOW, chunk_rows=700, **kwargs)


def test_messy_csv_imports_good_rows_and_rejects_the_rest_with_reasons(engine, world, tmp_path):
    path = tmp_path / "12345_export.csv"
    expected = messy_file(path, world)
    kinds = [e["kind"] for e in expected]
    report = _import(engine, path)

    good = [e for e in expected if e["kind"] in ("ok", "unlocated")]
    assert report.read == len(expected)
    assert report.imported == len(good) == _incident_count(engine)
    assert report.unlocated == kinds.count("unlocated")
    assert report.already_present == 0
    assert report.rejected == len(expected) - len(good) > 0
    assert all(kinds.count(k) > 0 for k in BAD_KINDS), "every kind of bad row is in the file"

    # The rejects file holds each bad row as it was read, plus why.
    assert report.rejects_path == path.with_name(path.name + ".rejects.csv")
    with report.rejects_path.open(encoding="utf-8-sig", newline="") as handle:
        rejects = list(csv.DictReader(handle))
    assert list(rejects[0]) == [*COLUMNS, "reason"]
    bad = [(e, kinds[i]) for i, e in enumerate(expected) if kinds[i] in BAD_KINDS]
    assert len(rejects) == len(bad)
    for reject, (_, kind) in zip(rejects, bad, strict=True):
        assert reject["reason"].startswith(BAD_KINDS[kind]), (reject, kind)
    original = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    bad_rows = [original[i] for i, k in enumerate(kinds) if k in BAD_KINDS]
    assert [{c: r[c] for c in COLUMNS} for r in rejects] == bad_rows

    # Stored rows: GCJ-02 turned back into WGS84, local times into UTC, placed in the right grid.
    with engine.connect() as conn:
        stored = {r.external_id: r for r in conn.execute(select(schema.incidents))}
    for e in good:
        row = stored[e["id"]]
        assert from_db(row.reported_at) == e["at"]
        assert row.source == "import"
        if e["kind"] == "ok":
            assert row.lon == pytest.approx(e["wgs"][0], abs=1e-6) and row.lat == pytest.approx(e["wgs"][1], abs=1e-6)
            assert row.grid_id == e["grid_id"] and not row.unlocated
        else:
            assert row.unlocated and row.grid_id is None
    priorities = {row.priority for row in stored.values()}
    assert priorities == {1, 2, 3}


def test_reimporting_the_same_file_adds_nothing(engine, world, tmp_path):
    path = tmp_path / "export.csv"
    messy_file(path, world, n=600)
    first = _import(engine, path)
    count = _incident_count(engine)
    again = _import(engine, path)
    assert again.imported == 0
    assert again.already_present == first.imported
    assert again.rejected == first.rejected
    assert _incident_count(engine) == count


@pytest.mark.parametrize(
    "problem",
    [
        "missing file",
        "mapped column absent",
        "broken line",
        "broken line, streamed",
        "not utf-8",
        "unknown category map target",
        "empty file",
    ],
)
def test_fatal_errors_write_nothing(engine, world, tmp_path, monkeypatch, problem):
    path = tmp_path / "export.csv"
    messy_file(path, world, n=300)
    if problem.endswith("streamed"):
        # Big files are not held in memory: they are read through once before anything is stored.
        monkeypatch.setattr(intake_files, "WHOLE_FILE_BYTES", 0)
    kwargs, mapping = {}, MAPPING
    message = None
    if problem == "missing file":
        path, message = tmp_path / "nope.csv", "no such file"
    elif problem == "mapped column absent":
        mapping, message = ColumnMapping(id="case_no", time="time_of_report", lon="x", lat="y", category="类型"), "time_of_report"
    elif problem.startswith("broken line"):
        # A line near the end with too many fields: nothing before it may be stored either.
        with path.open("a", encoding="utf-8") as handle:
            handle.write("a,b,c,d,e,f,g,h,i,j,k\n")
        message = "cannot be read as CSV"
    elif problem == "not utf-8":
        path.write_bytes(path.read_bytes().replace("渝中区".encode(), "渝中区".encode("gbk")))
        message = "gb18030"
    elif problem == "unknown category map target":
        kwargs["category_map"], message = {"积水": "flood"}, "flood"
    elif problem == "empty file":
        path.write_text("", encoding="utf-8")
        message = "empty"
    with pytest.raises(ValidationError) as caught:
        import_incident_file(engine, path, mapping, tz="Asia/Shanghai", crs="gcj02", now=NOW, **kwargs)
    text = str(caught.value)
    assert message in text and "\n" not in text
    if problem == "mapped column absent":
        assert "case_no" in text and "上报时间" in text  # lists the columns there are
    assert _incident_count(engine) == 0
    assert not list(tmp_path.glob("*.rejects.csv"))


def test_geojson_points_with_default_column_names(engine, world, tmp_path):
    lattice = world.lattice
    inside = lattice.center(2)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": list(inside)},
            "properties": {"id": 1, "time": "2025-03-03 09:00:00", "category": "noise", "priority": 2},
        },
        {"type": "Feature", "geometry": None, "properties": {"id": 2, "time": "2025-03-03 09:05:00", "category": "garbage"}},
        {
            "type": "Feature",
            "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]},
            "properties": {"id": 3, "time": "2025-03-03 09:10:00", "category": "garbage"},
        },
    ]
    path = tmp_path / "points.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    report = import_incident_file(engine, path, tz="Asia/Shanghai", now=NOW)
    assert (report.imported, report.unlocated, report.rejected) == (2, 1, 1)
    with engine.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(select(schema.incidents))}
    assert rows["1"].grid_id == lattice.grid_ids[2] and rows["1"].priority == 2
    assert from_db(rows["1"].reported_at) == datetime(2025, 3, 3, 1, 0, tzinfo=UTC)
    assert rows["2"].unlocated
    rejects = list(csv.DictReader(report.rejects_path.open(encoding="utf-8-sig")))
    assert rejects[0]["id"] == "3" and "not a point" in rejects[0]["reason"]


def test_command_line_import_and_a_fatal_error(sqlite_engine, tmp_path, monkeypatch):
    from app import cli

    with sqlite_engine.begin() as conn:
        world = make_world(conn)
    path = tmp_path / "export.csv"
    expected = messy_file(path, world, n=400)
    monkeypatch.setenv("CITYBRAIN_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    (tmp_path / "map.csv").write_text("积水,water\n", encoding="utf-8")
    args = [
        "import-incidents",
        str(path),
        "--id-col",
        "case_no",
        "--time-col",
        "上报时间",
        "--lon-col",
        "x",
        "--lat-col",
        "y",
        "--category-col",
        "类型",
        "--crs",
        "gcj02",
        "--tz",
        "Asia/Shanghai",
        "--map",
        "暴露垃圾=garbage",
        "--category-map",
        str(tmp_path / "map.csv"),
        "--rejects",
        str(tmp_path / "bad.csv"),
        "--source",
        "12345",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    # The command checks times against the real clock, long past NOW: the "future" rows are fine here.
    good = sum(e["kind"] in ("ok", "unlocated", "future") for e in expected)
    assert f"imported:        {good}" in result.output
    assert "rows/s" in result.output and str(tmp_path / "bad.csv") in result.output
    assert _incident_count(sqlite_engine) == good

    again = CliRunner().invoke(cli, args)
    assert "imported:        0" in again.output and f"already present: {good}" in again.output

    broken_args = list(args)
    broken_args[broken_args.index("case_no")] = "编号"
    broken = CliRunner().invoke(cli, broken_args)
    assert broken.exit_code != 0
    assert "编号" in broken.output and len(broken.output.strip().splitlines()) == 1
