"""What the intake API reads and writes beyond data/incidents/intake.py: filtered incident lists, service attributes, idempotency records.

Reads take any connection; the few writes (an Idempotency-Key's answer, a resolution photo on
its audit event) run inside the caller's transaction with the incident writes they belong to,
so a request either stores everything or nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select, true
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.incidents.transitions import PUBLIC_NOTE
from data.times import from_db, to_utc, utc_now

__all__ = [
    "ATTRIBUTE_TYPES",
    "IncidentFilter",
    "attach_event_data",
    "categories",
    "category_attributes",
    "check_attribute_values",
    "find_by_external_id",
    "grid_fingerprint",
    "list_incidents",
    "public_notes",
    "recall_response",
    "remember_response",
    "unit_exists",
]

INC, EV = schema.incidents, schema.incident_events
CAT, DEP, ATTR = schema.categories, schema.departments, schema.category_attributes
IDEM = schema.api_idempotency
ATTRIBUTE_TYPES = ("string", "number", "datetime", "text", "singlevaluelist", "multivaluelist")


# --- categories and their Open311 attributes ------------------------------------------------------


def categories(conn: Connection) -> list[dict]:
    """Active categories by code, each with its sector, responsible department and whether it has attributes."""
    has_attributes = select(ATTR.c.category_id).where(ATTR.c.category_id == CAT.c.id).exists()
    rows = conn.execute(
        select(
            CAT.c.id,
            CAT.c.code,
            CAT.c.name_en,
            CAT.c.name_zh,
            CAT.c.sector,
            DEP.c.code.label("department_code"),
            DEP.c.name_en.label("department_name_en"),
            DEP.c.name_zh.label("department_name_zh"),
            has_attributes.label("has_attributes"),
        )
        .join_from(CAT, DEP, CAT.c.department_id == DEP.c.id)
        .where(CAT.c.active == true())
        .order_by(CAT.c.code)
    )
    return [dict(r._mapping) | {"has_attributes": bool(r.has_attributes)} for r in rows]


def category_attributes(conn: Connection, category_id: int) -> list[dict]:
    """The category's attribute definitions in the order a form asks them."""
    rows = conn.execute(select(ATTR).where(ATTR.c.category_id == category_id).order_by(ATTR.c.position, ATTR.c.code))
    return [dict(r._mapping) for r in rows]


def check_attribute_values(definitions: list[dict], given: dict[str, list[str]]) -> dict[str, Any]:
    """Typed attribute values from form strings ({code: [values]}), checked against the definitions.

    Raises ValidationError naming the first problem: an unknown code, a required one missing, a
    value of the wrong type or not in the list. Multi-value lists give a list, the rest one value.
    """
    by_code = {d["code"]: d for d in definitions}
    unknown = sorted(set(given) - set(by_code))
    if unknown:
        known = ", ".join(sorted(by_code)) or "(this service has none)"
        raise ValidationError(f"unknown attribute(s) {', '.join(unknown)}; this service's attributes: {known}")
    values: dict[str, Any] = {}
    for code, definition in by_code.items():
        raw = [v.strip() for v in given.get(code, []) if v is not None and v.strip()]
        if not raw:
            if definition["required"]:
                raise ValidationError(f"attribute {code} is required: {definition['description']}")
            continue
        values[code] = _attribute_value(definition, raw)
    return values


