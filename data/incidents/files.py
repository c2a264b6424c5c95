"""Incident file import: CSV or GeoJSON points, checked row by row, stored in chunks through report_checked_incidents.

Rows that cannot be used (no id, bad time, unknown category, bad priority, bad coordinate, an id
repeated inside the file) go to a rejects CSV: the original row plus a ``reason`` column. Rows
whose point lies in no grid are imported as unlocated. Problems with the file itself (missing,
unreadable, a mapped column absent, a bad category map) raise ValidationError before anything is
written. Importing the same file again adds nothing: incidents are keyed by (source, id).
"""

from __future__ import annotations

import csv
import json
import math
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyproj
from pyproj.exceptions import CRSError
from sqlalchemy import Engine, select

from data import schema
from data.errors import ValidationError
from data.geo import crs as crs_mod
from data.geo.locate import GridLocator
from data.incidents.intake import FUTURE_SKEW, IntakeResult, known_external_ids, locate_reports, report_checked_incidents
from data.times import to_utc, utc_now

__all__ = ["ColumnMapping", "IncidentImportReport", "import_incident_file", "read_category_map"]

CHUNK_ROWS = 20_000
# PostgreSQL takes a chunk in pieces, two writers side by side (see data.incidents._copy_new): most of
# an import's time there is the server's, so a second backend uses the second core. Pieces are small so
# each holds its new rows only briefly before it queues for the change feed's lock.
PG_WRITERS = 2
PG_PIECE_ROWS = 5_000
# Files up to this size are parsed once into memory; larger ones are parsed twice, streaming: once to
# prove every line readable before anything is written, once to import.
WHOLE_FILE_BYTES = 64 * 1024 * 1024
MAX_ID_LENGTH = 128
MAX_SOURCE_LENGTH = 32
REASON = "reason"

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
PRIORITY_WORDS = {"urgent": 1, "紧急": 1, "high": 2, "高": 2, "重要": 2, "normal": 3, "普通": 3, "一般": 3}

# A clock time followed by a UTC offset or Z: the string names its own zone.
_HAS_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$")


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


@dataclass
class IncidentImportReport:
    """What an import did: rows read, new incidents, rows already stored, unlocated, rejected, speed."""

    path: Path
    read: int = 0
    imported: int = 0
    already_present: int = 0
    unlocated: int = 0
    rejected: int = 0
    rejects_path: Path | None = None
    seconds: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def rows_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def summary_lines(self) -> list[str]:
        """The summary the command prints."""
        lines = [
            f"read:            {self.read}",
            f"imported:        {self.imported}",
            f"already present: {self.already_present}",
            f"unlocated:       {self.unlocated} (imported without a grid)",
            f"rejected:        {self.rejected}" + (f" -> {self.rejects_path}" if self.rejected and self.rejects_path else ""),
        ]
        lines += [f"  {count:>7}  {reason}" for reason, count in sorted(self.reasons.items(), key=lambda kv: -kv[1])]
        lines.append(f"rows/s:          {self.rows_per_s:,.0f} ({self.seconds:.2f} s)")
        return lines


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


