"""Accounts: users with a role and a jurisdiction, password sign-in (throttled per name and address), and kiosk tokens of wall displays.

Passwords are stored as Werkzeug scrypt hashes. Five wrong passwords for one name from one address
within 15 minutes refuse that name from that address for a while (data/accounts/signins.py): never
the account for everyone, so nobody can lock a user out, and unknown names are treated the same.
A kiosk token is ``cbkiosk_`` and 43 random URL-safe characters (256 bits): like API keys, a plain
SHA-256 of it is stored, since there is nothing a slow hash would protect.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from werkzeug.security import check_password_hash, generate_password_hash

from data import schema
from data.accounts import signins
from data.errors import AuthenticationFailed, NotFound, SignInThrottled, ValidationError
from data.parse import id_or_none
from data.times import from_db, to_utc, utc_now

__all__ = [
    "KIOSK_PREFIX",
    "ROLES",
    "authenticate",
    "create_kiosk_token",
    "create_user",
    "get_user",
    "get_user_by_username",
    "list_kiosk_tokens",
    "list_users",
    "resolve_kiosk_token",
    "revoke_kiosk_token",
    "update_user",
]

ROLES = schema.ROLES
MIN_PASSWORD = 8
KIOSK_PREFIX = "cbkiosk_"
_KIOSK_SHOWN = 14  # how much of a token `kiosk list` shows
_USED_EVERY = timedelta(minutes=1)  # last_used_at is refreshed at most this often (one write, not one per request)
_USERNAME = re.compile(r"^[a-z0-9_.@-]{2,64}$")
_UNSET = object()

U, K, UN, D = schema.users, schema.kiosk_tokens, schema.units, schema.departments
# Werkzeug's scrypt: about 0.1 s a hash, which is the point. The test suite swaps in a cheap method
# (tests/conftest.py) so that its hundreds of sign-ins do not cost a minute.
PASSWORD_HASH_METHOD = "scrypt"
_dummy_hashes: dict[str, str] = {}


def _dummy_hash() -> str:
    """Checked against when the user name is unknown, so a wrong name takes as long as a wrong password."""
    if PASSWORD_HASH_METHOD not in _dummy_hashes:
        _dummy_hashes[PASSWORD_HASH_METHOD] = generate_password_hash("not-a-password-anyone-has", method=PASSWORD_HASH_METHOD)
    return _dummy_hashes[PASSWORD_HASH_METHOD]


def _now(now: datetime | None) -> datetime:
    return to_utc(now, "now") if now is not None else utc_now()


# --- users ------------------------------------------------------------------------------------


def create_user(
    conn: Connection,
    username: str,
    password: str,
    role: str,
    unit_id: int | None = None,
    department_id: int | None = None,
    display_name: str | None = None,
    now: datetime | None = None,
) -> dict:
    """A new active user; ValidationError (nothing stored) on a taken name, weak password or bad role/unit/department."""
    name = _username(username)
    if conn.execute(select(U.c.id).where(U.c.username == name)).first() is not None:
        raise ValidationError(f"user name {name!r} is taken")
    role = _role(role)
    unit_id = _unit(conn, unit_id)
    department_id = _department(conn, role, department_id)
    at = _now(now)
    user_id = conn.execute(
        U.insert()
        .values(
            username=name,
            display_name=_display_name(display_name, name),
            password_hash=_hash(password),
            role=role,
            unit_id=unit_id,
            department_id=department_id,
            created_at=at,
            updated_at=at,
            password_changed_at=at,
        )
        .returning(U.c.id)
    ).scalar_one()
    return get_user(conn, user_id)


def list_users(conn: Connection) -> list[dict]:
    """Every user, by user name (never their password hashes)."""
    return [_user(row) for row in conn.execute(_user_select().order_by(U.c.username))]


def get_user(conn: Connection, user_id: int) -> dict:
    """One user by id; NotFound when there is none."""
    row = conn.execute(_user_select().where(U.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no user with id {user_id!r}")
    return _user(row)


def get_user_by_username(conn: Connection, username: str) -> dict:
    """One user by user name (case-insensitive); NotFound when there is none."""
    name = (username or "").strip().lower() if isinstance(username, str) else ""
    row = conn.execute(_user_select().where(U.c.username == name)).first()
    if row is None:
        raise NotFound(f"no user named {username!r}")
    return _user(row)


def update_user(
    conn: Connection,
    user_id: int,
    *,
    role=_UNSET,
    unit_id=_UNSET,
    department_id=_UNSET,
    active=_UNSET,
    password=_UNSET,
    display_name=_UNSET,
    now: datetime | None = None,
) -> dict:
    """Change what is given (unit_id=None means the whole city); the user as it is now.

    A new password or deactivation ends the user's existing sessions (session_version changes);
    a new password also ends a sign-in throttle on the account's name. ValidationError on bad input, NotFound for no such user.
    """
    current = get_user(conn, user_id)
    values: dict = {}
    new_role = current["role"] if role is _UNSET else _role(role)
    if role is not _UNSET:
        values["role"] = new_role
    if unit_id is not _UNSET:
        values["unit_id"] = _unit(conn, unit_id)
    if department_id is not _UNSET or role is not _UNSET:
        wanted = current["department_id"] if department_id is _UNSET else department_id
        if new_role != "department" and department_id is _UNSET:
            wanted = None  # leaving the department role drops the department it acted for
        values["department_id"] = _department(conn, new_role, wanted)
    if display_name is not _UNSET:
        values["display_name"] = _display_name(display_name, current["username"])
    ends_sessions = False
    if password is not _UNSET:
        values.update(password_hash=_hash(password), password_changed_at=_now(now))
        ends_sessions = True
    if active is not _UNSET:
        if not isinstance(active, bool):
            raise ValidationError("active must be true or false")
        values["active"] = active
        ends_sessions = ends_sessions or (current["active"] and not active)
    if values.get("role") is not None and values["role"] != current["role"]:
        ends_sessions = True  # a narrower role must not live on in an open session
    if values.get("unit_id", current["unit_id"]) != current["unit_id"]:
        ends_sessions = True
    if not values:
        return current
    values["updated_at"] = _now(now)
    if ends_sessions:
        values["session_version"] = U.c.session_version + 1
    conn.execute(U.update().where(U.c.id == user_id).values(**values))
    return get_user(conn, user_id)


def authenticate(
    conn: Connection,
    username: str,
    password: str,
    now: datetime | None = None,
    *,
    address: str = "",
    user_agent: str = "",
) -> dict:
    """The user whose name and password these are, recording the attempt in the sign-in log; else AuthenticationFailed.

    SignInThrottled (a subclass), with `until`, once this name has failed MAX_FAILURES times from this
    address within THROTTLE_MINUTES (data/accounts/signins.py); the right password is refused too
    until then, so guessing cannot go on. Unknown names, inactive accounts and wrong passwords get the
    same message, take as long (a hash is checked either way) and are throttled alike, so the answer
    never tells whether a name exists. The attempt is written on `conn` before raising: catch the error
    inside the transaction and commit, or the failure (and so the throttle) is rolled back with it.
    """
    at = _now(now)
    typed = username if isinstance(username, str) else ""
    name = signins.login_name(typed)
    password = password if isinstance(password, str) else ""
    row = conn.execute(select(U).where(U.c.username == name)).first() if name else None
    attempt = {"username": typed, "address": address, "user_agent": user_agent, "now": at}
    since = from_db(row.password_changed_at) if row is not None else None
    until = signins.throttled_until(conn, name, address, at, since=since)
    if until is not None:
        signins.record(conn, signins.THROTTLED, **attempt)
        raise _throttled(until, at)
    matches = check_password_hash(row.password_hash if row is not None else _dummy_hash(), password)
    if row is None or not matches or not row.active:
        signins.record(conn, signins.FAILED, user_id=None if row is None else row.id, **attempt)
        until = signins.throttled_until(conn, name, address, at, since=since)
        if until is not None:
            raise _throttled(until, at)
        raise AuthenticationFailed("wrong user name or password")
    conn.execute(U.update().where(U.c.id == row.id).values(last_login_at=at))
    signins.record(conn, signins.SIGNED_IN, user_id=row.id, **attempt)
    return get_user(conn, row.id)


def _throttled(until: datetime, now: datetime) -> SignInThrottled:
    minutes = max(1, int((until - now).total_seconds() + 59) // 60)
    return SignInThrottled(
        f"too many wrong passwords for this user name from this address: try again in {minutes} minute(s) "
        "or ask an administrator to set a new password",
        until,
    )


def _user_select():
    return select(
        U,
        UN.c.level.label("unit_level"),
        UN.c.code.label("unit_code"),
        UN.c.name_en.label("unit_name_en"),
        UN.c.name_zh.label("unit_name_zh"),
        D.c.code.label("department_code"),
    ).select_from(U.outerjoin(UN, U.c.unit_id == UN.c.id).outerjoin(D, U.c.department_id == D.c.id))


def _user(row) -> dict:
    data = {key: from_db(value) for key, value in row._mapping.items() if key != "password_hash"}
    data["active"] = bool(data["active"])
    return data


def _username(username) -> str:
    name = username.strip().lower() if isinstance(username, str) else ""
    if not _USERNAME.match(name):
        raise ValidationError("a user name is 2 to 64 letters, digits or _ . @ - (no spaces)")
    return name


def _display_name(display_name, username: str) -> str:
    if display_name is None:
        return username
    if not isinstance(display_name, str) or len(display_name.strip()) > 200:
        raise ValidationError("a display name is text of at most 200 characters")
    return display_name.strip() or username


def _hash(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise ValidationError("a password can be at most 1024 characters")
    return generate_password_hash(password, method=PASSWORD_HASH_METHOD)


def _role(role) -> str:
    value = role.strip().lower() if isinstance(role, str) else ""
    if value not in ROLES:
        raise ValidationError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return value


def _unit(conn: Connection, unit_id) -> int | None:
    """A jurisdiction: None (the whole city) or an existing unit below the city."""
    if unit_id is None:
        return None
    if isinstance(unit_id, bool) or not isinstance(unit_id, int):
        raise ValidationError(f"unit id must be a whole number; got {unit_id!r}")
    level = conn.execute(select(UN.c.level).where(UN.c.id == unit_id)).scalar()
    if level is None:
        raise ValidationError(f"unit {unit_id} does not exist")
    return None if level == schema.CITY else unit_id


def _department(conn: Connection, role: str, department_id) -> int | None:
    if role != "department":
        if department_id is not None:
            raise ValidationError("only a user of role 'department' acts for a department")
        return None
    if department_id is None:
        raise ValidationError("a user of role 'department' needs the department it acts for")
    if isinstance(department_id, bool) or not isinstance(department_id, int):
        raise ValidationError(f"department id must be a whole number; got {department_id!r}")
    if conn.execute(select(D.c.id).where(D.c.id == department_id)).first() is None:
        raise ValidationError(f"department {department_id} does not exist")
    return department_id


# --- kiosk tokens -------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_kiosk_token(
    conn: Connection, label: str, unit_id: int | None, created_by: str, now: datetime | None = None
) -> tuple[str, dict]:
    """(token, row): a new read-only kiosk link for the wall of `unit_id` (None = city). The token is shown once."""
    label = label.strip() if isinstance(label, str) else ""
    if not label or len(label) > 128:
        raise ValidationError("a kiosk token needs a label of 1 to 128 characters (e.g. 'wall, room 3')")
    created_by = (created_by or "").strip()[:128] if isinstance(created_by, str) else ""
    if not created_by:
        raise ValidationError("say who creates the kiosk token")
    unit_id = _unit(conn, unit_id)
    token = KIOSK_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        K.insert()
        .values(
            label=label,
            prefix=kiosk_token_shown(token),
            token_hash=_token_hash(token),
            unit_id=unit_id,
            created_by=created_by,
            created_at=_now(now),
        )
        .returning(K.c.id)
    ).scalar_one()
    return token, _kiosk_by_id(conn, token_id)


def list_kiosk_tokens(conn: Connection, include_revoked: bool = True) -> list[dict]:
    """Every kiosk token, oldest first (never the tokens themselves)."""
    query = _kiosk_select()
    if not include_revoked:
        query = query.where(K.c.revoked_at.is_(None))
    return [_kiosk(row) for row in conn.execute(query.order_by(K.c.id))]


def revoke_kiosk_token(conn: Connection, token_id_or_prefix: int | str, now: datetime | None = None) -> dict:
    """Revoke a kiosk token by id or shown prefix; its wall is signed out on its next request. Twice is harmless."""
    text = str(token_id_or_prefix).strip()
    if id_or_none(text) is not None:
        condition = K.c.id == int(text)
    elif text.startswith(KIOSK_PREFIX) and len(text) >= _KIOSK_SHOWN:
        condition = K.c.prefix == text[:_KIOSK_SHOWN]
    else:
        raise NotFound(f"no kiosk token {text!r}: give its id or the prefix `kiosk list` shows")
    rows = conn.execute(select(K.c.id, K.c.revoked_at).where(condition)).all()
    if not rows:
        raise NotFound(f"no kiosk token {text!r}")
    if len(rows) > 1:
        raise ValidationError(f"{text!r} matches {len(rows)} kiosk tokens; use the id")
    if rows[0].revoked_at is None:
        conn.execute(K.update().where(K.c.id == rows[0].id).values(revoked_at=_now(now)))
    return _kiosk_by_id(conn, rows[0].id)


def kiosk_token_shown(token: str) -> str:
    """The part of a kiosk token that may be shown or logged (`kiosk list`, the sign-in log): never enough to use it."""
    return token[:_KIOSK_SHOWN] if isinstance(token, str) else ""


def resolve_kiosk_token(conn: Connection, token: str, now: datetime | None = None) -> dict | None:
    """The active kiosk token row for `token`, noting its use; None for an unknown or revoked token."""
    if not isinstance(token, str) or not token.startswith(KIOSK_PREFIX) or len(token) > 200:
        return None
    digest = _token_hash(token)
    row = conn.execute(_kiosk_select().where(K.c.token_hash == digest)).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None
    return _touch(conn, _kiosk(row), now)


def active_kiosk(conn: Connection, token_id: int) -> dict | None:
    """The kiosk token row behind a signed-in kiosk session if it still works, else None (revoked or gone)."""
    row = conn.execute(_kiosk_select().where(K.c.id == token_id)).first()
    if row is None or row.revoked_at is not None:
        return None
    return _kiosk(row)


def touch_kiosk(conn: Connection, kiosk: dict, now: datetime | None = None) -> dict:
    """Note a kiosk token's use (last_used_at, written at most once a minute)."""
    return _touch(conn, kiosk, now)


