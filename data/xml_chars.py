"""Characters XML 1.0 cannot carry (C0 controls but tab and newlines, lone surrogates, U+FFFE/U+FFFF): find and strip them.

Text stored from reports ends up in Open311's XML, where one such character makes the whole answer
not well-formed for every reader; PostgreSQL text cannot hold NUL either. Intake refuses them
(`check_xml_text`); XML output strips them from anything stored before (`strip_xml_unsafe`).
"""

from __future__ import annotations

import re

from data.errors import ValidationError

# XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]. DEL and C1 controls are
# allowed (if discouraged) and some legacy exports carry them, so they stay.
XML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def first_xml_unsafe(text: str) -> str | None:
    """The first character of `text` XML cannot carry, or None when there is none."""
    found = XML_UNSAFE.search(text)
    return found.group() if found else None


def describe_xml_unsafe(name: str, char: str) -> str:
    """The message refusing field `name` for holding `char`."""
    return f"{name} holds a control character (U+{ord(char):04X}) that cannot be stored; remove it"


def check_xml_text(value: str | None, name: str) -> str | None:
    """`value` unchanged, or ValidationError naming the field and the character when it holds one XML cannot carry."""
    if value is not None:
        char = first_xml_unsafe(value)
        if char is not None:
            raise ValidationError(describe_xml_unsafe(name, char))
    return value


def strip_xml_unsafe(text: str) -> str:
    """`text` without the characters XML cannot carry."""
    return XML_UNSAFE.sub("", text)
