"""The only two ways text reaches SQL: validated identifiers and one quoting function.

Values never go through here: the monitor binds them as DataFrames (see ``engine.Engine.bind``).
These helpers are for what Spark cannot bind: DDL (names, comments) and view bodies.
"""

from __future__ import annotations

import re

from .errors import ValidationError

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")


def validate_identifier(field: str, name: str) -> str:
    """Return ``name`` if it is a plain catalog/schema identifier, else raise ValidationError.

    >>> validate_identifier("schema", "etl")
    'etl'
    """
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValidationError(
            field, name, "must start with a letter or underscore and contain only letters, digits, _"
        )
    return name


def quote_identifier(name: str) -> str:
    """Back-quote an identifier, doubling embedded back-quotes.

    >>> quote_identifier("a`b")
    '`a``b`'
    """
    return "`" + name.replace("`", "``") + "`"


def quote_string(value: str) -> str:
    """Render ``value`` as a Spark SQL string literal that parses back to exactly ``value``.

    Backslash and quote are escaped; ``$`` becomes ``\\u0024`` so Spark's ``${var}`` substitution,
    which runs on raw SQL text before parsing, cannot see it; control characters become ``\\uXXXX``.

    >>> quote_string("it's ${x}")
    "'it\\\\'s \\\\u0024{x}'"
    """
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == "'":
            out.append("\\'")
        elif ch == "$" or ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"
