"""The native JSON API at /api/v1: intake (one or a batch, idempotent), incident lists and history, department actions and inbox, KPIs, the change feed.

Every answer is JSON (orjson); errors are ``{"error": {"status", "code", "message", ...}}``.
The OpenAPI document describing all of it is served at /api/v1/openapi.json (dashboard/api/openapi.py).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import time
from collections.abc import Iterator

import orjson
from flask import Blueprint, Response, current_app, request
from sqlalchemy.engine import Engine

from dashboard import live
from dashboard.api import jurisdiction
from dashboard.api.context import api_context
from dashboard.api.errors import ApiError, bad_request, forbidden, from_data_error, not_found
from dashboard.api.intake import actor_of, native_rows
from dashboard.api.keys import require
from dashboard.api.wire import json_response, read_json_body
from data import schema, store
from data.accounts.apikeys import ACTIONS, INTAKE, READ, ApiKey
from data.errors import CityBrainError, Conflict, InvalidTransition, ValidationError
from data.incidents import lifecycle, notify
from data.incidents.api_store import (
    IncidentFilter,
    attach_event_data,
    categories,
    department_ids,
    list_incidents,
    parse_datetime,
    recall_response,
    remember_response,
    unit_exists,
)
from data.incidents.feed import FEED_INCIDENT_COLUMNS, get_incident, history, lock_change_feed
from data.incidents.transitions import apply_action
from data.metrics.scope import SCOPE_COLUMNS
from data.metrics.working_set import overview_kpis
from data.times import utc_now

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

MAX_BATCH = 1000
LIST_LIMIT, MAX_LIST_LIMIT = 100, 500
FEED_LIMIT, MAX_FEED_LIMIT = 500, 1000
MAX_ID = 2**63 - 1  # incident and event ids are BIGINT: anything larger cannot exist
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
ACTION_FIELDS = frozenset({"action", "version", "note", "photo_url"})
PHOTO_ACTIONS = frozenset({"resolve", "note"})
IDEMPOTENCY_HEADER = "Idempotency-Key"


# --- query parameters ---------------------------------------------------------------------------


def _check_params(allowed: frozenset[str]) -> None:
    unknown = sorted(set(request.args) - allowed)
    if unknown:
        raise bad_request(f"unknown parameter(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def _int_param(name: str, default: int | None = None, low: int = 0, high: int = MAX_ID) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.strip().isdigit() or not low <= int(raw) <= high:
        raise bad_request(f"{name} must be a whole number from {low} to {high}; got {raw!r}")
    return int(raw)


def _bool_param(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() not in ("true", "false"):
        raise bad_request(f"{name} must be true or false; got {raw!r}")
    return raw.lower() == "true"


def _time_param(name: str):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return parse_datetime(raw, name)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None


def _list_param(name: str) -> list[str] | None:
    raw = request.args.get(name)
    if raw is None or raw.strip() == "":
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _incident_id(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_ID:
        raise not_found(f"incident {raw!r} does not exist")
    return int(raw)


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


def _incident_with_codes(conn, key: ApiKey, incident_id: int) -> dict:
    flt = jurisdiction.clamp_filter(key, IncidentFilter(ids=(incident_id,)))
    rows = [] if flt is None else list_incidents(conn, flt, limit=1)
    if not rows:  # outside the key's unit answers exactly as missing
        raise not_found(f"incident {incident_id} does not exist")
    return incident_json(rows[0])


def department_actions(state: str) -> list[str]:
    """The actions a department's system may take in `state`."""
    return [a for a in lifecycle.allowed_actions(state) if a in lifecycle.DEPARTMENT_ACTIONS]


# --- intake -------------------------------------------------------------------------------------


def _incident_items(body) -> list:
    if isinstance(body, dict) and "incidents" in body:
        extra = sorted(set(body) - {"incidents"})
        if extra:
            raise bad_request(f"a batch holds only 'incidents'; remove {', '.join(extra)}", code="invalid")
        items = body["incidents"]
        if not isinstance(items, list):
            raise bad_request("'incidents' must be a list of incidents", code="invalid")
        if not items:
            raise bad_request("the batch is empty", code="invalid")
        if len(items) > MAX_BATCH:
            raise bad_request(f"a batch holds at most {MAX_BATCH} incidents; got {len(items)}", code="batch_too_large")
        return items
    if isinstance(body, dict):
        return [body]
    raise bad_request('send one incident as an object, or a batch as {"incidents": [...]}', code="invalid")


