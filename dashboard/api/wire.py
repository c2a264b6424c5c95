"""The API's wire formats: JSON responses through orjson, Open311's XML, and strict JSON request bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

import orjson
from flask import Response, request

from dashboard.api.errors import ApiError, bad_request
from data.errors import ValidationError
from data.parse import check_json_depth
from data.xml_chars import strip_xml_unsafe

JSON_TYPE = "application/json"
XML_TYPE = "text/xml; charset=utf-8"

# Open311 XML: the element each list item becomes, by the list's own element name.
XML_ITEM_TAGS = {
    "services": "service",
    "service_requests": "request",
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "values": "value",
    "errors": "error",
}


def json_response(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    """A JSON response serialised by orjson (datetimes as ISO 8601, non-string keys allowed)."""
    body = orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, status=status, mimetype=JSON_TYPE, headers=headers)


def json_error(error: ApiError) -> Response:
    return json_response(error.body(), error.status)


def read_json_body() -> Any:
    """The request's JSON document, or ApiError 415 (not JSON) / 400 (malformed)."""
    mimetype = request.mimetype or ""
    if mimetype and mimetype != JSON_TYPE and not mimetype.endswith("+json"):
        raise ApiError(415, "unsupported_media_type", f"send JSON with Content-Type: application/json, not {mimetype}")
    raw = request.get_data(cache=True)  # raises 413 past the body limit
    if not raw.strip():
        raise bad_request("the request body is empty; send a JSON document", code="malformed_json")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise bad_request(f"the body is not valid JSON: {exc}", code="malformed_json") from None
    try:
        check_json_depth(document)  # before anything walks it (the NUL check below recurses)
    except ValidationError as exc:
        raise bad_request(str(exc), code="malformed_json") from None
    if _holds_nul(document):
        # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the database.
        raise bad_request("text in the body must not contain NUL characters (\\u0000)", code="invalid")
    return document


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(v) for v in value)
    return False


# --- Open311 XML --------------------------------------------------------------------------------


def _xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    # Intake refuses these characters; rows stored before it did must not make the whole document unreadable.
    return strip_xml_unsafe(str(value))


def _fill(element: ET.Element, value: Any) -> None:
    if isinstance(value, dict):
        for key, child in value.items():
            _fill(ET.SubElement(element, key), child)
    elif isinstance(value, list):
        item_tag = XML_ITEM_TAGS.get(element.tag, "item")
        for child in value:
            _fill(ET.SubElement(element, item_tag), child)
    else:
        element.text = _xml_text(value)


def xml_document(root: str, payload: Any) -> bytes:
    """`payload` (dicts, lists, scalars; None as an empty element) as UTF-8 XML under `root`."""
    element = ET.Element(root)
    _fill(element, payload)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(element, encoding="utf-8", xml_declaration=False)


def xml_response(root: str, payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(xml_document(root, payload), status=status, content_type=XML_TYPE, headers=headers)
