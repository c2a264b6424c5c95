"""Reading an incident file: CSV or GeoJSON as text columns, which column holds each field, the category map, time zone and CRS."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyproj
from pyproj.exceptions import CRSError

from data.errors import ValidationError
from data.geo import crs as crs_mod

__all__ = ["ColumnMapping", "read_category_map"]

# Names looked for (case-insensitively) when a column is not mapped explicitly.
DEFAULT_NAMES = {
    "time": ("reported_at", "time", "datetime", "created_at", "上报时间"),
    "lon": ("lon", "lng", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
    "category": ("category", "category_code", "type", "类别"),
    "id": ("id", "external_id", "case_id", "编号"),
    "description": ("description", "desc", "content", "描述"),
    "priority": ("priority", "优先级"),
    "address": ("address", "地址"),
}
REQUIRED = ("id", "time", "category", "lon", "lat")


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of the file holds each field; None means "look for the usual names" (DEFAULT_NAMES).

    A column named explicitly must exist. For GeoJSON, lon and lat come from the point geometry
    unless mapped explicitly to properties.
    """

    time: str | None = None
    lon: str | None = None
    lat: str | None = None
    category: str | None = None
    id: str | None = None
    description: str | None = None
    priority: str | None = None
    address: str | None = None


# --- configuration checks ----------------------------------------------------------------------


def read_category_map(path: Path | str | None = None, pairs: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """{source value: category code} from a two-column CSV (an optional header 'source,code') and SRC=CODE pairs."""
    mapping: dict[str, str] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                for number, row in enumerate(csv.reader(handle), start=1):
                    if not row or all(not cell.strip() for cell in row):
                        continue
                    if len(row) < 2:
                        raise ValidationError(f"category map {path} line {number}: expected 'source,code', got {','.join(row)!r}")
                    src, code = row[0].strip(), row[1].strip()
                    if number == 1 and (src.lower(), code.lower()) == ("source", "code"):
                        continue
                    mapping[src] = code
        except OSError as exc:
            raise ValidationError(f"cannot read category map {path}: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ValidationError(f"category map {path} is not UTF-8 text") from None
    for pair in pairs:
        src, sep, code = pair.partition("=")
        if not sep or not src.strip() or not code.strip():
            raise ValidationError(f"--map needs SRC=CODE, got {pair!r}")
        mapping[src.strip()] = code.strip()
    return mapping


def parse_zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(tz).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai") from None


def wgs84_converter(crs_text: str):
    """A function (lon array, lat array) -> WGS84 arrays for the file's coordinate system."""
    parsed = crs_mod.parse_crs(crs_text)
    if parsed == crs_mod.GCJ02:
        return crs_mod.gcj02_to_wgs84
    if parsed == crs_mod.WGS84:
        return lambda x, y: (np.asarray(x, float), np.asarray(y, float))
    try:
        transformer = pyproj.Transformer.from_crs(parsed, crs_mod.WGS84, always_xy=True)
    except CRSError as exc:
        raise ValidationError(f"cannot convert {crs_text} to WGS84: {exc}") from None
    return lambda x, y: transformer.transform(np.asarray(x, float), np.asarray(y, float))


# --- reading the file --------------------------------------------------------------------------------


def is_geojson(path: Path) -> bool:
    if path.suffix.lower() in {".geojson", ".json"}:
        return True
    if path.suffix.lower() in {".csv", ".txt", ".tsv"}:
        return False
    with path.open("rb") as handle:
        return handle.read(64).lstrip().startswith(b"{")


def csv_chunks(path: Path, encoding: str, chunk_rows: int, usecols=None) -> Iterator[pd.DataFrame]:
    # Every cell as text, blanks as "": the rejects file gives back exactly what was read.
    return pd.read_csv(
        path,
        dtype=str,
        keep_default_na=False,
        na_filter=False,
        encoding=encoding,
        chunksize=chunk_rows,
        sep="\t" if path.suffix.lower() == ".tsv" else ",",
        skipinitialspace=False,
        usecols=usecols,
    )


def csv_header(path: Path, encoding: str) -> list[str]:
    try:
        header = pd.read_csv(path, dtype=str, nrows=0, encoding=encoding, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{path} is empty: expected a header row and incident rows") from None
    return [str(c) for c in header.columns]


def check_csv_readable(path: Path, encoding: str, chunk_rows: int) -> int:
    """Parse the whole file before writing anything, so a broken line far down is fatal, not half an import."""
    rows = 0
    for chunk in csv_chunks(path, encoding, chunk_rows):
        rows += len(chunk)
    return rows


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def geojson_frame(path: Path, encoding: str) -> pd.DataFrame:
    """Properties as text columns plus the point's coordinates in '_lon' / '_lat' and problems in '_geometry_error'."""
    try:
        with path.open(encoding=encoding) as handle:
            doc = json.load(handle)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path} is not valid GeoJSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise ValidationError(f"{path} is not a GeoJSON FeatureCollection")
    records, lons, lats, errors = [], [], [], []
    for feature in doc["features"]:
        props = feature.get("properties") if isinstance(feature, dict) else None
        records.append({str(k): _cell_text(v) for k, v in (props or {}).items()})
        geom = feature.get("geometry") if isinstance(feature, dict) else None
        lon = lat = ""
        error = ""
        if geom:
            coords = geom.get("coordinates")
            if geom.get("type") != "Point":
                error = f"geometry is a {geom.get('type')}, not a point"
            elif isinstance(coords, list) and len(coords) >= 2:
                lon, lat = _cell_text(coords[0]), _cell_text(coords[1])
            else:
                error = "point without coordinates"
        lons.append(lon)
        lats.append(lat)
        errors.append(error)
    frame = pd.DataFrame.from_records(records).fillna("")
    frame["_lon"], frame["_lat"], frame["_geometry_error"] = lons, lats, errors
    return frame


def resolve_columns(mapping: ColumnMapping, columns: list[str], path: Path, geojson: bool) -> dict[str, str | None]:
    """{field: column} for every field; a named column that is absent, or a required one not found, is fatal."""
    available = ", ".join(c for c in columns if not c.startswith("_")) or "(none)"
    lowered: dict[str, str] = {}
    for c in columns:
        lowered.setdefault(c.strip().lower(), c)
    resolved: dict[str, str | None] = {}
    for f in fields(ColumnMapping):
        name = getattr(mapping, f.name)
        if name is not None:
            column = name if name in columns else lowered.get(name.strip().lower())
            if column is None:
                raise ValidationError(f"column {name!r} (--{f.name}-col) is not in {path.name}; its columns are: {available}")
            resolved[f.name] = column
            continue
        if geojson and f.name in ("lon", "lat"):
            resolved[f.name] = f"_{f.name}"
            continue
        found = next((lowered[n.lower()] for n in DEFAULT_NAMES[f.name] if n.lower() in lowered), None)
        if found is None and f.name in REQUIRED:
            raise ValidationError(
                f"no {f.name} column in {path.name} (looked for {', '.join(DEFAULT_NAMES[f.name])}; "
                f"name it with --{f.name}-col); its columns are: {available}"
            )
        resolved[f.name] = found
    return resolved