def _zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(str(tz).strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown time zone {tz!r}; use an IANA name such as Asia/Shanghai") from None


def _to_wgs84(crs_text: str):
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


def _is_geojson(path: Path) -> bool:
    if path.suffix.lower() in {".geojson", ".json"}:
        return True
    if path.suffix.lower() in {".csv", ".txt", ".tsv"}:
        return False
    with path.open("rb") as handle:
        return handle.read(64).lstrip().startswith(b"{")


def _csv_chunks(path: Path, encoding: str, chunk_rows: int, usecols=None) -> Iterator[pd.DataFrame]:
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


def _csv_header(path: Path, encoding: str) -> list[str]:
    try:
        header = pd.read_csv(path, dtype=str, nrows=0, encoding=encoding, sep="\t" if path.suffix.lower() == ".tsv" else ",")
    except pd.errors.EmptyDataError:
        raise ValidationError(f"{path} is empty: expected a header row and incident rows") from None
    return [str(c) for c in header.columns]


def _check_csv_readable(path: Path, encoding: str, chunk_rows: int) -> int:
    """Parse the whole file before writing anything, so a broken line far down is fatal, not half an import."""
    rows = 0
    for chunk in _csv_chunks(path, encoding, chunk_rows):
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


def _geojson_frame(path: Path, encoding: str) -> pd.DataFrame:
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


def _resolve_columns(mapping: ColumnMapping, columns: list[str], path: Path, geojson: bool) -> dict[str, str | None]:
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


# --- checking rows ---------------------------------------------------------------------------------------


@dataclass
class _Context:
    """Everything a chunk needs, prepared once per import."""

    columns: dict[str, str | None]
    categories: dict[str, int]  # every accepted spelling -> category id
    category_map: dict[str, str]
    zone: ZoneInfo
    to_wgs84: object
    source: str
    now: datetime
    seen: dict[str, int]  # id -> row number of its first usable occurrence
    locator: GridLocator


def _category_lookup(conn) -> dict[str, int]:
    """Category ids by code, lower-case code, Chinese name and lower-case English name (codes win)."""
    c = schema.categories
    rows = conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh).where(c.c.active.is_(True))).all()
    lookup: dict[str, int] = {}
    for key_of in (lambda r: r.name_en.strip().lower(), lambda r: r.name_zh.strip(), lambda r: r.code.lower(), lambda r: r.code):
        for r in rows:
            lookup[key_of(r)] = r.id
    return lookup


def _find_category(lookup: Mapping[str, int], value: str) -> int | None:
    return lookup.get(value, lookup.get(value.lower()))


def _parse_times(texts: list[str], zone: ZoneInfo) -> np.ndarray:
    """Text times -> UTC as datetime64[us] (NaT where blank or unreadable).

    Times without an offset are local to `zone`; offsets (+08:00, Z, UTC) and epoch seconds or
    milliseconds are honoured. ISO-like text is parsed in bulk; the odd formats (2025/3/3 8:05,
    2025年3月3日 8:05) fall back to the slower free-form parser, row by row.
    """
    n = len(texts)
    out = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
    naive, aware, epoch = [], [], []
    for i, text in enumerate(texts):
        if not text:
            continue
        if text.isdigit() and len(text) in (10, 13):
            epoch.append(i)
        elif _HAS_OFFSET.search(text):
            aware.append(i)
        else:
            naive.append(i)
    values = np.array(texts, dtype=object)
    if epoch:
        numbers = values[epoch].astype(np.int64)
        out[epoch] = np.where(numbers >= 10**11, numbers * 1000, numbers * 1_000_000).astype("datetime64[us]")
    if aware:
        part = pd.Series(values[aware]).str.replace(r"\s*UTC$", "+00:00", regex=True)
        parsed = pd.to_datetime(part, utc=True, errors="coerce", format="ISO8601")
        retry = parsed.isna().to_numpy()
        if retry.any():
            parsed[retry] = pd.to_datetime(part[retry], utc=True, errors="coerce", format="mixed")
        out[aware] = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    if naive:
        part = pd.Series(values[naive])
        parsed = pd.to_datetime(part, errors="coerce", format="ISO8601")
        retry = parsed.isna().to_numpy()
        if retry.any():
            tidy = part[retry].str.replace(r"[年月/.]", "-", regex=True).str.replace("日", " ", regex=False).str.strip()
            parsed[retry] = pd.to_datetime(tidy, errors="coerce", format="mixed")
        local = parsed.dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        out[naive] = local.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(dtype="datetime64[us]")
    return out


