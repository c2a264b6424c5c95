"""Incident file import: CSV or GeoJSON points, checked row by row, stored in chunks through report_checked_incidents.

Rows that cannot be used (no id, bad time, unknown category, bad priority, bad coordinate, an id
repeated inside the file) go to a rejects CSV: the original row plus a ``reason`` column. Rows
whose point lies in no grid are imported as unlocated. Problems with the file itself (missing,
unreadable, a mapped column absent, a bad category map) raise ValidationError before anything is
written. Importing the same file again adds nothing: incidents are keyed by (source, id).
Reading the file and its options is data/incidents/file_reading.py; checking its rows, file_rows.py.
"""

from __future__ import annotations

import csv
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from data import schema
from data.errors import ValidationError
from data.geo.locate import GridLocator
from data.incidents.file_reading import (
    ColumnMapping,
    check_csv_readable,
    csv_chunks,
    csv_header,
    geojson_frame,
    is_geojson,
    parse_zone,
    resolve_columns,
    wgs84_converter,
)
from data.incidents.file_rows import RowContext, category_lookup, check_chunk, find_category
from data.incidents.intake import IntakeResult, known_external_ids, locate_reports, report_checked_incidents
from data.times import to_utc, utc_now

__all__ = ["IncidentImportReport", "import_incident_file"]

CHUNK_ROWS = 20_000
# PostgreSQL takes a chunk in pieces, two writers side by side (see _copy_new in data/incidents/bulk_insert.py):
# most of an import's time there is the server's, so a second backend uses the second core. Pieces are small so
# each holds its new rows only briefly before it queues for the change feed's lock.
PG_WRITERS = 2
PG_PIECE_ROWS = 5_000
# Files up to this size are parsed once into memory; larger ones are parsed twice, streaming: once to
# prove every line readable before anything is written, once to import.
WHOLE_FILE_BYTES = 64 * 1024 * 1024
MAX_SOURCE_LENGTH = 32
REASON = "reason"


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


# --- the import ----------------------------------------------------------------------------------------


def import_incident_file(
    engine: Engine,
    path: Path | str,
    mapping: ColumnMapping = ColumnMapping(),  # noqa: B008 (frozen: one shared default is safe)
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
    zone = parse_zone(tz)
    to_wgs84 = wgs84_converter(crs)
    now = to_utc(now, "now") if now is not None else utc_now()
    if not path.is_file():
        raise ValidationError(f"{path}: no such file")
    rejects_path = Path(rejects_path) if rejects_path is not None else path.with_name(path.name + ".rejects.csv")

    try:
        geojson = is_geojson(path)
        if geojson:
            whole = geojson_frame(path, encoding)
            columns = list(whole.columns)
            chunks = (whole.iloc[i : i + chunk_rows] for i in range(0, len(whole), chunk_rows))
        else:
            columns = csv_header(path, encoding)
            if path.stat().st_size <= WHOLE_FILE_BYTES:
                whole = pd.concat(list(csv_chunks(path, encoding, chunk_rows)), ignore_index=True)
                chunks = (whole.iloc[i : i + chunk_rows] for i in range(0, len(whole), chunk_rows))
            else:
                check_csv_readable(path, encoding, chunk_rows)
                chunks = None
    except UnicodeDecodeError:
        raise ValidationError(f"{path} is not {encoding} text; try --encoding gb18030") from None
    except (pd.errors.ParserError, csv.Error) as exc:
        raise ValidationError(f"{path} cannot be read as CSV: {str(exc).strip().splitlines()[-1]}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    resolved = resolve_columns(mapping, columns, path, geojson)

    with engine.connect() as conn:
        conn.info["write"] = False
        with conn.begin():
            categories = category_lookup(conn)
            if locator is None:
                locator = GridLocator.from_conn(conn)
    category_map = dict(category_map or {})
    unknown_targets = sorted({code for code in category_map.values() if find_category(categories, code) is None})
    if unknown_targets:
        raise ValidationError(f"category map points to unknown categories: {', '.join(unknown_targets)}")

    ctx = RowContext(resolved, categories, category_map, zone, to_wgs84, source, now, {}, locator)
    report = IncidentImportReport(path=path)
    actor = actor or f"import:{path.name}"[:128]
    if chunks is None:
        chunks = csv_chunks(path, encoding, chunk_rows)
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
    meanwhile (ON CONFLICT DO NOTHING, or on PostgreSQL COPY stepping back: _copy_new in data/incidents/bulk_insert.py).
    """
    inc = schema.incidents
    return set(conn.execute(select(inc.c.external_id).where(known_external_ids(conn, source, external_ids))).scalars())


def _checked_chunks(chunks, ctx: RowContext) -> Iterator[tuple[pd.DataFrame, list[dict], list[str | None]]]:
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
        rows, reasons = check_chunk(chunk, ctx, first_row)
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
