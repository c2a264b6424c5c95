"""Hostile input at the door: ValidationError answers 400 anywhere, and a Dash callback request that is too deep or not shaped as Dash sends it is refused before anything reads it.

Dash's /_dash-update-component trusts its body: a list instead of an object, an input without a
property, a callback that does not exist or a body nested 500 deep each raised inside Dash (a 500).
The renderer never sends such a thing, so a request that does is refused with a 400 here: a body too
deep before the sign-in gate parses it (its JSON parser recurses), any other malformed one once the
gate has let it through, and always before Dash reads it.
"""

from __future__ import annotations

from typing import Any

import dash
import orjson
from dash._utils import stringify_id
from flask import jsonify, request

from data.errors import ValidationError
from data.parse import MAX_JSON_DEPTH, check_json_depth

CALLBACK_PATH = "/_dash-update-component"
_SCALARS = (str, int, float, bool)


def install(app: dash.Dash) -> None:
    """Answer ValidationError with a 400 everywhere (routes with their own handlers keep them) and guard the
    callback endpoint: its body's depth first of all, then, past the sign-in gate, its shape and callback."""
    server = app.server
    server.register_error_handler(ValidationError, bad_request)
    # First of every before-request function: the sign-in gate parses a signed-in user's body (with a parser that
    # recurses) to find the callback's area. Anonymous requests are then refused by the gate before their shape is
    # looked at, so a stranger learns nothing from the answer.
    server.before_request_funcs.setdefault(None, []).insert(0, _refuse_deep_callback)
    server.before_request(lambda: _refuse_malformed_callback(app))


def bad_request(exc: ValidationError):
    """A 400 with a JSON body saying what was wrong; nothing was changed."""
    response = jsonify(error="invalid", message=str(exc))
    response.status_code = 400
    return response


def _is_callback() -> bool:
    return request.path == CALLBACK_PATH and request.method == "POST"


def _refuse_deep_callback():
    if not _is_callback():
        return None
    try:
        body = orjson.loads(request.get_data(cache=True))  # orjson: no recursion; past 1,024 levels it refuses
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc) or "recursion" in str(exc):
            raise ValidationError(f"the callback request nests deeper than {MAX_JSON_DEPTH} levels") from None
        return None  # not JSON at all: refused below, once the gate has had its say
    check_json_depth(body)
    return None


def _refuse_malformed_callback(app: dash.Dash):
    if not _is_callback():
        return None
    try:
        body = orjson.loads(request.get_data(cache=True))
    except orjson.JSONDecodeError:
        raise ValidationError("the callback request is not JSON") from None
    problem = _shape_problem(body)
    if problem is None:
        spec = app.callback_map.get(body["output"])
        problem = "it names no callback of this app" if spec is None else _count_problem(spec, body)
    if problem:
        raise ValidationError(f"the callback request is malformed: {problem}")
    return None


def _entry_problem(item: Any, where: str) -> str | None:
    """What is wrong with one {id, property, value} entry, None when nothing."""
    if not isinstance(item, dict):
        return f"{where} must be an object"
    component, prop = item.get("id"), item.get("property")
    if isinstance(component, dict):
        if not component or not all(isinstance(k, str) and isinstance(v, _SCALARS) for k, v in component.items()):
            return f"{where}: a pattern id holds text, numbers or true/false"
    elif not isinstance(component, str) or not component:
        return f"{where}: id must be text or a pattern"
    if not isinstance(prop, str) or not prop:
        return f"{where}: property must be text"
    return None


def _slot_problem(item: Any, where: str) -> str | None:
    """An entry, or the list of entries a pattern (ALL) input or output stands for."""
    if isinstance(item, list):
        return next((p for i, e in enumerate(item) if (p := _entry_problem(e, f"{where}[{i}]"))), None)
    return _entry_problem(item, where)


def _shape_problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "the body must be an object"
    if not isinstance(body.get("output"), str):
        return "output must be text"
    outputs = body.get("outputs")
    if isinstance(outputs, dict):
        outputs = [outputs]
    if not isinstance(outputs, list):
        return "outputs must be an object or a list"
    for name, entries in (("outputs", outputs), ("inputs", body.get("inputs")), ("state", body.get("state", []))):
        if not isinstance(entries, list):
            return f"{name} must be a list"
        problem = next((p for i, e in enumerate(entries) if (p := _slot_problem(e, f"{name}[{i}]"))), None)
        if problem:
            return problem
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or not all(isinstance(c, str) for c in changed):
        return "changedPropIds must be a list of text"
    sent = {f"{stringify_id(e['id'])}.{e['property']}" for e in _flat(body["inputs"])}
    if any(c not in sent for c in changed):
        return "changedPropIds must name inputs of the request"  # callbacks read the trigger's id from it
    return None


def _flat(entries: list) -> list[dict]:
    return [e for item in entries for e in (item if isinstance(item, list) else [item])]


def _count_problem(spec: dict, body: dict) -> str | None:
    """Inputs, state and outputs in the number (and, for patterns, the form) the callback declares."""
    for name in ("inputs", "state"):
        declared, sent = spec[name], body.get(name, [])
        if len(sent) != len(declared):
            return f"{name} must have {len(declared)} entries"
        for index, (want, got) in enumerate(zip(declared, sent, strict=True)):
            if _is_multiple(want["id"]) != isinstance(got, list):
                return f"{name}[{index}] must be {'a list' if _is_multiple(want['id']) else 'an object'}"
    outputs = spec["output"]
    if spec.get("no_output"):
        return None
    sent = body["outputs"]
    if isinstance(outputs, list):
        if not isinstance(sent, list) or len(sent) != len(outputs):
            return f"outputs must be a list of {len(outputs)}"
    elif isinstance(sent, list) and not _is_multiple(outputs.component_id_str()):
        return "outputs must be an object"
    return None


def _is_multiple(component_id: Any) -> bool:
    """Whether a declared id is a pattern matching any number of components (ALL, ALLSMALLER): a list is sent."""
    if isinstance(component_id, str):
        if not component_id.startswith("{"):
            return False
        component_id = orjson.loads(component_id)
    return isinstance(component_id, dict) and any(isinstance(v, list) and v and v[0] != "MATCH" for v in component_id.values())
