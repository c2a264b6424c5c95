"""The native API's department inbox (一键智达): a department's notifications, a page at a time, and marking one read."""

from __future__ import annotations

from flask import request

from dashboard.api import jurisdiction
from dashboard.api.context import api_context
from dashboard.api.errors import forbidden, not_found
from dashboard.api.keys import require
from dashboard.api.v1_params import (
    INBOX_LIMIT,
    MAX_INBOX_LIMIT,
    bool_param,
    check_params,
    decode_cursor,
    encode_cursor,
    incident_json,
    int_param,
)
from dashboard.api.wire import json_response
from data import schema, store
from data.accounts.apikeys import ACTIONS
from data.incidents import notify
from data.incidents.api_store import IncidentFilter, list_incidents
from data.parse import id_or_none, shown

INBOX_PARAMS = frozenset({"unread", "limit", "cursor"})
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


def get_inbox():
    """The key's department's notifications (dispatches, recalls, escalations), newest first, a page at a time."""
    with store.reading(api_context().engine) as conn:
        key = _department_key(conn)
        check_params(INBOX_PARAMS)
        limit = int_param("limit", INBOX_LIMIT, 1, MAX_INBOX_LIMIT)
        cursor = request.args.get("cursor") or None
        rows = jurisdiction.inbox(
            conn,
            key,
            unread_only=bool(bool_param("unread")),
            limit=limit,
            before_id=decode_cursor(cursor) if cursor else None,
        )
        payload = notifications_json(conn, rows)
    next_cursor = encode_cursor(rows[-1]["id"]) if len(rows) == limit else None
    return json_response({"notifications": payload, "next_cursor": next_cursor})


def post_inbox_read(notification_id: str):
    """Mark one of the department's notifications read (again is fine); another's answers 404 as if it did not exist."""
    missing = not_found(f"notification {shown(notification_id)} does not exist")
    number = id_or_none(notification_id)
    if number is None:
        raise missing
    with api_context().engine.begin() as conn:
        key = _department_key(conn)
        check_params(frozenset())
        found = notify.notification(conn, number, department_id=key.department_id)
        if found is None or not jurisdiction.incident_inside(conn, key, found["incident_id"]):
            raise missing  # another department's, or about an incident outside the key's unit
        notify.mark_read(conn, [number], department_id=key.department_id)
        row = notify.notification(conn, number, department_id=key.department_id)
        (payload,) = notifications_json(conn, [row])
    return json_response({"notification": payload})
