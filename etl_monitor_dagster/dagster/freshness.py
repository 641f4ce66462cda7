"""Freshness deadlines from the catalogue: when a task of a scheduled process is late.

A process's schedule launches at ``schedule_at`` (UTC) and its stages run one after the other, so a
task is late once the stages up to its own have had their time: each stage's budget is the largest
``sla_seconds`` of its tasks (a stage without any: the process's ``max_runtime_minutes``, else
nothing). The deadline is ``schedule_at`` + those budgets + a grace, rounded up to the minute and at
least one minute on (Dagster's smallest window). A daily 06:00 process whose stages 1 and 2 each have
a 120 s SLA: stage 1's tasks are late at 06:02, stage 2's at 06:04.
"""

from __future__ import annotations

import math
from datetime import timedelta

from dagster import FreshnessPolicy

from ..core.catalogue import ProcessSpec, Stage
from ..core.enums import LoadFrequency

_DAY_MINUTES = 24 * 60
# The smallest interval between two ticks of each frequency's deadline: a window may not be longer.
_INTERVAL = {LoadFrequency.DAILY: timedelta(days=1), LoadFrequency.WEEKLY: timedelta(days=7),
             LoadFrequency.MONTHLY: timedelta(days=28), LoadFrequency.YEARLY: timedelta(days=365)}


def stage_budget(process: ProcessSpec, stage: Stage) -> int:
    """Seconds a stage may take: its largest task SLA, else the process's max_runtime_minutes, else 0."""
    slas = [t.sla_seconds for t in stage.tasks if t.sla_seconds]
    if slas:
        return max(slas)
    return (process.max_runtime_minutes or 0) * 60


def deadline_offset(process: ProcessSpec, stage: Stage, grace: timedelta = timedelta(0)) -> timedelta | None:
    """How long after ``schedule_at`` the tasks of ``stage`` are late; None when nothing bounds them
    (no budget in the stages up to this one) or the process is ad hoc (no schedule to be late against)."""
    if process.frequency is LoadFrequency.AD_HOC:
        return None
    order = [(s.workflow, s.sequence) for s in process.stage_groups()]
    upto = order.index((stage.workflow, stage.sequence))
    seconds = sum(stage_budget(process, s) for s in process.stage_groups()[: upto + 1])
    if not seconds:
        return None
    minutes = max(1, math.ceil((seconds + grace.total_seconds()) / 60))
    return timedelta(minutes=minutes)


def deadline_cron(process: ProcessSpec, offset: timedelta) -> str:
    """The cron of ``schedule_at`` + ``offset`` on the day the process's schedule launches (a daily
    process every day, weekly on Monday, monthly on the 1st, yearly on 1 January), in UTC."""
    hour, minute = map(int, process.schedule_at.split(":"))
    days, rest = divmod(hour * 60 + minute + int(offset.total_seconds() // 60), _DAY_MINUTES)
    at = f"{rest % 60} {rest // 60}"
    if process.frequency is LoadFrequency.WEEKLY:
        return f"{at} * * {(1 + days) % 7}"
    if process.frequency is LoadFrequency.MONTHLY:
        return f"{at} {min(1 + days, 28)} * *"  # a budget of weeks lands on the month's 28th at the latest
    if process.frequency is LoadFrequency.YEARLY:
        return f"{at} {min(1 + days, 28)} 1 *"
    return f"{at} * * *"


def deadline_policy(process: ProcessSpec, stage: Stage, grace: timedelta = timedelta(0)) -> FreshnessPolicy | None:
    """A cron freshness policy: the task must materialise between the launch and its deadline."""
    offset = deadline_offset(process, stage, grace)
    if offset is None:
        return None
    window = min(offset, _INTERVAL[process.frequency])
    return FreshnessPolicy.cron(deadline_cron=deadline_cron(process, offset), lower_bound_delta=window,
                                timezone="UTC")