def _idempotency_key() -> str | None:
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    raw = raw.strip()
    if not 1 <= len(raw) <= 128 or not raw.isascii() or not raw.isprintable():
        raise bad_request(f"{IDEMPOTENCY_HEADER} must be 1 to 128 printable ASCII characters", code="invalid")
    return raw


def _intake_answer(rows: list[dict], results) -> tuple[int, bytes]:
    """(201 if anything was new else 200, the JSON body) for stored rows."""
    created = sum(r.created for r in results)
    payload = {
        "created": created,
        "existing": len(results) - created,
        "results": [
            {"index": i, "id": r.incident_id, "external_id": row["external_id"], "created": r.created, "unlocated": r.unlocated}
            for i, (r, row) in enumerate(zip(results, rows, strict=True))
        ],
    }
    return (201 if created else 200), orjson.dumps(payload)


@bp.post("/incidents")
def post_incidents():
    """Report one incident or a batch; all or nothing, idempotent by external id or Idempotency-Key."""
    # Everything is read and checked before any write transaction: a slow client or a bad
    # request must never hold the write lock.
    body = read_json_body()
    ctx = api_context()
    with store.reading(ctx.engine) as conn:
        key = require(conn, INTAKE)
        items = _incident_items(body)
        idem = _idempotency_key()
        rows = native_rows(items, key, ctx.category_ids(conn))
        if jurisdiction.bound(key):
            jurisdiction.check_reports(ctx.locators.get(conn), key, rows)
    if idem is None:
        try:
            results = ctx.submit(rows, actor_of(key))
        except CityBrainError as exc:
            raise from_data_error(exc) from None
        status, body = _intake_answer(rows, results)
        return Response(body, status=status, mimetype="application/json")

    request_hash = hashlib.sha256(request.get_data()).hexdigest()
    with ctx.engine.begin() as conn:
        # Serialise with every other writer first, so a retry racing the original waits for it.
        lock_change_feed(conn)
        earlier = recall_response(conn, key.id, idem)
        if earlier is not None:
            if earlier["request_hash"] != request_hash:
                raise ApiError(
                    422, "idempotency_key_reused", f"{IDEMPOTENCY_HEADER} {idem!r} was already used for a different request"
                )
            return Response(
                earlier["response"],
                status=earlier["status"],
                mimetype="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        try:
            results = ctx.report(conn, rows, actor_of(key))
        except CityBrainError as exc:
            raise from_data_error(exc) from None
        status, body = _intake_answer(rows, results)
        remember_response(conn, key.id, idem, request_hash, status, body.decode())
    return Response(body, status=status, mimetype="application/json")


# --- reads --------------------------------------------------------------------------------------


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"before:{last_id}".encode()).decode().rstrip("=")


