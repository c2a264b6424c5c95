"""The Flask side of live updates: /live/head for polling, and /live/events admitted here, then streamed by the async server.

Admission is ordinary Flask (the sign-in gate, jurisdiction, parsing where to resume), so a
stream is checked exactly like any other request. The view hands a spec over to the ASGI layer
(asgi.py), which streams it on the event loop; served by plain WSGI (no async layer), the view
says so with a 503 and the screens poll /live/head instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, jsonify, request

from dashboard import access, auth, jurisdiction
from dashboard.live import wire
from dashboard.live.streams import LiveSpec
from data import store
from data.geo.units import units_version
from data.parse import parse_event_id

bp = Blueprint("live", __name__, url_prefix="/live")

ASGI_KEY = "citybrain.asgi"  # set in the WSGI environ by the async layer: it can take a stream over
STREAM_KEY = "citybrain.stream"  # where a view leaves the spec of the stream it admitted


def hand_over(spec) -> Response:
    """The answer of a view that admitted a stream: headers now, the body from the async layer."""
    if not request.environ.get(ASGI_KEY):
        response = jsonify(
            error="unavailable",
            message="live streams are served by the async server (python app.py, or gunicorn with uvicorn workers); "
            "poll /live/head instead",
        )
        response.status_code = 503
        return response
    request.environ[STREAM_KEY] = spec
    response = Response(status=200, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


def current_head(engine) -> int:
    with store.reading(engine) as conn:
        return store.feed_head(conn)


def resume_point(engine) -> int:
    """Where a stream starts: Last-Event-ID (a reconnect), else ?after= (the page's head), else now."""
    for name, raw in (("Last-Event-ID", request.headers.get("Last-Event-ID")), ("after", request.args.get("after"))):
        start = parse_event_id(raw, name)  # ValidationError (400) for what is not an event id
        if start is not None:
            return start
    return current_head(engine)


@bp.get("/events")
def events():
    """The change feed as server-sent events (text/event-stream), for the screens."""
    engine = current_app.extensions["citybrain"].engine
    return hand_over(
        LiveSpec(
            after=resume_point(engine),
            session_id=access.current().get_id(),
            redact=jurisdiction.restricted(),  # which incidents changed may be outside the user's jurisdiction
            build=current_app.config.get("CITYBRAIN_BUILD", ""),
            stream_seconds=float(current_app.config.get("CITYBRAIN_SSE_STREAM_SECONDS", wire.STREAM_SECONDS)),
            # A stream outlives its request: it ends when the session does (kiosk revoked, user deactivated).
            still_valid=lambda session_id: auth.still_valid(engine, session_id),
        )
    )


@bp.get("/head")
def head():
    """The feed head and the units version, for the polling fallback when server push is blocked on the way."""
    engine = current_app.extensions["citybrain"].engine
    build = current_app.config.get("CITYBRAIN_BUILD", "")
    with store.reading(engine) as conn:
        head, units = store.feed_head(conn), units_version(conn)
    return jsonify(head=head, units=units, build=build, at=datetime.now(UTC).isoformat(timespec="seconds"))
