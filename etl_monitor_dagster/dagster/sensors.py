"""Sensors that keep the monitor tables true to what happened.

Reconciliation: hooks are the fast path, but Dagster logs a failing hook and carries on, gives
skipped steps no hooks, and starts downstream steps before upstream hooks end. So the stage gates
and the run status sensors replay the run's own events: a materialisation whose outcome is DONE (or
FAIL, for an optional task) and a final step failure are recorded with the event's time, unless the
monitor already holds that status (the writes are idempotent, so racing a hook is harmless). A run
that ended FAILURE or CANCELED then ends in the monitor too: rows still running become FAIL
(RUN_LOST / RUN_CANCELED) and its initiation row marks the run FAILED. Run status sensors keep a
cursor, so runs that ended while the daemon was down are handled when it is back.

Health: rows running past their limit whose execution is not a live run (a notebook or pipeline
that died after ``start_task``) become FAIL (STALE); transitions a crash cut short are finished.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from ..core.catalogue import ProcessSpec, TaskSpec
from ..core.enums import LogCode
from ..core.monitor import ETLMonitorFramework
from ..core.monitor.health import StaleLimits
from ..core.outcome import Outcome, TaskOutcome, record_end
from .metadata import PROCESS_TAG
from .resource import ETLMonitorResource
from .task_health import report_run


class IndexedProcess(NamedTuple):
    """A process as its run's events and reports are matched against."""

    spec: ProcessSpec
    tasks: dict[str, TaskSpec]  # Dagster step key -> task
    task_keys: Mapping[tuple[int, int], AssetKey] = {}  # (WorkFlowID, TaskID) -> the task's asset


StepIndex = dict[str, IndexedProcess]
"""Process (ProcessLoad) -> its indexed process."""


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
            user = event.step_failure_data.user_failure_data  # a Failure's: the asset put the outcome there
            carried = TaskOutcome.from_metadata(user.metadata) if user and user.metadata else None
            message = error.message.strip() if error else "step failed"
            outcomes[event.step_key] = (carried or TaskOutcome(Outcome.FAIL, error=message,
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
    for spec, tasks, _ in index.values():
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
            description="Records in the monitor tables any task outcome of the run its hooks did not write; "
            "a failed or cancelled run ends its running rows and marks the run FAILED.",
        )
        def reconcile(context: RunStatusSensorContext, monitor: ETLMonitorResource) -> None:
            run_id, m = context.dagster_run.run_id, monitor.get_monitor()
            for line in reconcile_run(context.instance, run_id, m, index):
                context.log.info(f"reconciled {line}")
            if status is not DagsterRunStatus.SUCCESS:
                event = context.dagster_event
                code = LogCode.RUN_CANCELED if status is DagsterRunStatus.CANCELED else LogCode.RUN_FAILED
                message = (event.message or status.value) if event else status.value
                ended = m.health.end_run(run_id, code, message, _ended_at(context))
                for row in ended:
                    context.log.info(f"ended {row['ProcessLoad']}/{row['TaskName']}: FAIL {row['LogCode']}")
            process = index.get(context.dagster_run.tags.get(PROCESS_TAG, ""))
            if process is not None:
                checks, moves = report_run(context.instance, context.dagster_run, m, process.spec,
                                           process.task_keys, monitor.baseline_runs)
                context.log.info(f"reported {checks} task health check(s) and {moves} watermark move(s)")

            folded = m.fold()
            context.log.info(f"folded {folded.events_removed} logged event(s) into the tables")

        return reconcile

    return [make(s) for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]


def _ended_at(context: RunStatusSensorContext) -> datetime:
    """When the run ended: its final event's time (not the sensor's, which may run much later)."""
    stats = context.instance.get_run_stats(context.dagster_run.run_id)
    return datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else datetime.now(UTC)


@dataclass(frozen=True)
class HealthSettings:
    """The health sensor: how often it runs, when a running row is stale, when a transition is cut short."""

    interval_seconds: int = 60
    sla_factor: float = 3.0  # a task with SlaSeconds is stale after SlaSeconds x this
    default_max_runtime_minutes: int = 360  # ... without SlaSeconds nor its process's max_runtime_minutes


def health_sensor(specs: Sequence[ProcessSpec], settings: HealthSettings) -> SensorDefinition:
    """Fails stale rows (never one of a live run)."""
    limits = StaleLimits(settings.sla_factor, settings.default_max_runtime_minutes * 60,
                         {(s.project, s.process): s.max_runtime_minutes * 60 for s in specs if s.max_runtime_minutes})

    @sensor(
        name="etl_monitor_health",
        minimum_interval_seconds=settings.interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        description="Rows running past their limit whose execution is not a live run become FAIL (STALE).",
    )
    def etl_monitor_health(context: SensorEvaluationContext, monitor: ETLMonitorResource) -> SkipReason:
        now = datetime.now(UTC)
        health = monitor.get_monitor().health
        running = health.running()
        live = {e for e in {r["ExecutionID"] for r in running}
                if (run := context.instance.get_run_by_id(e)) is not None and not run.is_finished}
        stale = health.fail_stale([r for r in running if r["ExecutionID"] not in live], limits, now)
        for row in stale:
            context.log.info(f"stale {row['ProcessLoad']}/{row['TaskName']} ({row['ExecutionID']}): FAIL STALE")
        return SkipReason(f"{len(running)} rows running ({len(live)} live runs), {len(stale)} stale rows failed")

    return etl_monitor_health