def _check_chunk(frame: pd.DataFrame, ctx: _Context, first_row: int) -> tuple[list[dict], list[str | None]]:
    """(rows for report_checked_incidents, a reason per input row: None where the row is usable)."""
    n = len(frame)
    reasons: list[str | None] = [None] * n

    def reject(bad, reason_of) -> None:
        for i in np.flatnonzero(bad):
            if reasons[i] is None:
                reasons[i] = reason_of(i)

    def text(name: str) -> list[str]:
        # Plain lists: per-cell string work in a comprehension is several times faster than pandas' .str.
        column = ctx.columns.get(name)
        return [v.strip() for v in frame[column].tolist()] if column else [""] * n

    if "_geometry_error" in frame:
        geom_errors = frame["_geometry_error"].tolist()
        reject([bool(e) for e in geom_errors], lambda i: geom_errors[i])

    ids = text("id")
    reject([not v for v in ids], lambda i: "missing id")
    reject([len(v) > MAX_ID_LENGTH for v in ids], lambda i: f"id longer than {MAX_ID_LENGTH} characters")

    raw_times = text("time")
    times = _parse_times(raw_times, ctx.zone)
    reject([not v for v in raw_times], lambda i: "missing time")
    reject(np.isnat(times), lambda i: f"bad time {raw_times[i]!r}")
    limit = np.datetime64((ctx.now + FUTURE_SKEW).replace(tzinfo=None), "us")
    reject(times > limit, lambda i: f"time {raw_times[i]!r} is in the future")

    raw_cat = text("category")
    category_ids = [_find_category(ctx.categories, ctx.category_map.get(v, v)) if v else None for v in raw_cat]
    reject([not v for v in raw_cat], lambda i: "missing category")
    reject([c is None for c in category_ids], lambda i: f"unknown category {raw_cat[i]!r}")

    raw_pri = text("priority")
    priorities = [_PRIORITY_TEXT[v] if v in _PRIORITY_TEXT else _priority(v) for v in raw_pri]
    reject([p is None for p in priorities], lambda i: f"bad priority {raw_pri[i]!r} (use 1 urgent, 2 high, 3 normal)")

    lon_text, lat_text = text("lon"), text("lat")
    lon = pd.to_numeric(np.array(lon_text, dtype=object), errors="coerce").astype(float)
    lat = pd.to_numeric(np.array(lat_text, dtype=object), errors="coerce").astype(float)
    has_lon, has_lat = np.array([bool(v) for v in lon_text]), np.array([bool(v) for v in lat_text])
    reject(
        (has_lon & ~np.isfinite(lon)) | (has_lat & ~np.isfinite(lat)),
        lambda i: f"bad coordinate {lon_text[i]!r}, {lat_text[i]!r}",
    )
    both = np.isfinite(lon) & np.isfinite(lat)
    lon = np.where(both, lon, np.nan)
    lat = np.where(both, lat, np.nan)
    if both.any():
        lon[both], lat[both] = ctx.to_wgs84(lon[both], lat[both])
    reject(
        both & ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90)), lambda i: f"coordinate {lon_text[i]}, {lat_text[i]} is not on Earth"
    )

    descriptions, addresses = text("description"), text("address")
    reported = pd.DatetimeIndex(times).tz_localize("UTC").to_pydatetime()
    lons, lats = lon.tolist(), lat.tolist()
    rows: list[dict] = []
    for i in range(n):
        if reasons[i] is not None:
            continue
        first = ctx.seen.setdefault(ids[i], first_row + i)
        if first != first_row + i:
            reasons[i] = f"duplicate id {ids[i]!r} (first on row {first})"
            continue
        rows.append(
            {
                "source": ctx.source,
                "external_id": ids[i],
                "category_id": category_ids[i],
                "priority": priorities[i],
                "description": descriptions[i],
                "address": addresses[i] or None,
                "lon": None if math.isnan(lons[i]) else lons[i],
                "lat": None if math.isnan(lats[i]) else lats[i],
                "reported_at": reported[i],
            }
        )
    return rows, reasons


_PRIORITY_TEXT = {"": 3, "1": 1, "2": 2, "3": 3}


def _priority(value: str) -> int | None:
    if value == "":
        return 3
    word = PRIORITY_WORDS.get(value.lower())
    if word is not None:
        return word
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if number in (1.0, 2.0, 3.0) else None


# --- the import ----------------------------------------------------------------------------------------


