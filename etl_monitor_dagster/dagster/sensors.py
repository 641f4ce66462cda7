"""Sensors that keep the monitor tables true to what happened.

Reconciliation: hooks are the fast path, but Dagster logs a failing hook and carries on, gives
skipped steps no hooks, and starts downstream steps before upstream hooks end. So the stage gates
and the run status sensors replay the run's own events: a materialisation whose outcome is DONE (or
FAIL, for an optional task) and a final step failure are recorded with the event's time, unless the
monitor already holds that status (the writes are idempotent, so racing a hook is harmless). A run
that ended FAILURE or CANCELED then ends in the monitor too: rows still running become FAIL
(RUN_LOST / RUN_CANCELED) and its initiation row marks the run FAILED. Run status sensors keep a
cursor, so runs that ended while the daemon was down are handled when it is back.

After each run of a process they also report its tasks' health checks, its watermark moves and an
observation of its ``v_taskHealth`` figures on its ``taskHealth_history`` asset (``task_health.py``).

Health: rows running past their limit whose execution is not a live run (a notebook or pipeline
that died after ``start_task``) become FAIL (STALE); transitions a crash cut short are finished; a running
task past its SLA's warning share is reported at risk once per start (an SLA_AT_RISK event, and with alerts
configured one message to its owner). The health sensor asks the engine only while a run of a process is in
progress or ended within ``lookback_minutes``: otherwise it sends no statement, so an all-purpose Databricks
cluster serving the monitor can auto-terminate.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NamedTuple

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunsFilter,
    RunStatusSensorContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
    run_status_sensor,
    sensor,
)
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES

from ..core.catalogue import ProcessSpec, TaskSpec
from ..core.enums import LogCode
from ..core.errors import ValidationError
from ..core.monitor import ETLMonitorFramework
from ..core.monitor.health import DEFAULT_AT_RISK_SHARE, StaleLimits
from ..core.outcome import TaskOutcome, record_end
from .alerts import send_at_risk_alerts
from .hooks import logged_failure_outcome
from .metadata import PROCESS_TAG
from .resource import ETLMonitorResource
from .task_health import report_run

_OUTCOME_EVENTS = (DagsterEventType.ASSET_MATERIALIZATION, DagsterEventType.STEP_FAILURE)
_HOOK_ENDS = (DagsterEventType.HOOK_COMPLETED, DagsterEventType.HOOK_ERRORED)


class IndexedProcess(NamedTuple):
    """A process as its run's events and reports are matched against."""

    spec: ProcessSpec
    tasks: dict[str, TaskSpec]  # Dagster step key -> task
    task_keys: Mapping[tuple[int, int], AssetKey] = {}  # (WorkFlowID, TaskID) -> the task's asset
    history_key: AssetKey | None = None  # the process's taskHealth_history: observed once per run


StepIndex = dict[str, IndexedProcess]
"""Process (ProcessLoad) -> its indexed process."""


def run_outcomes(instance: DagsterInstance, run_id: str, steps: set[str],
                 unhooked: bool = False) -> dict[str, tuple[TaskOutcome, datetime]]:
    """What each of ``steps`` ended with in this run, and when, from the run's event log. ``unhooked``: only
    the outcomes that no hook completed after (a hook that completes has written its step's outcome, and
    Dagster runs a step's hooks after its outcome's events), so a run whose hooks all wrote needs no read."""
    outcomes: dict[str, tuple[TaskOutcome, datetime]] = {}
    hooks: dict[str, set[DagsterEventType]] = {}  # a step's hook events since its last outcome
    for record in instance.all_logs(run_id, of_type={*_OUTCOME_EVENTS, *(_HOOK_ENDS if unhooked else ())}):
        event = record.dagster_event
        if event is None or event.step_key not in steps:
            continue
        if event.event_type in _HOOK_ENDS:
            hooks.setdefault(event.step_key, set()).add(event.event_type)
            continue
        hooks[event.step_key] = set()
        at = datetime.fromtimestamp(record.timestamp, UTC)
        if event.event_type is DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            user = event.step_failure_data.user_failure_data  # a Failure's: the asset put the outcome there
            carried = TaskOutcome.from_metadata(user.metadata) if user and user.metadata else None
            message = error.message.strip() if error else "step failed"
            outcomes[event.step_key] = (carried or logged_failure_outcome(error.cls_name if error else None,
                                                                          message), at)
            continue
        outcome = TaskOutcome.from_metadata(event.step_materialization_data.materialization.metadata)
        if outcome is not None and outcome.status is not None:
            outcomes[event.step_key] = (outcome, at)
    if unhooked:  # an errored hook wrote nothing: its outcome stays
        return {s: o for s, o in outcomes.items() if hooks.get(s) != {DagsterEventType.HOOK_COMPLETED}}
    return outcomes


