"""How text reaches SQL: validated identifiers, one quoting function and one templating style.

Values never go through here: the monitor binds them as DataFrames (see ``engine.Engine.bind``).
These helpers are for what Spark cannot bind: DDL (names, comments), view bodies, our own table
names and the partition dates the monitor has already validated.

Every statement is text with ``{name}`` placeholders, filled by ``fill``; ``{src}`` is left for
Spark, which replaces it with the DataFrame of bound values.
"""

from __future__ import annotations

import re
from datetime import date

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


class _Keep(dict):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(text: str, **values: str) -> str:
    """Replace the ``{name}`` placeholders that ``values`` names; leave the others for a later fill.

    >>> fill("SELECT {cols} FROM {src}", cols="a, b")
    'SELECT a, b FROM {src}'
    """
    return text.format_map(_Keep(values))


def date_literal(day: date) -> str:
    """A DATE literal for partition pruning; ``day`` is a validated ``date``, never user text."""
    if not isinstance(day, date):
        raise TypeError(f"expected a date, got {day!r}")
    return f"DATE {quote_string(day.isoformat())}"
