"""The OpenAPI 3 document of /api/v1, built from the same constants and tables the views use so the two cannot drift apart."""

from __future__ import annotations

from functools import cache

from sqlalchemy import JSON, Boolean, DateTime, Float, Integer

from dashboard.api import intake, v1_params
from data import schema
from data.accounts.apikeys import SCOPES
from data.incidents import lifecycle, notify
from data.incidents.feed import FEED_INCIDENT_COLUMNS
from data.incidents.transitions import MAX_PUBLIC_NOTE
from data.metrics.kpis import KPI_NAMES

OPENAPI_VERSION = "3.0.3"
API_VERSION = "1.0.0"
REF = "#/components/schemas/"
ERROR_STATUSES = {
    400: "Bad input: malformed JSON, an unknown field or category (valid codes listed), a wrong value",
    403: "Missing, unknown or revoked API key, a key without the scope needed, or an incident not assigned to the key's department",
    404: "No such incident, unit or notification; an incident (or its notification) outside a unit-bound key's unit "
    "gets the same answer as a missing one, and another department's notification is not revealed",
    409: "The action is not valid in the incident's current state, or the version is stale (current state and version given)",
    413: "The body is larger than the API accepts",
    415: "The body is not JSON",
    422: "The Idempotency-Key was used before with a different body, or (outside_jurisdiction) a key bound to a unit "
    "reported a position in another unit of the city",
    429: "Too many requests for this key; Retry-After says when to try again",
}


def column_schema(column) -> dict:
    """The JSON schema of a table column as the API renders it (datetimes as ISO 8601 text)."""
    kind = column.type
    if isinstance(kind, Boolean):
        out = {"type": "boolean"}
    elif isinstance(kind, Integer):
        out = {"type": "integer"}
    elif isinstance(kind, Float):
        out = {"type": "number"}
    elif isinstance(kind, DateTime):
        out = {"type": "string", "format": "date-time"}
    elif isinstance(kind, JSON):
        out = {"type": "object", "additionalProperties": True}
    else:
        out = {"type": "string"}
    if column.nullable:
        out["nullable"] = True
    return out


def _object(properties: dict, required=None, extra: bool = False) -> dict:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else list(required),
        "additionalProperties": extra,
    }


def _ref(name: str) -> dict:
    return {"$ref": REF + name}


