"""The native API's KPIs (the overview's headline figures) and its change feed (JSON pages or server-sent events)."""

from __future__ import annotations

from flask import current_app, request

from dashboard.api import jurisdiction
from dashboard.api.context import api_context
from dashboard.api.errors import bad_request, not_found
from dashboard.api.keys import require
from dashboard.api.v1_params import FEED_LIMIT, MAX_FEED_LIMIT, MAX_UNIT_ID, SCOPE_LEVELS, check_params, event_json, int_param
from dashboard.api.wire import json_response
from dashboard.live import wire
from dashboard.live.routes import hand_over
from dashboard.live.streams import FeedSpec
from data import schema, store
from data.accounts.apikeys import READ
from data.incidents.api_store import unit_exists
from data.metrics.working_set import overview_kpis
from data.parse import parse_event_id
from data.times import utc_now


def get_kpis():
    """The overview's headline figures (value, same time yesterday, change) for the city or one unit."""
    settings = api_context().settings
    now = utc_now()
    with store.reading(api_context().engine) as conn:
        key = require(conn, READ)
        check_params(frozenset({"level", "unit_id"}))
        level_name = request.args.get("level") or None
        unit_id = int_param("unit_id", low=1, high=MAX_UNIT_ID)
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


# --- the change feed ----------------------------------------------------------------------------


def _wants_event_stream() -> bool:
    # Only when asked by name: a client accepting */* gets JSON pages, never an endless stream.
    accept = request.accept_mimetypes
    named = {value for value, _quality in accept}
    return "text/event-stream" in named and accept.best_match(["application/json", "text/event-stream"]) == "text/event-stream"


def get_feed():
    """The change feed after an event id: JSON pages, or server-sent events with Accept: text/event-stream."""
    engine = api_context().engine
    with store.reading(engine) as conn:
        key = require(conn, READ)
    check_params(frozenset({"after", "limit"}))
    after = int_param("after", 0)
    limit = int_param("limit", FEED_LIMIT, 1, MAX_FEED_LIMIT)
    if _wants_event_stream():
        resumed = parse_event_id(request.headers.get("Last-Event-ID"), "Last-Event-ID")  # 400 for what is not one
        start = after if resumed is None else resumed

        def read_page(after_id: int) -> tuple[list[dict], int]:
            with store.reading(engine) as conn:
                events, next_after, _head = jurisdiction.feed_page(conn, key, after_id, MAX_FEED_LIMIT)
            return [event_json(e) for e in events], next_after

        seconds = float(current_app.config.get("CITYBRAIN_SSE_STREAM_SECONDS", wire.STREAM_SECONDS))
        return hand_over(FeedSpec(after=start, read_page=read_page, page=MAX_FEED_LIMIT, stream_seconds=seconds))
    with store.reading(engine) as conn:
        events, next_after, head = jurisdiction.feed_page(conn, key, after, limit)
    return json_response({"events": [event_json(e) for e in events], "next_after": next_after, "head": head})
