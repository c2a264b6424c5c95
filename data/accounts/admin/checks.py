"""The checks every administered entity shares: codes, names, flags, minutes, priorities, and rows looked up by code."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from data import schema
from data.actors import OUTSIDE, Actor, unit_reachable
from data.errors import NotFound, ValidationError
from data.parse import MAX_ID, id_or_none, parse_int, shown

D, C = schema.departments, schema.categories

PRIORITIES = (1, 2, 3)
MAX_LIMIT_MINUTES = 366 * 24 * 60  # a year: anything longer is a typo, not a time limit
CITY_WIDE = "city"  # the responsibility list's key for a category's own, city-wide department
_INTEGER_TEXT = re.compile(r"-?[0-9]{1,30}")  # typed in a form: a whole number, ASCII digits only
_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_code(value: Any, what: str) -> str:
    code = value.strip() if isinstance(value, str) else ""
    if not _CODE.match(code):
        raise ValidationError(f"{what} code {value!r} must be 1 to 64 letters, digits or _ . - (starting with a letter or digit)")
    return code


def check_name(value: Any, what: str) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if not text or len(text) > 200:
        raise ValidationError(f"{what} must be 1 to 200 characters")
    return text


def check_flag(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    raise ValidationError(f"{what} must be true or false, not {value!r}")


def check_minutes(value: Any, what: str) -> int:
    """A whole, positive number of minutes (strings of digits accepted: forms and table cells send text)."""
    if isinstance(value, bool):
        raise ValidationError(f"{what} must be a whole number of minutes, not {value!r}")
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value.strip()):
        value = parse_int(value.strip(), what, minimum=-MAX_ID, maximum=MAX_ID)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ValidationError(f"{what} must be a whole number of minutes, not {value!r}")
    if value <= 0:
        raise ValidationError(f"{what} must be more than 0 minutes, not {value}")
    if value > MAX_LIMIT_MINUTES:
        raise ValidationError(f"{what} of {value} minutes is over a year")
    return value


def check_priority(value: Any) -> int:
    number = id_or_none(value.strip()) if isinstance(value, str) else value
    if isinstance(number, bool) or number not in PRIORITIES:
        raise ValidationError(f"priority must be 1 (urgent), 2 (high) or 3 (normal), not {shown(value)}")
    return int(number)


def unit_code_inside(conn: Connection, actor: str | Actor, unit_code: Any) -> Any:
    """A new user's or key's jurisdiction (a unit code) kept inside the administrator's own: for an administrator
    limited to a unit, nothing asked or the city gives that unit, and a unit outside it is refused."""
    if not isinstance(actor, Actor) or actor.city_wide:
        return unit_code
    code = unit_code.strip() if isinstance(unit_code, str) else unit_code
    if code in (None, "", CITY_WIDE):
        return conn.execute(select(schema.units.c.code).where(schema.units.c.id == actor.unit_id)).scalar()
    unit_id = conn.execute(select(schema.units.c.id).where(schema.units.c.code == code)).scalar()
    if unit_id is None or not unit_reachable(conn, actor, unit_id):
        raise ValidationError(f"unit {unit_code!r} is {OUTSIDE}")
    return code


def require_record_inside(conn: Connection, actor: str | Actor, unit_id: int | None, what: str) -> None:
    """ValidationError unless a user's or key's jurisdiction (None: the city) lies in the administrator's: an
    administrator of a district must not reset the city administrator's password nor revoke a city-wide key."""
    if not unit_reachable(conn, actor, unit_id):
        raise ValidationError(f"{what} is {OUTSIDE}")


def department_row(conn: Connection, code: Any):
    row = conn.execute(select(D).where(D.c.code == (code.strip() if isinstance(code, str) else code))).first()
    if row is None:
        raise NotFound(f"no department with code {code!r}")
    return row


def active_department(conn: Connection, code: Any):
    row = department_row(conn, code)
    if not row.active:
        raise ValidationError(f"department {row.code!r} is inactive: reactivate it first")
    return row


def category_row(conn: Connection, code: Any):
    row = conn.execute(select(C).where(C.c.code == (code.strip() if isinstance(code, str) else code))).first()
    if row is None:
        raise NotFound(f"no category with code {code!r}")
    return row
