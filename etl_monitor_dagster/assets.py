"""A catalogue process as Dagster assets: one asset per task, a gate per stage, the views.

Stage groups run in (WorkFlowID, SequenceID) order: every task of a stage depends on the previous
stage's gate, and each gate carries a blocking check on v_mandatoryBlockers. The task assets run the
work and report the outcome in their metadata; the hooks (``hooks.py``) record DONE/FAIL from it,
and the gates and run sensors (``reconcile.py``) repair whatever a hook did not write. A task's
``maximum_retries`` is its step's RetryPolicy; each failed try before the last is recorded as RQUE.
"""

import time
from dataclasses import dataclass, field
from datetime import date
from enum import Enum, StrEnum
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    TimeWindowPartitionsDefinition,
    asset,
)
from pydantic import Field

from .catalogue import DATABRICKS, ProcessSpec, TaskSpec, dagster_name
from .databricks_tasks import Databricks
from .enums import SKIP, SourceType
from .errors import ValidationError
from .hooks import task_hooks
from .monitor import ETLMonitorFramework
from .partitions import partitions_for, processing_date
from .reconcile import OUTCOME, Outcome, reconcile_run
from .resource import DatabricksResource, ETLMonitorResource
from .runners import TaskRun, error_text, run_task
from .schema import SEEDED_STAGES

MODE_TAG = "etl_monitor/mode"
SUCCEEDED_CHECK = "succeeded"
BLOCKERS_CHECK = "no_mandatory_blockers"
_STAGE_CODES = {sid: code for sid, code, _, _ in SEEDED_STAGES}
_KINDS = {SourceType.SPARK_SQL: {"spark", "sql"}, SourceType.PYTHON: {"python"},
          SourceType.DBX_NOTEBOOK: {"databricks", "notebook"}, SourceType.DBX_JOB: {"databricks", "job"}}


class RunMode(StrEnum):
    """How a launch sets the processing mode before its steps are generated."""

    AS_IS = "as_is"  # leave SYSDT and the watermarks as they are
    LIVE = "live"  # SYSDT back to NULL
    HISTORIC = "historic"  # SYSDT = the partition's processing date
    BULK = "bulk"  # every DELTA_DATE to NULL and every DELTA_ID to 0: a full reload


class InitiationConfig(Config):
    mode: RunMode | None = Field(
        default=None,
        description="Processing mode for this launch: AS_IS, LIVE, HISTORIC or BULK. Default: the run's "
        f"'{MODE_TAG}' tag (as_is, live, historic or bulk), else AS_IS.",
    )


@dataclass(frozen=True)
class Stage:
    """The tasks of one (WorkFlowID, SequenceID) of a process: they run in parallel."""

    workflow: int
    sequence: int
    code: str
    tasks: tuple[TaskSpec, ...]

    @property
    def name(self) -> str:
        """``s02_load_db_tran``; from the second workflow pass on, ``w2_s02_load_db_tran``."""
        stage = f"s{self.sequence:02d}_{dagster_name(self.code)}"
        return stage if self.workflow <= 1 else f"w{self.workflow}_{stage}"


def stages_of(spec: ProcessSpec) -> list[Stage]:
    codes = {**_STAGE_CODES, **{s.id: s.code for s in spec.stages}}
    keys = sorted({(t.workflow, t.stage) for t in spec.tasks})
    return [Stage(w, s, codes[s], tuple(t for t in spec.tasks if (t.workflow, t.stage) == (w, s))) for w, s in keys]


@dataclass
class ProcessAssets:
    """Everything Dagster gets for one process."""

    spec: ProcessSpec
    partitions: TimeWindowPartitionsDefinition
    assets: list[AssetsDefinition] = field(default_factory=list)
    tasks_by_step: dict[str, TaskSpec] = field(default_factory=dict)  # step key -> task, for reconciling

    @property
    def prefix(self) -> str:
        return dagster_name(self.spec.process)

    def key(self, name: str) -> AssetKey:
        return AssetKey([dagster_name(self.spec.project), self.prefix, name])


def build_process_assets(spec: ProcessSpec) -> ProcessAssets:
    """Task assets, stage gates and view assets of one process."""
    from .views import view_assets  # views build on this module's ProcessAssets

    built = ProcessAssets(spec, partitions_for(spec))
    initiation_step = built.key(next(t for t in spec.tasks if t.workflow == 0).dagster_name).to_python_identifier()
    previous_gate: AssetKey | None = None
    for stage in stages_of(spec):
        keys = []
        for task in stage.tasks:
            definition = _task_asset(built, stage, task, previous_gate, initiation_step)
            built.assets.append(definition)
            built.tasks_by_step[definition.op.name] = task
            keys.append(definition.key)
        gate = _gate_asset(built, stage, keys)
        built.assets.append(gate)
        previous_gate = gate.key
    built.assets.append(view_assets(built, previous_gate))
    return built


# ----------------------------------------------------------------------------------- task assets


