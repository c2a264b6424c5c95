"""The sign-in log (signin_events) and the sign-in throttle read from it: failures per user name and address.

Every attempt is recorded with the name as typed (truncated), the client's address and user agent.
The throttle counts failures of one *name and address* pair, never of an account: unknown names are
throttled exactly like known ones (the answer never tells which accounts exist), and a stranger's
wrong guesses from elsewhere never keep a user out of their own account.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from data import schema
from data.errors import ValidationError
from data.times import from_db, in_range, to_utc, utc_now

__all__ = [
    "MAX_FAILURES",
    "OUTCOMES",
    "THROTTLE_MINUTES",
    "events",
    "login_name",
    "record",
    "throttled_until",
]

E = schema.signin_events
OUTCOMES = schema.SIGNIN_OUTCOMES
SIGNED_IN, FAILED, THROTTLED, RATE_LIMITED, SIGNED_OUT, KIOSK_SIGNED_IN, KIOSK_REFUSED = OUTCOMES
MAX_FAILURES = 5  # wrong passwords of one name from one address ...
THROTTLE_MINUTES = 15  # ... within this long refuse that pair until the oldest of them is this old
NAME_CHARS = 64
AGENT_CHARS = 256


def login_name(typed) -> str:
    """The name the throttle counts by: what sign-in looks accounts up by (trimmed, lower case), truncated."""
    return (typed.strip().lower() if isinstance(typed, str) else "")[:NAME_CHARS]


def record(
    conn: Connection,
    outcome: str,
    *,
    username: str = "",
    user_id: int | None = None,
    address: str = "",
    user_agent: str = "",
    now: datetime | None = None,
) -> None:
    """Write one row of the sign-in log (in the caller's transaction)."""
    if outcome not in OUTCOMES:
        raise ValidationError(f"unknown sign-in outcome {outcome!r}")
    typed = username if isinstance(username, str) else ""
    conn.execute(
        E.insert().values(
            at=_now(now),
            outcome=outcome,
            username=typed[:NAME_CHARS],
            login_name=login_name(typed),
            user_id=user_id,
            address=(address or "")[:64],
            user_agent=(user_agent or "")[:AGENT_CHARS],
        )
    )


def throttled_until(
    conn: Connection, name: str, address: str, now: datetime | None = None, *, since: datetime | None = None
) -> datetime | None:
    """When sign-ins of `name` from `address` are let through again, or None when they are not throttled.

    Counts the pair's failures in the last THROTTLE_MINUTES after its last success (and after `since`:
    the account's new password). At MAX_FAILURES the pair waits
    until the MAX_FAILURES-th newest of them is THROTTLE_MINUTES old; refused attempts do not count, so
    hammering a throttled pair does not prolong its wait.
    """
    at = _now(now)
    pair = (E.c.login_name == login_name(name), E.c.address == (address or "")[:64])
    start = at - timedelta(minutes=THROTTLE_MINUTES)
    last_success = conn.execute(select(func.max(E.c.at)).where(*pair, E.c.outcome == SIGNED_IN)).scalar()
    for bound in (from_db(last_success), since):
        if bound is not None and bound > start:
            start = bound
    recent = [
        from_db(value)
        for value in conn.execute(
            select(E.c.at).where(*pair, E.c.outcome == FAILED, E.c.at > start).order_by(E.c.at.desc()).limit(MAX_FAILURES)
        ).scalars()
    ]
    if len(recent) < MAX_FAILURES:
        return None
    return recent[MAX_FAILURES - 1] + timedelta(minutes=THROTTLE_MINUTES)


def events(
    conn: Connection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    outcome: str | None = None,
    limit: int | None = 500,
) -> list[dict]:
    """Sign-in log rows, newest first, with `since` <= at < `until` (UTC) when given; every row when limit is None.
    `account` is the name of the account the row is about (None for unknown names and kiosk links)."""
    U = schema.users
    query = (
        select(E, U.c.username.label("account"))
        .select_from(E.outerjoin(U, E.c.user_id == U.c.id))
        .where(*in_range(E.c.at, since, until))
        .order_by(E.c.id.desc())
    )
    if outcome:
        query = query.where(E.c.outcome == outcome)
    if limit is not None:
        query = query.limit(max(1, int(limit)))
    return [{**row._mapping, "at": from_db(row.at)} for row in conn.execute(query)]


def _now(now: datetime | None) -> datetime:
    return to_utc(now, "now") if now is not None else utc_now()
