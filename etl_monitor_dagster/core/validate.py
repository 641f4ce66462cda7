"""Argument checks at the edge: each returns the clean value or raises ValidationError naming it."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from enum import Enum
from typing import TypeVar

from .errors import ValidationError

E = TypeVar("E", bound=Enum)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# How far past this machine's clock a given start or end time may be: writers' clocks disagree by
# seconds; a time further ahead is a wrong time zone or a typo, and would move a DELTA_DATE past data
# not loaded yet.
FUTURE_SLACK = timedelta(minutes=5)


def text(field: str, value: object, *, max_length: int = 1000) -> str:
    """A required, non-blank string (any characters: quotes, newlines, unicode are data)."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(field, value, "must be a non-empty string")
    if len(value) > max_length:
        raise ValidationError(field, value[:50] + "...", f"is longer than {max_length} characters")
    return value


def optional_text(field: str, value: object, *, max_length: int = 4000) -> str | None:
    return None if value is None else text(field, value, max_length=max_length)


def integer(field: str, value: object, *, minimum: int | None = 0) -> int:
    """An int, or a string of digits (ADF widgets pass strings); never a bool or a float."""
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(field, value, "must be an integer")
    if minimum is not None and value < minimum:
        raise ValidationError(field, value, f"must be >= {minimum}")
    return value


def optional_integer(field: str, value: object, *, minimum: int | None = 0) -> int | None:
    return None if value is None else integer(field, value, minimum=minimum)


def boolean(field: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false", "1", "0"}:
        return value.strip().lower() in {"true", "1"}
    raise ValidationError(field, value, "must be a boolean")


def a_date(field: str, value: object) -> date:
    """A ``date``, a ``datetime`` (its date) or an ISO ``YYYY-MM-DD`` string."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str) and _ISO_DATE.match(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise ValidationError(field, value, "must be a date or an ISO date string YYYY-MM-DD")


def optional_date(field: str, value: object) -> date | None:
    return None if value is None else a_date(field, value)


def timestamp(field: str, value: object) -> datetime:
    """A ``datetime`` (naive means UTC), a ``date`` (midnight UTC) or an ISO 8601 string."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(field, value, "must be an ISO 8601 timestamp") from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    raise ValidationError(field, value, "must be a datetime or an ISO 8601 timestamp")


def optional_timestamp(field: str, value: object) -> datetime | None:
    return None if value is None else timestamp(field, value)


def past_timestamp(field: str, value: object, *, now: datetime | None = None) -> datetime:
    """``timestamp``, refused when later than ``now`` (default: this clock, UTC) plus ``FUTURE_SLACK``."""
    moment = timestamp(field, value)
    clock = now or datetime.now(UTC)
    latest = (clock if clock.tzinfo else clock.replace(tzinfo=UTC)) + FUTURE_SLACK
    if moment > latest:
        raise ValidationError(field, value, f"is more than {FUTURE_SLACK.seconds // 60} minutes in the future: "
                                            f"the latest accepted is {latest.isoformat()}")
    return moment


def optional_past_timestamp(field: str, value: object, *, now: datetime | None = None) -> datetime | None:
    return None if value is None else past_timestamp(field, value, now=now)


def not_before(field: str, value: datetime, earliest: datetime | None, what: str) -> datetime:
    """``value``, refused when before ``earliest`` (``what`` names it; None: no bound). Naive means UTC."""
    if earliest is not None:
        bound = earliest if earliest.tzinfo else earliest.replace(tzinfo=UTC)
        if (value if value.tzinfo else value.replace(tzinfo=UTC)) < bound:
            raise ValidationError(field, value, f"is before {what} {bound.isoformat()}")
    return value


def member(field: str, value: object, enum: type[E]) -> E:
    """A member of ``enum``, given as the member or its value."""
    if isinstance(value, enum):
        return value
    for item in enum:
        if value == item.value:
            return item
    allowed = ", ".join(str(item.value) for item in enum)
    raise ValidationError(field, value, f"must be one of {allowed}")


def optional_member(field: str, value: object, enum: type[E]) -> E | None:
    return None if value is None else member(field, value, enum)
