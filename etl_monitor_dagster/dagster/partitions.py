"""Processing dates as Dagster partitions: one time-window partitioning per LoadFrequency."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from dagster import (
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from ..core.catalogue import ProcessSpec
from ..core.enums import LoadFrequency
from ..core.periods import next_period


def partitions_for(spec: ProcessSpec) -> TimeWindowPartitionsDefinition:
    """D and A: one partition per day; W: per ISO week (Monday); M: per month; Y: per year.

    The partition key names the period's first day ("2026" for a year), which is the processing date. With
    ``end_date`` the last partition is the period that holds it.
    """
    start = spec.start_date.isoformat()
    end = partitions_end(spec)
    if spec.frequency is LoadFrequency.WEEKLY:
        return WeeklyPartitionsDefinition(start_date=start, end_date=end, day_offset=1)
    if spec.frequency is LoadFrequency.MONTHLY:
        return MonthlyPartitionsDefinition(start_date=start, end_date=end)
    if spec.frequency is LoadFrequency.YEARLY:
        # Dagster takes no schedule offsets for custom cron partitions: the year turns at schedule_at
        hour, minute = spec.schedule_at.split(":")
        return TimeWindowPartitionsDefinition(start=str(spec.start_date.year), end=end, fmt="%Y",
                                              cron_schedule=f"{int(minute)} {int(hour)} 1 1 *")
    return DailyPartitionsDefinition(start_date=start, end_date=end)


def partitions_end(spec: ProcessSpec) -> datetime | None:
    """Dagster's end of the partitions (exclusive: the last window ends there): the start of the period after
    the one holding ``end_date``, in UTC (a year turns at ``schedule_at``); None without ``end_date``."""
    if spec.end_date is None:
        return None
    turn = time(0, 0)
    if spec.frequency is LoadFrequency.YEARLY:
        hour, minute = map(int, spec.schedule_at.split(":"))
        turn = time(hour, minute)
    return datetime.combine(next_period(spec.frequency, spec.end_date), turn, tzinfo=UTC)


def processing_date(partitions: TimeWindowPartitionsDefinition, partition_key: str) -> date:
    """The processing date a partition key stands for (the first day of its period)."""
    return datetime.strptime(partition_key, partitions.fmt).date()