def _decode_cursor(raw: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    label, _, number = text.partition(":")
    if label != "before" or not number.isdigit() or not 1 <= int(number) <= MAX_ID:
        raise bad_request("cursor is not one this API gave out; start again without it", code="invalid_cursor")
    return int(number)


def _list_filter(conn) -> IncidentFilter:
    states = _list_param("state")
    if states:
        unknown = sorted(set(states) - set(lifecycle.STATES))
        if unknown:
            raise bad_request(f"unknown state(s) {', '.join(unknown)}; states: {', '.join(lifecycle.STATES)}")
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        raise bad_request(f"status must be open or closed; got {status!r}")
    category_ids = None
    codes = _list_param("category")
    if codes:
        known = {c["code"]: c["id"] for c in categories(conn)}
        missing = [c for c in codes if c not in known]
        if missing:
            raise bad_request(
                f"unknown category {missing[0]!r}; valid codes: {', '.join(sorted(known))}",
                code="unknown_category",
                valid_codes=sorted(known),
            )
        category_ids = tuple(known[c] for c in codes)
    department_id = None
    department = request.args.get("department") or None
    if department is not None:
        known_departments = department_ids(conn)
        if department not in known_departments:
            raise bad_request(f"unknown department {department!r}; departments: {', '.join(known_departments)}")
        department_id = known_departments[department]
    return IncidentFilter(
        states=tuple(states) if states else None,
        is_open=None if status is None else status == "open",
        category_ids=category_ids,
        department_id=department_id,
        source=request.args.get("source") or None,
        unlocated=_bool_param("unlocated"),
        district_id=_int_param("district_id", low=1, high=MAX_UNIT_ID),
        street_id=_int_param("street_id", low=1, high=MAX_UNIT_ID),
        community_id=_int_param("community_id", low=1, high=MAX_UNIT_ID),
        grid_id=_int_param("grid_id", low=1, high=MAX_UNIT_ID),
        reported_from=_time_param("reported_after"),
        reported_to=_time_param("reported_before"),
        updated_from=_time_param("updated_after"),
    )


@bp.get("/incidents")
def get_incidents():
    """Incidents newest first, filtered, a page at a time (next_cursor until the last page)."""
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        _check_params(LIST_PARAMS)
        limit = _int_param("limit", LIST_LIMIT, 1, MAX_LIST_LIMIT)
        cursor = request.args.get("cursor") or None
        before_id = _decode_cursor(cursor) if cursor else None
        flt = jurisdiction.clamp_filter(key, _list_filter(conn))
        rows = [] if flt is None else list_incidents(conn, flt, limit=limit, before_id=before_id)
    next_cursor = _encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"incidents": [incident_json(r) for r in rows], "next_cursor": next_cursor})


@bp.get("/incidents/<incident_id>")
def get_one_incident(incident_id: str):
    """One incident with its whole audit history (留痕) and the actions a department may take now."""
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        _check_params(frozenset())
        number = _incident_id(incident_id)
        incident = _incident_with_codes(conn, key, number)
        events = history(conn, number)
    return json_response(
        {
            "incident": incident,
            "history": [event_json(e) for e in events],
            "department_actions": department_actions(incident["state"]),
        }
    )


@bp.get("/categories")
def get_categories():
    """The active categories: the codes intake accepts, with sector and responsible department."""
    with store.reading(api_context().engine) as conn:
        require(conn, None)
        _check_params(frozenset())
        rows = categories(conn)
    fields = ("code", "name_en", "name_zh", "sector", "department_code", "has_attributes")
    return json_response({"categories": [{f: r[f] for f in fields} for r in rows]})


# --- department actions ---------------------------------------------------------------------------


def _action_request(body) -> tuple[str, int, str | None, str | None]:
    if not isinstance(body, dict):
        raise bad_request("send the action as a JSON object", code="invalid")
    unknown = sorted(set(body) - ACTION_FIELDS)
    if unknown:
        raise bad_request(f"unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(ACTION_FIELDS))}", code="invalid")
    action = body.get("action")
    if action not in lifecycle.DEPARTMENT_ACTIONS:
        allowed = ", ".join(sorted(lifecycle.DEPARTMENT_ACTIONS))
        raise bad_request(f"action must be one a department may take: {allowed}; got {action!r}", code="invalid_action")
    version = body.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= 2**31 - 1:
        raise bad_request("version (a whole number: the incident's version you last saw) is required", code="invalid")
    note, photo_url = body.get("note"), body.get("photo_url")
    if note is not None and (not isinstance(note, str) or len(note) > 10_000):
        raise bad_request("note must be text of at most 10,000 characters", code="invalid")
    if photo_url is not None:
        if action not in PHOTO_ACTIONS:
            raise bad_request(f"photo_url goes with {' or '.join(sorted(PHOTO_ACTIONS))}, not {action}", code="invalid")
        if not isinstance(photo_url, str) or not photo_url.lower().startswith(("http://", "https://")) or len(photo_url) > 2000:
            raise bad_request("photo_url must be an http(s) link of at most 2,000 characters", code="invalid")
    return action, version, note, photo_url


