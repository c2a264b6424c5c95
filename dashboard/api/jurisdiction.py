"""An API key's jurisdiction: what a key bound to a unit may read, report and act on (the API's side of dashboard/jurisdiction.py).

A key with a unit (api_keys.unit_id; None = the whole city) sees only the incidents whose column
for that unit's level holds it (layers.scope.INCIDENT_COLUMN, the definition the screens use):
lists and searches are narrowed, an incident outside answers 404 exactly as a missing one, the
change feed and the inbox leave out what happened elsewhere, KPIs default to the key's unit and
refuse another. A report placed in another unit of the city is refused (`check_reports`).
Unlocated incidents belong to no unit, so a unit's key does not see them until they are placed.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import and_, false, select
from sqlalchemy.engine import Connection

from dashboard import jurisdiction
from dashboard.api.errors import ApiError, not_found
from data import schema, store
from data.accounts.apikeys import ApiKey
from data.geo.locate import GridLocator
from data.incidents import notify
from data.incidents.api_store import IncidentFilter
from data.incidents.feed import FEED_INCIDENT_COLUMNS, events_after
from data.times import from_db
from layers.scope import INCIDENT_COLUMN

INC, EV, N = schema.incidents, schema.incident_events, schema.notifications
OUTSIDE = "outside_jurisdiction"  # the error code of a report outside the key's unit


def bound(key: ApiKey) -> bool:
    """Whether the key sees less than the whole city."""
    return key.unit_id is not None


def _column(key: ApiKey) -> str | None:
    """The incidents column holding the key's unit; None for a level incidents do not carry (matches nothing)."""
    return INCIDENT_COLUMN.get(key.unit_level)


# Up to this many events after `after`, the feed is read in id order with a probe per event whatever the unit.
SHORT_WINDOW = 2000


def _inside(key: ApiKey, incident_id_column, *, scan: bool = False):
    """SQL: the incident with this id lies in the key's unit.

    Two shapes, for the two ways of finding a unit's rows (measured on 6.5M events, 1M incidents):
    `scan` probes each row's incident by key while walking rows in id order, cheap when most rows
    match (a district) or few are walked; otherwise the unit's incidents come first by their
    index and then their rows (a grid's whole history: 1 ms instead of 11 s walking every event).
    """
    column = _column(key)
    if column is None:
        return false()
    if scan or key.unit_level == schema.DISTRICT:
        return select(INC.c[column]).where(INC.c.id == incident_id_column).scalar_subquery() == key.unit_id
    return incident_id_column.in_(select(INC.c.id).where(INC.c[column] == key.unit_id))


def clamp_filter(key: ApiKey, flt: IncidentFilter) -> IncidentFilter | None:
    """`flt` narrowed to the key's unit; None when nothing can match (it asks for another unit of the same level)."""
    if not bound(key):
        return flt
    column = _column(key)
    if column is None:
        return None
    asked = getattr(flt, column)
    if asked is not None and asked != key.unit_id:
        return None
    # A filter on another level (a street inside a district key's district, or outside it) is
    # simply combined: both must hold, so a unit elsewhere gives an empty list, never more.
    return replace(flt, **{column: key.unit_id})


def incident_inside(conn: Connection, key: ApiKey, incident_id: int) -> bool:
    """Whether the incident exists and lies in the key's unit (always, for a city-wide key that finds it)."""
    if not bound(key):
        return True
    column = _column(key)
    if column is None:
        return False
    value = conn.execute(select(INC.c[column]).where(INC.c.id == incident_id)).first()
    return value is not None and value[0] == key.unit_id


def require_incident(conn: Connection, key: ApiKey, incident_id: int) -> None:
    """404 worded as for a missing incident unless it lies in the key's unit: an id outside says nothing."""
    if not incident_inside(conn, key, incident_id):
        raise not_found(f"incident {incident_id} does not exist")


def clamp_scope(conn: Connection, key: ApiKey, scope: tuple[int, int] | None, level_name: str | None) -> tuple[int, int] | None:
    """A KPI scope for the key: none asked gives its unit; a unit inside is kept; one outside is a 404."""
    if not bound(key):
        return scope
    if scope is None:
        return key.scope
    if not jurisdiction.unit_within(conn, scope[1], key.unit_id):
        raise not_found(f"{level_name} {scope[1]} is outside this key's jurisdiction ({key.unit_code})")
    return scope


def feed_page(conn: Connection, key: ApiKey, after: int, limit: int) -> tuple[list[dict], int, int]:
    """(events after `after`, the id to continue after, the feed's head) for the key.

    A bound key gets only its unit's events; when its page is not full it continues after the
    head read first, so a quiet unit's next poll does not scan again what it already passed.
    """
    if not bound(key):
        events = events_after(conn, after, limit)
        head = store.feed_head(conn)
        return events, (events[-1]["id"] if events else after), head
    head = store.feed_head(conn)
    page = (
        select(EV)
        .where(EV.c.id > after, EV.c.id <= head, _inside(key, EV.c.incident_id, scan=head - after <= SHORT_WINDOW))
        .order_by(EV.c.id)
        .limit(limit)
        .subquery("page")
    )
    columns = [*page.c] + [INC.c[name] for name in FEED_INCIDENT_COLUMNS]
    rows = conn.execute(select(*columns).join_from(page, INC, page.c.incident_id == INC.c.id).order_by(page.c.id))
    events = [{name: from_db(value) for name, value in row._mapping.items()} for row in rows]
    next_after = events[-1]["id"] if len(events) == limit else max(head, after)
    return events, next_after, head


def inbox(conn: Connection, key: ApiKey, *, unread_only: bool, limit: int, before_id: int | None) -> list[dict]:
    """The key's department's inbox (data.incidents.notify.inbox), only about incidents in the key's unit when it has one."""
    if not bound(key):
        return notify.inbox(conn, department_id=key.department_id, unread_only=unread_only, limit=limit, before_id=before_id)
    clauses = [N.c.department_id == key.department_id, _inside(key, N.c.incident_id)]
    if unread_only:
        clauses.append(N.c.read_at.is_(None))
    if before_id is not None:
        clauses.append(N.c.id < before_id)
    rows = conn.execute(select(N).where(and_(*clauses)).order_by(N.c.id.desc()).limit(max(1, min(limit, 500))))
    return [{name: from_db(value) for name, value in row._mapping.items()} for row in rows]


def check_reports(locator: GridLocator, key: ApiKey, rows: list[dict], *, status: int = 422) -> None:
    """Refuse (nothing stored) a report whose position lies in another unit of the city.

    A street's own app reporting elsewhere is almost always a mistake (a wrong key, a stale
    position), and the incident would vanish from the key's own lists at once. A report without
    a position, or with one outside every grid, is kept and flagged unlocated, as for any key (the
    intake rule: a report is never lost); an operator places it.
    """
    if not bound(key):
        return
    column = _column(key)
    placed = [(i, r) for i, r in enumerate(rows) if r.get("lon") is not None and r.get("lat") is not None]
    if not placed:
        return
    where = locator.locate_many([r["lon"] for _, r in placed], [r["lat"] for _, r in placed])
    for (index, row), location in zip(placed, where, strict=True):
        if location.unlocated:
            continue
        if column is None or getattr(location, column) != key.unit_id:
            prefix = f"incident {index}: " if len(rows) > 1 else ""
            raise ApiError(
                status,
                OUTSIDE,
                f"{prefix}({row['lon']:.6f}, {row['lat']:.6f}) is outside this key's unit {key.unit_code}; "
                "it reports only there. Check the position, or report with a key of the unit where it lies.",
                **({"index": index} if len(rows) > 1 else {}),
            )