def import_incident_file(
    engine: Engine,
    path: Path | str,
    mapping: ColumnMapping = ColumnMapping(),
    *,
    source: str = "import",
    tz: str = "Asia/Shanghai",
    crs: str = "EPSG:4326",
    category_map: Mapping[str, str] | None = None,
    rejects_path: Path | str | None = None,
    encoding: str = "utf-8-sig",
    chunk_rows: int = CHUNK_ROWS,
    actor: str | None = None,
    now: datetime | None = None,
    locator: GridLocator | None = None,
) -> IncidentImportReport:
    """Import a CSV or GeoJSON (points) file of incidents; see the module docstring for what happens to each row.

    Raises ValidationError (having written nothing) when the file is missing, unreadable or lacks a
    mapped column, or an option is bad. Rejected rows go to `rejects_path` (default: FILE.rejects.csv
    next to the file), written only when there are any.
    """
    started = time.perf_counter()
    path = Path(path)
    source = (source or "").strip()
    if not source or len(source) > MAX_SOURCE_LENGTH:
        raise ValidationError(f"--source must be 1 to {MAX_SOURCE_LENGTH} characters; got {source!r}")
    if chunk_rows < 1:
        raise ValidationError("chunk size must be at least 1")
    zone = _zone(tz)
    to_wgs84 = _to_wgs84(crs)
    now = to_utc(now, "now") if now is not None else utc_now()
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    rejects_path = Path(rejects_path) if rejects_path is not None else path.with_name(path.name + ".rejects.csv")

    try:
        geojson = _is_geojson(path)
        if geojson:
            whole = _geojson_frame(path, encoding)
            columns = list(whole.columns)
            chunks = (whole.iloc[i : i + chunk_rows] for i in range(0, len(whole), chunk_rows))
        else:
            columns = _csv_header(path, encoding)
            if path.stat().st_size <= WHOLE_FILE_BYTES:
                whole = pd.concat(list(_csv_chunks(path, encoding, chunk_rows)), ignore_index=True)
                chunks = (whole.iloc[i : i + chunk_rows] for i in range(0, len(whole), chunk_rows))
            else:
                _check_csv_readable(path, encoding, chunk_rows)
                chunks = None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not {encoding} text; try --encoding gb18030") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise ValidationError(f"{path} cannot be read as CSV: {str(exc).strip().splitlines()[-1]}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    resolved = _resolve_columns(mapping, columns, path, geojson)

    with engine.connect() as conn:
        conn.info["write"] = False
        with conn.begin():
            categories = _category_lookup(conn)
            if locator is None:
                locator = GridLocator.from_conn(conn)
    category_map = dict(category_map or {})
    unknown_targets = sorted({code for code in category_map.values() if _find_category(categories, code) is None})
    if unknown_targets:
        raise ValidationError(f"category map points to unknown categories: {', '.join(unknown_targets)}")

    ctx = _Context(resolved, categories, category_map, zone, to_wgs84, source, now, {}, locator)
    report = IncidentImportReport(path=path)
    actor = actor or f"import:{path.name}"[:128]
    if chunks is None:
        chunks = _csv_chunks(path, encoding, chunk_rows)
    original_columns = [c for c in columns if c != "_geometry_error"]
    rejects = _RejectsWriter(rejects_path, original_columns, geojson)
    postgres = engine.dialect.name == "postgresql"
    writers, piece_rows = (PG_WRITERS, PG_PIECE_ROWS) if postgres else (1, chunk_rows)
    pending: deque[Future] = deque()
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="import-write") as pool:
        try:
            for chunk, rows, reasons in _checked_chunks(chunks, ctx):
                report.read += len(chunk)
                for start in range(0, len(rows), piece_rows):
                    piece = rows[start : start + piece_rows]
                    pending.append(pool.submit(_write_piece, engine, source, piece, actor, postgres))
                    while len(pending) > 2 * writers:
                        _count_stored(report, pending.popleft().result())
                for reason in rejects.write(chunk, reasons):
                    report.rejected += 1
                    kind = _reason_kind(reason)
                    report.reasons[kind] = report.reasons.get(kind, 0) + 1
            while pending:
                _count_stored(report, pending.popleft().result())
        except UnicodeDecodeError:
            _cancel(pending)
            raise ValidationError(f"{path} is not {encoding} text; try --encoding gb18030") from None
        except BaseException:
            _cancel(pending)
            raise
    report.rejects_path = rejects_path if rejects.written else None
    report.seconds = time.perf_counter() - started
    return report