@bp.post("/incidents/<incident_id>/actions")
def post_action(incident_id: str):
    """A department's system acknowledges, returns, resolves or notes an incident assigned to it."""
    number = _incident_id(incident_id)
    body = read_json_body()  # before the transaction, as for intake
    with api_context().engine.begin() as conn:
        key = require(conn, ACTIONS)
        action, version, note, photo_url = _action_request(body)
        # Nobody changes an incident while we hold this, so the assignment checked is the one acted on.
        lock_change_feed(conn)
        try:
            row = get_incident(conn, number)
        except CityBrainError as exc:
            raise from_data_error(exc) from None
        jurisdiction.require_incident(conn, key, number)  # before the assignment: a 403 would say it exists
        if row["assignee_department_id"] != key.department_id:
            raise forbidden(f"incident {number} is not assigned to department {key.department_code}", code="not_assigned")
        try:
            apply_action(conn, number, action, actor=actor_of(key), expected_version=version, note=note)
        except InvalidTransition as exc:
            raise ApiError(
                409,
                "invalid_transition",
                str(exc),
                action=action,
                current_state=row["state"],
                current_version=row["version"],
                allowed_actions=department_actions(row["state"]),
            ) from None
        except Conflict as exc:
            raise ApiError(
                409, "version_conflict", str(exc), current_state=exc.current_state, current_version=exc.current_version
            ) from None
        except CityBrainError as exc:
            raise from_data_error(exc) from None
        if photo_url is not None:
            attach_event_data(conn, number, {"photo_url": photo_url})
        incident = _incident_with_codes(conn, key, number)
    return json_response({"incident": incident, "department_actions": department_actions(incident["state"])})


# --- the department's inbox (一键智达) ---------------------------------------------------------------

INBOX_PARAMS = frozenset({"unread", "limit", "cursor"})
INBOX_LIMIT, MAX_INBOX_LIMIT = 50, 500
NOTIFICATION_FIELDS = tuple(str(c.name) for c in schema.notifications.c)


def _department_key(conn):
    """The request's actions key; its department is the inbox it reads (create_key binds every actions key to one)."""
    key = require(conn, ACTIONS)
    if key.department_id is None:
        raise forbidden(f"the API key {key.name!r} is not bound to a department, so it has no inbox", code="no_department")
    return key


def notifications_json(conn, rows: list[dict]) -> list[dict]:
    """Notifications as the API shows them: every stored column and the incident as it is now."""
    ids = tuple({r["incident_id"] for r in rows})
    incidents = {i["id"]: incident_json(i) for i in list_incidents(conn, IncidentFilter(ids=ids), limit=len(ids))} if ids else {}
    return [{**{name: r[name] for name in NOTIFICATION_FIELDS}, "incident": incidents[r["incident_id"]]} for r in rows]


@bp.get("/inbox")
def get_inbox():
    """The key's department's notifications (dispatches, recalls, escalations), newest first, a page at a time."""
    with store.reading(api_context().engine) as conn:
        key = _department_key(conn)
        _check_params(INBOX_PARAMS)
        limit = _int_param("limit", INBOX_LIMIT, 1, MAX_INBOX_LIMIT)
        cursor = request.args.get("cursor") or None
        rows = jurisdiction.inbox(
            conn,
            key,
            unread_only=bool(_bool_param("unread")),
            limit=limit,
            before_id=_decode_cursor(cursor) if cursor else None,
        )
        payload = notifications_json(conn, rows)
    next_cursor = _encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"notifications": payload, "next_cursor": next_cursor})


@bp.post("/inbox/<notification_id>/read")
def post_inbox_read(notification_id: str):
    """Mark one of the department's notifications read (again is fine); another's answers 404 as if it did not exist."""
    missing = not_found(f"notification {notification_id!r} does not exist")
    if not notification_id.isdigit() or not 1 <= int(notification_id) <= MAX_ID:
        raise missing
    number = int(notification_id)
    with api_context().engine.begin() as conn:
        key = _department_key(conn)
        _check_params(frozenset())
        found = notify.notification(conn, number, department_id=key.department_id)
        if found is None or not jurisdiction.incident_inside(conn, key, found["incident_id"]):
            raise missing  # another department's, or about an incident outside the key's unit
        notify.mark_read(conn, [number], department_id=key.department_id)
        row = notify.notification(conn, number, department_id=key.department_id)
        (payload,) = notifications_json(conn, [row])
    return json_response({"notification": payload})


# --- KPIs and the change feed ---------------------------------------------------------------------

SCOPE_LEVELS = {schema.LEVEL_NAMES[level]: level for level in SCOPE_COLUMNS}


