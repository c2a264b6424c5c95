"""The native JSON API at /api/v1: its blueprint and URL table, the OpenAPI document's route and the JSON 404.

The views live by concern: intake, incident reads and department actions in dashboard/api/v1_incidents.py,
the department inbox in v1_inbox.py, KPIs and the change feed in v1_kpis_feed.py; limits, parameter checks
and JSON shapes in v1_params.py. Every answer is JSON (orjson); errors are
``{"error": {"status", "code", "message", ...}}``. The OpenAPI document describing all of it is served at
/api/v1/openapi.json (dashboard/api/openapi.py).
"""

from __future__ import annotations

from flask import Blueprint

from dashboard.api import v1_inbox, v1_incidents, v1_kpis_feed
from dashboard.api.errors import not_found
from dashboard.api.openapi import openapi_document
from dashboard.api.wire import json_response

bp = Blueprint("api_v1", __name__, url_prefix="/api/v1")

# (method, rule, view): the endpoint of each is "api_v1.<view name>".
ROUTES = (
    ("POST", "/incidents", v1_incidents.post_incidents),
    ("GET", "/incidents", v1_incidents.get_incidents),
    ("GET", "/incidents/<incident_id>", v1_incidents.get_one_incident),
    ("GET", "/categories", v1_incidents.get_categories),
    ("POST", "/incidents/<incident_id>/actions", v1_incidents.post_action),
    ("GET", "/inbox", v1_inbox.get_inbox),
    ("POST", "/inbox/<notification_id>/read", v1_inbox.post_inbox_read),
    ("GET", "/kpis", v1_kpis_feed.get_kpis),
    ("GET", "/feed", v1_kpis_feed.get_feed),
)
for _method, _rule, _view in ROUTES:
    bp.add_url_rule(_rule, view_func=_view, methods=[_method])


@bp.get("/openapi.json")
def openapi_json():
    """The OpenAPI 3 document of this API."""
    return json_response(openapi_document())


@bp.get("/")
@bp.get("/<path:unknown>")
def unknown_path(unknown: str = ""):
    """Unknown API paths answer 404 in JSON (without this, the dashboard's page routing would answer)."""
    raise not_found(f"no such API path /api/v1/{unknown}; see /api/v1/openapi.json")
