"""Open311 GeoReport v2 at /open311/v2: discovery, services, service definitions, requests (GET and POST), tokens; JSON and XML.

Follows the published standard so existing Open311 clients work unmodified: every field it
lists is present (null / empty when unknown), errors are a list of {code, description} with
HTTP 400/403/404, times carry the city's UTC offset. Our lifecycle maps to open/closed with
status_notes saying where the case is (the state's standard text and any note given for citizens,
never an internal note); agency_responsible is the assigned department.
Reading is public, as the standard intends; reporting needs an api_key with the intake scope.
A read that carries a key sees what that key may (a key bound to a unit: only that unit's requests).
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, request

from dashboard.api import jurisdiction
from dashboard.api.context import api_context
from dashboard.api.errors import ApiError, bad_request, from_data_error, not_found
from dashboard.api.intake import MAX_URL, actor_of, check_position, unknown_category
from dashboard.api.keys import FORM_TYPES, presented, require
from dashboard.api.wire import json_response, xml_response
from data import store
from data.accounts.apikeys import INTAKE, ApiKey
from data.errors import CityBrainError, ValidationError
from data.incidents import lifecycle
from data.incidents.api_store import (
    IncidentFilter,
    categories,
    category_attributes,
    check_attribute_values,
    find_by_external_id,
    list_incidents,
    parse_datetime,
    public_notes,
)
from data.parse import id_or_none, parse_ids, parse_int, shown
from data.times import utc_now
from data.xml_chars import first_xml_unsafe

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-26T00:00:00Z"  # when this endpoint last changed what it offers
FORMATS = ["text/xml", "application/json"]
TOKEN_PREFIX = "o311-"
DEFAULT_DAYS = 90  # GET requests without dates covers the last 90 days, as the standard suggests
PAGE_SIZE, MAX_PAGE_SIZE = 50, 1000
MAX_DESCRIPTION = 4000
REPORTER_FIELDS = ("email", "device_id", "account_id", "first_name", "last_name", "phone")
_ATTRIBUTE_FIELD = re.compile(r"^attribute\[([^\[\]]+)\](\[\])?$")

# status_notes per lifecycle state, in English and Chinese; {agency} and {merged_into_id} are filled in.
STATE_NOTES = {
    lifecycle.REPORTED: ("Reported; waiting to be registered", "已上报，待立案"),
    lifecycle.REGISTERED: ("Registered; waiting to be dispatched", "已立案，待派遣"),
    lifecycle.DISPATCHED: ("Dispatched to {agency}", "已派遣至{agency}"),
    lifecycle.ACKNOWLEDGED: ("Being handled by {agency}", "{agency}已签收，正在处置"),
    lifecycle.RETURNED: ("Returned by the department; to be dispatched again", "已退回，待重新派遣"),
    lifecycle.RESOLVED: ("Resolved; waiting for verification", "已处置，待核查"),
    lifecycle.REOPENED: ("Verification failed; to be dispatched again", "核查未通过，待重新派遣"),
    lifecycle.CLOSED: ("Closed", "已结案"),
    lifecycle.REJECTED: ("Not accepted as a case", "不予立案"),
    lifecycle.MERGED: ("Duplicate of request {merged_into_id}", "与{merged_into_id}号诉求合并办理"),
}
GRID_WORKER = ("the grid worker", "网格员")
UNLOCATED_NOTICE = (
    "The position is outside the city's grids or missing; an operator will place it.",
    "位置不在本市网格内或未提供，将由工作人员定位。",
)
FMT = "<any(json,xml):fmt>"


# --- formats --------------------------------------------------------------------------------------


def request_id(incident_id: int) -> str:
    """A service request's id as Open311 clients read it: a string (typed clients refuse a JSON number)."""
    return str(incident_id)


def _respond(fmt: str, root: str, payload, status: int = 200):
    return json_response(payload, status) if fmt == "json" else xml_response(root, payload, status)


def _lang() -> int:
    """0 for English, 1 for Chinese: ?lang=en|zh, else the app's default language."""
    lang = request.args.get("lang") or api_context().settings.lang
    return 1 if lang == "zh" else 0