def _write_piece(engine: Engine, source: str, rows: list[dict], actor: str, copy: bool) -> tuple[int, list[IntakeResult]]:
    """Store checked rows in a transaction of their own, skipping those already stored; (rows, their results)."""
    with engine.begin() as conn:
        stored = _already_stored(conn, source, [row["external_id"] for row in rows])
        fresh = [row for row in rows if row["external_id"] not in stored]
        return len(rows), report_checked_incidents(conn, fresh, actor=actor, copy=copy)


def _count_stored(report: IncidentImportReport, outcome: tuple[int, list[IntakeResult]]) -> None:
    rows, results = outcome
    created = [r for r in results if r.created]
    report.imported += len(created)
    report.already_present += rows - len(created)
    report.unlocated += sum(r.unlocated for r in created)


def _cancel(pending: deque[Future]) -> None:
    """Drop pieces not yet started (a failed import stops; pieces already writing finish, each whole)."""
    for future in pending:
        future.cancel()


def _already_stored(conn, source: str, external_ids: list[str]) -> set[str]:
    """The ids among `external_ids` already stored for `source`.

    A re-import skips known rows cheaply this way; the writer still guards against rows that arrive
    meanwhile (ON CONFLICT DO NOTHING, or on PostgreSQL COPY stepping back: data.incidents._copy_new).
    """
    inc = schema.incidents
    return set(conn.execute(select(inc.c.external_id).where(known_external_ids(conn, source, external_ids))).scalars())


def _checked_chunks(chunks, ctx: _Context) -> Iterator[tuple[pd.DataFrame, list[dict], list[str | None]]]:
    """(chunk, usable rows, reasons) for each chunk, reading and checking the next chunk in a worker
    thread while the caller stores the current one: SQLite and PostgreSQL drivers release the GIL while
    they write, so parsing overlaps the database's work instead of waiting for it."""
    iterator = iter(chunks)
    first_row = 1

    def prepare():
        nonlocal first_row
        chunk = next(iterator, None)
        if chunk is None:
            return None
        rows, reasons = _check_chunk(chunk, ctx, first_row)
        locate_reports(ctx.locator, rows)
        first_row += len(chunk)
        return chunk, rows, reasons

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-check") as pool:
        pending = pool.submit(prepare)
        while (ready := pending.result()) is not None:
            pending = pool.submit(prepare)
            yield ready


class _RejectsWriter:
    """Appends rejected rows (original columns plus `reason`) to the rejects CSV, created on first use."""

    def __init__(self, path: Path, columns: list[str], geojson: bool):
        self.path, self.columns, self.geojson = path, columns, geojson
        self.written = False

    def write(self, chunk: pd.DataFrame, reasons: list[str | None]) -> list[str]:
        bad = [i for i, reason in enumerate(reasons) if reason is not None]
        if not bad:
            return []
        out = chunk.iloc[bad][self.columns].copy()
        if self.geojson:
            out = out.rename(columns={"_lon": "lon", "_lat": "lat"})
        out[REASON] = [reasons[i] for i in bad]
        # A BOM on the first write lets Excel open the Chinese text correctly.
        out.to_csv(
            self.path,
            mode="a" if self.written else "w",
            header=not self.written,
            index=False,
            encoding="utf-8" if self.written else "utf-8-sig",
        )
        self.written = True
        return [reasons[i] for i in bad]


def _reason_kind(reason: str) -> str:
    """A reason without the row's own value, to count reasons by kind in the summary."""
    return re.sub(r"\s*('.*'|\(first on row \d+\)|-?[\d.]+, -?[\d.]+)", "", reason).strip() or reason
