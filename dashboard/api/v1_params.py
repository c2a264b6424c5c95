"""The native API's limits, query-parameter checks, cursors and JSON shapes, shared by its views and the OpenAPI document."""

from __future__ import annotations

import base64
import binascii

from flask import request

from dashboard.api import jurisdiction
from dashboard.api.errors import bad_request, not_found
from data import schema
from data.accounts.apikeys import ApiKey
from data.errors import ValidationError
from data.incidents import lifecycle
from data.incidents.api_store import IncidentFilter, list_incidents, parse_datetime
from data.incidents.feed import FEED_INCIDENT_COLUMNS
from data.metrics.scope import SCOPE_COLUMNS
from data.parse import MAX_ID, id_or_none, parse_int, shown  # MAX_ID: ids are BIGINT, nothing larger exists

# Limits (the OpenAPI document states the same numbers).
MAX_BATCH = 1000
LIST_LIMIT, MAX_LIST_LIMIT = 100, 500
FEED_LIMIT, MAX_FEED_LIMIT = 500, 1000
MAX_UNIT_ID = 2**31 - 1  # unit ids are INTEGER
EVENT_FIELDS = tuple(str(c.name) for c in schema.incident_events.c)  # plain str: orjson refuses subclasses as keys
INCIDENT_FIELDS = (*(str(c.name) for c in schema.incidents.c), "category_code", "department_code")
LIST_PARAMS = frozenset(
    {
        "state",
        "status",
        "category",
        "department",
        "source",
        "unlocated",
        "district_id",
        "street_id",
        "community_id",
        "grid_id",
        "reported_after",
        "reported_before",
        "updated_after",
        "limit",
        "cursor",
    }
)
IDEMPOTENCY_HEADER = "Idempotency-Key"
INBOX_LIMIT, MAX_INBOX_LIMIT = 50, 500
SCOPE_LEVELS = {schema.LEVEL_NAMES[level]: level for level in SCOPE_COLUMNS}


# --- query parameters ---------------------------------------------------------------------------


def check_params(allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise bad_request(f"unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def int_param(name: str, default: int | None = None, low: int = 0, high: int = MAX_ID) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_int(raw, name, minimum=low, maximum=high)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None


def bool_param(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"{name} must be true or false; got {raw!r}")
    return raw.lower() == "true"


def time_param(name: str):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw, name)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None


def list_param(name: str) -> list[str] | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def parse_incident_id(raw: str) -> int:
    """An incident id from the path; 404 for what cannot be one (as for an id nobody has)."""
    number = id_or_none(raw)
    if number is None:
        raise not_found(f"incident {shown(raw)} does not exist")
    return number


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    label, _, number = text.partition(":")
    before = id_or_none(number) if label == "before" else None
    if before is None:
        raise bad_request("cursor is not one this API gave out; start again without it", code="invalid_cursor")
    return before


# --- serialisation ------------------------------------------------------------------------------


def incident_json(row: dict) -> dict:
    """An incident as the API shows it: every stored column, with its category and department codes."""
    return {name: row.get(name) for name in INCIDENT_FIELDS}


def event_json(event: dict) -> dict:
    """An audit event; feed events also carry the incident as it is now."""
    out = {name: event[name] for name in EVENT_FIELDS}
    if "state" in event:
        out["incident"] = {name: event[name] for name in FEED_INCIDENT_COLUMNS}
    return out


def incident_with_codes(conn, key: ApiKey, incident_id: int) -> dict:
    flt = jurisdiction.clamp_filter(key, IncidentFilter(ids=(incident_id,)))
    rows = [] if flt is None else list_incidents(conn, flt, limit=1)
    if not rows:  # outside the key's unit answers exactly as missing
        raise not_found(f"incident {incident_id} does not exist")
    return incident_json(rows[0])


def department_actions(state: str) -> list[str]:
    """The actions a department's system may take in `state`."""
    return [a for a in lifecycle.allowed_actions(state) if a in lifecycle.DEPARTMENT_ACTIONS]