def _attribute_value(definition: dict, raw: list[str]) -> Any:
    code, datatype = definition["code"], definition["datatype"]
    if datatype in ("singlevaluelist", "multivaluelist"):
        keys = [str(v["key"]) for v in definition["value_list"] or []]
        wrong = [v for v in raw if v not in keys]
        if wrong:
            raise ValidationError(f"attribute {code}: {wrong[0]!r} is not one of {', '.join(keys)}")
        if datatype == "singlevaluelist":
            if len(raw) > 1:
                raise ValidationError(f"attribute {code} takes one value")
            return raw[0]
        return raw
    if len(raw) > 1:
        raise ValidationError(f"attribute {code} takes one value")
    value = raw[0]
    if datatype == "number":
        try:
            number = float(value)
        except ValueError:
            raise ValidationError(f"attribute {code} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ValidationError(f"attribute {code} must be a finite number")
        return number
    if datatype == "datetime":
        return parse_datetime(value, f"attribute {code}").isoformat()
    return value


def parse_datetime(value: Any, name: str) -> datetime:
    """An aware UTC datetime from ISO 8601 text with a zone (Z or +08:00); ValidationError otherwise."""
    if isinstance(value, datetime):
        return to_utc(value, name)
    if not isinstance(value, str):
        raise ValidationError(f"{name} must be an ISO 8601 time with a zone, e.g. 2025-03-03T08:00:00+08:00")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{name} {value!r} is not an ISO 8601 time such as 2025-03-03T08:00:00+08:00") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValidationError(f"{name} {value!r} has no time zone; add Z or an offset such as +08:00")
    try:
        return to_utc(parsed, name)
    except OverflowError:
        raise ValidationError(f"{name} {value!r} is out of range") from None


# --- incident lists ---------------------------------------------------------------------------


@dataclass(frozen=True)
class IncidentFilter:
    """What a list of incidents is restricted to; every field None means "any"."""

    ids: tuple[int, ...] | None = None
    states: tuple[str, ...] | None = None
    is_open: bool | None = None
    category_ids: tuple[int, ...] | None = None
    department_id: int | None = None
    source: str | None = None
    unlocated: bool | None = None
    district_id: int | None = None
    street_id: int | None = None
    community_id: int | None = None
    grid_id: int | None = None
    reported_from: datetime | None = None
    reported_to: datetime | None = None
    updated_from: datetime | None = None

    def clauses(self) -> list:
        equal = {
            "is_open": self.is_open,
            "assignee_department_id": self.department_id,
            "source": self.source,
            "unlocated": self.unlocated,
            "district_id": self.district_id,
            "street_id": self.street_id,
            "community_id": self.community_id,
            "grid_id": self.grid_id,
        }
        out = [INC.c[name] == value for name, value in equal.items() if value is not None]
        if self.ids is not None:
            out.append(INC.c.id.in_(self.ids))
        if self.states is not None:
            out.append(INC.c.state.in_(self.states))
        if self.category_ids is not None:
            out.append(INC.c.category_id.in_(self.category_ids))
        if self.reported_from is not None:
            out.append(INC.c.reported_at >= self.reported_from)
        if self.reported_to is not None:
            out.append(INC.c.reported_at <= self.reported_to)
        if self.updated_from is not None:
            out.append(INC.c.updated_at >= self.updated_from)
        return out


def list_incidents(
    conn: Connection,
    flt: IncidentFilter,
    *,
    limit: int,
    before_id: int | None = None,
    offset: int = 0,
    newest_reported_first: bool = False,
) -> list[dict]:
    """Incidents matching `flt` with their category and assignee department, newest id first.

    Page through with `before_id` (the last id of the previous page: a cursor that never skips
    or repeats while new incidents arrive) or, for Open311, by `offset` in report-time order.
    """
    clauses = flt.clauses()
    if before_id is not None:
        clauses.append(INC.c.id < before_id)
    order = (INC.c.reported_at.desc(), INC.c.id.desc()) if newest_reported_first else (INC.c.id.desc(),)
    query = (
        select(
            INC,
            CAT.c.code.label("category_code"),
            CAT.c.name_en.label("category_name_en"),
            CAT.c.name_zh.label("category_name_zh"),
            DEP.c.code.label("department_code"),
            DEP.c.name_en.label("department_name_en"),
            DEP.c.name_zh.label("department_name_zh"),
        )
        .select_from(INC.join(CAT, INC.c.category_id == CAT.c.id).outerjoin(DEP, INC.c.assignee_department_id == DEP.c.id))
        .where(and_(true(), *clauses))
        .order_by(*order)
        .limit(limit)
        .offset(offset)
    )
    return [{key: from_db(value) for key, value in row._mapping.items()} for row in conn.execute(query)]


def public_notes(conn: Connection, incident_ids: list[int]) -> dict[int, str]:
    """The note for citizens each incident's current state carries, {incident_id: text} (only those that have one).

    That is the newest `public_note` given since the incident entered its state: a note given on
    resolving no longer shows once verification has reopened the case. Internal notes never show.
    """
    if not incident_ids:
        return {}
    entered = (
        select(EV.c.incident_id, func.max(EV.c.id).label("since"))
        .where(EV.c.incident_id.in_(incident_ids), or_(EV.c.from_state.is_(None), EV.c.from_state != EV.c.to_state))
        .group_by(EV.c.incident_id)
        .subquery()
    )
    rows = conn.execute(
        select(EV.c.incident_id, EV.c.data)
        .join(entered, and_(EV.c.incident_id == entered.c.incident_id, EV.c.id >= entered.c.since))
        .where(EV.c.data.is_not(None))
        .order_by(EV.c.id)
    )
    notes: dict[int, str] = {}
    for row in rows:
        text = row.data.get(PUBLIC_NOTE) if isinstance(row.data, dict) else None
        if text:
            notes[row.incident_id] = text
    return notes


def find_by_external_id(conn: Connection, external_id: str) -> list[int]:
    """Ids of incidents stored under this external id, in any source."""
    return list(conn.execute(select(INC.c.id).where(INC.c.external_id == external_id).order_by(INC.c.id)).scalars())


def unit_exists(conn: Connection, level: int, unit_id: int) -> bool:
    """Whether a unit with this id exists at this level."""
    u = schema.units
    return conn.execute(select(u.c.id).where(u.c.id == unit_id, u.c.level == level)).first() is not None


def grid_fingerprint(conn: Connection) -> tuple:
    """(count, largest id, newest update) of the grids: changes whenever grids are added, removed or reshaped."""
    u = schema.units
    row = conn.execute(select(func.count(), func.max(u.c.id), func.max(u.c.updated_at)).where(u.c.level == schema.GRID)).one()
    return int(row[0]), row[1], from_db(row[2])


# --- writes that ride along with an incident write ---------------------------------------------


def attach_event_data(conn: Connection, incident_id: int, extra: dict) -> None:
    """Merge `extra` into the data of the incident's newest audit event (e.g. a resolution's photo link)."""
    event = conn.execute(
        select(EV.c.id, EV.c.data).where(EV.c.incident_id == incident_id).order_by(EV.c.id.desc()).limit(1)
    ).first()
    if event is None:
        raise ValidationError(f"incident {incident_id} has no event to attach {', '.join(extra)} to")
    conn.execute(EV.update().where(EV.c.id == event.id).values(data={**(event.data or {}), **extra}))


# How long an Idempotency-Key's answer is kept and replayed (as Stripe and the IETF draft suggest):
# long enough for any client's retries, short enough that the table does not grow for ever.
IDEMPOTENCY_TTL = timedelta(hours=24)


def recall_response(conn: Connection, api_key_id: int, idem_key: str, now: datetime | None = None) -> dict | None:
    """The answer given to this key's Idempotency-Key within IDEMPOTENCY_TTL: {request_hash, status, response}, or None."""
    key = (IDEM.c.api_key_id == api_key_id, IDEM.c.idem_key == idem_key)
    row = conn.execute(select(IDEM.c.request_hash, IDEM.c.status, IDEM.c.response, IDEM.c.created_at).where(*key)).first()
    if row is None:
        return None
    if from_db(row.created_at) <= (now or utc_now()) - IDEMPOTENCY_TTL:
        conn.execute(IDEM.delete().where(*key))  # expired: the key may be used afresh
        return None
    return {"request_hash": row.request_hash, "status": row.status, "response": row.response}


def remember_response(
    conn: Connection, api_key_id: int, idem_key: str, request_hash: str, status: int, response: str, now: datetime | None = None
) -> None:
    """Keep the answer to an Idempotency-Key, in the transaction that stored what it reports; drop expired ones."""
    now = now or utc_now()
    conn.execute(IDEM.delete().where(IDEM.c.created_at <= now - IDEMPOTENCY_TTL))  # an index range: cheap when empty
    conn.execute(
        IDEM.insert().values(
            api_key_id=api_key_id,
            idem_key=idem_key,
            request_hash=request_hash,
            status=status,
            response=response,
            created_at=now,
        )
    )


def department_ids(conn: Connection) -> dict[str, int]:
    """{code: id} of every department."""
    return {r.code: r.id for r in conn.execute(select(DEP.c.code, DEP.c.id).order_by(DEP.c.code))}