def _schemas() -> dict:
    inc, ev = schema.incidents, schema.incident_events
    incident = {str(c.name): column_schema(c) for c in inc.c}
    incident["category_code"] = {"type": "string"}
    incident["department_code"] = {"type": "string", "nullable": True}
    event = {str(c.name): column_schema(c) for c in ev.c}
    feed_event = dict(event, incident=_object({name: column_schema(inc.c[name]) for name in FEED_INCIDENT_COLUMNS}))
    department_actions = {"type": "array", "items": {"type": "string", "enum": sorted(lifecycle.DEPARTMENT_ACTIONS)}}
    number = {"type": "number", "nullable": True}
    return {
        "Error": _object(
            {
                "error": _object(
                    {"status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"}},
                    extra=True,
                )
            }
        ),
        "IncidentInput": _object(
            {
                "external_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 128,
                    "description": "Your id: sending it again changes nothing",
                },
                "category_code": {"type": "string", "minLength": 1, "maxLength": 64},
                "priority": {"type": "integer", "enum": sorted(lifecycle.PRIORITIES), "default": 3},
                "description": {"type": "string", "maxLength": intake.MAX_DESCRIPTION, "nullable": True},
                "lon": {"type": "number", "minimum": -180, "maximum": 180, "nullable": True},
                "lat": {"type": "number", "minimum": -90, "maximum": 90, "nullable": True},
                "crs": {"type": "string", "enum": list(intake.CRS_NAMES), "default": "wgs84"},
                "address": {"type": "string", "maxLength": intake.MAX_ADDRESS, "nullable": True},
                "reported_at": {"type": "string", "format": "date-time", "description": "With a zone; default: now"},
                "media_url": {"type": "string", "format": "uri", "maxLength": intake.MAX_URL, "nullable": True},
                "attributes": {"type": "object", "additionalProperties": True, "nullable": True},
            },
            required=["category_code"],
        ),
        "IncidentBatch": _object(
            {"incidents": {"type": "array", "minItems": 1, "maxItems": v1_params.MAX_BATCH, "items": _ref("IncidentInput")}}
        ),
        "IntakeResponse": _object(
            {
                "created": {"type": "integer"},
                "existing": {"type": "integer"},
                "results": {
                    "type": "array",
                    "items": _object(
                        {
                            "index": {"type": "integer"},
                            "id": {"type": "integer"},
                            "external_id": {"type": "string"},
                            "created": {"type": "boolean"},
                            "unlocated": {"type": "boolean"},
                        }
                    ),
                },
            }
        ),
        "Incident": _object(incident),
        "Event": _object(event),
        "FeedEvent": _object(feed_event),
        "IncidentList": _object(
            {"incidents": {"type": "array", "items": _ref("Incident")}, "next_cursor": {"type": "string", "nullable": True}}
        ),
        "IncidentDetail": _object(
            {
                "incident": _ref("Incident"),
                "history": {"type": "array", "items": _ref("Event")},
                "department_actions": department_actions,
            }
        ),
        "ActionRequest": _object(
            {
                "action": {"type": "string", "enum": sorted(lifecycle.DEPARTMENT_ACTIONS)},
                "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                "note": {"type": "string", "maxLength": 10_000, "nullable": True, "description": "internal: never published"},
                "public_note": {
                    "type": "string",
                    "maxLength": MAX_PUBLIC_NOTE,
                    "nullable": True,
                    "description": "for the citizen: shown in Open311 status_notes",
                },
                "photo_url": {"type": "string", "format": "uri", "maxLength": 2000, "nullable": True},
            },
            required=["action", "version"],
        ),
        "ActionResult": _object({"incident": _ref("Incident"), "department_actions": department_actions}),
        "Category": _object(
            {
                "code": {"type": "string"},
                "name_en": {"type": "string"},
                "name_zh": {"type": "string"},
                "sector": {"type": "string", "enum": list(lifecycle.SECTORS)},
                "department_code": {"type": "string"},
                "has_attributes": {"type": "boolean"},
            }
        ),
        "Kpis": _object(
            {
                "scope": {
                    **_object(
                        {"level": {"type": "string", "enum": list(v1_params.SCOPE_LEVELS)}, "unit_id": {"type": "integer"}}
                    ),
                    "nullable": True,
                },
                "as_of": {"type": "string", "format": "date-time"},
                "timezone": {"type": "string"},
                "kpis": _object({name: _object({"value": number, "yesterday": number, "delta": number}) for name in KPI_NAMES}),
            }
        ),
        "Notification": _object(
            {
                **{str(c.name): column_schema(c) for c in schema.notifications.c},
                "kind": {"type": "string", "enum": list(notify.KINDS)},
                "incident": _ref("Incident"),
            }
        ),
        "Inbox": _object(
            {
                "notifications": {"type": "array", "items": _ref("Notification")},
                "next_cursor": {"type": "string", "nullable": True},
            }
        ),
        "Feed": _object(
            {
                "events": {"type": "array", "items": _ref("FeedEvent")},
                "next_after": {"type": "integer"},
                "head": {"type": "integer"},
            }
        ),
    }


def _json(schema_ref: str) -> dict:
    return {"application/json": {"schema": _ref(schema_ref)}}


def _responses(ok: dict, *errors: int) -> dict:
    out = dict(ok)
    for status in sorted({*errors, 403, 429}):
        out[str(status)] = {"description": ERROR_STATUSES[status], "content": _json("Error")}
    return out


def _query(name: str, schema_: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema_, "description": description}


