"""Intake (上报): report_incidents and report_checked_incidents, the checks of a reported row, locating it, known ids.

Callers pass a connection inside a transaction (``with engine.begin() as conn``); a batch either is
stored whole or raises a typed error from data/errors.py having written nothing. The inserts
themselves (SQLite, PostgreSQL, COPY) live in data/incidents/bulk_insert.py.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
from sqlalchemy import Text, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from data import schema
from data.errors import Conflict, ValidationError
from data.geo.locate import GridLocator
from data.incidents import lifecycle
from data.incidents.bulk_insert import insert_new_reports
from data.incidents.lifecycle import require_actor
from data.parse import id_or_none, parse_float, shown
from data.times import to_utc, utc_now
from data.xml_chars import describe_xml_unsafe, first_xml_unsafe

INC = schema.incidents

INTAKE_FIELDS = frozenset(
    {
        "source",
        "external_id",
        "category_id",
        "category_code",
        "priority",
        "description",
        "lon",
        "lat",
        "address",
        "reported_at",
        "media_url",
        "attributes",
    }
)
# How far in the future a report time may lie (clock skew between a device and the server).
FUTURE_SKEW = timedelta(minutes=5)


class IntakeResult(NamedTuple):
    """What became of one reported row: its incident, whether it is new, whether it has no grid.

    A named tuple, not a frozen dataclass: a file import makes one per row, and a frozen dataclass
    took a tenth of the writer's time to build them."""

    incident_id: int
    created: bool
    unlocated: bool


def report_incidents(
    conn: Connection,
    rows: list[dict],
    *,
    actor: str,
    locator: GridLocator | None = None,
    now: datetime | None = None,
) -> list[IntakeResult]:
    """Store reported incidents (上报), one IntakeResult per row in order; idempotent by (source, external_id).

    A pair already stored (before, concurrently, or earlier in this batch) is left untouched and
    reported with created=False. Every row is checked before anything is written, so a bad row
    raises ValidationError naming it and the batch writes nothing. Rows without a grid are kept
    with unlocated=True. Pass a prebuilt `locator` when calling often: building one reads every grid.
    """
    actor = require_actor(actor)
    now = to_utc(now, "now") if now is not None else utc_now()
    if not rows:
        return []
    categories = _active_categories(conn)
    records = [_intake_record(i, row, categories, now) for i, row in enumerate(rows)]
    return _store_reports(conn, records, actor, locator)


def report_checked_incidents(conn: Connection, records: list[dict], *, actor: str, copy: bool = False) -> list[IntakeResult]:
    """report_incidents for rows a bulk reader has already checked, typed and located (locate_reports)
    as report_incidents would (data/incidents/file_rows.py checks whole columns at once, ahead of the writer):
    checking them again row by row cost a quarter of a file import's time. Fields a record leaves out
    (media_url, attributes) are stored empty.

    `copy=True` (a file import's writer, on PostgreSQL) first tries COPY (_copy_new in
    data/incidents/bulk_insert.py), with the change feed's lock taken only for the events; records
    must then be new as far as the caller knows.
    """
    actor = require_actor(actor)
    records = [{"media_url": None, "attributes": None, **rec} for rec in records]
    return _store_reports(conn, records, actor, None, located=True, copy=copy)