def _task_asset(built: ProcessAssets, stage: Stage, task: TaskSpec, after: AssetKey | None,
                initiation_step: str) -> AssetsDefinition:
    spec, key = built.spec, built.key(task.dagster_name)
    checks = [] if task.mandatory else [AssetCheckSpec(
        SUCCEEDED_CHECK, asset=key, blocking=False,
        description="Optional task: its failure is recorded in the monitor and does not stop later stages.")]
    decorate = asset(
        key=key,
        group_name=f"{built.prefix}/{stage.name}",
        deps=[after] if after else [],
        partitions_def=built.partitions,
        description=task.description or task.name,
        kinds=_KINDS.get(task.source_type, {"etl_monitor"}),
        check_specs=checks,
        hooks=task_hooks(spec, task, built.partitions),
        retry_policy=RetryPolicy(max_retries=task.maximum_retries, delay=task.retry_delay_seconds)
        if task.maximum_retries else None,
        op_tags={"etl_monitor/project": spec.project, "etl_monitor/process": spec.process,
                 "etl_monitor/task": f"{task.workflow}/{task.id}"},
        metadata={"TaskID": task.id, "WorkFlowID": task.workflow, "SequenceID": task.stage,
                  "TaskName": task.name, "SourceType": task.source_type.value, "Source": task.source or "",
                  "Mandatory": task.mandatory, "Watermark": task.watermark or "",
                  "MaximumRetries": task.maximum_retries},
    )

    def execute(context: AssetExecutionContext, monitor: ETLMonitorResource, mode: RunMode | None,
                databricks: Databricks | None = None) -> MaterializeResult:
        return _run(context, monitor.get_monitor(), built, task, mode, initiation_step, databricks)

    if task.workflow == 0:
        @decorate
        def initiation(context: AssetExecutionContext, config: InitiationConfig,
                       monitor: ETLMonitorResource) -> MaterializeResult:
            return execute(context, monitor, config.mode or _tagged_mode(context.run.tags.get(MODE_TAG)))

        return initiation

    if task.source_type in DATABRICKS:
        @decorate
        def databricks_task(context: AssetExecutionContext, monitor: ETLMonitorResource,
                            databricks: DatabricksResource) -> MaterializeResult:
            return execute(context, monitor, None, databricks.target())

        return databricks_task

    @decorate
    def task_asset(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        return execute(context, monitor, None)

    return task_asset


def _tagged_mode(tag: str | None) -> RunMode | None:
    if not tag:
        return None
    try:
        return RunMode(tag.strip().lower())
    except ValueError:
        raise ValidationError(MODE_TAG, tag, f"is one of {[m.value for m in RunMode]}") from None


def _run(context: AssetExecutionContext, monitor: ETLMonitorFramework, built: ProcessAssets, task: TaskSpec,
         mode: RunMode | None, initiation_step: str, databricks: Databricks | None) -> MaterializeResult:
    spec, run_id = built.spec, context.run.run_id
    day = processing_date(built.partitions, context.partition_key)
    if task.workflow == 0:
        _initiate(monitor, spec, run_id, day, mode)
    elif not _runs_step(context, initiation_step):
        _initiate_implicitly(monitor, spec, run_id, day)
    step = monitor.pending_rows(run_id, spec.project, spec.process, day, task_id=task.id,
                                workflow_id=task.workflow)[0]
    facts = {"processing_date": day.isoformat(), "execution_id": run_id, "try": context.retry_number + 1}
    if step.get("Attempts") is not None:
        facts["attempts"] = step["Attempts"]
    if step["Status"] == SKIP:
        context.log.info(f"{task.name}: not run (DONE in an earlier attempt, inactive or force-skipped)")
        return _result(task, {OUTCOME: Outcome.SKIPPED, **facts})
    monitor.start_task(run_id, spec.project, spec.process, task_id=task.id, sequence_id=task.stage,
                       workflow_id=task.workflow, processing_date=day, source_type=task.source_type,
                       source_run_id=run_id)
    started = time.perf_counter()
    run = TaskRun(run_id, spec, task, day, step, monitor, log=context.log, context=context, databricks=databricks,
                  try_number=context.retry_number)
    try:
        result = run_task(run)
    except Exception as exc:
        message, code = error_text(exc)
        if context.retry_number < task.maximum_retries:
            tries = f"try {context.retry_number + 1} of {task.maximum_retries + 1}"
            monitor.retry_task(run_id, spec.project, spec.process, task_id=task.id, sequence_id=task.stage,
                               workflow_id=task.workflow, processing_date=day, log_code=code,
                               log_message=f"{tries} failed, retrying in {task.retry_delay_seconds} s: {message}")
            raise  # the step's RetryPolicy starts the next try, which the monitor records as RQUE
        if task.mandatory:
            raise  # the step fails, later stages are skipped and the failure hook records FAIL
        context.log.error(f"optional task {task.name} failed; later stages go on: {message}")
        return _result(task, {OUTCOME: Outcome.FAIL, "error": message, "error_code": code, **facts}, message)
    figures = {"rows_read": result.rows_read, "rows_written": result.rows_written,
               "new_watermark": result.new_watermark, "summary": result.summary(),
               "seconds": round(time.perf_counter() - started, 3), **result.metadata}
    return _result(task, {OUTCOME: Outcome.DONE, **facts, **{k: v for k, v in figures.items() if v is not None}})


def _result(task: TaskSpec, metadata: dict[str, Any], error: str | None = None) -> MaterializeResult:
    def value(key: str, v: Any) -> Any:
        if key.endswith("_url") and isinstance(v, str):
            return MetadataValue.url(v)
        return v.value if isinstance(v, Enum) else v if isinstance(v, int | float | str | bool) else str(v)

    metadata = {k: value(k, v) for k, v in metadata.items()}
    checks = [] if task.mandatory else [AssetCheckResult(
        check_name=SUCCEEDED_CHECK, passed=error is None, severity=AssetCheckSeverity.WARN,
        metadata={"error": error} if error else {})]
    return MaterializeResult(metadata=metadata, check_results=checks)


def _runs_step(context: AssetExecutionContext, step_key: str) -> bool:
    """Whether this run executes ``step_key`` (re-executions from failure and asset subsets may not)."""
    run = context.run
    if run.step_keys_to_execute is not None and step_key not in run.step_keys_to_execute:
        return False
    return run.asset_selection is None or any(k.to_python_identifier() == step_key for k in run.asset_selection)


def _initiate(monitor: ETLMonitorFramework, spec: ProcessSpec, execution_id: str, day: date,
              mode: RunMode | None) -> None:
    """The initiation task's work: tables and catalogue up to date, mode applied, steps generated."""
    if not monitor.engine.table_exists(monitor.table_name("ETLProcessingSteps")):
        monitor.setup()
    monitor.register_many(**spec.registration())
    if mode is RunMode.LIVE:
        monitor.set_processing_mode(spec.project, spec.process)
    elif mode is RunMode.HISTORIC:
        monitor.set_processing_mode(spec.project, spec.process, is_historic_mode=True, processing_date=day)
    elif mode is RunMode.BULK:
        monitor.set_processing_mode(spec.project, spec.process, is_bulk_mode=True)
    monitor.generate_execution_steps(execution_id, spec.project, spec.process, day)


def _initiate_implicitly(monitor: ETLMonitorFramework, spec: ProcessSpec, execution_id: str, day: date) -> None:
    """A run without the initiation step (a re-execution from failure): its first steps open the attempt."""
    monitor.generate_execution_steps(execution_id, spec.project, spec.process, day)
    with monitor.task(execution_id, spec.project, spec.process, task_id=0, sequence_id=0, workflow_id=0,
                      processing_date=day, source_type=SourceType.NONE, source_run_id=execution_id):
        pass


# ------------------------------------------------------------------------------------ stage gates


def _gate_asset(built: ProcessAssets, stage: Stage, upstream: list[AssetKey]) -> AssetsDefinition:
    spec, key = built.spec, built.key(f"{stage.name}_gate")
    stage_steps = {k.to_python_identifier() for k in upstream}

    @asset(
        key=key,
        group_name=f"{built.prefix}/{stage.name}",
        deps=upstream,
        partitions_def=built.partitions,
        kinds={"etl_monitor"},
        description=f"Gate after stage {stage.sequence} ({stage.code}) of workflow {stage.workflow}: later "
        "stages run only when no mandatory task of this stage is FAIL, NQUE or RQUE.",
        check_specs=[AssetCheckSpec(BLOCKERS_CHECK, asset=key, blocking=True,
                                    description="v_mandatoryBlockers has no row for this run and stage.")],
    )
    def gate(context: AssetExecutionContext, monitor: ETLMonitorResource) -> MaterializeResult:
        m = monitor.get_monitor()
        where = {"ExecutionID": context.run.run_id, "WorkFlowID": stage.workflow, "SequenceID": stage.sequence}
        blockers = m.read_view("v_mandatoryBlockers", **where)
        if blockers:
            # Dagster starts this step as soon as the tasks succeed, possibly before their success hooks
            # have written DONE (or after a hook failed): bring the monitor in line, then look again.
            tasks = {step: t for step, t in built.tasks_by_step.items() if step in stage_steps}
            reconcile_run(context.instance, context.run.run_id, m, {spec.process: (spec, tasks)})
            blockers = m.read_view("v_mandatoryBlockers", **where)
        figures = {"mandatory_blockers": len(blockers)}
        if blockers:
            figures["blockers"] = MetadataValue.md(markdown_table(blockers, ["TaskName", "Status", "LogMessage"]))
        return MaterializeResult(
            metadata={"mandatory_blockers": len(blockers), "execution_id": context.run.run_id},
            check_results=[AssetCheckResult(
                check_name=BLOCKERS_CHECK, passed=not blockers, severity=AssetCheckSeverity.ERROR,
                metadata=figures,
                description=None if not blockers else f"{len(blockers)} mandatory task(s) block later stages",
            )],
        )

    return gate


def markdown_table(rows: list[dict[str, Any]], columns: list[str], limit: int = 20) -> str:
    """A small Markdown table; cell text is escaped so names with pipes or newlines stay in their cell."""
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")[:200]

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more |" + " |" * (len(columns) - 1))
    return "\n".join(lines)

