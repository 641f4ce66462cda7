"""Run sensors. Reconciliation makes the monitor tables agree with what Dagster ran.

Hooks are the fast path, but Dagster logs a failing hook and carries on, gives skipped steps no
hooks, and starts downstream steps before upstream hooks end. So the stage gates and the run
status sensors replay the run's own events: a materialisation whose outcome is DONE (or FAIL, for
an optional task) and a final step failure are recorded with the event's time, unless the monitor
already holds that status (the writes are idempotent, so racing a hook is harmless).
"""

from collections.abc import Sequence
from datetime import UTC, datetime

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SensorDefinition,
    run_status_sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..core.catalogue import ProcessSpec, TaskSpec
from ..core.monitor import ETLMonitorFramework
from ..core.outcome import Outcome, TaskOutcome, record_end
from .resource import ETLMonitorResource

StepIndex = dict[str, tuple[ProcessSpec, dict[str, TaskSpec]]]
"""Process -> (its spec, Dagster step key -> task): what a run's events are matched against."""


def run_outcomes(instance: DagsterInstance, run_id: str,
                 steps: set[str]) -> dict[str, tuple[TaskOutcome, datetime]]:
    """What each of ``steps`` ended with in this run, and when, from the run's event log."""
    outcomes: dict[str, tuple[TaskOutcome, datetime]] = {}
    kinds = {DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.STEP_FAILURE}
    for record in instance.all_logs(run_id, of_type=kinds):
        event = record.dagster_event
        if event is None or event.step_key not in steps:
            continue
        at = datetime.fromtimestamp(record.timestamp, UTC)
        if event.event_type is DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            message = error.message.strip() if error else "step failed"
            outcomes[event.step_key] = (TaskOutcome(Outcome.FAIL, error=message,
                                                    error_code=error.cls_name if error else None), at)
            continue
        outcome = TaskOutcome.from_metadata(event.step_materialization_data.materialization.metadata)
        if outcome is not None and outcome.status is not None:
            outcomes[event.step_key] = (outcome, at)
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
        for step, (outcome, at) in outcomes.items():
            task = tasks[step]
            row = rows.get((task.workflow, task.id))
            if row is None or row["Status"] == outcome.status:
                continue
            record_end(monitor, spec, task, run_id, row["ProcessingDate"], outcome, at)
            changed.append(f"{spec.process}/{task.name}: {row['Status']} -> {outcome.outcome.value}")
    return changed


def reconciliation_sensors(jobs: Sequence[UnresolvedAssetJobDefinition], index: StepIndex) -> list[SensorDefinition]:
    """One run status sensor per final status (success, failure, cancellation) of the process jobs."""

    def make(status: DagsterRunStatus) -> SensorDefinition:
        @run_status_sensor(
            name=f"etl_monitor_reconcile_{status.value.lower()}",
            run_status=status,
            monitored_jobs=jobs,
            default_status=DefaultSensorStatus.RUNNING,
            description="Records in the monitor tables any task outcome of the run its hooks did not write.",
        )
        def reconcile(context: RunStatusSensorContext, monitor: ETLMonitorResource) -> None:
            for line in reconcile_run(context.instance, context.dagster_run.run_id, monitor.get_monitor(), index):
                context.log.info(f"reconciled {line}")

        return reconcile

    return [make(s) for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]