def _store_reports(
    conn: Connection,
    records: list[dict],
    actor: str,
    locator: GridLocator | None,
    *,
    located: bool = False,
    copy: bool = False,
) -> list[IntakeResult]:
    """Insert checked records (duplicates in the batch or the store kept once), with their events;
    located first with `locator` (built when None) unless a bulk reader did so (report_checked_incidents)."""
    # Duplicates inside the batch: the first occurrence is the one inserted.
    first_of: dict[tuple[str, str], int] = {}
    for i, rec in enumerate(records):
        first_of.setdefault((rec["source"], rec["external_id"]), i)
    batch = [records[i] for i in sorted(first_of.values())]

    if not located:
        locate_reports(locator if locator is not None else GridLocator.from_conn(conn), batch)

    created = insert_new_reports(conn, batch, actor, copy=copy)
    missing = [key for key in first_of if key not in created]
    existing = _existing_ids(conn, missing)
    unseen = [key for key in missing if key not in existing]
    if unseen:
        # Only possible under a stricter isolation level than the default: another transaction's row blocked ours.
        raise Conflict(f"{len(unseen)} incident(s) were being reported by someone else at the same time; try again")

    results = []
    seen: set[tuple[str, str]] = set()
    for rec in records:
        key = (rec["source"], rec["external_id"])
        if key in created and key not in seen:
            incident_id, unlocated = created[key]
            results.append(IntakeResult(incident_id, True, unlocated))
        else:
            incident_id, unlocated = created[key] if key in created else existing[key]
            results.append(IntakeResult(incident_id, False, unlocated))
        seen.add(key)
    return results


def _active_categories(conn: Connection) -> dict[str, Any]:
    c = schema.categories
    rows = conn.execute(select(c.c.id, c.c.code).where(c.c.active.is_(True)).order_by(c.c.code)).all()
    return {"by_code": {r.code: r.id for r in rows}, "ids": {r.id for r in rows}, "codes": [r.code for r in rows]}


def _intake_record(index: int, row: dict, categories: dict[str, Any], now: datetime) -> dict:
    """One validated insert row, or ValidationError naming the row and the problem."""

    def bad(message: str) -> ValidationError:
        return ValidationError(f"row {index}: {message}")

    if not isinstance(row, dict):
        raise bad(f"expected a mapping of fields, got {type(row).__name__}")
    unknown = set(row) - INTAKE_FIELDS
    if unknown:
        raise bad(f"unknown field(s) {', '.join(sorted(unknown))}; allowed: {', '.join(sorted(INTAKE_FIELDS))}")

    source = _text_field(row.get("source"), "source", 32, bad)
    external_id = _text_field(row.get("external_id"), "external_id", 128, bad)

    valid_codes = ", ".join(categories["codes"]) or "(none: create categories first)"
    category_id = row.get("category_id")
    if category_id is not None:
        if isinstance(category_id, bool) or not isinstance(category_id, int) or category_id not in categories["ids"]:
            raise bad(f"unknown category id {category_id!r}; valid codes: {valid_codes}")
    else:
        code = row.get("category_code")
        if code is None:
            raise bad(f"category_id or category_code is required; valid codes: {valid_codes}")
        category_id = categories["by_code"].get(str(code).strip())
        if category_id is None:
            raise bad(f"unknown category {code!r}; valid codes: {valid_codes}")

    priority = _priority(row.get("priority", 3), bad)
    lon, lat = _coordinate(row.get("lon"), "lon", bad), _coordinate(row.get("lat"), "lat", bad)

    reported_at = row.get("reported_at")
    if reported_at is None:
        reported_at = now
    else:
        try:
            reported_at = to_utc(reported_at, "reported_at")
        except ValidationError as exc:
            raise bad(str(exc)) from None
        if reported_at > now + FUTURE_SKEW:
            raise bad(f"reported_at {reported_at.isoformat()} is in the future")

    description = row.get("description") or ""
    if not isinstance(description, str):
        raise bad("description must be text")
    _check_chars(description, "description", bad)
    for name in ("address", "media_url"):
        if row.get(name) is not None and not isinstance(row[name], str):
            raise bad(f"{name} must be text")
        _check_chars(row.get(name), name, bad)
    attributes = row.get("attributes")
    if attributes is not None and not isinstance(attributes, dict):
        raise bad("attributes must be a mapping")
    if attributes:
        try:
            json.dumps(attributes)
        except (TypeError, ValueError) as exc:
            raise bad(f"attributes must be plain JSON values: {exc}") from None

    return {
        "source": source,
        "external_id": external_id,
        "category_id": category_id,
        "priority": priority,
        "description": description,
        "address": row.get("address"),
        "lon": lon,
        "lat": lat,
        "reported_at": reported_at,
        "media_url": row.get("media_url"),
        "attributes": attributes,
    }


