"""Checking an incident file's rows in bulk: ids, times, categories, priorities and coordinates; each unusable row gets its reason."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from sqlalchemy import select

from data import schema
from data.geo.locate import GridLocator
from data.incidents.intake import FUTURE_SKEW
from data.parse import ascii_digits
from data.xml_chars import describe_xml_unsafe, first_xml_unsafe

MAX_ID_LENGTH = 128
PRIORITY_WORDS = {"urgent": 1, "紧急": 1, "high": 2, "高": 2, "重要": 2, "normal": 3, "普通": 3, "一般": 3}

# A clock time followed by a UTC offset or Z: the string names its own zone.
_HAS_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?\s*(?:Z|z|UTC|[+-]\d{2}(?::?\d{2})?)$")


@dataclass
class RowContext:
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


def category_lookup(conn) -> dict[str, int]:
    """Category ids by code, lower-case code, Chinese name and lower-case English name (codes win)."""
    c = schema.categories
    rows = conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh).where(c.c.active.is_(True))).all()
    lookup: dict[str, int] = {}
    for key_of in (lambda r: r.name_en.strip().lower(), lambda r: r.name_zh.strip(), lambda r: r.code.lower(), lambda r: r.code):
        for r in rows:
            lookup[key_of(r)] = r.id
    return lookup


def find_category(lookup: Mapping[str, int], value: str) -> int | None:
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
        if ascii_digits(text) and len(text) in (10, 13):
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


def check_chunk(frame: pd.DataFrame, ctx: RowContext, first_row: int) -> tuple[list[dict], list[str | None]]:
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
    category_ids = [find_category(ctx.categories, ctx.category_map.get(v, v)) if v else None for v in raw_cat]
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
    for name, values in (("id", ids), ("description", descriptions), ("address", addresses)):
        # One scan of the whole column; row by row only when it holds a character XML cannot carry.
        if first_xml_unsafe("".join(values)) is not None:
            unsafe = [first_xml_unsafe(v) for v in values]
            reject([c is not None for c in unsafe], lambda i, name=name, unsafe=unsafe: describe_xml_unsafe(name, unsafe[i]))
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