def reconcile_run(instance: DagsterInstance, run_id: str, monitor: ETLMonitorFramework,
                  index: StepIndex) -> list[str]:
    """Record every outcome of the run the monitor does not hold yet; returns what changed. Only outcomes
    whose hooks did not complete are read against the rows: in a run whose hooks all wrote, nothing is read."""
    changed: list[str] = []
    for spec, tasks, *_ in index.values():
        outcomes = run_outcomes(instance, run_id, set(tasks), unhooked=True)
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


# Dagster looks at a run status sensor every 30 s by default: its fold and report then landed in the middle of the
# next run of a backfill or a schedule. Every 5 s they follow the run's end, mostly beside the next run's start-up
# (its worker and first step process), which asks nothing of the engine.
RUN_END_INTERVAL_SECONDS = 5


def reconciliation_sensors(jobs: Sequence[UnresolvedAssetJobDefinition], index: StepIndex) -> list[SensorDefinition]:
    """One run status sensor per final status (success, failure, cancellation) of the process jobs."""

    def make(status: DagsterRunStatus) -> SensorDefinition:
        @run_status_sensor(
            name=f"etl_monitor_reconcile_{status.value.lower()}",
            run_status=status,
            monitored_jobs=jobs,
            minimum_interval_seconds=RUN_END_INTERVAL_SECONDS,
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
                                           process.task_keys, monitor.baseline_runs, process.history_key)
                context.log.info(f"reported {checks} task health check(s), {moves} watermark move(s)"
                                 + (f" and the figures of {process.history_key.to_user_string()}"
                                    if process.history_key else ""))

            folded = m.fold(yield_to_writers=True)  # beside the next runs: their steps never wait for it
            context.log.info(f"folded {folded.events_removed} logged event(s) into the tables" if not
                             folded.removal_left else "folded the log into the tables; its folded events are "
                             "left for the next fold (a writer was appending to the log)")

        return reconcile

    return [make(s) for s in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)]


def _ended_at(context: RunStatusSensorContext) -> datetime:
    """When the run ended: its final event's time (not the sensor's, which may run much later)."""
    stats = context.instance.get_run_stats(context.dagster_run.run_id)
    return datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else datetime.now(UTC)


@dataclass(frozen=True)
class HealthSettings:
    """The health sensor: how often it runs, when a running row is stale or at risk, when it may stay idle."""

    interval_seconds: int = 60
    sla_factor: float = 3.0  # a task with SlaSeconds is stale after SlaSeconds x this
    default_max_runtime_minutes: int = 360  # ... without SlaSeconds nor its process's max_runtime_minutes
    at_risk_share: float = DEFAULT_AT_RISK_SHARE  # a running task past this share of its SlaSeconds is at risk
    lookback_minutes: int = 60  # after the last run of a process ended, the engine is asked this long still

    def __post_init__(self) -> None:
        if not 0 < self.at_risk_share <= 1:
            raise ValidationError("at_risk_share", self.at_risk_share, "is a share of SlaSeconds above 0 and at most 1")
        if self.lookback_minutes < 0:
            raise ValidationError("lookback_minutes", self.lookback_minutes, "is a number of minutes, 0 or more")