def _local(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(ZoneInfo(api_context().settings.timezone)).isoformat(timespec="seconds")


def error_response(error: ApiError):
    """An error as the standard has it: a list of {code, description}, in the format the path asked for."""
    fmt = (request.view_args or {}).get("fmt") or ("xml" if request.path.endswith(".xml") else "json")
    response = _respond(fmt, "errors", [{"code": error.status, "description": error.message}], error.status)
    if error.status == 429:
        response.headers["Retry-After"] = str(error.extra.get("retry_after", 1))
    return response


# --- discovery and services ------------------------------------------------------------------------


@bp.get(f"/discovery.{FMT}")
def discovery(fmt: str):
    """Where the GeoReport v2 endpoint is and what it speaks."""
    payload = {
        "changeset": CHANGESET,
        "contact": "The city's command centre (城市运行指挥中心)",
        "key_service": "API keys are issued by the command centre: python app.py api-key create --scope intake",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": request.url_root.rstrip("/") + bp.url_prefix,
                "changeset": CHANGESET,
                "type": "production",
                "formats": FORMATS,
            }
        ],
    }
    return _respond(fmt, "discovery", payload)


@bp.get(f"/services.{FMT}")
def services(fmt: str):
    """Every active category as a service; group is its sector (四板块)."""
    lang = _lang()
    with store.reading(api_context().engine) as conn:
        rows = categories(conn)
    payload = [
        {
            "service_code": r["code"],
            "service_name": (r["name_en"], r["name_zh"])[lang],
            "description": f"{(r['name_en'], r['name_zh'])[lang]} ({(r['department_name_en'], r['department_name_zh'])[lang]})",
            "metadata": r["has_attributes"],
            "type": "realtime",
            "keywords": ",".join([r["code"], r["sector"]]),
            "group": r["sector"],
        }
        for r in rows
    ]
    return _respond(fmt, "services", payload)


def _category(conn, code: str) -> dict | None:
    return next((c for c in categories(conn) if c["code"] == code), None)


@bp.get(f"/services/<service_code>.{FMT}")
def service_definition(service_code: str, fmt: str):
    """The attributes (extra questions) a report of this service answers."""
    with store.reading(api_context().engine) as conn:
        category = _category(conn, service_code)
        if category is None:
            raise not_found(f"service_code {service_code!r} not found")
        definitions = category_attributes(conn, category["id"])
    payload = {
        "service_code": service_code,
        "attributes": [
            {
                "variable": d["variable"],
                "code": d["code"],
                "datatype": d["datatype"],
                "required": d["required"],
                "datatype_description": d["datatype_description"],
                "order": d["position"],
                "description": d["description"],
                "values": [{"key": v["key"], "name": v["name"]} for v in d["value_list"] or []],
            }
            for d in definitions
        ],
    }
    return _respond(fmt, "service_definition", payload)


# --- service requests -----------------------------------------------------------------------------


def _status_notes(row: dict, public_note: str | None, lang: int) -> str:
    """The state's standard text, and the note given for citizens in this state if any: never an internal note
    (a department's notes carry names and phone numbers, and anyone may read Open311)."""
    agency = _agency(row, lang) or ("the department", "部门")[lang]
    text = STATE_NOTES[row["state"]][lang].format(agency=agency, merged_into_id=row["merged_into_id"])
    return f"{text}: {public_note}" if public_note else text


def _agency(row: dict, lang: int) -> str | None:
    if row["department_code"] is not None:
        return (row["department_name_en"], row["department_name_zh"])[lang]
    if row["assignee_worker_id"] is not None:
        return GRID_WORKER[lang]
    return None


def _request_json(row: dict, public_note: str | None, lang: int) -> dict:
    return {
        "service_request_id": request_id(row["id"]),
        "status": "open" if row["is_open"] else "closed",
        "status_notes": _status_notes(row, public_note, lang),
        "service_name": (row["category_name_en"], row["category_name_zh"])[lang],
        "service_code": row["category_code"],
        "description": row["description"] or None,
        "agency_responsible": _agency(row, lang),
        "service_notice": UNLOCATED_NOTICE[lang] if row["unlocated"] else None,
        "requested_datetime": _local(row["reported_at"]),
        "updated_datetime": _local(row["updated_at"]),
        "expected_datetime": _local(row["handle_due_at"]),
        "address": row["address"],
        "address_id": None,
        "zipcode": None,
        "lat": row["lat"],
        "long": row["lon"],
        "media_url": row["media_url"],
    }


