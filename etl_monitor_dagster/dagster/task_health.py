"""What the monitor knows about a task, shown on its asset: health checks and watermark moves.

Every task asset has two non-blocking (WARN) checks over ``v_taskHealth``: ``failure_streak`` (FAIL
ends since its last DONE) and ``duration_baseline`` (its latest DONE against the p90 and mean + 3
sigma of the DONE runs before it). The process job leaves them out (a step per run would slow every
run); the run status sensors report them when a run ends, failed runs included, and the UI can
execute them at any time. Each DELTA_DATE move a run's DONE made is reported as an observation of
the task's asset with the old and new value, so the asset's page shows the watermark's history.

``v_taskHealth``'s asset is partitioned: Dagster's default plot view lists partitions back from today, so a
process whose partitions ended shows an empty plot there. Its companion ``taskHealth_history`` is a
non-partitioned external asset the run status sensors observe once per run with the same figures
(``views.task_health_figures``): its plots, by time, are the default view. Its key is camel case, as the
views' are, so no task's asset (a lower case name) can take it.
"""


from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckKey,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    DagsterInstance,
    DagsterRun,
    multi_asset_check,
)

from ..core.catalogue import ProcessSpec, dagster_name
from ..core.monitor import ETLMonitorFramework
from ..core.schema import BASELINE_RUNS
from .resource import ETLMonitorResource
from .translator import DagsterETLMonitorTranslator
from .views import task_health_figures

FAILURE_STREAK = "failure_streak"
DURATION_BASELINE = "duration_baseline"
HEALTH_HISTORY = "taskHealth_history"  # the last part of the history asset's key
PARTITION_TAG = "dagster/partition"
_DESCRIPTIONS = {
    FAILURE_STREAK: "Warns while the task's latest ends are FAILs (its streak since the last DONE).",
    DURATION_BASELINE: "Warns when the task's latest DONE took longer than the mean + 3 sigma of the DONE runs "
    "before it (from 5 of them on); says so when it was only slower than their p90.",
}


@dataclass(frozen=True)
class Verdict:
    """One check's result for one task, whoever reports it."""

    check_name: str
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def verdicts(row: Mapping[str, Any] | None) -> list[Verdict]:
    """The two checks' results from the task's ``v_taskHealth`` row (None: it never ended a run)."""
    if row is None:
        return [Verdict(name, True, "no ended run yet") for name in _DESCRIPTIONS]
    streak = int(row["FailureStreak"])
    failing = Verdict(FAILURE_STREAK, streak == 0,
                      f"failed {streak} time(s) in a row since its last DONE" if streak else "last end was DONE",
                      {"failure_streak": streak, "last_status": row["LastStatus"]})
    figures = {k: v for k, v in (("last_done_seconds", row["LastDoneSeconds"]), ("baseline_runs", row["BaselineRuns"]),
                                 ("p90_seconds", row["P90Seconds"]), ("mean_seconds", row["MeanSeconds"]),
                                 ("anomaly_seconds", row["AnomalySeconds"])) if v is not None}
    if row["BaselineRuns"] < 5:
        said = f"{row['BaselineRuns']} earlier DONE run(s): too few to judge"
    elif row["DurationAnomaly"]:
        said = f"{row['LastDoneSeconds']} s is above mean + 3 sigma ({row['AnomalySeconds']:.1f} s)"
    elif row["SlowerThanP90"]:
        said = f"{row['LastDoneSeconds']} s is above p90 ({row['P90Seconds']:.1f} s), within mean + 3 sigma"
    else:
        said = f"{row['LastDoneSeconds']} s is within its baseline"
    return [failing, Verdict(DURATION_BASELINE, not row["DurationAnomaly"], said, figures)]


def task_health_checks(spec: ProcessSpec, task_keys: Mapping[tuple[int, int], AssetKey]) -> AssetChecksDefinition:
    """The two checks of every task asset of a process, run together over one read of ``v_taskHealth``."""
    specs = [AssetCheckSpec(name, asset=key, blocking=False, description=description)
             for key in task_keys.values() for name, description in _DESCRIPTIONS.items()]

    @multi_asset_check(name=f"{dagster_name(spec.process)}__task_health", specs=specs, can_subset=True,
                       description=f"{spec.project}/{spec.process}: failure streaks and duration baselines")
    def task_health(context: AssetCheckExecutionContext, monitor: ETLMonitorResource) -> Iterator[AssetCheckResult]:
        rows = _rows_by_task(monitor.get_monitor(), spec, monitor.baseline_runs)
        for task, key in task_keys.items():
            for v in verdicts(rows.get(task)):
                if AssetCheckKey(key, v.check_name) in context.selected_asset_check_keys:
                    yield AssetCheckResult(asset_key=key, check_name=v.check_name, passed=v.passed,
                                           severity=AssetCheckSeverity.WARN, description=v.description,
                                           metadata=v.metadata)

    return task_health