def active_processes(instance: DagsterInstance, processes: Sequence[str], lookback: timedelta) -> list[str]:
    """Of ``processes``, those with a run in progress or one that ended within ``lookback``: the sensor asks the
    engine only for them, so an idle Databricks cluster can auto-terminate."""
    if not processes:
        return []
    tags = {PROCESS_TAG: list(processes)}
    found = [*instance.get_runs(RunsFilter(statuses=list(IN_PROGRESS_RUN_STATUSES), tags=tags), limit=100),
             *instance.get_runs(RunsFilter(updated_after=datetime.now(UTC) - lookback, tags=tags), limit=100)]
    return sorted({r.tags[PROCESS_TAG] for r in found if r.tags.get(PROCESS_TAG) in processes})


def health_sensor(specs: Sequence[ProcessSpec], settings: HealthSettings, alerting: bool = False) -> SensorDefinition:
    """Fails stale rows (never one of a live run) and reports tasks at risk of breaching their SLA (with
    ``alerting``, the ``alerts`` resource tells their owner); idle while no run of ``specs`` is recent."""
    limits = StaleLimits(settings.sla_factor, settings.default_max_runtime_minutes * 60,
                         {(s.project, s.process): s.max_runtime_minutes * 60 for s in specs if s.max_runtime_minutes})
    processes = sorted({s.process for s in specs})
    projects = {s.process: s.project for s in specs}

    @sensor(
        name="etl_monitor_health",
        minimum_interval_seconds=settings.interval_seconds,
        default_status=DefaultSensorStatus.RUNNING,
        required_resource_keys={"monitor", "alerts"} if alerting else {"monitor"},
        description="While a process runs or ran lately: rows running past their limit whose execution is not a "
        "live run become FAIL (STALE); running tasks past their SLA's warning share are reported at risk.",
    )
    def etl_monitor_health(context: SensorEvaluationContext) -> SkipReason:
        active = active_processes(context.instance, processes, timedelta(minutes=settings.lookback_minutes))
        if not active:  # not a statement to the engine: nothing of ours ran lately
            return SkipReason(f"idle: no run of {len(processes)} process(es) in progress or ended in the last "
                              f"{settings.lookback_minutes} minutes")
        now = datetime.now(UTC)
        monitor: ETLMonitorResource = context.resources.monitor
        health = monitor.get_monitor().health
        running = health.running()
        live = {e for e in {r["ExecutionID"] for r in running}
                if (run := context.instance.get_run_by_id(e)) is not None and not run.is_finished}
        stale = health.fail_stale([r for r in running if r["ExecutionID"] not in live], limits, now)
        for row in stale:
            context.log.info(f"stale {row['ProcessLoad']}/{row['TaskName']} ({row['ExecutionID']}): FAIL STALE")
        ended = {(r["ExecutionID"], r["WorkFlowID"], r["TaskID"], r["Attempts"]) for r in stale}
        still = [r for r in running if (r["ExecutionID"], r["WorkFlowID"], r["TaskID"], r["Attempts"]) not in ended]
        at_risk = health.sla_at_risk(still, settings.at_risk_share)
        for row in at_risk:
            context.log.warning(f"at risk {row['ProcessLoad']}/{row['TaskName']} ({row['ExecutionID']}): "
                                f"{row['RunningSeconds']} s of its SLA of {row['SlaSeconds']} s")
        sent = 0
        if alerting:
            sent = send_at_risk_alerts(context, context.resources.alerts, monitor.get_monitor(),
                                       {r["ExecutionID"] for r in still}, projects)
        return SkipReason(f"{', '.join(active)} active: {len(running)} rows running ({len(live)} live runs), "
                          f"{len(stale)} stale rows failed, {len(at_risk)} at risk, {sent} at-risk alert(s) sent")

    return etl_monitor_health
