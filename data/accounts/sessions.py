"""Sessions kept in the store: one row per signed-in browser (a user's or a wall's), found on every request, ended by signing out.

The browser's cookie carries only a random key (256 bits); the store keeps its SHA-256, like kiosk
tokens and API keys. A session is open while its row has no `ended_at`, so signing out ends it for
every copy of the cookie at once; a user's session also needs the user's `session_version` to be the
one it started with (a new password, deactivation, a role or jurisdiction change end them all).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.accounts import users
from data.errors import NotFound
from data.times import from_db, to_utc, utc_now

__all__ = ["end_session", "find_session", "needs_touch", "resolve_session", "start_session", "touch_session"]

S = schema.sessions
SEEN_EVERY = timedelta(minutes=1)  # last_seen_at is refreshed at most this often: one write a minute, not one a request
SIGNED_OUT = "signed_out"


def _key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _now(now: datetime | None) -> datetime:
    return to_utc(now, "now") if now is not None else utc_now()


def start_session(
    conn: Connection,
    *,
    user: dict | None = None,
    kiosk_token_id: int | None = None,
    lifetime: timedelta | None = None,
    address: str = "",
    now: datetime | None = None,
) -> str:
    """A new open session for `user` (a users row) or a kiosk token, ending after `lifetime` (None: when
    ended); the key for the cookie (never stored)."""
    if (user is None) == (kiosk_token_id is None):
        raise ValueError("a session belongs to a user or to a kiosk token")
    key = secrets.token_urlsafe(32)
    at = _now(now)
    conn.execute(
        S.insert().values(
            key_hash=_key_hash(key),
            user_id=None if user is None else user["id"],
            user_version=None if user is None else user["session_version"],
            kiosk_token_id=kiosk_token_id,
            address=(address or "")[:64],
            created_at=at,
            last_seen_at=at,
            expires_at=None if lifetime is None else at + lifetime,
        )
    )
    return key


def find_session(conn: Connection, key: str) -> dict | None:
    """The open session with this key (id, user_id, user_version, kiosk_token_id, last_seen_at, expires_at), else None."""
    if not isinstance(key, str) or not key or len(key) > 100:
        return None
    row = conn.execute(
        select(S.c.id, S.c.user_id, S.c.user_version, S.c.kiosk_token_id, S.c.last_seen_at, S.c.expires_at).where(
            S.c.key_hash == _key_hash(key), S.c.ended_at.is_(None)
        )
    ).first()
    return None if row is None else {k: from_db(v) for k, v in row._mapping.items()}


def resolve_session(conn: Connection, key: str, now: datetime | None = None) -> dict | None:
    """The open session with this key and who it is: find_session's fields plus `user` (a users row) or
    `kiosk` (a kiosk token row), the other None. None when the session ended or expired, the user was
    deactivated or changed (new password, role, jurisdiction), or the kiosk link was revoked.
    Reads only: `touch_session` notes the use."""
    found = find_session(conn, key)
    if found is None or (found["expires_at"] is not None and found["expires_at"] <= _now(now)):
        return None
    if found["user_id"] is None:
        kiosk = users.active_kiosk(conn, found["kiosk_token_id"])
        return None if kiosk is None else {**found, "user": None, "kiosk": kiosk}
    try:
        user = users.get_user(conn, found["user_id"])
    except NotFound:
        return None
    if not user["active"] or user["session_version"] != found["user_version"]:
        return None
    return {**found, "user": user, "kiosk": None}


def needs_touch(found: dict, now: datetime | None = None) -> bool:
    """Whether a resolved session's last use is old enough to write down again."""
    return _now(now) - found["last_seen_at"] >= SEEN_EVERY


def touch_session(conn: Connection, found: dict, now: datetime | None = None) -> None:
    """Note that a resolved session (and its kiosk link) was used now."""
    at = _now(now)
    conn.execute(S.update().where(S.c.id == found["id"], S.c.ended_at.is_(None)).values(last_seen_at=at))
    if found.get("kiosk") is not None:
        users.touch_kiosk(conn, found["kiosk"], at)


def end_session(conn: Connection, key: str, reason: str = SIGNED_OUT, now: datetime | None = None) -> dict | None:
    """End the open session with this key (every copy of its cookie stops working); the ended session, or None."""
    found = find_session(conn, key)
    if found is None:
        return None
    conn.execute(S.update().where(S.c.id == found["id"]).values(ended_at=_now(now), ended_reason=reason[:32]))
    return found
