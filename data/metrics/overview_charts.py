"""The overview's charts (reads only): the 24-hour trend of received and closed, and open and new incidents by sector and category."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.incidents.lifecycle import SECTORS
from data.metrics.scope import day_window, normalise_args
from data.metrics.sql_parts import (
    NOW,
    SINCE,
    TODAY_START,
    between,
    group_key,
    prebuilt,
    scope_clause,
    scope_key,
    scope_params,
    ts_param,
)
from data.times import epoch_seconds

__all__ = ["breakdown", "trend_24h"]

INC = schema.incidents


def trend_24h(conn: Connection, scope: Any, now: datetime, tz: Any) -> list[dict]:
    """24 hourly buckets ending with the current local hour: [{start (local, aware), received, closed}]."""
    scope, now, tz = normalise_args(scope, now, tz)
    zone = ZoneInfo(tz)
    hour = now.astimezone(zone).replace(minute=0, second=0, microsecond=0).astimezone(UTC)
    first = hour - timedelta(hours=23)
    counts = {}
    for name, column in (("received", INC.c.reported_at), ("closed", INC.c.closed_at)):
        dialect, level = scope_key(conn, scope)
        stmt = prebuilt(
            ("trend", name, dialect, level),
            lambda column=column, name=name, dialect=dialect, level=level: select(epoch_seconds(column)).where(
                between(column, ts_param(SINCE), ts_param(NOW)), scope_clause(dialect, level, by_unit_index=name == "received")
            ),
        )
        seconds = np.array(conn.execute(stmt, {SINCE: first, NOW: now, **scope_params(scope)}).scalars().all(), dtype=float)
        buckets = np.floor((seconds - first.timestamp()) / 3600.0).astype(int)
        counts[name] = np.bincount(buckets[(buckets >= 0) & (buckets < 24)], minlength=24)
    return [
        {
            "start": (first + timedelta(hours=i)).astimezone(zone),
            "received": int(counts["received"][i]),
            "closed": int(counts["closed"][i]),
        }
        for i in range(24)
    ]


def breakdown(conn: Connection, scope: Any, now: datetime, tz: Any) -> dict[str, list[dict]]:
    """Open incidents and those reported today, by sector (四板块) and by category.

    {"by_sector": [{sector, open, new_today}] in SECTORS order,
     "by_category": [{category_id, code, name_en, name_zh, sector, open, new_today}] busiest first}.
    """
    scope, now, tz = normalise_args(scope, now, tz)
    w = day_window(now, tz)
    dialect, level = scope_key(conn, scope)
    category = group_key(dialect, INC.c.category_id)
    open_stmt = prebuilt(
        ("breakdown_open", dialect, level),
        lambda: (
            select(category.label("category_id"), func.count().label("n"))
            .where(INC.c.is_open == true(), scope_clause(dialect, level))
            .group_by(category)
        ),
    )
    new_stmt = prebuilt(
        ("breakdown_new", dialect, level),
        lambda: (
            select(category.label("category_id"), func.count().label("n"))
            .where(
                between(INC.c.reported_at, ts_param(TODAY_START), ts_param(NOW)), scope_clause(dialect, level, by_unit_index=True)
            )
            .group_by(category)
        ),
    )
    params = scope_params(scope)
    open_by = {r.category_id: r.n for r in conn.execute(open_stmt, params)}
    new_by = {r.category_id: r.n for r in conn.execute(new_stmt, {TODAY_START: w.today_start, NOW: w.now, **params})}
    c = schema.categories
    by_category = []
    by_sector = {sector: {"sector": sector, "open": 0, "new_today": 0} for sector in SECTORS}
    for cat in conn.execute(select(c.c.id, c.c.code, c.c.name_en, c.c.name_zh, c.c.sector, c.c.active).order_by(c.c.code)):
        n_open, n_new = int(open_by.get(cat.id, 0)), int(new_by.get(cat.id, 0))
        if not cat.active and not (n_open or n_new):
            continue
        by_category.append(
            {
                "category_id": cat.id,
                "code": cat.code,
                "name_en": cat.name_en,
                "name_zh": cat.name_zh,
                "sector": cat.sector,
                "open": n_open,
                "new_today": n_new,
            }
        )
        by_sector[cat.sector]["open"] += n_open
        by_sector[cat.sector]["new_today"] += n_new
    by_category.sort(key=lambda r: (-r["open"], -r["new_today"], r["code"]))
    return {"by_sector": list(by_sector.values()), "by_category": by_category}
