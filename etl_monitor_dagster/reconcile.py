"""Make the monitor tables agree with what Dagster ran.

Hooks are the fast path, but Dagster logs a failing hook and carries on, gives skipped steps no
hooks, and starts downstream steps before upstream hooks end. So the stage gates and the run
status sensors replay the run's own events: a materialisation whose outcome is DONE (or FAIL, for
an optional task) and a final step failure are recorded with the event's time, unless the monitor
already holds that status (the writes are idempotent, so racing a hook is harmless).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    SensorDefinition,
    run_status_sensor,
)

from .catalogue import ProcessSpec, TaskSpec
from .enums import Status
from .monitor import ETLMonitorFramework
from .resource import ETLMonitorResource

OUTCOME = "monitor_outcome"
"""Metadata key of a task materialisation: what the monitor must record for it."""

StepIndex = dict[str, tuple[ProcessSpec, dict[str, TaskSpec]]]
"""Process -> (its spec, Dagster step key -> task): what a run's events are matched against."""


class Outcome(StrEnum):
    DONE = "DONE"
    FAIL = "FAIL"
    SKIPPED = "SKIPPED"  # not run: DONE in an earlier attempt, inactive or force-skipped


@dataclass(frozen=True)
class StepOutcome:
    status: Status
    at: datetime
    message: str | None = None
    code: str | None = None


def metadata_value(metadata: Mapping[str, Any], key: str) -> Any:
    """A raw metadata value, whether Dagster holds it wrapped in a MetadataValue or not."""
    value = metadata.get(key)
    return getattr(value, "value", value)


def run_outcomes(instance: DagsterInstance, run_id: str, steps: set[str]) -> dict[str, StepOutcome]:
    """What each of ``steps`` ended with in this run, from the run's event log."""
    outcomes: dict[str, StepOutcome] = {}
    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.STEP_FAILURE}
    for record in instance.all_logs(run_id, of_type=kinds):
        event = record.dagster_event
        if event is None or event.step_key not in steps:
            continue
        at = datetime.fromtimestamp(record.timestamp, UTC)
        if event.event_type is DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "step failed"
            outcomes[event.step_key] = StepOutcome(Status.FAIL, at, message, error.cls_name if error else None)
            continue
        metadata = event.event_specific_data.materialization.metadata
        outcome = metadata_value(metadata, OUTCOME)
        if outcome in (Outcome.DONE, Outcome.FAIL):
            outcomes[event.step_key] = StepOutcome(
                Status(outcome), at, metadata_value(metadata, "error") or metadata_value(metadata, "summary"),
                metadata_value(metadata, "error_code"))
    return outcomes


def reconcile_run(instance: DagsterInstance, run_id: str, monitor: ETLMonitorFramework,
                  index: StepIndex) -> list[str]:
    """Record every outcome of the run the monitor does not hold yet; returns what changed."""
    changed: list[str] = []
    for spec, tasks in index.values():
        outcomes = run_outcomes(instance, run_id, set(tasks))
        if not outcomes:
            continue
        rows = {(r["WorkFlowID"], r["TaskID"]): r
                for r in monitor.status_rows(spec.project, spec.process, execution_id=run_id)}
        for step, outcome in outcomes.items():
            task = tasks[step]
            row = rows.get((task.workflow, task.id))
            if row is None or row["Status"] == outcome.status:
                continue
            monitor.end_task(run_id, spec.project, spec.process, task_id=task.id, sequence_id=task.stage,
                             workflow_id=task.workflow, processing_date=row["ProcessingDate"], status=outcome.status,
                             log_message=outcome.message, log_code=outcome.code,
                             log_type="ERROR" if outcome.status is Status.FAIL else None, timestamp=outcome.at)
            changed.append(f"{spec.process}/{task.name}: {row['Status']} -> {outcome.status.value}")
    return changed


def reconciliation_sensors(jobs: list, index: StepIndex) -> list[SensorDefinition]:
    """One run status sensor per final status (success, failure, cancellation) of the process jobs."""

    def make(status: DagsterRunStatus) -> SensorDefinition:
        @run_status_sensor(
            name=f"etl_monitor_reconcile_{status.value.lower()}",
            run_status=status,
            monitored_jobs=jobs,
            default_status=DefaultSensorStatus.RUNNING,
            description="Records in the monitor tables any task outcome of the run its hooks did not write.",
        )
        def reconcile(context, monitor: ETLMonitorResource) -> None:
            for line in reconcile_run(context.instance, context.dagster_run.run_id, monitor.get_monitor(), index):
                context.log.info(f"reconciled {line}")

        return reconcile

    return [make(s) for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
