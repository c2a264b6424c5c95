"""The live stream's wire format: server-sent event messages (retry, changes, heartbeat, reset) and the build id.

Every message carries `id:` = the feed id it covers, so a browser that reconnects sends
Last-Event-ID and resumes exactly where it stopped; no change is lost and none is sent twice.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson

HEARTBEAT_SECONDS = 5.0  # a quiet stream still says "alive" this often, so screens can tell live from stale
STREAM_SECONDS = 900.0  # a stream ends after this and the browser reconnects (a fresh sign-in check, a fresh build id)
RETRY_MS = 1000  # how long the browser waits before reconnecting
MAX_EVENTS = 200  # events listed in one message; the head always says how far the feed went
PAGE = 1000  # events read from the store at a time


def redacted(message: bytes) -> bytes:
    """A changes message without the list of which incidents changed (for a principal limited to a
    jurisdiction: those may lie outside it; the screens only need to know that something did)."""
    if b'"events":[' not in message:
        return message
    head, _, data = message.partition(b"data: ")
    payload = orjson.loads(data)
    payload["events"] = []
    return head + b"data: " + orjson.dumps(payload) + b"\n\n"


# --- the wire format ---------------------------------------------------------------------------


def sse_message(data: dict, event_id: int | None = None) -> bytes:
    """One server-sent event: an `id:` line (for resume) and one `data:` line of JSON."""
    head = f"id: {event_id}\n".encode() if event_id is not None else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def sse_retry(milliseconds: int = RETRY_MS) -> bytes:
    """The reconnection delay the browser should use."""
    return f"retry: {milliseconds}\n\n".encode()


def _brief(event) -> dict:
    """What a screen needs to know about one change (never the whole incident)."""
    row = event if isinstance(event, dict) else event._mapping
    at = row.get("at")
    return {
        "id": int(row["id"]),
        "incident_id": int(row["incident_id"]),
        "action": row.get("action"),
        "to_state": row.get("to_state"),
        "at": at.isoformat() if hasattr(at, "isoformat") else at,
    }


def changes_message(events: list, head: int, count: int | None = None) -> bytes:
    """A 'changes' message covering the feed up to `head`: `count` events, the newest of them listed."""
    return sse_message(
        {
            "type": "changes",
            "head": head,
            "count": len(events) if count is None else count,
            "events": [_brief(e) for e in events[-MAX_EVENTS:]],
        },
        event_id=head,
    )


def heartbeat_message(head: int, ok: bool = True, build: str = "", units: str | None = None) -> bytes:
    """A 'heartbeat': nothing changed, the stream is alive, the store was (un)reachable, the server's build,
    and for the screens the units version (a new one: boundaries were imported, fetch the geometry again)."""
    payload = {"type": "heartbeat", "head": head, "ok": ok, "build": build, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    if units is not None:
        payload["units"] = units
    return sse_message(payload, event_id=head)


def build_id(app) -> str:
    """A short fingerprint of the app's callbacks and assets: an open page built against another one
    (the server was upgraded while the wall stayed open) reloads itself instead of failing quietly."""
    digest = hashlib.sha1("\n".join(sorted(app.callback_map)).encode())
    assets = Path(app.config.assets_folder)
    # Contents, not modification times: every worker and every host running the same code agrees.
    for path in sorted(p for p in assets.rglob("*") if p.is_file()) if assets.is_dir() else []:
        digest.update(str(path.relative_to(assets)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