def task_health_history(process: ProcessSpec, translator: DagsterETLMonitorTranslator) -> AssetsDefinition:
    """``<project>/<process>/taskHealth_history``: a non-partitioned external asset beside ``v_taskHealth`` (same
    group and owners, downstream of it) that the run status sensors observe with its figures once per run."""
    view = translator.get_view_spec(process, "v_taskHealth")
    return AssetsDefinition(specs=[AssetSpec(
        key=AssetKey([*translator.get_process_key_prefix(process).path, HEALTH_HISTORY]),
        deps=[view.key], group_name=view.group_name, owners=view.owners, kinds={"etl_monitor"},
        description="The plot-friendly history of v_taskHealth: after every run, failed ones included, the run "
        "sensors observe its figures (failing tasks, each task's seconds, p90 and failure streak), plotted by "
        "time in the default view.")])


def health_observation(key: AssetKey, health: list[dict[str, Any]], execution_id: str,
                       partition: str | None) -> AssetObservation:
    """``v_taskHealth``'s figures from its ``health`` rows, as the views asset puts them on its materialisation,
    observed on the history asset ``key`` after run ``execution_id`` of processing date ``partition``."""
    return AssetObservation(asset_key=key, description=f"v_taskHealth after run {execution_id}",
                            metadata={**task_health_figures(health), "execution_id": execution_id,
                                      "processing_date": partition or ""})


def report_run(instance: DagsterInstance, run: DagsterRun, monitor: ETLMonitorFramework, spec: ProcessSpec,
               task_keys: Mapping[tuple[int, int], AssetKey], baseline_runs: int,
               history_key: AssetKey | None = None) -> tuple[int, int]:
    """After a run of ``spec``'s job: its tasks' health checks, its watermark moves and (with ``history_key``) one
    observation of ``v_taskHealth``'s figures, into Dagster.

    Reports the checks of the tasks whose latest end is this run's; returns (checks, moves) reported.
    """
    stats = instance.get_run_stats(run.run_id)
    began = datetime.fromtimestamp(stats.start_time or stats.launch_time or 0, UTC)
    health = monitor.health.baselines(spec.project, spec.process, baseline_runs)
    checks = 0
    for row in health:
        key = task_keys.get((row["WorkFlowID"], row["TaskID"]))
        if key is None or row["LastEndTime"] is None or _aware(row["LastEndTime"]) < began:
            continue
        for v in verdicts(row):
            instance.report_runless_asset_event(AssetCheckEvaluation(
                asset_key=key, check_name=v.check_name, passed=v.passed, metadata=v.metadata,
                severity=AssetCheckSeverity.WARN, description=v.description, blocking=False))
            checks += 1
    partition = run.tags.get(PARTITION_TAG)
    if history_key is not None:
        # the view's own window, as the views asset reads it; the checks' window is the resource's
        rows = health if baseline_runs == BASELINE_RUNS else monitor.health.baselines(spec.project, spec.process)
        instance.report_runless_asset_event(health_observation(history_key, rows, run.run_id, partition))
    moves = 0
    for move in monitor.health.watermark_moves(run.run_id):
        key = task_keys.get((move.get("workflow_id"), move.get("task_id")))  # type: ignore[arg-type]
        if key is None:
            continue
        instance.report_runless_asset_event(AssetObservation(
            asset_key=key, partition=partition, description=f"watermark {move['parameter_name']} moved",
            metadata={"watermark": move["parameter_name"], "previous_value": str(move.get("previous_value")),
                      "new_value": str(move.get("new_value")), "execution_id": run.run_id}))
        moves += 1
    return checks, moves


def _rows_by_task(monitor: ETLMonitorFramework, spec: ProcessSpec,
                  baseline_runs: int) -> dict[tuple[int, int], dict[str, Any]]:
    rows = monitor.health.baselines(spec.project, spec.process, baseline_runs)
    return {(r["WorkFlowID"], r["TaskID"]): r for r in rows}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
