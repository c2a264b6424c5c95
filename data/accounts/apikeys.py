"""API keys of sources and departments' systems: created with scopes, stored as SHA-256 hashes, found in constant time, revoked.

A key is ``cbk_`` followed by 43 random URL-safe characters (256 bits), so a plain SHA-256 is
enough to store it: there is nothing to brute-force that a slow hash would protect. The key
itself exists only in the answer to `create_key`; the store keeps its hash and first characters.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from limits import parse_many
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import NotFound, ValidationError
from data.parse import parse_id
from data.times import from_db, to_utc, utc_now

__all__ = [
    "ACTIONS",
    "INTAKE",
    "KEY_PREFIX",
    "READ",
    "SCOPES",
    "ApiKey",
    "NewKey",
    "create_key",
    "find_key",
    "hash_key",
    "key_unit",
    "list_keys",
    "revoke_key",
]

INTAKE, ACTIONS, READ = "intake", "actions", "read"
# intake: report incidents; actions: a department's lifecycle actions on its own incidents; read: lists, feed, KPIs.
SCOPES = (INTAKE, ACTIONS, READ)
KEY_PREFIX = "cbk_"
_SHOWN_CHARS = 12  # how much of a key `api-key list` shows (prefix + 8 random characters)
_SOURCE_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,32}$")

K, D, U = schema.api_keys, schema.departments, schema.units
# Levels a key may be bound to: those whose incidents carry the unit's id (schema.incidents).
UNIT_LEVELS = (schema.DISTRICT, schema.STREET, schema.COMMUNITY, schema.GRID)


@dataclass(frozen=True)
class ApiKey:
    """A stored key: who it belongs to, what it may do, and whether it still works."""

    id: int
    name: str
    prefix: str
    scopes: frozenset[str]
    source: str | None
    department_id: int | None
    department_code: str | None
    rate_limit: str | None
    created_at: datetime
    revoked_at: datetime | None
    unit_id: int | None = None  # its jurisdiction: None = the whole city
    unit_level: int | None = None
    unit_code: str | None = None

    @property
    def scope(self) -> tuple[int, int] | None:
        """The jurisdiction as a metrics scope: None (the city) or (level, unit id)."""
        return None if self.unit_id is None else (self.unit_level, self.unit_id)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        """Whether the key works and carries `scope`."""
        return self.active and scope in self.scopes


@dataclass(frozen=True)
class NewKey:
    """A key just created: its record and the secret, which is shown once and never stored."""

    key: ApiKey
    secret: str


def hash_key(secret: str) -> str:
    """The hex SHA-256 the store keeps of a key."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_key(
    conn: Connection,
    name: str,
    scopes,
    *,
    source: str | None = None,
    department_code: str | None = None,
    rate_limit: str | None = None,
    unit_code: str | None = None,
    now: datetime | None = None,
) -> NewKey:
    """A new key named `name` with `scopes`; ValidationError (nothing stored) on bad input.

    An intake key reports under `source` (default: its name, if that is a valid source name);
    an actions key must name the one department it acts for. `unit_code` bounds everything the
    key reads, reports and acts on to one district, street, community or grid (None: the city).
    """
    name = (name or "").strip() if isinstance(name, str) else ""
    if not name or len(name) > 128:
        raise ValidationError("a key needs a name of 1 to 128 characters")
    wanted = _scopes(scopes)
    if source is None and INTAKE in wanted and _SOURCE_PATTERN.match(name):
        source = name
    if source is not None and not _SOURCE_PATTERN.match(source):
        raise ValidationError(f"source {source!r} must be 1 to 32 letters, digits or _ . : -")
    if INTAKE in wanted and source is None:
        raise ValidationError("an intake key needs --source: the channel its incidents are stored under (e.g. 12345)")
    department_id = None
    if department_code is not None:
        dept = conn.execute(select(D.c.id, D.c.active).where(D.c.code == department_code)).first()
        if dept is None:
            raise ValidationError(f"department {department_code!r} does not exist")
        if not dept.active:
            raise ValidationError(f"department {department_code!r} is inactive")
        department_id = dept.id
    if ACTIONS in wanted and department_id is None:
        raise ValidationError("an actions key must be bound to one department (--department CODE)")
    if rate_limit is not None:
        rate_limit = check_rate_limit(rate_limit)
    unit_id = key_unit(conn, unit_code)
    if conn.execute(select(K.c.id).where(K.c.name == name)).first() is not None:
        raise ValidationError(f"a key named {name!r} already exists; revoke it or choose another name")

    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    created_at = to_utc(now, "now") if now is not None else utc_now()
    key_id = conn.execute(
        K.insert()
        .values(
            name=name,
            prefix=secret[:_SHOWN_CHARS],
            key_hash=hash_key(secret),
            scopes=" ".join(s for s in SCOPES if s in wanted),
            source=source,
            department_id=department_id,
            rate_limit=rate_limit,
            created_at=created_at,
            unit_id=unit_id,
        )
        .returning(K.c.id)
    ).scalar_one()
    return NewKey(_load(conn, K.c.id == key_id), secret)