def _touch(conn: Connection, kiosk: dict, now: datetime | None) -> dict:
    at = _now(now)
    last = kiosk["last_used_at"]
    if last is None or at - last >= _USED_EVERY:
        conn.execute(K.update().where(K.c.id == kiosk["id"]).values(last_used_at=at))
        kiosk["last_used_at"] = at
    return kiosk


def _kiosk_select():
    return select(
        K,
        UN.c.level.label("unit_level"),
        UN.c.code.label("unit_code"),
        UN.c.name_en.label("unit_name_en"),
        UN.c.name_zh.label("unit_name_zh"),
    ).select_from(K.outerjoin(UN, K.c.unit_id == UN.c.id))


def _kiosk_by_id(conn: Connection, token_id: int) -> dict:
    row = conn.execute(_kiosk_select().where(K.c.id == token_id)).first()
    if row is None:
        raise NotFound(f"no kiosk token with id {token_id}")
    return _kiosk(row)


def _kiosk(row) -> dict:
    data = {key: from_db(value) for key, value in row._mapping.items() if key != "token_hash"}
    data["active"] = data["revoked_at"] is None
    return data


def count_users(conn: Connection) -> int:
    """How many users there are (the demo adds its users only to a store without any)."""
    return conn.execute(select(func.count()).select_from(U)).scalar_one()