def _text_field(value: Any, name: str, max_len: int, bad) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise bad(f"{name} is required")
    value = value.strip()
    if len(value) > max_len:
        raise bad(f"{name} is longer than {max_len} characters")
    _check_chars(value, name, bad)
    return value


def _check_chars(value: str | None, name: str, bad) -> None:
    """Refuse text holding a character XML cannot carry: stored, it would break every Open311 XML answer listing it."""
    char = first_xml_unsafe(value) if value else None
    if char is not None:
        raise bad(describe_xml_unsafe(name, char))


def _priority(value: Any, bad) -> int:
    number = id_or_none(value.strip()) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, int) or number not in lifecycle.PRIORITIES:
        raise bad(f"priority must be one of 1 (urgent), 2 (high), 3 (normal); got {shown(value)}")
    return number


def _coordinate(value: Any, name: str, bad) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None  # no position: kept, flagged unlocated
    try:
        return parse_float(value.strip() if isinstance(value, str) else value, name, minimum=-1e9, maximum=1e9)
    except ValidationError:
        raise bad(f"{name} must be a number, got {shown(value)}") from None


def locate_reports(locator: GridLocator, records: list[dict]) -> None:
    """Fill in each checked record's grid and its ancestors (None and unlocated=True where no grid holds it)."""
    lons = [math.nan if r["lon"] is None else r["lon"] for r in records]
    lats = [math.nan if r["lat"] is None else r["lat"] for r in records]
    # Straight from the locator's arrays: building a Location per row costs more than the lookup.
    index = locator.grid_index(lons, lats)
    found = index >= 0
    grid_ids = np.where(found, locator.ids[index] if len(locator) else 0, 0).tolist()
    ancestors = locator.ancestors[index] if len(locator) else None
    for row, (rec, hit) in enumerate(zip(records, found.tolist(), strict=True)):
        if hit:
            community_id, street_id, district_id = ancestors[row]
            rec.update(
                grid_id=grid_ids[row],
                community_id=community_id,
                street_id=street_id,
                district_id=district_id,
                unlocated=False,
            )
        else:
            rec.update(grid_id=None, community_id=None, street_id=None, district_id=None, unlocated=True)


def _existing_ids(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, bool]]:
    by_source: dict[str, list[str]] = {}
    for source, external_id in keys:
        by_source.setdefault(source, []).append(external_id)
    found: dict[tuple[str, str], tuple[int, bool]] = {}
    for source, external_ids in by_source.items():
        rows = conn.execute(
            select(INC.c.id, INC.c.external_id, INC.c.unlocated).where(known_external_ids(conn, source, external_ids))
        )
        found.update({(source, r.external_id): (int(r.id), bool(r.unlocated)) for r in rows})
    return found


def known_external_ids(conn: Connection, source: str, external_ids: list[str]):
    """The condition "incident of `source` with one of `external_ids`", for a lookup of any size.

    Grouped by source, so both databases walk the unique (source, external_id) index (a row-value IN
    list makes PostgreSQL fall back to a slow scan). The ids go in as one parameter, an array on
    PostgreSQL and a JSON list on SQLite: thousands of separate IN parameters cost more to render and
    bind than the lookup itself."""
    if conn.dialect.name == "postgresql":
        wanted = INC.c.external_id == any_(bindparam("ids", external_ids, type_=postgresql.ARRAY(Text)))
    else:
        ids = select(func.json_each(bindparam("ids", json.dumps(external_ids), type_=Text)).table_valued("value").c.value)
        wanted = INC.c.external_id.in_(ids)
    return (INC.c.source == source) & wanted
