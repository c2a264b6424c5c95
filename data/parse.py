"""The one way to read an id or a number that came from outside (a URL, a header, a form, a JSON body, a Dash callback).

`str.isdigit()` accepts '²' and '①', which `int()` then refuses, and `int()` accepts ' 9060', '+9060'
and '٩٠٦٠'; an id that reaches SQLite as 9060.0 or past 2**63 fails or matches where it should not.
So an id is a Python int (never a bool or a float) or a string of ASCII digits and nothing else, inside
an explicit range; anything else raises data.errors.ValidationError, which every route answers with a
400 and every screen with a message. A JSON document nested deeper than MAX_JSON_DEPTH is refused the
same way before anything walks it.
"""

from __future__ import annotations

import math
import re
from typing import Any

from data.errors import ValidationError

MAX_ID = 2**63 - 1  # ids are BIGINT (SQLite's INTEGER): nothing larger can exist, and SQLite cannot bind it
MAX_JSON_DEPTH = 64  # no document this app reads comes near it; a deeper one is an attack or a bug
MAX_NUMBER_TEXT = 40  # characters: longer text is no number this app uses (and int() of 5,000 digits is slow)
_INTEGER = re.compile(r"-?[0-9]+")  # [0-9], not \d: \d also matches '٣' and '३'
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def shown(value: Any) -> str:
    """The value for an error message: its repr, cut short (an error must not echo a megabyte back)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def ascii_digits(text: Any) -> bool:
    """Whether `text` is a string of ASCII digits and nothing else (what tells a number from a name or a code)."""
    return isinstance(text, str) and _INTEGER.fullmatch(text) is not None and not text.startswith("-")


def parse_int(value: Any, what: str, *, minimum: int, maximum: int) -> int:
    """A whole number from `minimum` to `maximum`: an int (not a bool) or ASCII digits with an optional '-'."""
    number = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT and _INTEGER.fullmatch(value):
        number = int(value)
    if number is None or not minimum <= number <= maximum:
        raise ValidationError(f"{what} must be a whole number from {minimum} to {maximum}; got {shown(value)}")
    return number


def parse_id(value: Any, what: str = "id", *, maximum: int = MAX_ID) -> int:
    """A row id: a whole number from 1 to `maximum` (an int, or a string of ASCII digits only)."""
    return parse_int(value, what, minimum=1, maximum=maximum)


def parse_optional_id(value: Any, what: str = "id", *, maximum: int = MAX_ID) -> int | None:
    """parse_id, with None and '' (nothing asked) giving None."""
    return None if value is None or value == "" else parse_id(value, what, maximum=maximum)


def id_or_none(value: Any, what: str = "id", *, maximum: int = MAX_ID) -> int | None:
    """An id from a screen's address (?incident=, ?scope=): what is not one counts as not asked, and the page
    shows its default rather than an error."""
    try:
        return parse_optional_id(value, what, maximum=maximum)
    except ValidationError:
        return None


def parse_ids(values: Any, what: str = "id", *, maximum: int = MAX_ID) -> list[int]:
    """A list of ids, each by parse_id: one that does not parse refuses the whole list."""
    if not isinstance(values, list | tuple):
        raise ValidationError(f"{what}s must be a list; got {shown(values)}")
    return [parse_id(value, what, maximum=maximum) for value in values]


def parse_float(value: Any, what: str, *, minimum: float, maximum: float) -> float:
    """A finite number from `minimum` to `maximum`: an int or float (not a bool), or ASCII decimal text."""
    if isinstance(value, int) and not isinstance(value, bool) and minimum <= value <= maximum:
        return float(value)  # checked first: float() of a huge int overflows
    text = isinstance(value, str) and len(value) <= MAX_NUMBER_TEXT and _DECIMAL.fullmatch(value) is not None
    number = float(value) if isinstance(value, float) or text else None
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        raise ValidationError(f"{what} must be a number from {minimum:g} to {maximum:g}; got {shown(value)}")
    return number


def parse_event_id(raw: str | None, what: str) -> int | None:
    """An event id to resume a feed after (a Last-Event-ID header, an ?after=): None when absent or blank,
    else a whole number from 0 to MAX_ID (surrounding spaces allowed, as in any header)."""
    if raw is None or not isinstance(raw, str) or not raw.strip():
        return None
    return parse_int(raw.strip(), what, minimum=0, maximum=MAX_ID)


def json_depth(document: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON document (a scalar is 0), walked without recursion."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, depth = stack.pop()
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(document: Any, limit: int = MAX_JSON_DEPTH) -> Any:
    """The document, or ValidationError when it nests deeper than `limit` (refused before anything walks it)."""
    if json_depth(document) > limit:
        raise ValidationError(f"the JSON document nests deeper than {limit} levels")
    return document
