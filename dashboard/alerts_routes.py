"""GET /alerts/head: the alerts' change counter, polled by every open overview to know when to redraw its alerts."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify

from dashboard.access import VIEW, requires

bp = Blueprint("alerts", __name__, url_prefix="/alerts")


@bp.get("/head")
@requires(VIEW)
def head():
    """{"head": n}: n moves whenever any alert is raised, updated or acted on (one indexed read)."""
    from dashboard.components.alerts_panel import read_head

    engine = current_app.extensions["citybrain"].engine
    response = jsonify(head=read_head(engine))
    response.headers["Cache-Control"] = "no-store"
    return response
