"""Processing dates as Dagster partitions: one time-window partitioning per LoadFrequency."""

from __future__ import annotations

from datetime import date, datetime

from dagster import (
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from ..core.catalogue import ProcessSpec
from ..core.enums import LoadFrequency


def partitions_for(spec: ProcessSpec) -> TimeWindowPartitionsDefinition:
    """D and A: one partition per day; W: per ISO week (Monday); M: per month; Y: per year.

    The partition key names the period's first day ("2026" for a year), which is the processing date.
    """
    start = spec.start_date.isoformat()
    if spec.frequency is LoadFrequency.WEEKLY:
        return WeeklyPartitionsDefinition(start_date=start, day_offset=1)
    if spec.frequency is LoadFrequency.MONTHLY:
        return MonthlyPartitionsDefinition(start_date=start)
    if spec.frequency is LoadFrequency.YEARLY:
        # Dagster takes no schedule offsets for custom cron partitions: the year turns at schedule_at
        hour, minute = spec.schedule_at.split(":")
        return TimeWindowPartitionsDefinition(start=str(spec.start_date.year), fmt="%Y",
                                              cron_schedule=f"{int(minute)} {int(hour)} 1 1 *")
    return DailyPartitionsDefinition(start_date=start)


def processing_date(partitions: TimeWindowPartitionsDefinition, partition_key: str) -> date:
    """The processing date a partition key stands for (the first day of its period)."""
    return datetime.strptime(partition_key, partitions.fmt).date()