def check_rate_limit(value: str) -> str:
    """`value` if it is a rate limit such as "600/minute" or "10/second;500/hour", else ValidationError."""
    value = value.strip() if isinstance(value, str) else ""
    try:
        if value and parse_many(value):
            return value
    except ValueError:
        pass
    raise ValidationError(f"rate limit {value!r} is not like '600/minute' or '10/second;500/hour'")


def key_unit(conn: Connection, unit_code: str | None) -> int | None:
    """The unit id a key is bound to by `unit_code` (None, '' or the city's own code: the whole city); ValidationError otherwise."""
    code = unit_code.strip() if isinstance(unit_code, str) else unit_code
    if not code:
        return None
    row = conn.execute(select(U.c.id, U.c.level).where(U.c.code == code)).first()
    if row is None:
        raise ValidationError(f"unit {code!r} does not exist; give the code of a district, street, community or grid")
    if row.level == schema.CITY:
        return None
    if row.level not in UNIT_LEVELS:
        raise ValidationError(
            f"unit {code!r} is a {schema.LEVEL_NAMES[row.level]}; a key's unit must be a district, street, community or grid"
        )
    return row.id


def _scopes(scopes) -> frozenset[str]:
    if isinstance(scopes, str):
        scopes = scopes.replace(",", " ").split()
    wanted = frozenset(s.strip().lower() for s in scopes or () if s.strip())
    if not wanted:
        raise ValidationError(f"a key needs at least one scope: {', '.join(SCOPES)}")
    unknown = sorted(wanted - set(SCOPES))
    if unknown:
        raise ValidationError(f"unknown scope(s) {', '.join(unknown)}; use {', '.join(SCOPES)}")
    return wanted


def find_key(conn: Connection, secret: str | None) -> ApiKey | None:
    """The key whose secret this is (revoked ones too: check .active), or None."""
    if not isinstance(secret, str) or not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    digest = hash_key(secret)
    row = conn.execute(_by_hash(), {"digest": digest}).first()
    # The lookup is by an index on the hash; comparing again in constant time keeps any
    # timing difference from telling an attacker how close a guess came.
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    return _api_key(row)


def list_keys(conn: Connection, include_revoked: bool = True) -> list[ApiKey]:
    """Every key, oldest first (never their secrets)."""
    query = _select()
    if not include_revoked:
        query = query.where(K.c.revoked_at.is_(None))
    return [_api_key(row) for row in conn.execute(query.order_by(K.c.id))]


def named_key(conn: Connection, name_or_id: str | int) -> ApiKey:
    """The key with this name, id or shown prefix; NotFound when none matches, ValidationError when several do."""
    text = str(name_or_id).strip()
    condition = K.c.name == text
    if text.startswith(KEY_PREFIX):
        condition = condition | (K.c.prefix == text[:_SHOWN_CHARS])
    else:
        with suppress(ValidationError):  # not a number: a name only
            condition = condition | (K.c.id == parse_id(text, "key id"))
    matches = [_api_key(r) for r in conn.execute(_select().where(condition))]
    if not matches:
        raise NotFound(f"no API key named or numbered {text!r}")
    if len(matches) > 1:
        raise ValidationError(f"{text!r} matches {len(matches)} keys; use the key's id")
    return matches[0]


def revoke_key(conn: Connection, name_or_id: str | int, now: datetime | None = None) -> ApiKey:
    """Revoke the key with this name, id or shown prefix; NotFound when none matches. Revoking twice is harmless."""
    key = named_key(conn, name_or_id)
    if key.revoked_at is None:
        at = to_utc(now, "now") if now is not None else utc_now()
        conn.execute(K.update().where(K.c.id == key.id).values(revoked_at=at))
    return _load(conn, K.c.id == key.id)


def _select():
    return select(K, D.c.code.label("department_code"), U.c.level.label("unit_level"), U.c.code.label("unit_code")).select_from(
        K.outerjoin(D, K.c.department_id == D.c.id).outerjoin(U, K.c.unit_id == U.c.id)
    )


@functools.cache
def _by_hash():
    # Built once: every API request looks its key up, and building the join costs more than running it.
    return _select().where(K.c.key_hash == bindparam("digest"))


def _load(conn: Connection, condition) -> ApiKey:
    row = conn.execute(_select().where(condition)).first()
    if row is None:
        raise NotFound("no such API key")
    return _api_key(row)


def _api_key(row) -> ApiKey:
    return ApiKey(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=frozenset(row.scopes.split()),
        source=row.source,
        department_id=row.department_id,
        department_code=row.department_code,
        rate_limit=row.rate_limit,
        created_at=from_db(row.created_at),
        revoked_at=from_db(row.revoked_at),
        unit_id=row.unit_id,
        unit_level=row.unit_level,
        unit_code=row.unit_code,
    )