def _requests_payload(conn, rows: list[dict]) -> list[dict]:
    lang = _lang()
    notes = public_notes(conn, [r["id"] for r in rows])
    return [_request_json(r, notes.get(r["id"]), lang) for r in rows]


def _codes(name: str) -> list[str]:
    return [part.strip() for part in (request.args.get(name) or "").split(",") if part.strip()]


def _page_number(name: str, default: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return parse_int(raw.strip(), name, minimum=1, maximum=high)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None


def _date(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return parse_datetime(raw, name)
    except ValidationError as exc:
        raise bad_request(str(exc)) from None


def _search_filter(conn) -> IncidentFilter:
    ids = _codes("service_request_id")
    if ids:
        # The standard: with service_request_id given, every other filter is ignored.
        try:
            return IncidentFilter(ids=tuple(parse_ids(ids, "service_request_id")))
        except ValidationError as exc:
            raise bad_request(f"service_request_id must be whole numbers separated by commas: {exc}") from None
    codes = _codes("service_code")
    category_ids = None
    if codes:
        known = {c["code"]: c["id"] for c in categories(conn)}
        for code in codes:
            if code not in known:
                raise unknown_category(code, sorted(known))
        category_ids = tuple(known[c] for c in codes)
    statuses = set(_codes("status"))
    if statuses - {"open", "closed"}:
        raise bad_request(f"status must be open, closed or both; got {request.args.get('status')!r}")
    start, end = _date("start_date"), _date("end_date")
    if start is None and end is None:
        start = utc_now() - timedelta(days=DEFAULT_DAYS)
    if start is not None and end is not None and end < start:
        raise bad_request("end_date is before start_date")
    return IncidentFilter(
        category_ids=category_ids,
        is_open=None if len(statuses) != 1 else statuses == {"open"},
        reported_from=start,
        reported_to=end,
    )


def _reader(conn) -> ApiKey | None:
    """The key a read carries, or None: without one, reads are public and city-wide (the standard's intent).

    A key that is sent must work (403 otherwise, rather than quietly answering for the whole
    city); any scope will do, and a key bound to a unit sees only that unit's requests.
    """
    return require(conn, None, open311=True) if presented() else None


def _clamped(key: ApiKey | None, flt: IncidentFilter) -> IncidentFilter | None:
    return flt if key is None else jurisdiction.clamp_filter(key, flt)


@bp.get(f"/requests.{FMT}")
def get_requests(fmt: str):
    """Service requests, newest first, by id, service, date range and status; page and page_size page through."""
    page = _page_number("page", 1, 1_000_000)
    page_size = _page_number("page_size", PAGE_SIZE, MAX_PAGE_SIZE)
    with store.reading(api_context().engine) as conn:
        key = _reader(conn)
        flt = _clamped(key, _search_filter(conn))
        rows = (
            []
            if flt is None
            else list_incidents(conn, flt, limit=page_size, offset=(page - 1) * page_size, newest_reported_first=True)
        )
        payload = _requests_payload(conn, rows)
    return _respond(fmt, "service_requests", payload)


@bp.get(f"/requests/<service_request_id>.{FMT}")
def get_request(service_request_id: str, fmt: str):
    """One service request (as a list of one, as the standard has it)."""
    number = id_or_none(service_request_id)
    if number is None:
        raise not_found(f"service_request_id {shown(service_request_id)} not found")
    with store.reading(api_context().engine) as conn:
        flt = _clamped(_reader(conn), IncidentFilter(ids=(number,)))
        rows = [] if flt is None else list_incidents(conn, flt, limit=1)
        if not rows:  # outside the key's unit answers exactly as missing
            raise not_found(f"service_request_id {service_request_id} not found")
        payload = _requests_payload(conn, rows)
    return _respond(fmt, "service_requests", payload)


@bp.get(f"/tokens/<token>.{FMT}")
def get_token(token: str, fmt: str):
    """The service request a token (given when it was posted) became."""
    ids = []
    if token.startswith(TOKEN_PREFIX):
        with store.reading(api_context().engine) as conn:
            key = _reader(conn)
            ids = [i for i in find_by_external_id(conn, token) if key is None or jurisdiction.incident_inside(conn, key, i)]
    if not ids:
        raise not_found(f"token {token!r} not found")
    return _respond(fmt, "service_requests", [{"service_request_id": request_id(ids[0]), "token": token}])


def _form_attributes(form) -> dict[str, list[str]]:
    given: dict[str, list[str]] = {}
    for name in form:
        match = _ATTRIBUTE_FIELD.match(name)
        if match:
            given.setdefault(match.group(1), []).extend(form.getlist(name))
    return given


def _text(form, name: str, longest: int) -> str | None:
    value = (form.get(name) or "").strip()
    if len(value) > longest:
        raise bad_request(f"{name} is longer than {longest} characters")
    return value or None


@bp.post(f"/requests.{FMT}")
def post_request(fmt: str):
    """Report a service request: form-encoded, api_key, service_code, a position or an address, attributes."""
    if request.mimetype not in FORM_TYPES:
        raise bad_request("send the request form-encoded (application/x-www-form-urlencoded or multipart/form-data)")
    form = request.form  # read before the key: a body over the limit is 413, whatever it holds
    # Control characters (NUL included) cannot be stored, nor carried by this API's XML.
    if any(first_xml_unsafe(value) for values in form.listvalues() for value in values):
        raise bad_request("form fields must not contain control characters (other than tab and line breaks)")
    service_code = (form.get("service_code") or "").strip()
    if not service_code:
        raise bad_request("service_code is required")
    lon, lat = check_position(form.get("long") or None, form.get("lat") or None)
    address = _text(form, "address_string", 1000)
    address_id = _text(form, "address_id", 200)
    if lon is None and address is None and address_id is None:
        raise bad_request("a location is required: lat and long, address_string or address_id")
    description = _text(form, "description", MAX_DESCRIPTION)
    media_url = _text(form, "media_url", MAX_URL)
    if media_url and not media_url.lower().startswith(("http://", "https://")):
        raise bad_request("media_url must be an http(s) link")
    reporter = {name: _text(form, name, 200) for name in REPORTER_FIELDS}
    reporter = {name: value for name, value in reporter.items() if value}

    ctx = api_context()
    with store.reading(ctx.engine) as conn:
        key = require(conn, INTAKE, open311=True)
        category_ids = ctx.category_ids(conn)
        if service_code not in category_ids:
            raise unknown_category(service_code, sorted(category_ids))
        try:
            attributes = check_attribute_values(category_attributes(conn, category_ids[service_code]), _form_attributes(form))
        except ValidationError as exc:
            raise bad_request(str(exc)) from None
    if reporter:
        # Kept for the call back to the citizen (回访); never shown by GET requests.
        attributes["_reporter"] = reporter
    token = TOKEN_PREFIX + uuid.uuid4().hex
    row = {
        "source": key.source,
        "external_id": token,
        "category_id": category_ids[service_code],
        "priority": 3,
        "description": description or "",
        "lon": lon,
        "lat": lat,
        "address": address if address is not None else (f"address_id:{address_id}" if address_id else None),
        "media_url": media_url,
        "attributes": attributes or None,
    }
    if jurisdiction.bound(key):
        with store.reading(ctx.engine) as conn:
            locator = ctx.locators.get(conn)
        # 400: the standard's answer to a request it cannot take (the native API says 422).
        jurisdiction.check_reports(locator, key, [row], status=400)
    try:
        (result,) = ctx.submit([row], actor_of(key))
    except CityBrainError as exc:
        raise from_data_error(exc) from None
    payload = [
        {
            "service_request_id": request_id(result.incident_id),
            "token": token,
            "service_notice": UNLOCATED_NOTICE[_lang()] if result.unlocated else None,
            "account_id": reporter.get("account_id"),
        }
    ]
    return _respond(fmt, "service_requests", payload)


@bp.get("/")
@bp.get("/<path:unknown>")
def unknown_path(unknown: str = ""):
    """Unknown Open311 paths answer 404 as the standard's errors (not the dashboard's page)."""
    raise not_found(f"no such Open311 resource /open311/v2/{unknown}; start at discovery.json")
