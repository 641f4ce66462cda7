"""The processing periods of a LoadFrequency: which processing dates a process's ``start_date`` and
``end_date`` admit. A period is named by its processing date, its first day."""

from __future__ import annotations

from datetime import date, timedelta

from .enums import LoadFrequency

_NAMES = {LoadFrequency.WEEKLY: "week", LoadFrequency.MONTHLY: "month", LoadFrequency.YEARLY: "year"}


def period_of(frequency: LoadFrequency, day: date) -> date:
    """The processing date of the period holding ``day``: the day itself (D, A), its ISO week's Monday (W),
    its month's first day (M) or its year's 1 January (Y)."""
    if frequency is LoadFrequency.WEEKLY:
        return day - timedelta(days=day.weekday())
    if frequency is LoadFrequency.MONTHLY:
        return day.replace(day=1)
    if frequency is LoadFrequency.YEARLY:
        return day.replace(month=1, day=1)
    return day


def next_period(frequency: LoadFrequency, day: date) -> date:
    """The processing date of the period after the one holding ``day``."""
    period = period_of(frequency, day)
    if frequency is LoadFrequency.WEEKLY:
        return period + timedelta(days=7)
    if frequency is LoadFrequency.MONTHLY:
        return date(period.year + period.month // 12, period.month % 12 + 1, 1)
    if frequency is LoadFrequency.YEARLY:
        return date(period.year + 1, 1, 1)
    return period + timedelta(days=1)


def first_period(frequency: LoadFrequency, start: date) -> date:
    """The first processing date ``start_date`` admits: the first whole week or month from it on (as Dagster's
    weekly and monthly partitions count), its own year (Y), the day itself (D, A)."""
    if frequency in (LoadFrequency.WEEKLY, LoadFrequency.MONTHLY) and period_of(frequency, start) != start:
        return next_period(frequency, start)
    return period_of(frequency, start)


def end_date_problem(frequency: LoadFrequency, start: date, end: date) -> str | None:
    """Why ``end`` cannot close the processing dates that start at ``start`` (None: it can). ``end`` is the last
    processing date: the last period is the one holding it."""
    if end < start:
        return f"{end} is before start_date {start}: give the last processing date, on or after start_date"
    first = first_period(frequency, start)
    if period_of(frequency, end) < first:
        name = _NAMES[frequency]
        return (f"{end} is before the first whole {name}, {first} (the first from start_date {start}), so the "
                f"process would have no processing date: give a date in the {name} of {first} or later")
    return None