@bp.get("/kpis")
def get_kpis():
    """The overview's headline figures (value, same time yesterday, change) for the city or one unit."""
    settings = api_context().settings
    now = utc_now()
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        _check_params(frozenset({"level", "unit_id"}))
        level_name = request.args.get("level") or None
        unit_id = _int_param("unit_id", low=1, high=MAX_UNIT_ID)
        if (level_name is None) != (unit_id is None):
            raise bad_request("give level and unit_id together, or neither for the whole city")
        if level_name is not None and level_name not in SCOPE_LEVELS:
            raise bad_request(f"level must be one of {', '.join(SCOPE_LEVELS)}; got {level_name!r}")
        scope = None
        if level_name is not None:
            if not unit_exists(conn, SCOPE_LEVELS[level_name], unit_id):
                raise not_found(f"there is no {level_name} {unit_id}")
            scope = (SCOPE_LEVELS[level_name], unit_id)
        scope = jurisdiction.clamp_scope(conn, key, scope, level_name)
        figures = overview_kpis(conn, scope, now, settings.timezone)
    return json_response(
        {
            "scope": None if scope is None else {"level": schema.LEVEL_NAMES[scope[0]], "unit_id": scope[1]},
            "as_of": now,
            "timezone": settings.timezone,
            "kpis": figures,
        }
    )


def _wants_event_stream() -> bool:
    # Only when asked by name: a client accepting */* gets JSON pages, never an endless stream.
    accept = request.accept_mimetypes
    named = {value for value, _quality in accept}
    return "text/event-stream" in named and accept.best_match(["application/json", "text/event-stream"]) == "text/event-stream"


@bp.get("/feed")
def get_feed():
    """The change feed after an event id: JSON pages, or server-sent events with Accept: text/event-stream."""
    engine = api_context().engine
    with store.reading(engine) as conn:
        key = require(conn, READ)
    _check_params(frozenset({"after", "limit"}))
    after = _int_param("after", 0)
    limit = _int_param("limit", FEED_LIMIT, 1, MAX_FEED_LIMIT)
    if _wants_event_stream():
        last_event = request.headers.get("Last-Event-ID", "").strip()
        start = int(last_event) if last_event.isdigit() else after
        seconds = float(current_app.config.get("CITYBRAIN_SSE_STREAM_SECONDS", live.STREAM_SECONDS))
        response = Response(feed_stream(engine, start, seconds, key), mimetype="text/event-stream")
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Accel-Buffering"] = "no"
        return response
    with store.reading(engine) as conn:
        events, next_after, head = jurisdiction.feed_page(conn, key, after, limit)
    return json_response({"events": [event_json(e) for e in events], "next_after": next_after, "head": head})


def feed_stream(engine: Engine, after: int, stream_seconds: float, key: ApiKey) -> Iterator[bytes]:
    """Every event after `after` as its own message (id: = event id, so Last-Event-ID resumes), then each new one;
    only those of the key's unit when it has one."""
    watcher = live.watcher_for(engine)
    watcher.subscribe()
    try:
        yield live.sse_retry()
        last, deadline, last_sent = after, time.monotonic() + stream_seconds, time.monotonic()
        while True:
            with store.reading(engine) as conn:
                events, next_after, _head = jurisdiction.feed_page(conn, key, last, MAX_FEED_LIMIT)
            for event in events:
                yield live.sse_message(event_json(event), event_id=event["id"])
            last = next_after
            if events:
                last_sent = time.monotonic()
                if len(events) == MAX_FEED_LIMIT:
                    continue
            now = time.monotonic()
            if now >= deadline:
                return
            if now - last_sent >= live.HEARTBEAT_SECONDS:
                yield live.heartbeat_message(last, watcher.ok)
                last_sent = now
            wait = min(live.HEARTBEAT_SECONDS - (now - last_sent), deadline - now)
            seen = watcher.head if watcher.head is not None else last
            watcher.wait_for_change(max(seen, last), max(wait, 0.0))
    finally:
        watcher.unsubscribe()


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 document of this API."""
    from dashboard.api.openapi import openapi_document

    return json_response(openapi_document())


@bp.get("/")
@bp.get("/<path:unknown>")
def unknown_path(unknown: str = ""):
    """Unknown API paths answer 404 in JSON (without this, the dashboard's page routing would answer)."""
    raise not_found(f"no such API path /api/v1/{unknown}; see /api/v1/openapi.json")