def _path_id() -> dict:
    return {"name": "incident_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}


def _paths() -> dict:
    unit = {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}
    when = {"type": "string", "format": "date-time"}
    list_params = [
        _query("state", {"type": "string"}, f"Comma-separated states: {', '.join(lifecycle.STATES)}"),
        _query("status", {"type": "string", "enum": ["open", "closed"]}, "Open or closed incidents only"),
        _query("category", {"type": "string"}, "Comma-separated category codes"),
        _query("department", {"type": "string"}, "Code of the assigned department"),
        _query("source", {"type": "string"}, "The channel the incidents came from"),
        _query("unlocated", {"type": "boolean"}, "Only incidents with (true) or without (false) a grid"),
        _query("district_id", unit, "Unit id of a district"),
        _query("street_id", unit, "Unit id of a street"),
        _query("community_id", unit, "Unit id of a community"),
        _query("grid_id", unit, "Unit id of a grid"),
        _query("reported_after", when, "Reported at or after"),
        _query("reported_before", when, "Reported at or before"),
        _query("updated_after", when, "Changed at or after"),
        _query(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": v1_params.MAX_LIST_LIMIT, "default": v1_params.LIST_LIMIT},
            "Page size",
        ),
        _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
    ]
    idempotency = {
        "name": v1_params.IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 128},
        "description": "Retrying with the same key and body replays the first answer; nothing is stored twice",
    }
    return {
        "/api/v1/incidents": {
            "post": {
                "operationId": "reportIncidents",
                "summary": "Report one incident or a batch of up to 1,000 (all or nothing)",
                "description": "Idempotent by the key's source and each external_id, or by an Idempotency-Key header (its answer is replayed for 24 hours). "
                "Positions outside the city are kept, flagged unlocated, whatever the key. A key bound to a unit is refused "
                "(422 outside_jurisdiction, nothing stored) a position in another unit of the city; a report without a "
                "position is kept.",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [idempotency],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"oneOf": [_ref("IncidentInput"), _ref("IncidentBatch")]}}},
                },
                "responses": _responses(
                    {
                        "201": {"description": "At least one incident was new", "content": _json("IntakeResponse")},
                        "200": {"description": "Every incident was already stored", "content": _json("IntakeResponse")},
                    },
                    400,
                    413,
                    415,
                    422,
                ),
            },
            "get": {
                "operationId": "listIncidents",
                "summary": "Incidents, newest first, filtered, a page at a time",
                "description": "A key bound to a unit lists only the incidents in it; a filter on another unit gives an empty page.",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": list_params,
                "responses": _responses({"200": {"description": "A page", "content": _json("IncidentList")}}, 400),
            },
        },
        "/api/v1/incidents/{incident_id}": {
            "get": {
                "operationId": "getIncident",
                "summary": "One incident with its audit history",
                "description": "404 for an incident outside a unit-bound key's unit, exactly as for a missing one.",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [_path_id()],
                "responses": _responses({"200": {"description": "The incident", "content": _json("IncidentDetail")}}, 404),
            }
        },
        "/api/v1/incidents/{incident_id}/actions": {
            "post": {
                "operationId": "takeAction",
                "summary": "A department acknowledges, returns, resolves (with note and photo link) or notes its incident",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [_path_id()],
                "requestBody": {"required": True, "content": _json("ActionRequest")},
                "responses": _responses(
                    {"200": {"description": "The incident after the action", "content": _json("ActionResult")}},
                    400,
                    404,
                    409,
                    413,
                    415,
                ),
            }
        },
        "/api/v1/inbox": {
            "get": {
                "operationId": "listInbox",
                "summary": "The notifications (一键智达) of the key's department, newest first, a page at a time",
                "description": "Needs an actions key: every dispatch, reassignment, recall and escalation concerning "
                "the key's department, each with the incident as it is now.",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [
                    _query("unread", {"type": "boolean"}, "Only notifications not yet marked read"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": v1_params.MAX_INBOX_LIMIT, "default": v1_params.INBOX_LIMIT},
                        "Page size",
                    ),
                    _query("cursor", {"type": "string"}, "next_cursor of the previous page"),
                ],
                "responses": _responses({"200": {"description": "A page", "content": _json("Inbox")}}, 400),
            }
        },
        "/api/v1/inbox/{notification_id}/read": {
            "post": {
                "operationId": "markNotificationRead",
                "summary": "Mark one of the department's notifications read (marking it again changes nothing)",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [
                    {"name": "notification_id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
                ],
                "responses": _responses(
                    {
                        "200": {
                            "description": "The notification, read",
                            "content": {"application/json": {"schema": _object({"notification": _ref("Notification")})}},
                        }
                    },
                    400,
                    404,
                ),
            }
        },
        "/api/v1/categories": {
            "get": {
                "operationId": "listCategories",
                "summary": "The category codes intake accepts",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "responses": _responses(
                    {
                        "200": {
                            "description": "Active categories",
                            "content": {
                                "application/json": {
                                    "schema": _object({"categories": {"type": "array", "items": _ref("Category")}})
                                }
                            },
                        }
                    },
                    400,
                ),
            }
        },
        "/api/v1/kpis": {
            "get": {
                "operationId": "getKpis",
                "summary": "The overview's headline figures for the city or one unit, against the same time yesterday",
                "description": "A key bound to a unit gets its unit's figures without parameters, and 404 for a unit outside it.",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [
                    _query("level", {"type": "string", "enum": list(v1_params.SCOPE_LEVELS)}, "Level of the unit (with unit_id)"),
                    _query("unit_id", unit, "Id of the unit (with level)"),
                ],
                "responses": _responses({"200": {"description": "The figures", "content": _json("Kpis")}}, 400, 404),
            }
        },
        "/api/v1/feed": {
            "get": {
                "operationId": "getFeed",
                "summary": "The change feed after an event id; server-sent events with Accept: text/event-stream",
                "description": "A key bound to a unit gets only the events of incidents in it (next_after may then pass "
                "events it does not see).",
                "security": [{"ApiKey": []}, {"Bearer": []}],
                "parameters": [
                    _query("after", {"type": "integer", "minimum": 0, "maximum": 2**63 - 1, "default": 0}, "Last event id seen"),
                    _query(
                        "limit",
                        {"type": "integer", "minimum": 1, "maximum": v1_params.MAX_FEED_LIMIT, "default": v1_params.FEED_LIMIT},
                        "Events per page",
                    ),
                ],
                "responses": _responses(
                    {
                        "200": {
                            "description": "Events in id order (each SSE message's id is the event id: Last-Event-ID resumes)",
                            "content": {
                                "application/json": {"schema": _ref("Feed")},
                                "text/event-stream": {"schema": {"type": "string"}},
                            },
                        }
                    },
                    400,
                ),
            }
        },
        "/api/v1/openapi.json": {
            "get": {
                "operationId": "getOpenApi",
                "summary": "This document",
                "security": [],
                "responses": {
                    "200": {"description": "OpenAPI 3", "content": {"application/json": {"schema": {"type": "object"}}}},
                    "429": {"description": ERROR_STATUSES[429], "content": _json("Error")},
                },
            }
        },
    }


@cache
def openapi_document() -> dict:
    """The whole document (built once per process)."""
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "CityBrain Command intake API",
            "version": API_VERSION,
            "description": "Report incidents, follow them and act on them as a department. "
            f"Keys carry scopes ({', '.join(SCOPES)}); create them with `python app.py api-key create`. "
            "A key may be bound to a unit (api-key create --unit CODE): it then reads, reports and acts only there. "
            "The same incidents are also reachable through Open311 GeoReport v2 at /open311/v2/.",
        },
        "paths": _paths(),
        "components": {
            "schemas": _schemas(),
            "securitySchemes": {
                "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "Bearer": {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{"ApiKey": []}, {"Bearer": []}],
    }
