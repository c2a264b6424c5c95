"""The native API's incident views: intake (one or a batch, idempotent), lists and history, categories, department actions."""

from __future__ import annotations

import hashlib

import orjson
from flask import Response, request

from dashboard.api import jurisdiction
from dashboard.api.context import api_context
from dashboard.api.errors import ApiError, bad_request, forbidden, from_data_error
from dashboard.api.intake import acting_key, actor_of, native_rows
from dashboard.api.keys import require
from dashboard.api.v1_params import (
    IDEMPOTENCY_HEADER,
    LIST_LIMIT,
    LIST_PARAMS,
    MAX_BATCH,
    MAX_LIST_LIMIT,
    MAX_UNIT_ID,
    bool_param,
    check_params,
    decode_cursor,
    department_actions,
    encode_cursor,
    event_json,
    incident_json,
    incident_with_codes,
    int_param,
    list_param,
    parse_incident_id,
    time_param,
)
from dashboard.api.wire import json_response, read_json_body
from data import store
from data.accounts.apikeys import ACTIONS, INTAKE, READ
from data.errors import CityBrainError, Conflict, InvalidTransition
from data.incidents import lifecycle
from data.incidents.api_store import (
    IncidentFilter,
    attach_event_data,
    categories,
    department_ids,
    list_incidents,
    recall_response,
    remember_response,
)
from data.incidents.feed import get_incident, history, lock_change_feed
from data.incidents.transitions import MAX_PUBLIC_NOTE, apply_action, check_version

ACTION_FIELDS = frozenset({"action", "version", "note", "public_note", "photo_url"})
PHOTO_ACTIONS = frozenset({"resolve", "note"})


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


def _list_filter(conn) -> IncidentFilter:
    states = list_param("state")
    if states:
        unknown = sorted(set(states) - set(lifecycle.STATES))
        if unknown:
            raise bad_request(f"unknown state(s) {', '.join(unknown)}; states: {', '.join(lifecycle.STATES)}")
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        raise bad_request(f"status must be open or closed; got {status!r}")
    category_ids = None
    codes = list_param("category")
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
        unlocated=bool_param("unlocated"),
        district_id=int_param("district_id", low=1, high=MAX_UNIT_ID),
        street_id=int_param("street_id", low=1, high=MAX_UNIT_ID),
        community_id=int_param("community_id", low=1, high=MAX_UNIT_ID),
        grid_id=int_param("grid_id", low=1, high=MAX_UNIT_ID),
        reported_from=time_param("reported_after"),
        reported_to=time_param("reported_before"),
        updated_from=time_param("updated_after"),
    )


def get_incidents():
    """Incidents newest first, filtered, a page at a time (next_cursor until the last page)."""
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        check_params(LIST_PARAMS)
        limit = int_param("limit", LIST_LIMIT, 1, MAX_LIST_LIMIT)
        cursor = request.args.get("cursor") or None
        before_id = decode_cursor(cursor) if cursor else None
        flt = jurisdiction.clamp_filter(key, _list_filter(conn))
        rows = [] if flt is None else list_incidents(conn, flt, limit=limit, before_id=before_id)
    next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"incidents": [incident_json(r) for r in rows], "next_cursor": next_cursor})


def get_one_incident(incident_id: str):
    """One incident with its whole audit history (留痕) and the actions a department may take now."""
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        check_params(frozenset())
        number = parse_incident_id(incident_id)
        incident = incident_with_codes(conn, key, number)
        events = history(conn, number)
    return json_response(
        {
            "incident": incident,
            "history": [event_json(e) for e in events],
            "department_actions": department_actions(incident["state"]),
        }
    )


def get_categories():
    """The active categories: the codes intake accepts, with sector and responsible department."""
    with store.reading(api_context().engine) as conn:
        require(conn, None)
        check_params(frozenset())
        rows = categories(conn)
    fields = ("code", "name_en", "name_zh", "sector", "department_code", "has_attributes")
    return json_response({"categories": [{f: r[f] for f in fields} for r in rows]})


# --- department actions ---------------------------------------------------------------------------


def _action_request(body) -> tuple[str, int, str | None, str | None, str | None]:
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
    note, public_note, photo_url = body.get("note"), body.get("public_note"), body.get("photo_url")
    if note is not None and (not isinstance(note, str) or len(note) > 10_000):
        raise bad_request("note must be text of at most 10,000 characters", code="invalid")
    if public_note is not None and (not isinstance(public_note, str) or len(public_note) > MAX_PUBLIC_NOTE):
        raise bad_request(f"public_note must be text of at most {MAX_PUBLIC_NOTE:,} characters", code="invalid")
    if photo_url is not None:
        if action not in PHOTO_ACTIONS:
            raise bad_request(f"photo_url goes with {' or '.join(sorted(PHOTO_ACTIONS))}, not {action}", code="invalid")
        if not isinstance(photo_url, str) or not photo_url.lower().startswith(("http://", "https://")) or len(photo_url) > 2000:
            raise bad_request("photo_url must be an http(s) link of at most 2,000 characters", code="invalid")
    return action, version, note, public_note, photo_url


def post_action(incident_id: str):
    """A department's system acknowledges, returns, resolves or notes an incident assigned to it."""
    number = parse_incident_id(incident_id)
    body = read_json_body()  # before the transaction, as for intake
    with api_context().engine.begin() as conn:
        key = require(conn, ACTIONS)
        action, version, note, public_note, photo_url = _action_request(body)
        # Nobody changes an incident while we hold this, so the assignment checked is the one acted on.
        lock_change_feed(conn)
        try:
            row = get_incident(conn, number)
        except CityBrainError as exc:
            raise from_data_error(exc) from None
        jurisdiction.require_incident(conn, key, number)  # before the assignment: a 403 would say it exists
        try:
            # The version before the assignment: the loser of a race (its case returned or recalled meanwhile) gets
            # 409 with how the case stands now, not 403 (data.incidents.transitions.check_version).
            check_version(conn, acting_key(key), row, version)
            if row["assignee_department_id"] != key.department_id:
                raise forbidden(f"incident {number} is not assigned to department {key.department_code}", code="not_assigned")
            apply_action(
                conn, number, action, actor=acting_key(key), expected_version=version, note=note, public_note=public_note
            )
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
        incident = incident_with_codes(conn, key, number)
    return json_response({"incident": incident, "department_actions": department_actions(incident["state"])})
