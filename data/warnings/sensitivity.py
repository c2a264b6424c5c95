"""Early-warning sensitivity per category: higher means lower thresholds; every change audited in alert_events."""

from __future__ import annotations

import math
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import Actor, require_city_wide
from data.errors import NotFound, ValidationError
from data.times import to_utc, utc_now
from data.warnings.alerts import as_dict, require_actor, write_event

__all__ = ["MAX_SENSITIVITY", "MIN_SENSITIVITY", "get_settings", "sensitivity_map", "set_sensitivity"]

WS, C = schema.warning_settings, schema.categories

MIN_SENSITIVITY, MAX_SENSITIVITY = 0.25, 4.0
DEFAULT_SENSITIVITY = 1.0


def get_settings(conn: Connection) -> list[dict]:
    """Every active category with its sensitivity (1.0 = default) and whether warnings are on for it."""
    rows = conn.execute(
        select(
            C.c.id.label("category_id"),
            C.c.code,
            C.c.name_en,
            C.c.name_zh,
            C.c.sector,
            WS.c.sensitivity,
            WS.c.enabled,
            WS.c.updated_at,
            WS.c.updated_by,
        )
        .select_from(C.outerjoin(WS, WS.c.category_id == C.c.id))
        .where(C.c.active.is_(True))
        .order_by(C.c.sector, C.c.code)
    )
    out = []
    for r in rows:
        d = as_dict(r)
        d["sensitivity"] = DEFAULT_SENSITIVITY if d["sensitivity"] is None else float(d["sensitivity"])
        d["enabled"] = True if d["enabled"] is None else bool(d["enabled"])
        out.append(d)
    return out


def sensitivity_map(conn: Connection) -> dict[int, tuple[float, bool]]:
    """{category id: (sensitivity, enabled)} for the categories that have a setting row."""
    return {r.category_id: (float(r.sensitivity), bool(r.enabled)) for r in conn.execute(select(WS))}


def set_sensitivity(
    conn: Connection, category_id: int, sensitivity: float, enabled: bool, actor: str | Actor, now: datetime | None = None
) -> dict:
    """Set a category's sensitivity (MIN_SENSITIVITY..MAX_SENSITIVITY; higher = lower thresholds) and switch; audited.

    The passes watch the whole city with it: only a city-wide actor may change it."""
    require_city_wide(actor, "a category's early-warning sensitivity")
    actor = require_actor(actor)
    now = to_utc(now, "now") if now is not None else utc_now()
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, int | float) or not math.isfinite(sensitivity):
        raise ValidationError("sensitivity must be a number")
    if not MIN_SENSITIVITY <= sensitivity <= MAX_SENSITIVITY:
        raise ValidationError(f"sensitivity must be between {MIN_SENSITIVITY} and {MAX_SENSITIVITY}; got {sensitivity}")
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false")
    code = conn.execute(select(C.c.code).where(C.c.id == category_id)).scalar() if isinstance(category_id, int) else None
    if code is None:
        raise NotFound(f"category {category_id!r} does not exist")
    old = conn.execute(select(WS.c.sensitivity, WS.c.enabled).where(WS.c.category_id == category_id)).first()
    values = {"sensitivity": float(sensitivity), "enabled": enabled, "updated_at": now, "updated_by": actor}
    if old is None:
        conn.execute(WS.insert().values(category_id=category_id, **values))
        before = f"{DEFAULT_SENSITIVITY:g}, on"
    else:
        conn.execute(WS.update().where(WS.c.category_id == category_id).values(**values))
        before = f"{old.sensitivity:g}, {'on' if old.enabled else 'off'}"
    after = f"{float(sensitivity):g}, {'on' if enabled else 'off'}"
    write_event(conn, None, now, actor, "settings", f"category {code}: sensitivity {before} -> {after}")
    return next(s for s in get_settings(conn) if s["category_id"] == category_id)
