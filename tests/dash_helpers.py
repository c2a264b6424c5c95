"""Fire a Dash callback through the app's own endpoint, as the browser's renderer would (tests of callbacks with their server-side checks)."""

from __future__ import annotations

import json
import time


def fire_callback(app, client, output: str, trigger: tuple, values: dict | None = None):
    """POST the callback writing `output` (a component id, or 'id.prop'); `trigger` is (id, property, value)
    and `values` fills the other inputs and states by component id. Returns the Flask response."""
    return client.post("/_dash-update-component", json=callback_body(app, output, trigger, values))


def callback_body(app, output: str, trigger: tuple, values: dict | None = None) -> dict:
    """The JSON body Dash's renderer posts for the callback writing `output` (see fire_callback).

    Pattern-matching (ALL) inputs get only the triggering component, as if it were the one on the page. The desk's
    click record (DISPATCH_CLICK) is what dispatch.js notes at a click: the case `dispatch-current` holds, now.
    """
    values = values or {}
    if "dispatch-click" not in values:
        shown = values.get("dispatch-current") if isinstance(values.get("dispatch-current"), dict) else {}
        values = {**values, "dispatch-click": {"id": shown.get("id"), "version": shown.get("version"), "at": time.time() * 1000}}
    keys = list(app.callback_map)
    key = next((k for k in keys if k.startswith(f"..{output}") or k == output), None) or next(k for k in keys if output in k)
    spec = app.callback_map[key]
    outputs = [
        {"id": part.partition(".")[0], "property": part.partition(".")[2].split("@")[0]} for part in key.strip(".").split("...")
    ]

    def entry(item):
        raw = item["id"]
        if raw.startswith("{"):
            pattern = json.loads(raw)
            if isinstance(trigger[0], dict) and trigger[0]["type"] == pattern["type"] and item["property"] == trigger[1]:
                return [{"id": trigger[0], "property": trigger[1], "value": trigger[2]}]
            return []
        value = trigger[2] if (raw, item["property"]) == (trigger[0], trigger[1]) else values.get(raw)
        return {"id": raw, "property": item["property"], "value": value}

    changed = trigger[0] if isinstance(trigger[0], str) else json.dumps(trigger[0], sort_keys=True, separators=(",", ":"))
    return {
        "output": key,
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [entry(i) for i in spec["inputs"]],
        "state": [entry(s) for s in spec["state"]],
        "changedPropIds": [f"{changed}.{trigger[1]}"],
    }
